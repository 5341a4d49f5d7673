"""Model providers: the interface, the settings, and the built-in offline provider.

    base.py            ModelProvider: one ModelRequest in, one ModelReply out
    settings.py        ModelSettings (a step's model) and ProviderSettings (an endpoint, from env or a Block)
    offline.py         the deterministic provider that needs no model
    recorded.py        recorded answers: record a real endpoint's answers once, replay them with no network
    openai.py          the OpenAI-compatible HTTP client (httpx), with transport.py's retry policy
    endpoint.py        what a process learns about an endpoint: breaker, refused JSON modes, limits
    limits.py          in-process limits; server_limits.py: Prefect global concurrency limits
    session.py         the connections and limiters of one run

Which provider serves a step is resolved by the runtime (`agentflows.tasks.runtime`).
"""

from agentflows.tasks.llm.base import Message, ModelProvider, ModelReply, ModelRequest
from agentflows.tasks.llm.offline import OfflineProvider
from agentflows.tasks.llm.settings import ModelSettings, ProviderSettings

__all__ = [
    "Message",
    "ModelProvider",
    "ModelReply",
    "ModelRequest",
    "ModelSettings",
    "OfflineProvider",
    "ProviderSettings",
]

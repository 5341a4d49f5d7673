"""Model providers: the interface, the registry and the built-in offline provider."""

from agentflows.tasks.llm.base import (
    Message,
    ModelProvider,
    ModelReply,
    ModelRequest,
    ModelSettings,
    register_provider,
    registered_providers,
    resolve_provider,
)
from agentflows.tasks.llm.config import ProviderConfig, config_from_env
from agentflows.tasks.llm.offline import OfflineProvider


def _openai_from_env(settings: ModelSettings) -> ModelProvider:
    from agentflows.tasks.llm.openai import OpenAICompatibleProvider  # httpx only when it is used

    return OpenAICompatibleProvider(config_from_env(), settings)


register_provider("offline", OfflineProvider)
register_provider("openai", _openai_from_env)

__all__ = [
    "Message",
    "ModelProvider",
    "ModelReply",
    "ModelRequest",
    "ModelSettings",
    "OfflineProvider",
    "ProviderConfig",
    "config_from_env",
    "register_provider",
    "registered_providers",
    "resolve_provider",
]

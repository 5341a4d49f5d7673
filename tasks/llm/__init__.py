"""Model providers: the interface, the registry and the built-in offline provider."""

from tasks.llm.base import (
    Message,
    ModelProvider,
    ModelReply,
    ModelRequest,
    ModelSettings,
    register_provider,
    registered_providers,
    resolve_provider,
)
from tasks.llm.offline import OfflineProvider

register_provider("offline", OfflineProvider)

__all__ = [
    "Message",
    "ModelProvider",
    "ModelReply",
    "ModelRequest",
    "ModelSettings",
    "OfflineProvider",
    "register_provider",
    "registered_providers",
    "resolve_provider",
]

"""The model provider Block: an OpenAI-compatible endpoint's settings, saved on the Prefect server.

The Block is `ProviderSettings` (`agentflows.tasks.llm.settings`) with Prefect's
Block machinery: the same fields, the same checks, so the UI form, the
environment variables and the client never disagree. Register the type with
`agentflows blocks register`, create one in the UI (or in Python, below), and
name it in a definition's `model.provider`:

    from agentflows.blocks.model_provider import ModelProviderBlock
    ModelProviderBlock(base_url="http://localhost:8000/v1", model="qwen2.5-7b-instruct").save("local-vllm")

    # agent YAML
    model: {provider: local-vllm}
"""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import ConfigDict

from agentflows.tasks.llm.settings import PROVIDER_BLOCK_TYPE, ProviderSettings


class ModelProviderBlock(Block, ProviderSettings):
    """An OpenAI-compatible chat-completions endpoint (OpenAI, Moonshot/Kimi, vLLM, Ollama, llama.cpp…)."""

    model_config = ConfigDict(frozen=False, extra="allow")  # what Prefect's Block machinery expects

    _block_type_name = "agentflows model provider"
    _block_type_slug = PROVIDER_BLOCK_TYPE
    _description = "Endpoint, model, key, timeouts, limits and prices of a model provider used by agentflows agents."

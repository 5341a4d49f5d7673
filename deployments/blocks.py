"""`agentflows blocks register`: put agentflows' Block types in the Prefect UI catalogue."""

from __future__ import annotations

import asyncio

from prefect.blocks.core import Block
from prefect.settings import PREFECT_API_URL, temporary_settings

from agentflows.blocks.content_store import ContentStoreBlock
from agentflows.blocks.model_provider import ModelProviderBlock

BLOCK_TYPES: tuple[type[Block], ...] = (ModelProviderBlock, ContentStoreBlock)


def register_blocks(api_url: str | None = None) -> list[str]:
    """Register every Block type of `blocks/` with the Prefect API (this one, or `api_url`)."""

    async def register() -> None:
        for block_type in BLOCK_TYPES:
            await block_type.aregister_type_and_schema()

    if api_url is None:
        asyncio.run(register())
    else:
        with temporary_settings({PREFECT_API_URL: api_url}):
            asyncio.run(register())
    return [b.get_block_type_slug() for b in BLOCK_TYPES]

"""The content store Block: where agentflows stores outputs, saved on the Prefect server.

The Block is `StoreSettings` (`agentflows.tasks.storage.config`) with Prefect's
Block machinery. Register the type with `agentflows blocks register`, create one
in the UI or in Python, and point runs at it with `AGENTFLOWS_CONTENT_STORE=<block name>`:

    from pydantic import SecretStr
    from agentflows.blocks.content_store import ContentStoreBlock
    ContentStoreBlock(
        database_url=SecretStr("postgresql+psycopg://agentflows:...@db/agentflows"),
        storage_url="s3://agentflows-outputs/prod",
        s3_endpoint_url="http://minio:9000",
        aws_access_key_id=SecretStr("..."), aws_secret_access_key=SecretStr("..."),
    ).save("production")
"""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import ConfigDict

from agentflows.tasks.storage.config import STORE_BLOCK_TYPE, StoreSettings


class ContentStoreBlock(Block, StoreSettings):
    """A PostgreSQL (or SQLite) database and an S3-compatible bucket (or folder) for agentflows outputs."""

    model_config = ConfigDict(frozen=False, extra="allow")  # what Prefect's Block machinery expects

    _block_type_name = "agentflows content store"
    _block_type_slug = STORE_BLOCK_TYPE
    _description = "Database and object storage where agentflows writes generated content and its lineage."

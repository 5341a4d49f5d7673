"""The content store Block: where agentflows stores outputs, saved on the Prefect server.

Register the type with `agentflows blocks register` (or `prefect block register -m
agentflows.blocks.content_store`; saving one from Python registers it too), create one in the
UI or in Python, and point runs at it with `AGENTFLOWS_CONTENT_STORE=<block name>`:

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
from pydantic import Field, SecretStr

from agentflows.tasks.errors import ConfigurationError
from agentflows.tasks.storage.config import StoreConfig


class ContentStoreBlock(Block):
    """A PostgreSQL (or SQLite) database and an S3-compatible bucket (or folder) for agentflows outputs."""

    _block_type_name = "agentflows content store"
    _block_type_slug = "agentflows-content-store"
    _description = "Database and object storage where agentflows writes generated content and its lineage."

    database_url: SecretStr = Field(
        description="SQLAlchemy URL, e.g. postgresql+psycopg://user:password@host/agentflows."
    )
    storage_url: str = Field(description="s3://bucket/prefix, or a local folder.")
    s3_endpoint_url: str | None = Field(default=None, description="S3-compatible endpoint (MinIO…); empty for AWS.")
    aws_access_key_id: SecretStr | None = Field(
        default=None, description="Access key id; empty to use the usual AWS sources."
    )
    aws_secret_access_key: SecretStr | None = Field(default=None, description="Secret access key.")
    aws_session_token: SecretStr | None = Field(default=None, description="Session token, for temporary credentials.")
    aws_region: str | None = Field(default=None, description="Region of the bucket.")

    def to_config(self) -> StoreConfig:
        """The store configuration this block holds."""
        return StoreConfig(
            database_url=self.database_url,
            storage_url=self.storage_url,
            s3_endpoint_url=self.s3_endpoint_url,
            aws_access_key_id=self.aws_access_key_id,
            aws_secret_access_key=self.aws_secret_access_key,
            aws_session_token=self.aws_session_token,
            aws_region=self.aws_region,
        )

    @classmethod
    def load_config(cls, name: str) -> StoreConfig:
        """The store configuration saved under `name`; `ConfigurationError` when there is none."""
        try:
            block: ContentStoreBlock = cls.load(name)  # type: ignore[assignment]
        except ValueError:
            raise ConfigurationError(
                f"AGENTFLOWS_CONTENT_STORE names {name!r}, but no agentflows content store block has that name"
            ) from None
        return block.to_config()

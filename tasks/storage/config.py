"""Where content is stored: from a Block, from the environment, or the embedded default.

    AGENTFLOWS_CONTENT_STORE      name of a saved `agentflows-content-store` Block (wins over the rest)
    AGENTFLOWS_DATABASE_URL       a SQLAlchemy URL, e.g. postgresql+psycopg://user:pw@host/agentflows
    AGENTFLOWS_STORAGE_URL        s3://bucket/prefix, or a local folder
    AGENTFLOWS_S3_ENDPOINT_URL    an S3-compatible endpoint (MinIO, moto…); AWS itself needs none
    AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_DEFAULT_REGION   as usual

Unset, the embedded default applies: SQLite at `$AGENTFLOWS_HOME/agentflows.db`
and files under `$AGENTFLOWS_HOME/outputs`. Passwords and keys are `SecretStr`
and `describe()` never shows them.
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from agentflows.tasks.errors import ConfigurationError
from agentflows.tasks.settings import current_settings

STORE_BLOCK_VARIABLE = "AGENTFLOWS_CONTENT_STORE"


class StoreConfig(BaseModel):
    """The database and object storage of a content store."""

    model_config = ConfigDict(frozen=True)

    database_url: SecretStr
    """SQLAlchemy URL; secret because it may hold a password."""
    storage_url: str
    """`s3://bucket/prefix` or a local folder."""
    s3_endpoint_url: str | None = None
    aws_access_key_id: SecretStr | None = None
    aws_secret_access_key: SecretStr | None = None
    aws_session_token: SecretStr | None = None
    aws_region: str | None = None

    @property
    def embedded(self) -> bool:
        return self.database_url.get_secret_value().startswith("sqlite")

    def storage_options(self) -> dict[str, Any]:
        """fsspec options for `storage_url` (credentials left out when botocore should find its own)."""
        if not self.storage_url.startswith("s3://"):
            return {}
        # Retries live in ObjectStore alone: botocore and s3fs must not repeat each attempt again.
        options: dict[str, Any] = {
            "config_kwargs": {"retries": {"max_attempts": 1}, "connect_timeout": 10, "read_timeout": 60}
        }
        if self.s3_endpoint_url:
            options["endpoint_url"] = self.s3_endpoint_url
        if self.aws_access_key_id and self.aws_secret_access_key:
            options["key"] = self.aws_access_key_id.get_secret_value()
            options["secret"] = self.aws_secret_access_key.get_secret_value()
        if self.aws_session_token:
            options["token"] = self.aws_session_token.get_secret_value()
        if self.aws_region:
            options["client_kwargs"] = {"region_name": self.aws_region}
        return options

    def describe_database(self) -> str:
        """The database URL with any password masked."""
        return make_url(self.database_url.get_secret_value()).render_as_string(hide_password=True)

    def describe_storage(self) -> str:
        endpoint = f" at {self.s3_endpoint_url}" if self.s3_endpoint_url else ""
        return f"{self.storage_url}{endpoint}"


def config_from_env(environ: dict[str, str] | None = None) -> StoreConfig:
    """The store the environment describes, or the embedded default."""
    env = os.environ if environ is None else environ
    settings = current_settings()
    database = env.get("AGENTFLOWS_DATABASE_URL", "").strip() or f"sqlite:///{settings.database_path}"
    try:
        make_url(database)
    except ArgumentError:
        raise ConfigurationError(
            "AGENTFLOWS_DATABASE_URL is not a SQLAlchemy URL; use e.g. postgresql+psycopg://user:password@host/db"
        ) from None
    return StoreConfig(
        database_url=SecretStr(database),
        storage_url=env.get("AGENTFLOWS_STORAGE_URL", "").strip() or str(settings.outputs_dir),
        s3_endpoint_url=env.get("AGENTFLOWS_S3_ENDPOINT_URL", "").strip() or None,
        aws_access_key_id=_secret(env.get("AWS_ACCESS_KEY_ID")),
        aws_secret_access_key=_secret(env.get("AWS_SECRET_ACCESS_KEY")),
        aws_session_token=_secret(env.get("AWS_SESSION_TOKEN")),
        aws_region=env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION") or None,
    )


def _secret(value: str | None) -> SecretStr | None:
    return SecretStr(value) if value else None

"""Where content is stored: a database and an object storage, from the environment or a saved Block.

    AGENTFLOWS_DATABASE_URL       a SQLAlchemy URL, e.g. postgresql+psycopg://user:pw@host/agentflows
    AGENTFLOWS_STORAGE_URL        s3://bucket/prefix, or a local folder
    AGENTFLOWS_S3_ENDPOINT_URL    an S3-compatible endpoint (MinIO, moto…); AWS itself needs none
    AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_DEFAULT_REGION   as usual

Unset, the embedded default applies: SQLite at `$AGENTFLOWS_HOME/agentflows.db`
and files under `$AGENTFLOWS_HOME/outputs`. The same `StoreSettings` is what a
saved `agentflows content store` Block holds (`agentflows.blocks.content_store`).
Passwords and keys are `SecretStr`, and `describe_*()` never shows them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from agentflows.tasks.errors import ConfigurationError
from agentflows.tasks.masking import masked

STORE_BLOCK_TYPE = "agentflows-content-store"
"""Slug of the content store Block type on the Prefect server."""


class StoreSettings(BaseModel):
    """The database and object storage of a content store."""

    model_config = ConfigDict(frozen=True, extra="forbid")

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

    @classmethod
    def from_env(cls, env: Mapping[str, str], home: Path) -> StoreSettings:
        """The store the environment describes, or the embedded default under `home`."""
        database = _get(env, "AGENTFLOWS_DATABASE_URL") or f"sqlite:///{home / 'agentflows.db'}"
        return cls(
            database_url=SecretStr(database),
            storage_url=_get(env, "AGENTFLOWS_STORAGE_URL") or str(home / "outputs"),
            s3_endpoint_url=_get(env, "AGENTFLOWS_S3_ENDPOINT_URL"),
            aws_access_key_id=_secret(env.get("AWS_ACCESS_KEY_ID")),
            aws_secret_access_key=_secret(env.get("AWS_SECRET_ACCESS_KEY")),
            aws_session_token=_secret(env.get("AWS_SESSION_TOKEN")),
            aws_region=_get(env, "AWS_DEFAULT_REGION") or _get(env, "AWS_REGION"),
        )

    @classmethod
    def from_saved(cls, data: Mapping[str, Any], name: str) -> StoreSettings:
        """The settings a saved Block document holds (fields it does not know are left out)."""
        known = {k: v for k, v in data.items() if k in cls.model_fields and v is not None}
        try:
            return cls.model_validate(known)
        except ValidationError as exc:
            error = exc.errors()[0]
            raise ConfigurationError(
                f"content store block {name!r}: {error['loc'][0]} is invalid: {error['msg']}"
            ) from None

    def check(self) -> StoreSettings:
        """These settings, once their URLs are known to be usable; else `ConfigurationError`.

        Run before any model call, so a mistyped URL costs no tokens.
        """
        _check_database_url(self.database_url.get_secret_value())
        _check_storage_url(self.storage_url)
        return self

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
        from sqlalchemy.engine import make_url

        return make_url(self.database_url.get_secret_value()).render_as_string(hide_password=True)

    def describe_storage(self) -> str:
        """The storage URL and S3 endpoint, with any credentials in them masked."""
        endpoint = f" at {self.s3_endpoint_url}" if self.s3_endpoint_url else ""
        return masked(f"{self.storage_url}{endpoint}")

    def key(self) -> str:
        """Identity of this configuration, secrets included (for reusing an open store)."""
        return self.model_dump_json() + self.database_url.get_secret_value()


DATABASE_SOURCE = "the content database URL (AGENTFLOWS_DATABASE_URL or the content store block's database_url)"
STORAGE_SOURCE = "the storage URL (AGENTFLOWS_STORAGE_URL or the content store block's storage_url)"


def _check_database_url(url: str) -> None:
    """A SQLAlchemy URL whose dialect and synchronous driver are installed here."""
    from sqlalchemy.engine import make_url  # not at import: loading definitions needs no SQLAlchemy
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    example = "use e.g. postgresql+psycopg://user@host/db or sqlite:///path/agentflows.db"
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigurationError(f"{DATABASE_SOURCE} is not a SQLAlchemy URL; {example}") from None
    shown = parsed.render_as_string(hide_password=True)
    try:
        dialect = parsed.get_dialect()
    except NoSuchModuleError:
        raise ConfigurationError(
            f"{DATABASE_SOURCE} {shown!r} names {parsed.drivername!r}, which is no database dialect and driver "
            f"SQLAlchemy knows here; {example}"
        ) from None
    if getattr(dialect, "is_async", False):
        raise ConfigurationError(
            f"{DATABASE_SOURCE} {shown!r} names the asynchronous driver {parsed.get_driver_name()!r}; "
            "agentflows needs a synchronous one, e.g. postgresql+psycopg://"
        )
    try:
        dialect.import_dbapi()
    except ImportError:
        raise ConfigurationError(
            f"{DATABASE_SOURCE} {shown!r} needs the driver {parsed.get_driver_name()!r}, which is not installed; "
            f"{example}"
        ) from None


def _check_storage_url(url: str) -> None:
    """A local folder, or a URL whose fsspec protocol is known and installed here."""
    from fsspec.core import split_protocol
    from fsspec.registry import get_filesystem_class

    protocol, path = split_protocol(url)
    if protocol in (None, "file", "local"):
        return
    example = "use s3://bucket/prefix or a local folder"
    try:
        get_filesystem_class(protocol)
    except ValueError:
        raise ConfigurationError(
            f"{STORAGE_SOURCE} {masked(url)!r} has the protocol {protocol!r}, which is not known; {example}"
        ) from None
    except ImportError:
        raise ConfigurationError(
            f"{STORAGE_SOURCE} {masked(url)!r} needs the fsspec implementation of {protocol!r}, which is not "
            f"installed; {example}"
        ) from None
    if not path.strip("/"):
        raise ConfigurationError(f"{STORAGE_SOURCE} {masked(url)!r} names no bucket or folder; {example}")


def _get(env: Mapping[str, str], name: str) -> str | None:
    return env.get(name, "").strip() or None


def _secret(value: str | None) -> SecretStr | None:
    return SecretStr(value) if value else None

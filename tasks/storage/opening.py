"""Opening the configured content store, and keeping its database on the newest schema.

Which store: a saved content store Block named by `AGENTFLOWS_CONTENT_STORE`, else
the environment (`agentflows.tasks.storage.config`), else the embedded default.

Schema policy: the embedded SQLite database is migrated when a store opens it
(nobody else manages it). Any other database belongs to an operator: a store
refuses to open it until `agentflows db upgrade` has brought it to the newest
revision, and a database migrated by a newer agentflows is refused either way.
"""

from __future__ import annotations

import os
import threading

from agentflows.tasks.errors import StorageError
from agentflows.tasks.storage.config import STORE_BLOCK_VARIABLE, StoreConfig, config_from_env
from agentflows.tasks.storage.migrate import head_revision, known_revisions, upgrade
from agentflows.tasks.storage.objects import ObjectStore
from agentflows.tasks.storage.records import ContentRepository, error_reason, open_engine
from agentflows.tasks.storage.store import ContentStore

_stores: dict[str, ContentStore] = {}
_lock = threading.Lock()


def open_store(config: StoreConfig | None = None) -> ContentStore:
    """The configured content store (one per configuration per process)."""
    config = config or configured_store()
    key = config.model_dump_json() + config.database_url.get_secret_value()
    with _lock:
        if key not in _stores:
            _stores[key] = _open(config)
        return _stores[key]


def configured_store() -> StoreConfig:
    """The store a saved Block names (`AGENTFLOWS_CONTENT_STORE`), or the environment's."""
    block_name = os.environ.get(STORE_BLOCK_VARIABLE, "").strip()
    if block_name:
        from agentflows.blocks.content_store import ContentStoreBlock

        return ContentStoreBlock.load_config(block_name)
    return config_from_env()


def forget_stores() -> None:
    """Close every open store (after a configuration change, or in tests)."""
    with _lock:
        for store in _stores.values():
            store.records.engine.dispose()
        _stores.clear()


def database_revision(config: StoreConfig | None = None) -> str | None:
    """The schema revision of the configured database (None before its first migration)."""
    records = _repository(config or configured_store())
    try:
        return records.schema_revision()
    finally:
        records.engine.dispose()


def upgrade_database(config: StoreConfig | None = None) -> str | None:
    """Migrate the configured database to the newest schema; the revision it was at before."""
    config = config or configured_store()
    records = _repository(config)
    try:
        before = records.schema_revision()
        _check_known(config, before)
        _upgrade(config, records)
        return before
    finally:
        records.engine.dispose()


def _open(config: StoreConfig) -> ContentStore:
    records = _repository(config)
    revision = records.schema_revision()
    if revision != head_revision():
        _check_known(config, revision)
        if not config.embedded:
            raise StorageError(
                f"database {config.describe_database()} is at schema revision {revision or 'none'}, "
                f"not {head_revision()}; run `agentflows db upgrade`"
            )
        _upgrade(config, records)
    objects = ObjectStore(config.storage_url, describe=config.describe_storage(), **config.storage_options())
    return ContentStore(objects, records)


def _repository(config: StoreConfig) -> ContentRepository:
    return ContentRepository(open_engine(config.database_url.get_secret_value()))


def _check_known(config: StoreConfig, revision: str | None) -> None:
    """Refuse a database that a newer agentflows migrated: this one would misread it."""
    if revision is not None and revision not in known_revisions():
        raise StorageError(
            f"database {config.describe_database()} is at schema revision {revision!r}, which this agentflows "
            f"does not know (its newest is {head_revision()!r}); use the agentflows version that migrated it"
        )


def _upgrade(config: StoreConfig, records: ContentRepository) -> None:
    try:
        upgrade(records.engine)
    except Exception as exc:  # the driver's or Alembic's error: name the database, never its password
        raise StorageError(f"cannot migrate database {config.describe_database()}: {error_reason(exc)}") from None

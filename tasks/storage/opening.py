"""Opening a content store, and keeping its database on the newest schema.

Which store is the runtime's to say (`Runtime.store_settings()`: a saved content
store Block named by `AGENTFLOWS_CONTENT_STORE`, else the environment, else the
embedded default); `Runtime.store()` opens it once with `open_configured`.

Schema policy: the embedded SQLite database is migrated when a store opens it
(nobody else manages it). Any other database belongs to an operator: a store
refuses to open it until `agentflows db upgrade` has brought it to the newest
revision, and a database migrated by a newer agentflows is refused either way.
"""

from __future__ import annotations

from agentflows.tasks.errors import StorageError
from agentflows.tasks.storage.config import StoreSettings
from agentflows.tasks.storage.migrate import head_revision, known_revisions, upgrade
from agentflows.tasks.storage.objects import ObjectStore
from agentflows.tasks.storage.records import ContentRepository, error_reason, open_engine
from agentflows.tasks.storage.store import ContentStore


def open_configured(settings: StoreSettings) -> ContentStore:
    """A store on `settings`' database and object storage, its schema checked (and migrated if embedded)."""
    records = _repository(settings)
    try:
        _check_schema(settings, records)
        objects = ObjectStore(settings.storage_url, describe=settings.describe_storage(), **settings.storage_options())
    except BaseException:
        records.engine.dispose()
        raise
    return ContentStore(objects, records)


def _check_schema(settings: StoreSettings, records: ContentRepository) -> None:
    """Bring an embedded database to the newest schema; refuse any other that is not on it."""
    revision = records.schema_revision()
    if revision == head_revision():
        return
    _check_known(settings, revision)
    if not settings.embedded:
        raise StorageError(
            f"database {settings.describe_database()} is at schema revision {revision or 'none'}, "
            f"not {head_revision()}; run `agentflows db upgrade`"
        )
    _upgrade(settings, records)


def database_revision(settings: StoreSettings) -> str | None:
    """The schema revision of `settings`' database (None before its first migration)."""
    records = _repository(settings)
    try:
        return records.schema_revision()
    finally:
        records.engine.dispose()


def upgrade_database(settings: StoreSettings) -> str | None:
    """Migrate `settings`' database to the newest schema; the revision it was at before."""
    records = _repository(settings)
    try:
        before = records.schema_revision()
        _check_known(settings, before)
        _upgrade(settings, records)
        return before
    finally:
        records.engine.dispose()


def _repository(settings: StoreSettings) -> ContentRepository:
    return ContentRepository(open_engine(settings.database_url.get_secret_value()))


def _check_known(settings: StoreSettings, revision: str | None) -> None:
    """Refuse a database that a newer agentflows migrated: this one would misread it."""
    if revision is not None and revision not in known_revisions():
        raise StorageError(
            f"database {settings.describe_database()} is at schema revision {revision!r}, which this agentflows "
            f"does not know (its newest is {head_revision()!r}); use the agentflows version that migrated it"
        )


def _upgrade(settings: StoreSettings, records: ContentRepository) -> None:
    try:
        upgrade(records.engine)
    except Exception as exc:  # the driver's or Alembic's error: name the database, never its password
        raise StorageError(f"cannot migrate database {settings.describe_database()}: {error_reason(exc)}") from None

"""Persistence of built content: files in object storage, records in a database.

config.py    where content is stored (Block, environment, embedded default)
opening.py   open_store(): the configured store, its schema kept up to date
store.py     ContentStore: save (write once, never half), get, list, read, to_dataframe
objects.py   ObjectStore: bytes under a folder or an S3 prefix (fsspec), safe keys
records.py   ContentRepository: rows in PostgreSQL or SQLite (SQLAlchemy 2)
schema.py    the tables; migrate.py and migrations/ keep databases on it (Alembic)
sweep.py     removing objects that failed saves left behind
"""

from agentflows.tasks.storage.opening import database_revision, forget_stores, open_store, upgrade_database
from agentflows.tasks.storage.store import (
    DATAFRAME_COLUMNS,
    ContentStore,
    LineageEntry,
    RunInfo,
    StoredContent,
)
from agentflows.tasks.storage.sweep import SweepReport

__all__ = [
    "DATAFRAME_COLUMNS",
    "ContentStore",
    "LineageEntry",
    "RunInfo",
    "StoredContent",
    "SweepReport",
    "database_revision",
    "forget_stores",
    "open_store",
    "upgrade_database",
]

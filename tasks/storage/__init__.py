"""Persistence of built content: files in object storage, records in a database.

config.py    StoreSettings: where content is stored (Block, environment, embedded default)
opening.py   opening a store on its settings, its schema kept up to date
store.py     ContentStore: save (write once, never half), get, list, search, versions, read, to_dataframe
rows.py      the rows a save writes (LineageEntry, RunInfo: what it is given) and how lineage reads back
objects.py   ObjectStore: bytes under a folder or an S3 prefix (fsspec), safe keys
records.py   ContentRepository: rows in PostgreSQL or SQLite (SQLAlchemy 2)
schema.py    the tables; migrate.py and migrations/ keep databases on it (Alembic)
sweep.py     removing objects that failed saves left behind
eval_results.py   the eval results table (one row per case of every `agentflows eval`)

`agentflows.open_store()` gives the configured store. Names are imported on
first use, so reading the settings does not import SQLAlchemy, fsspec or pandas.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agentflows.tasks.storage.config import StoreSettings
    from agentflows.tasks.storage.opening import database_revision, upgrade_database
    from agentflows.tasks.storage.rows import LineageEntry, RunInfo
    from agentflows.tasks.storage.store import DATAFRAME_COLUMNS, ContentPage, ContentStore, StoredContent
    from agentflows.tasks.storage.sweep import SweepReport

_EXPORTS = {
    "DATAFRAME_COLUMNS": "agentflows.tasks.storage.store",
    "ContentPage": "agentflows.tasks.storage.store",
    "ContentStore": "agentflows.tasks.storage.store",
    "LineageEntry": "agentflows.tasks.storage.rows",
    "RunInfo": "agentflows.tasks.storage.rows",
    "StoredContent": "agentflows.tasks.storage.store",
    "StoreSettings": "agentflows.tasks.storage.config",
    "SweepReport": "agentflows.tasks.storage.sweep",
    "database_revision": "agentflows.tasks.storage.opening",
    "upgrade_database": "agentflows.tasks.storage.opening",
}
__all__ = [
    "DATAFRAME_COLUMNS",
    "ContentPage",
    "ContentStore",
    "LineageEntry",
    "RunInfo",
    "StoreSettings",
    "StoredContent",
    "SweepReport",
    "database_revision",
    "upgrade_database",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'agentflows.tasks.storage' has no attribute {name!r}")

"""Persistence of built content: files in object storage, records in a database."""

from tasks.storage.store import (
    DATAFRAME_COLUMNS,
    ContentStore,
    LineageEntry,
    RunInfo,
    StoredContent,
    SweepReport,
    open_store,
)

__all__ = [
    "DATAFRAME_COLUMNS",
    "ContentStore",
    "LineageEntry",
    "RunInfo",
    "StoredContent",
    "SweepReport",
    "open_store",
]

"""Persistence of built content: files in object storage, records in a database."""

from tasks.storage.store import ContentStore, RunInfo, StoredContent, open_store

__all__ = ["ContentStore", "RunInfo", "StoredContent", "open_store"]

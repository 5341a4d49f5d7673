"""Object storage for content files, through fsspec: a local folder or S3 (s3fs).

An `ObjectStore` writes, reads, lists and deletes bytes under one base location.
Keys are checked by `safe_key`, so no key can escape the base. Writes are whole
or absent (a local file is written aside and renamed; an S3 PUT is atomic).
Outages are retried with backoff; the final error names the store, never a
credential.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import fsspec
from botocore.exceptions import BotoCoreError
from fsspec.implementations.local import LocalFileSystem

from agentflows.tasks.errors import ObjectMissing, StorageError
from agentflows.tasks.normalize import safe_key
from agentflows.tasks.storage.retries import RETRY_DELAYS, retrying

T = TypeVar("T")

__all__ = ["ObjectInfo", "ObjectStore", "safe_key"]


@dataclass(frozen=True)
class ObjectInfo:
    """A stored object: its key and when it was last written."""

    key: str
    modified: datetime


class ObjectStore:
    """Bytes under one base location (a folder or an fsspec URL)."""

    def __init__(self, base: str | Path, *, describe: str | None = None, **storage_options: Any) -> None:
        text = str(base)
        self.fs, root = fsspec.core.url_to_fs(text, **storage_options)
        self.root = root.rstrip("/")
        self.local = isinstance(self.fs, LocalFileSystem)
        if hasattr(self.fs, "retries"):
            self.fs.retries = 1  # s3fs retries each call itself; here the retries are ours (RETRY_DELAYS)
        self.name = describe or text
        if self.local:
            self._retrying("create", lambda: Path(self.root).mkdir(parents=True, exist_ok=True))

    def path(self, key: str) -> str:
        return f"{self.root}/{safe_key(key)}"

    def url(self, key: str) -> str:
        """Where a reader finds the object: a `file://` URI or the store's own URL."""
        if self.local:
            return Path(self.path(key)).as_uri()
        return str(self.fs.unstrip_protocol(self.path(key)))

    def put(self, key: str, data: bytes) -> None:
        """Write `data` at `key`, whole or not at all."""
        self.put_many({key: data})

    def put_many(self, objects: Mapping[str, bytes]) -> None:
        """Write every object in `objects` (key → bytes), each whole or not at all.

        Remote stores send the writes concurrently (fsspec's batched `pipe`); a
        retry repeats the whole batch, which is harmless: the keys are
        content-addressed, so a repeated write puts the same bytes at the same key.
        """
        if not objects:
            return
        paths = {self.path(key): data for key, data in objects.items()}
        first = next(iter(objects))
        more = len(objects) - 1
        action = f"write {first!r}" + (f" and {more} more object{'s' if more > 1 else ''}" if more else "") + " to"

        def write() -> None:
            if self.local:
                for path, data in paths.items():
                    _write_atomically(Path(path), data)
            else:
                self.fs.pipe(paths)

        try:
            self._retrying(action, write)
        except FileNotFoundError as exc:
            raise StorageError(f"cannot {action} {self.name}: {_reason(exc)}") from None

    def get(self, key: str) -> bytes:
        """The bytes at `key`; `ObjectMissing` when there are none, or (in a folder) when a link stands there."""
        path = self.path(key)
        if self.local and not self._plain_file(path):
            raise ObjectMissing(f"object {key!r} in {self.name} is a link, not a file the store wrote")
        try:
            return self._retrying(f"read {key!r} from", lambda: bytes(self.fs.cat_file(path)))
        except FileNotFoundError:
            raise ObjectMissing(f"object {key!r} does not exist in {self.name}") from None

    def _plain_file(self, path: str) -> bool:
        """Whether `path` resolves to itself under the base: no link on the way, so no read leaves the key."""
        base = os.path.realpath(self.root)
        return os.path.realpath(path) == os.path.join(base, os.path.relpath(path, self.root))

    def exists(self, key: str) -> bool:
        path = self.path(key)
        return bool(self._retrying(f"look up {key!r} in", lambda: self.fs.exists(path)))

    def delete(self, key: str) -> None:
        """Remove the object at `key`; an object already gone is not an error."""
        path = self.path(key)
        with contextlib.suppress(FileNotFoundError):
            self._retrying(f"delete {key!r} from", lambda: self.fs.rm_file(path))

    def modified(self, key: str) -> datetime | None:
        """When the object at `key` was last written, or None when there is none."""
        path = self.path(key)
        self.fs.invalidate_cache(path)
        try:
            return _modified(self._retrying(f"look up {key!r} in", lambda: self.fs.info(path)))
        except FileNotFoundError:
            return None

    def objects(self) -> Iterator[ObjectInfo]:
        """Every object under the base, with its modification time."""
        self.fs.invalidate_cache()
        try:
            found = self._retrying("list", lambda: self.fs.find(self.root, detail=True))
        except FileNotFoundError as exc:  # a bucket that does not exist holds no objects to list
            raise StorageError(f"cannot list {self.name}: {_reason(exc)}") from None
        for path, info in found.items():
            key = path[len(self.root) + 1 :] if path.startswith(self.root + "/") else path
            yield ObjectInfo(key=key, modified=_modified(info))

    def _retrying(self, action: str, operation: Callable[[], T]) -> T:
        """Run `operation`, again after a pause when the store could not be reached.

        A missing object raises `FileNotFoundError` for the caller to word; a missing
        bucket or a refused permission fails at once; outages of a remote store are
        retried (`RETRY_DELAYS`), while a local folder's errors would only repeat.
        """
        try:
            return retrying(operation, _transient, () if self.local else RETRY_DELAYS)
        except FileNotFoundError as exc:
            if _missing_bucket(exc):
                raise StorageError(f"cannot {action} {self.name}: {_reason(exc)}") from None
            raise
        except (OSError, TimeoutError, BotoCoreError) as exc:
            raise StorageError(f"cannot {action} {self.name}: {_reason(exc)}") from None


def _transient(exc: Exception) -> bool:
    """Whether a storage failure may pass on another attempt: an outage, not a missing object or permission."""
    outage = isinstance(exc, OSError | TimeoutError | BotoCoreError)
    return outage and not isinstance(exc, FileNotFoundError | PermissionError)


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def _missing_bucket(exc: FileNotFoundError) -> bool:
    """Whether S3 said the bucket, not the object, is missing (s3fs raises FileNotFoundError for both)."""
    return "bucket does not exist" in str(exc).lower()


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _modified(info: dict[str, Any]) -> datetime:
    """Modification time from an fsspec info record (local `mtime`, S3 `LastModified`)."""
    value = info.get("LastModified") or info.get("mtime") or info.get("created")
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    return datetime.now(UTC)

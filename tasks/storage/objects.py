"""Object storage for content files, through fsspec.

An `ObjectStore` writes and reads bytes under one base location: a local folder
(the embedded default) or any fsspec URL. Keys are relative POSIX paths checked
by `safe_key`, so no key can escape the base location.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

import fsspec
from fsspec.implementations.local import LocalFileSystem

from tasks.errors import StorageError

_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


def safe_key(key: str) -> str:
    """`key` when it is a relative path of plain names; raise `StorageError` otherwise."""
    parts = key.split("/")
    if not key or len(key) > 900 or not all(_SEGMENT.match(p) for p in parts):
        raise StorageError(f"object key {key!r} is not a relative path of plain names; it would escape the store")
    return key


class ObjectStore:
    """Bytes under one base location (a folder or an fsspec URL)."""

    def __init__(self, base: str | Path, **storage_options: object) -> None:
        text = str(base)
        self.fs, root = fsspec.core.url_to_fs(text, **storage_options)
        self.root = root.rstrip("/")
        self.local = isinstance(self.fs, LocalFileSystem)
        self.base = text

    def path(self, key: str) -> str:
        return f"{self.root}/{safe_key(key)}"

    def url(self, key: str) -> str:
        """Where a reader finds the object: a `file://` URI or the store's own URL."""
        if self.local:
            return Path(self.path(key)).as_uri()
        return f"{self.fs.unstrip_protocol(self.path(key))}"

    def put(self, key: str, data: bytes) -> None:
        """Write `data` at `key`, whole or not at all."""
        path = self.path(key)
        try:
            if self.local:
                _write_atomically(Path(path), data)
            else:
                self.fs.pipe_file(path, data)
        except OSError as exc:
            raise StorageError(f"cannot write {key!r} to {self.base}: {exc.strerror or exc}") from None

    def get(self, key: str) -> bytes:
        try:
            return self.fs.cat_file(self.path(key))
        except FileNotFoundError:
            raise StorageError(f"object {key!r} does not exist in {self.base}") from None
        except OSError as exc:
            raise StorageError(f"cannot read {key!r} from {self.base}: {exc.strerror or exc}") from None

    def exists(self, key: str) -> bool:
        return bool(self.fs.exists(self.path(key)))


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)

"""Where knowledge comes from: files and folders of the definitions folder, and a run's folder or S3 prefix.

A definition names sources relative to its definitions folder: a file, or a folder
whose Markdown (`.md`, `.markdown`) and plain-text (`.txt`) files, at any depth,
are the knowledge (hidden files and folders are skipped). `source_problem` says
what is wrong with one (what `agentflows validate` reports); `definition_documents`
reads them for a run. A run may add a local folder inside one of the allowed roots
(`AGENTFLOWS_KNOWLEDGE_ROOTS`) or an `s3://bucket/prefix`, read with the content
store's S3 settings, when the agent names an input for it (`run_documents`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from agentflows.tasks.errors import KnowledgeError
from agentflows.tasks.knowledge.passages import KNOWLEDGE_SUFFIXES, MARKDOWN_SUFFIXES, Document

MAX_FILE_BYTES = 2_000_000
"""Largest knowledge file read; a larger one is refused (split it)."""
MAX_FILES = 5_000
"""Most files one source may hold."""
SUFFIXES_TEXT = ", ".join(sorted(KNOWLEDGE_SUFFIXES))


def source_files(root: Path, source: str) -> list[Path]:
    """The knowledge files of `source` (a file, or every knowledge file below a folder), sorted."""
    path = root / source
    if path.is_file():
        return [path]
    return sorted(
        p
        for p in path.rglob("*")
        if p.suffix.lower() in KNOWLEDGE_SUFFIXES
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(path).parts)
    )


def source_problem(root: Path, source: str) -> str | None:
    """Why `source` cannot be used as knowledge of a definition under `root`, or None when it can."""
    if problem := _place_problem(root, source):
        return problem
    base = root.resolve()
    for file in source_files(root, source):
        if problem := _file_problem(file, file.relative_to(root).as_posix(), base):
            return problem
    return None


def _place_problem(root: Path, source: str) -> str | None:
    """Why `source` is no place to read knowledge from (outside, missing, not a knowledge file, empty)."""
    base = root.resolve()
    path = (root / source).resolve()
    if not path.is_relative_to(base):
        return f"knowledge source {source!r} is outside the definitions folder {root}"
    if not path.exists():
        return f"knowledge source {source!r} does not exist under {root}; give a file or folder inside it"
    if path.is_file() and path.suffix.lower() not in KNOWLEDGE_SUFFIXES:
        return f"knowledge source {source!r} is not a Markdown or text file; knowledge files end in {SUFFIXES_TEXT}"
    files = source_files(root, source)
    if not files:
        return f"knowledge folder {source!r} holds no knowledge files ({SUFFIXES_TEXT})"
    if len(files) > MAX_FILES:
        return f"knowledge folder {source!r} holds {len(files):,} files, more than {MAX_FILES:,}; name sub-folders"
    return None


def _file_problem(file: Path, name: str, base: Path) -> str | None:
    if not file.resolve().is_relative_to(base):
        return f"knowledge file {name!r} links outside the definitions folder {base}"
    size = file.stat().st_size
    if size > MAX_FILE_BYTES:
        return f"knowledge file {name!r} has {size:,} bytes, more than {MAX_FILE_BYTES:,}; split it"
    try:
        file.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"knowledge file {name!r} is not UTF-8 text (byte {exc.start}); save it as UTF-8"
    return None


def definition_documents(root: Path, sources: Sequence[str]) -> tuple[list[Document], list[str]]:
    """The documents of a definition's sources, and the URI prefixes they were read from (for pruning)."""
    documents: dict[str, Document] = {}
    prefixes: list[str] = []
    for source in sources:
        if problem := _place_problem(root, source):
            raise KnowledgeError(problem)
        prefixes.append(_folder_uri(root / source))
        for file in source_files(root, source):
            name = file.relative_to(root).as_posix()
            if not file.resolve().is_relative_to(root.resolve()):
                raise KnowledgeError(f"knowledge file {name!r} links outside the definitions folder {root}")
            document = _document(file.resolve().as_uri(), name, _read_local(file), file.suffix)
            documents.setdefault(document.uri, document)
    return list(documents.values()), prefixes


def run_documents(
    locations: Iterable[str], roots: Sequence[Path], s3_options: dict[str, Any]
) -> tuple[list[Document], list[str]]:
    """The documents of a run's own sources: local folders inside `roots`, or `s3://` prefixes."""
    documents: list[Document] = []
    prefixes: list[str] = []
    for location in (loc.strip() for loc in locations):
        if not location:
            continue
        if location.startswith("s3://"):
            found, prefix = _s3_documents(location, s3_options)
        else:
            found, prefix = _folder_documents(location, roots)
        documents += found
        prefixes.append(prefix)
    return documents, prefixes


def _folder_documents(location: str, roots: Sequence[Path]) -> tuple[list[Document], str]:
    folder = Path(location).expanduser()
    resolved = folder.resolve()
    allowed = [r.resolve() for r in roots]
    if not folder.is_absolute() or not any(resolved.is_relative_to(r) for r in allowed):
        shown = ", ".join(str(r) for r in allowed) or "none"
        raise KnowledgeError(
            f"knowledge folder {location!r} is not inside an allowed root ({shown}); give an absolute folder "
            "inside one of them, or add its root to AGENTFLOWS_KNOWLEDGE_ROOTS"
        )
    if not resolved.is_dir():
        raise KnowledgeError(f"knowledge folder {location!r} does not exist or is not a folder")
    documents = []
    for file in source_files(resolved, "."):
        if not file.resolve().is_relative_to(resolved):
            continue  # a link out of the folder: not what the run named
        documents.append(_document(file.resolve().as_uri(), file.resolve().as_uri(), _read_local(file), file.suffix))
    return documents, _folder_uri(resolved)


def _s3_documents(location: str, options: dict[str, Any]) -> tuple[list[Document], str]:
    import fsspec  # only a run that names an S3 prefix needs it

    prefix = location.rstrip("/") + "/"
    try:
        fs = fsspec.filesystem("s3", **options)
        keys = [k for k in fs.find(prefix) if Path(k).suffix.lower() in KNOWLEDGE_SUFFIXES][:MAX_FILES]
        blobs = fs.cat(keys) if keys else {}
    except (OSError, ValueError) as exc:
        raise KnowledgeError(f"knowledge prefix {location!r} cannot be read: {exc}") from None
    documents = []
    for key in sorted(blobs):
        uri = f"s3://{key}"
        data = blobs[key]
        if len(data) > MAX_FILE_BYTES:
            raise KnowledgeError(f"knowledge file {uri!r} has {len(data):,} bytes, more than {MAX_FILE_BYTES:,}")
        documents.append(_document(uri, uri, data, Path(key).suffix))
    return documents, prefix


def _read_local(file: Path) -> bytes:
    size = file.stat().st_size
    if size > MAX_FILE_BYTES:
        raise KnowledgeError(f"knowledge file {str(file)!r} has {size:,} bytes, more than {MAX_FILE_BYTES:,}")
    return file.read_bytes()


def _document(uri: str, name: str, data: bytes, suffix: str) -> Document:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise KnowledgeError(f"knowledge file {name!r} is not UTF-8 text (byte {exc.start})") from None
    return Document(uri=uri, name=name, text=text, markdown=suffix.lower() in MARKDOWN_SUFFIXES)


def _folder_uri(path: Path) -> str:
    """The URI prefix of everything a source holds: a folder's URI with a trailing slash, or a file's URI."""
    resolved = path.resolve()
    return resolved.as_uri() + "/" if resolved.is_dir() else resolved.as_uri()

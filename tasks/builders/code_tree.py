"""Code tree builder: one source file per draft, plus an HTML preview of the tree.

Each draft (or its plan item) names a relative `path` and the draft holds its
`code`, which must pass the checks of its kind of file (Python parses, a test file
has a test: `agentflows.tasks.builders.file_checks`). Paths must stay inside the
tree: relative, forward slashes, no `..`; and no two may clash on disk (one a
folder of the other, or equal but for case). The layout receives `files`: a list
of mappings with `path`, `language`, `code` and `lines`, and renders
`agentflows-preview.html`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from agentflows.tasks.artifacts import BuiltFile
from agentflows.tasks.builders.common import Assembly, BuildJob, html_file, render_layout, section_fields
from agentflows.tasks.builders.file_checks import file_problems
from agentflows.tasks.errors import BuildError

REQUIRES = {"path": ("string", "path"), "code": ("string", "code")}
LAYOUT_VARIABLES = frozenset({"files"})
PREVIEW = "agentflows-preview.html"
_SAFE_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
_MEDIA_TYPES = {
    ".py": "text/x-python",
    ".md": "text/markdown",
    ".json": "application/json",
    ".toml": "application/toml",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
    ".html": "text/html",
    ".js": "text/javascript",
    ".ts": "text/x-typescript",
    ".css": "text/css",
    ".sql": "application/sql",
}


def path_problem(path: object) -> str | None:
    """Why `path` cannot be a file of the tree, or None when it can."""
    if not isinstance(path, str) or not path:
        return "`path` is empty; give a relative file path such as 'app/main.py'"
    segments = path.split("/")
    if len(path) > 200 or not all(_SAFE_SEGMENT.match(s) for s in segments):
        return (
            f"`path` {path!r} is not a safe relative path; use letters, digits, '_', '-', '.' "
            "and '/' between names, without '..' or a leading '/'"
        )
    if path == PREVIEW:
        return f"`path` {path!r} is reserved for the preview page"
    return None


def check_plan(items: Sequence[Mapping[str, Any]]) -> list[str]:
    """Problems with the paths plan items name: unsafe ones, and two items that would write one file."""
    problems = []
    owners: dict[str, int] = {}
    for index, item in enumerate(items):
        if "path" not in item:
            continue  # the draft names its path; `check` and `assemble` look at it
        where = f"items/{index}/path"
        if problem := path_problem(item["path"]):
            problems.append(f"{where}: {problem}")
            continue
        path = str(item["path"])
        if path in owners:
            problems.append(
                f"{where}: {path!r} is already the path of items/{owners[path]}; give each item its own file"
            )
            continue
        if clash := next((other for other in owners if _clash(other, path)), None):
            problems.append(
                f"{where}: {path!r} cannot exist beside {clash!r} of items/{owners[clash]} (one is a folder of the "
                "other, or they differ only in case); give each item its own file"
            )
            continue
        owners[path] = index
    return problems


def check(fields: Mapping[str, Any]) -> list[str]:
    """Problems with one draft that a model could fix when asked again."""
    problems = []
    if "path" in fields and (problem := path_problem(fields["path"])):
        problems.append(problem)
    if not isinstance(fields.get("code"), str):
        problems.append("`code` must be the file's full text")
    elif not problems and isinstance(fields.get("path"), str):
        problems += file_problems(fields["path"], fields["code"])
    return problems


def assemble(job: BuildJob) -> Assembly:
    files: dict[str, BuiltFile] = {}
    owners: dict[str, str] = {}
    for draft in job.drafts:
        fields = section_fields(job, draft)
        path = fields.get("path")
        if problem := path_problem(path):
            raise BuildError(f"draft {draft.item_key!r}: {problem}")
        assert isinstance(path, str)
        if path in files:
            raise BuildError(
                f"drafts {owners[path]!r} and {draft.item_key!r} both write {path!r}; "
                "each plan item must name a different file"
            )
        if clash := next((other for other in files if _clash(other, path)), None):
            raise BuildError(
                f"drafts {owners[clash]!r} and {draft.item_key!r} write {clash!r} and {path!r}, which cannot both "
                "exist (one is a folder of the other, or they differ only in case); rename one of them"
            )
        owners[path] = draft.item_key
        files[path] = BuiltFile(path=path, media_type=_media_type(path), text=str(fields["code"]))
    listing = [
        {
            "path": f.path,
            "language": _language(section_fields(job, d), f.path),
            "code": f.text,
            "lines": f.text.count("\n") + 1,
        }
        for d, f in zip(job.drafts, files.values(), strict=True)
    ]
    preview = html_file(PREVIEW, render_layout(job, files=listing))
    return Assembly(
        files=(preview, *files.values()),
        primary=PREVIEW,
        metadata={"files": sorted(files), "languages": sorted({str(f["language"]) for f in listing})},
    )


def _clash(one: str, other: str) -> bool:
    """Whether two different paths cannot both be files of one tree."""
    a, b = one.lower(), other.lower()
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def _suffix(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    return "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""


def _media_type(path: str) -> str:
    return _MEDIA_TYPES.get(_suffix(path), "text/plain")


def _language(fields: Mapping[str, Any], path: str) -> str:
    language = fields.get("language")
    if isinstance(language, str) and language:
        return language
    return _media_type(path).split("/")[-1].removeprefix("x-")

"""What the Prefect UI shows of a content: its link, and a Markdown preview of its substance.

    viewer_link(id, location)   `$AGENTFLOWS_VIEWER_URL/contents/<id>/` when a viewer is configured, else `location`
    preview_markdown(...)       title, type, id and a link, then per content type:
        interactive   the quiz's questions, choices (the answer marked) and explanations (from quiz.json)
        code          the file tree, with each file's lines
        chart, text, mixed   the content's Markdown (a report's key finding, narrative and tables)
        anything else        the list of its files

Pure but for `viewer_link`, which reads the runtime's settings.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from agentflows.tasks.artifacts import BuiltContent, BuiltFile, ContentType
from agentflows.tasks.runtime import current_runtime

PREVIEW_LIMIT = 4000
"""Most characters of a preview's body (Prefect artifacts are meant to be glanced at)."""
CODE_PREVIEW = "agentflows-preview.html"


def viewer_link(content_id: str | None, location: str | None) -> str | None:
    """Where a person opens a content: its viewer page when `AGENTFLOWS_VIEWER_URL` is set, else `location`."""
    base = current_runtime().settings.viewer_url
    if base and content_id:
        return content_page(base, content_id)
    return location


def content_page(base: str, content_id: str) -> str:
    """The URL of a content's page in the viewer at `base`."""
    return f"{base.rstrip('/')}/contents/{content_id}/"


def preview_markdown(built: BuiltContent, content_id: str, link: str, limit: int = PREVIEW_LIMIT) -> str:
    """A Markdown preview of the content for the Prefect UI: what it says, not only which files it has."""
    head = f"# {built.title}\n\n**{built.content_type.value}** · id `{content_id}` · [open]({link})\n\n"
    body = _SUBSTANCE.get(built.content_type, _markdown_or_files)(built)
    if len(body) > limit:
        body = body[:limit].rsplit("\n", 1)[0] + "\n\n…"
    return head + body


def quiz_markdown(built: BuiltContent) -> str:
    """The questions of a quiz page, numbered, with the right choice marked."""
    data = _json_file(built, "quiz.json")
    questions = data.get("questions") if isinstance(data, dict) else None
    if not isinstance(questions, list):
        return _markdown_or_files(built)
    lines = [f"**{len(questions)} questions**\n"]
    for number, question in enumerate(questions, 1):
        lines.append(f"{number}. **{_one_line(question.get('question'))}**")
        for index, choice in enumerate(question.get("choices") or []):
            mark = " ✔ *(answer)*" if index == question.get("answer") else ""
            lines.append(f"   - {chr(65 + index)}. {_one_line(choice)}{mark}")
        if question.get("explanation"):
            lines.append(f"\n   *{_one_line(question['explanation'])}*")
        lines.append("")
    return "\n".join(lines)


def tree_markdown(built: BuiltContent) -> str:
    """The files of a code tree as a nested list, folders first, with their line counts."""
    sources = sorted((f for f in built.files if f.path != CODE_PREVIEW), key=lambda f: f.path)
    lines = [f"**{len(sources)} files**\n"]
    shown: set[str] = set()
    for file in sources:
        *folders, name = file.path.split("/")
        for depth, folder in enumerate(folders):
            key = "/".join(folders[: depth + 1])
            if key not in shown:
                shown.add(key)
                lines.append(f"{'  ' * depth}- `{folder}/`")
        lines.append(f"{'  ' * len(folders)}- `{name}` ({file.text.count(chr(10)) + 1} lines)")
    return "\n".join(lines)


def _markdown_or_files(built: BuiltContent) -> str:
    markdown = next((f for f in built.files if f.media_type == "text/markdown"), None)
    if markdown is not None:
        return markdown.text
    return _file_list(built.files)


def _file_list(files: tuple[BuiltFile, ...]) -> str:
    return "\n".join(f"- `{f.path}` ({len(f.text):,} characters)" for f in files)


def _json_file(built: BuiltContent, path: str) -> Any:
    try:
        return json.loads(built.file(path).text)
    except (KeyError, ValueError):
        return None


def _one_line(value: object) -> str:
    return " ".join(str(value or "").split())


_SUBSTANCE: dict[ContentType, Callable[[BuiltContent], str]] = {
    ContentType.interactive: quiz_markdown,
    ContentType.code: tree_markdown,
}

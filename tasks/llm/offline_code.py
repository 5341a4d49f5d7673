"""The files the offline provider writes for a code tree: small, valid, and saying what they are for.

`source_file(path, subject, topic, framework)` writes a file that matches its path: a
Python module, a test file with a test in it, an entry point that builds the app of
the `framework` input (FastAPI or Flask), Markdown, TOML, JSON, YAML, JavaScript or
HTML; anything else as one line of text. Every Python file parses.
"""

from __future__ import annotations

import json
import re

from agentflows.tasks.names import slug

APP_CODE = {
    "fastapi": (
        '"""{doc} (written by the agentflows offline provider)."""\n\n'
        "from fastapi import FastAPI\n\n"
        "app = FastAPI(title={title})\n\n\n"
        '@app.get("/")\n'
        "def describe() -> dict[str, str]:\n"
        '    return {{"about": {about}}}\n'
    ),
    "flask": (
        '"""{doc} (written by the agentflows offline provider)."""\n\n'
        "from flask import Flask\n\n"
        "app = Flask(__name__)\n\n\n"
        '@app.get("/")\n'
        "def describe() -> dict[str, str]:\n"
        '    return {{"about": {about}}}\n'
    ),
}
"""Entry points (`main.py`, `app.py`) the offline provider writes for a `framework` input."""


def _docstring(text: str) -> str:
    """`text` as it may stand inside a triple-quoted Python string (capitalised, no quotes or backslashes)."""
    return capitalise(" ".join(text.replace("\\", "/").replace('"', "'").split()))


def suffix_of(path: str) -> str:
    match = re.search(r"(\.[A-Za-z0-9]+)$", path)
    return match.group(1).lower() if match else ""


def source_file(path: str, subject: str, topic: str, framework: str = "") -> str:
    """A small, valid file for `path` that says what it is for: an app of `framework` for an entry point,
    a test for a test file."""
    suffix = suffix_of(path)
    about = f"{subject} ({topic})"
    name = path.rsplit("/", 1)[-1]
    if suffix == ".py" and (name.startswith("test_") or name.endswith("_test.py")):
        return (
            f'"""Tests of {_docstring(subject)} (written by the agentflows offline provider)."""\n\n\n'
            f"def test_{slug(subject, 30).replace('-', '_') or 'scaffold'}_is_described() -> None:\n"
            f"    description = {json.dumps(about)}\n"
            f"    assert {json.dumps(topic)} in description\n"
        )
    if suffix == ".py" and name in ("main.py", "app.py") and framework in APP_CODE:
        return APP_CODE[framework].format(doc=_docstring(subject), title=json.dumps(topic), about=json.dumps(about))
    if suffix == ".py":
        return (
            f'"""{_docstring(subject)}: part of the {_docstring(topic)} scaffold.\n\n'
            'Written by the agentflows offline provider.\n"""\n\n\n'
            f"def describe() -> str:\n    return {json.dumps(about)}\n\n\n"
            'if __name__ == "__main__":\n    print(describe())\n'
        )
    if suffix == ".md":
        return f"# {capitalise(subject)}\n\nPart of the {topic} scaffold (written offline).\n"
    if suffix == ".toml":
        return f'[project]\nname = "{slug(topic, 40)}"\nversion = "0.1.0"\ndescription = {json.dumps(about)}\n'
    if suffix == ".json":
        return json.dumps({"name": slug(topic, 40), "description": about}, indent=2) + "\n"
    if suffix in (".yaml", ".yml"):
        return f"name: {slug(topic, 40)}\ndescription: {json.dumps(about)}\n"
    if suffix in (".js", ".ts"):
        return f"export function describe() {{\n  return {json.dumps(about)};\n}}\n"
    if suffix == ".html":
        return f"<!doctype html>\n<title>{slug(topic, 40)}</title>\n<p>{slug(subject, 40)}</p>\n"
    return f"{about}\n"


def capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]

"""Splitting a knowledge file into passages: by heading, with a size cap.

A Markdown file is cut at its headings (ATX `#` and setext, never inside a code
fence; YAML front matter is left out); each section becomes one passage whose
heading is the path of headings above it (`Tides › Spring tides`). A section
longer than the cap is cut at blank lines, then at sentence ends, then hard, so
no passage is longer than the cap. A plain-text file has no headings: its
paragraphs are packed into passages the same way. Splitting is pure: the same
text always gives the same passages, and a passage's hash covers its heading
and its text, so an edit changes the hashes of exactly the passages it touches.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from markdown_it import MarkdownIt

MARKDOWN_SUFFIXES = frozenset({".md", ".markdown"})
TEXT_SUFFIXES = frozenset({".txt"})
KNOWLEDGE_SUFFIXES = MARKDOWN_SUFFIXES | TEXT_SUFFIXES
"""Files a knowledge source may hold: Markdown and plain text."""
HEADING_SEPARATOR = " › "
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n.*?\n(---|\.\.\.)[ \t]*\n", re.DOTALL)
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")
_PARSER = MarkdownIt("commonmark")


@dataclass(frozen=True)
class Document:
    """One knowledge file as read from its source."""

    uri: str
    """Identity: `file:///…` or `s3://…`."""
    name: str
    """What provenance calls it (its path in the definitions folder, or its URI)."""
    text: str
    markdown: bool


@dataclass(frozen=True)
class Chunk:
    """One passage of a file, before it is indexed."""

    heading: str
    """The headings above it, outermost first, joined by ` › ` (empty before the first heading)."""
    text: str
    line: int
    """1-based line of the file where the passage starts."""

    @property
    def hash(self) -> str:
        return passage_hash(self.heading, self.text)


def passage_hash(heading: str, text: str) -> str:
    """sha256 of a passage's heading and text: what the prompt shows of it."""
    return hashlib.sha256(f"{heading}\n\n{text}".encode()).hexdigest()


def content_hash(text: str) -> str:
    """sha256 of a whole file's text (what decides whether it is split and indexed again)."""
    return hashlib.sha256(text.encode()).hexdigest()


def split_text(text: str, *, markdown: bool, max_chars: int) -> list[Chunk]:
    """The passages of one file's `text`, none longer than `max_chars`."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    sections = _markdown_sections(text) if markdown else [("", 1, text.split("\n"))]
    chunks: list[Chunk] = []
    for heading, first_line, lines in sections:
        chunks += _capped(heading, first_line, lines, max_chars)
    return chunks


def _markdown_sections(text: str) -> list[tuple[str, int, list[str]]]:
    """(heading path, first line, body lines) of every section, in file order."""
    front = _FRONT_MATTER.match(text)
    if front:  # blank it out, keeping the line count, so lines stay true
        text = "\n" * front.group(0).count("\n") + text[front.end() :]
    lines = text.split("\n")
    tokens = _PARSER.parse(text)
    headings = [
        (int(token.tag[1]), token.map[0], token.map[1], tokens[i + 1].content.strip())
        for i, token in enumerate(tokens)
        if token.type == "heading_open" and token.map is not None
    ]
    sections: list[tuple[str, int, list[str]]] = []
    start = 0
    trail: list[tuple[int, str]] = []
    path = ""
    for level, begin, end, title in headings:
        sections.append((path, start + 1, lines[start:begin]))
        trail = [(lv, t) for lv, t in trail if lv < level] + [(level, title)]
        path = HEADING_SEPARATOR.join(t for _, t in trail)
        start = end
    sections.append((path, start + 1, lines[start:]))
    return sections


def _capped(heading: str, first_line: int, lines: list[str], max_chars: int) -> list[Chunk]:
    """The passages of one section: its paragraphs packed up to `max_chars`, each piece no longer."""
    chunks: list[Chunk] = []
    parts: list[str] = []
    start = 0
    for line_no, paragraph in _paragraphs(lines):
        for piece in _pieces(paragraph, max_chars):
            if parts and len("\n\n".join([*parts, piece])) > max_chars:
                chunks.append(Chunk(heading, "\n\n".join(parts), first_line + start))
                parts = []
            if not parts:
                start = line_no
            parts.append(piece)
    if parts:
        chunks.append(Chunk(heading, "\n\n".join(parts), first_line + start))
    return chunks


def _paragraphs(lines: list[str]) -> list[tuple[int, str]]:
    """(offset of its first line, text) of every paragraph: runs of lines between blank lines."""
    found: list[tuple[int, str]] = []
    current: list[str] = []
    begin = 0
    for offset, line in enumerate([*lines, ""]):
        if line.strip():
            if not current:
                begin = offset
            current.append(line.rstrip())
        elif current:
            found.append((begin, "\n".join(current).strip("\n")))
            current = []
    return found


def _pieces(paragraph: str, max_chars: int) -> list[str]:
    """`paragraph`, cut at sentence ends (and hard, as a last resort) into pieces of at most `max_chars`."""
    if len(paragraph) <= max_chars:
        return [paragraph]
    pieces: list[str] = []
    current = ""
    for sentence in _SENTENCE_END.split(paragraph):
        while len(sentence) > max_chars:
            if current:
                pieces.append(current)
                current = ""
            pieces.append(sentence[:max_chars])
            sentence = sentence[max_chars:]
        if current and len(current) + 1 + len(sentence) > max_chars:
            pieces.append(current)
            current = ""
        current = f"{current} {sentence}" if current else sentence
    if current:
        pieces.append(current)
    return pieces

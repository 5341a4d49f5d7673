"""The `knowledge:` key of an agent definition: the files an agent draws on, and how much of them.

    knowledge:
      sources: [knowledge/lesson_plan/, knowledge/glossary.md]   # files or folders in the definitions folder
      top_k: 4                  # passages each step is given (decide, and each generate item)
      passage_chars: 1500       # longest passage; sections are cut at headings, then at this size
      query:                    # optional: what each step searches for (Jinja, the step's variables)
        decide: "{{ inputs.topic }}"
        generate: "{{ item.title }} {{ item.summary }}"
      input: material           # optional: an input whose value (a folder or s3:// prefix) adds sources

Sources are Markdown (`.md`, `.markdown`) or plain text (`.txt`). `agentflows
validate` checks that each exists inside the definitions folder and is readable.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from agentflows.fields import Identifier, Spec

SOURCE_PATH_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*(/[A-Za-z0-9_][A-Za-z0-9_.\-]*)*/?$"
SOURCE_PATH_MEANING = (
    "a file or folder relative to the definitions folder, such as knowledge/lesson_plan/ (no '..', no leading '/')"
)
SourcePath = Annotated[str, StringConstraints(pattern=SOURCE_PATH_PATTERN)]


class KnowledgeQueries(Spec):
    """What each step searches the knowledge for; a template over the step's variables. Empty: the step
    retrieves nothing."""

    decide: str | None = None
    """Query of `decide`; default: the agent's first required text input and the request."""
    generate: str | None = None
    """Query of each `generate` item; default: the item's title and its other text fields."""


class KnowledgeSpec(Spec):
    """Files the agent draws on: split into passages, indexed, and retrieved into its prompts."""

    sources: list[SourcePath] = Field(min_length=1)
    """Markdown or text files, or folders of them, relative to the definitions folder."""
    top_k: int = Field(default=4, ge=1, le=50)
    """Passages each step is given: `decide`, and each `generate` item for its own query."""
    passage_chars: int = Field(default=1500, ge=200, le=20_000)
    """Longest passage in characters; a section longer than this is cut at paragraphs and sentences."""
    query: KnowledgeQueries = KnowledgeQueries()
    input: Identifier | None = None
    """An input (string or list) whose value, folders inside AGENTFLOWS_KNOWLEDGE_ROOTS or s3:// prefixes,
    adds sources for one run."""

"""What an agent's flow knows about its knowledge: `KnowledgeSetup`, made by the compiler from `knowledge:`.

Pure data, so compiling a definition imports no database code; the retrieval
itself is `agentflows.tasks.knowledge.retrieval`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class KnowledgeSetup:
    """An agent's knowledge as its flow uses it (the compiler makes it from the definition)."""

    agent: str
    root: Path
    """The definitions folder the sources are relative to."""
    sources: tuple[str, ...]
    top_k: int
    max_chars: int
    """Longest passage, in characters."""
    queries: Mapping[str, str]
    """Query template of each step that retrieves (`decide`, `generate`); an empty query retrieves nothing."""
    input: str | None = None
    """The input whose value (folders, `s3://` prefixes) adds sources for one run."""

    def run_locations(self, inputs: Mapping[str, Any]) -> list[str]:
        """The run's own source locations, from its knowledge input."""
        value = inputs.get(self.input) if self.input else None
        if isinstance(value, str):
            return [value] if value.strip() else []
        return [str(v) for v in value] if isinstance(value, list) else []

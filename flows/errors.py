"""Errors in agent definitions (the user's YAML and templates), in requests, and in starting the viewer.

    tasks.errors.AgentflowsError
    ├── DefinitionError     one or more problems in definition files
    ├── AgentNotFound       no loaded definition has the requested name
    ├── InputError          values given to an agent do not fit its declared inputs
    ├── RoutingError        the router cannot tell which agents a request asks for
    └── ViewerError         the content viewer cannot start (port in use, no token for a public address)

A `DefinitionError` carries every `Problem` found in the files it covers, so a
content author sees all of them at once. Each problem names the file, the line,
the YAML path and what would be valid; none shows an internal traceback.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from agentflows.tasks.errors import AgentflowsError


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a definition file or one of its templates."""

    file: Path
    line: int | None
    path: str
    """YAML path of the offending value, e.g. `steps.decide.prompt`; empty for the whole file."""
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else str(self.file)
        at = f" {self.path}:" if self.path else ""
        return f"{where}:{at} {self.message}"


class DefinitionError(AgentflowsError):
    """One or more agent definitions are invalid; nothing runs until they are fixed."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class AgentNotFound(AgentflowsError):
    """No loaded definition has the requested agent name."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        names = ", ".join(sorted(known)) or "none"
        super().__init__(f"no agent is named {name!r}; the agents are: {names}")


class InputError(AgentflowsError):
    """Values given to an agent (from Python or the CLI) do not fit its declared inputs."""


class RoutingError(AgentflowsError):
    """The router cannot tell which agents a request asks for (no match, or an ambiguous one)."""


class ViewerError(AgentflowsError):
    """The content viewer cannot start: its address is taken or refused, or it would listen unprotected."""

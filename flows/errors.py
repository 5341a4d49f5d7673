"""Every agentflows error, and the definition errors (the user's YAML and templates) that live here.

Every error agentflows raises on purpose derives from `AgentflowsError`; its
message is one sentence that names the offending value and what would be valid.
The whole tree, each class with the module that defines it::

    AgentflowsError                       base of every error agentflows raises on purpose  [tasks]
    ├── ConfigurationError                an environment variable or setting is invalid     [tasks]
    ├── DefinitionError                   one or more problems in definition files          [here]
    ├── YamlSyntaxError                   a file is not valid YAML (becomes a Problem)      [here]
    ├── AgentNotFound                     no loaded definition has the requested name       [here]
    ├── InputError                        values given to an agent do not fit its inputs    [here]
    ├── RoutingError                      the router cannot tell what a request asks for    [here]
    ├── ViewerError                       the content viewer cannot start (port, token)     [here]
    ├── ReviewNotWaiting                  a flow run named for approve/reject awaits no review [here]
    ├── BaselineError                     an eval's baseline file cannot be read            [here]
    ├── EvalFailed                        an eval flow run found failing or regressed cases [here]
    ├── StackError                        a Prefect server or worker could not start or stop [deployments]
    │   └── PrefectUnreachable            the configured Prefect API does not answer
    └── RunError                          something failed while a flow ran                 [tasks]
        ├── TemplateRenderError           a template failed or grew too large at render time
        ├── ModelError                    the model provider could not be used
        │   ├── ProviderNotFound          the step names an unknown provider
        │   ├── PromptTooLarge            the prompt would not fit the model's context window
        │   └── ModelCallError            the provider failed or answered with an error
        │       └── ModelUnavailable      every attempt at one model failed; a fallback may work
        ├── ModelOutputError              the model answered, but not what the schema asks for
        ├── BuildError                    drafts cannot be assembled into content
        ├── KnowledgeError                a knowledge source cannot be read, or retrieval cannot run
        ├── ReviewEnded                   the editor's review ended the run before any draft was written
        │   ├── ReviewRejected            the editor rejected the plan (the run ends Cancelled)
        │   └── ReviewTimedOut            no decision came within the agent's review timeout (Failed)
        ├── StorageError                  the content store could not read or write
        │   ├── ContentNotFound           no stored content has the requested id
        │   └── ObjectMissing             a content's file is missing, or not a plain file of the store
        └── PrefectAPIError               Prefect's API failed or could not be reached
    AnswerTimeout                         no answer, or no new token, in time (inside the model client)  [tasks]
    BrokenAnswer                          a 200 that is not a chat completion (inside the model client)  [tasks]

`[here]` is this module, `agentflows.errors`; `[tasks]` is `agentflows.tasks.errors`
(every `RunError` lives there too); `[deployments]` is `agentflows.deployments.errors`.

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

    def repeats(self, problems: Iterable[Problem]) -> bool:
        """Whether one of `problems` says the same at the same file and line (whatever its YAML path)."""
        return any((p.file, p.line, p.message) == (self.file, self.line, self.message) for p in problems)

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else str(self.file)
        at = f" {self.path}:" if self.path else ""
        return f"{where}:{at} {self.message}"


class DefinitionError(AgentflowsError):
    """One or more agent definitions are invalid; nothing runs until they are fixed."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class YamlSyntaxError(AgentflowsError):
    """The text is not valid YAML, or repeats a key; the loader reports it as a `Problem` at `line`."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.line = line


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


class ReviewNotWaiting(AgentflowsError):
    """The flow run named to `approve` or `reject` is not paused for a review (unknown, finished, or not a review)."""


class BaselineError(AgentflowsError):
    """The baseline an eval is compared with cannot be read, or is not a report of `agentflows eval --json`."""


class EvalFailed(AgentflowsError):
    """An eval run as a flow found cases that regressed against the baseline or failed (the CLI exits 1)."""

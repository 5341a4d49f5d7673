"""Errors raised while an agent runs: the base class and the run errors.

Every error agentflows raises on purpose derives from `AgentflowsError`; its
message is one sentence that names the offending value and what would be valid.
This module holds the base class, the configuration error and the errors of a
run; `agentflows.errors` draws the whole tree, definition errors included::

    AgentflowsError                       base of every error agentflows raises on purpose
    ├── ConfigurationError                an environment variable or setting is invalid
    └── RunError                          something failed while a flow ran
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
        │   └── ObjectMissing             a content's file is missing, or is not a plain file of the store
        └── PrefectAPIError               Prefect's API failed or could not be reached
    AnswerTimeout                         no answer, or no new token, in time (inside the model client)
    BrokenAnswer                          a 200 that is not a chat completion (inside the model client)

`AnswerTimeout` and `BrokenAnswer` never leave the OpenAI-compatible client: it tries
again or raises `ModelCallError` with their message. `retryable` says whether
repeating the same step may succeed; the step tasks
retry only errors that say so. `one_line` tells any error, ours or a library's,
in one line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agentflows.tasks.artifacts import Attempt, Usage


class AgentflowsError(Exception):
    """Base class of every error agentflows raises on purpose."""

    retryable: bool = False


class ConfigurationError(AgentflowsError):
    """An environment variable or setting has a value agentflows cannot use."""


class RunError(AgentflowsError):
    """Something failed while an agent's flow was running."""


class TemplateRenderError(RunError):
    """A prompt or layout template failed while rendering."""


class ModelError(RunError):
    """The model provider could not be used."""


class ProviderNotFound(ModelError):
    """A step names a model provider that is not registered."""


class PromptTooLarge(ModelError):
    """A prompt, with room for the answer, does not fit the model's context window."""


class ModelCallError(ModelError):
    """The provider answered a model call with an error.

    `retryable` is true for failures that may pass on a later attempt
    (rate limits, outages, timeouts) and false for the rest. `usage` and
    `attempts` say what the failed call spent and what came back, so the step
    can count and keep them.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        usage: Usage | None = None,
        attempts: tuple[Attempt, ...] = (),
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.usage = usage
        self.attempts = attempts


class ModelUnavailable(ModelCallError):
    """Every attempt at one model failed with a retryable error; a fallback model may still work."""


class ModelOutputError(RunError):
    """The model answered, but its output does not satisfy the step's schema."""


class BuildError(RunError):
    """Drafts cannot be assembled into finished content."""


class KnowledgeError(RunError):
    """A knowledge source cannot be read (missing, outside its allowed roots, not text), or retrieval cannot run."""


class ReviewEnded(RunError):
    """The editor's review of the plan ended the run: nothing was written or stored."""


class ReviewRejected(ReviewEnded):
    """The editor rejected the plan; the run ends Cancelled with the editor's reason."""


class ReviewTimedOut(ReviewEnded):
    """Nobody decided on the plan within the agent's review timeout, whose declared outcome is to fail."""


class StorageError(RunError):
    """The content store could not read or write."""


class ContentNotFound(StorageError):
    """No stored content has the requested id."""


class PrefectAPIError(RunError):
    """Prefect's API failed or could not be reached while a run needed it, after its client's retries."""


def one_line(error: BaseException) -> str:
    """`Type: the first line of its message`: an error told in one line (a manifest entry, a wrapped cause)."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"


class ObjectMissing(StorageError):
    """A stored object is missing, or is a link rather than a plain file inside the store."""


class AnswerTimeout(Exception):
    """The answer did not start within the read timeout, or a streamed one stopped for the idle timeout.

    A signal inside the OpenAI-compatible client, which tries again or raises `ModelCallError` with it."""

    @classmethod
    def waiting(cls, seconds: float) -> AnswerTimeout:
        return cls(f"timed out: sent no answer within {seconds:g} s (read_timeout)")

    @classmethod
    def stalled(cls, seconds: float) -> AnswerTimeout:
        return cls(f"timed out: stopped streaming, no new token for {seconds:g} s (idle_timeout)")


class BrokenAnswer(Exception):
    """A 200 whose body is not a chat completion (or a stream that reported an error).

    A signal inside the OpenAI-compatible client, which tries again or raises `ModelCallError` with it."""

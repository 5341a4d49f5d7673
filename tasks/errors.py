"""Errors raised while an agent runs.

Every error agentflows raises derives from `AgentflowsError`; its message is one
sentence that names the offending value and what would be valid. Definition
errors (the user's YAML and templates) live in `flows.errors`; this module holds
the base class and the errors of a run::

    AgentflowsError
    ├── ConfigurationError                an environment variable or setting is invalid
    ├── flows.errors.DefinitionError      a definition is invalid (file, line, YAML path)
    ├── flows.errors.AgentNotFound        no definition has that name
    └── RunError                          something failed while a flow ran
        ├── TemplateRenderError           a template failed or grew too large at render time
        ├── ModelError                    the model provider could not be used
        │   ├── ProviderNotFound          the step names an unknown provider
        │   ├── PromptTooLarge            the prompt would not fit the model's context window
        │   └── ModelCallError            the provider failed or answered with an error
        ├── ModelOutputError              the model answered, but not what the schema asks for
        ├── BuildError                    drafts cannot be assembled into content
        └── StorageError                  the content store could not read or write

`retryable` says whether repeating the same step may succeed; the step tasks
retry only errors that say so.
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


class ModelOutputError(RunError):
    """The model answered, but its output does not satisfy the step's schema."""


class BuildError(RunError):
    """Drafts cannot be assembled into finished content."""


class StorageError(RunError):
    """The content store could not read or write."""


class ContentNotFound(StorageError):
    """No stored content has the requested id."""

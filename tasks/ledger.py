"""The run ledger: every model call a run made, as spent, and what each failed step got back.

An artifact's provenance says what its own step cost, but a step that fails
makes no artifact. The ledger is where every call is written as it is made, so
a failed run can still say what it spent and what the model answered:

    RunLedger
    ├── flow_run_id, agent     which run (set by the pipeline)
    ├── steps                  per call label (`quiz/generate/02-…`): usage over every attempt, the attempts
    ├── failures               labels of the steps that failed, with their error
    └── parent                 the ledger of the run around this one (a router branch's router), also written

`run_ledger()` opens one for the code inside it (or joins the one already open);
the CLI opens one per command, the router one per branch, and `ask_model`
writes to whichever is open. Cached steps make no call and write nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from agentflows.tasks.artifacts import Attempt, Usage

_current: ContextVar[RunLedger | None] = ContextVar("agentflows_run_ledger", default=None)


@dataclass
class StepAccount:
    """What one model step (one call label) spent, and every answer it got."""

    label: str
    usage: Usage = field(default_factory=Usage)
    attempts: list[Attempt] = field(default_factory=list)
    error: str | None = None


@dataclass
class RunLedger:
    """The calls of one run (see the module docstring)."""

    parent: RunLedger | None = None
    flow_run_id: str | None = None
    agent: str | None = None
    steps: dict[str, StepAccount] = field(default_factory=dict)

    def spend(self, label: str, usage: Usage, attempts: tuple[Attempt, ...] = ()) -> None:
        """Write what one call of step `label` spent and got back (here and in the parent ledger)."""
        account = self.steps.setdefault(label, StepAccount(label))
        account.usage = account.usage + usage
        account.attempts.extend(attempts)
        if self.parent is not None:
            self.parent.spend(label, usage, attempts)

    def fail(self, label: str, error: str) -> None:
        """Mark step `label` failed with `error`."""
        self.steps.setdefault(label, StepAccount(label)).error = error
        if self.parent is not None:
            self.parent.fail(label, error)

    @property
    def usage(self) -> Usage:
        """Everything the run spent."""
        total = Usage()
        for account in self.steps.values():
            total = total + account.usage
        return total

    def failures(self) -> list[StepAccount]:
        return [account for account in self.steps.values() if account.error is not None]

    def account(self, label: str) -> StepAccount:
        return self.steps.get(label) or StepAccount(label)


def current_ledger() -> RunLedger | None:
    return _current.get()


@contextmanager
def run_ledger(*, fresh: bool = False) -> Iterator[RunLedger]:
    """The ledger of the code inside the block: the one already open, or (`fresh`, or none open) a new one
    that also writes to the one around it."""
    existing = _current.get()
    if existing is not None and not fresh:
        yield existing
        return
    ledger = RunLedger(parent=existing)
    token = _current.set(ledger)
    try:
        yield ledger
    finally:
        _current.reset(token)

"""Progress of a running agent, step by step.

The pipeline emits a `ProgressEvent` when a step starts and when it ends. Each
event goes to the flow run's log (visible in the Prefect UI) and to any listener
listening in the context that started the run (the CLI prints them:
`agentflows.console.printed`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Literal

from prefect.exceptions import MissingContextError
from prefect.logging import get_run_logger

Status = Literal["started", "done", "cached", "failed", "skipped", "waiting"]


@dataclass(frozen=True)
class ProgressEvent:
    """One step of one agent run starting or ending."""

    agent: str
    step: str
    status: Status
    detail: str = ""

    def __str__(self) -> str:
        detail = f": {self.detail}" if self.detail else ""
        return f"{self.agent} · {self.step} {self.status}{detail}"


Listener = Callable[[ProgressEvent], None]
_listeners: ContextVar[tuple[Listener, ...]] = ContextVar("agentflows_progress_listeners", default=())
"""Listeners of the code running in this context (the flows and tasks it starts inherit them)."""


@contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Send every event emitted inside the block (its flows and tasks too) to `listener`."""
    token = _listeners.set((*_listeners.get(), listener))
    try:
        yield
    finally:
        _listeners.reset(token)


def emit(event: ProgressEvent) -> None:
    """Log `event` to the flow run and hand it to the listeners."""
    try:
        logger: logging.Logger | logging.LoggerAdapter[logging.Logger] = get_run_logger()
    except MissingContextError:
        logger = logging.getLogger("agentflows")
    level = logging.WARNING if event.status == "failed" else logging.INFO
    logger.log(level, str(event))
    for listener in _listeners.get():
        listener(event)

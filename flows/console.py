"""What the CLI prints when something fails: one line, masked, and none of Prefect's console logging.

Contracts:

- a failure ends the command with one line on stderr, `error: <one sentence>`, and
  exit status 1; Ctrl-C ends it with one `error: interrupted …` line and 130, SIGTERM
  (which `sigterm_interrupts` makes interrupt like Ctrl-C) with `error: terminated …`
  and 143; both say how many model calls the command made;
- the line names no secret: passwords in URLs and the values of secret variables
  (`AGENTFLOWS_LLM_API_KEY`, `AWS_SECRET_ACCESS_KEY`, …) are masked;
- errors agentflows raises on purpose say what is wrong and what would be valid;
  a failure of Prefect's API or of a library is told in one line naming it;
- Prefect's console logging prints nothing: a failed run's traceback stays in the
  run's logs on the Prefect server. With `--debug`, Prefect logs to the console as
  usual and a failure is printed with its traceback before its line;
- a run's progress is printed on stderr with `--progress` (by default when stderr is
  a terminal), and where to review a run that waits for a review, always (`printed`).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from agentflows.tasks.errors import AgentflowsError, one_line
from agentflows.tasks.masking import environment_secrets, masked

if TYPE_CHECKING:
    from agentflows.progress import ProgressEvent

EXIT_FAILED = 1
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
EXIT_BROKEN_PIPE = 141
"""128 + SIGPIPE, what a shell reports for a command whose reader closed the pipe."""


def say(line: str) -> None:
    """Print one line on stderr, masked."""
    print(masked(line, environment_secrets(os.environ)), file=sys.stderr)


def report(error: BaseException, *, debug: bool, terminated: bool = False, calls: int | None = None) -> int:
    """Print `error` as one line (after its traceback under `--debug`); the exit status it means.

    `terminated`: the KeyboardInterrupt was raised for SIGTERM, not for Ctrl-C (while a
    flow runs, Prefect's own SIGTERM handler raises its `TerminationSignal` instead).
    `calls`: the model calls the command made, which an interrupted one says it spent.
    """
    if isinstance(error, BrokenPipeError):  # the reader of our output left (`agentflows list | head`): no more to say
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    if debug:
        traceback.print_exception(error)
    terminated = terminated or _is_prefect_termination(error)
    if isinstance(error, KeyboardInterrupt) or terminated:
        what = "terminated" if terminated else "interrupted"
        spent = "" if calls is None else f" after {calls} model call{'s' if calls != 1 else ''}"
        say(f"error: {what}{spent}; a run's finished steps are cached, so the same command continues from there")
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    say(f"error: {failure_sentence(error)}")
    return EXIT_FAILED


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so Python's own flush at exit does not fail on the closed pipe again."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


@contextmanager
def sigterm_interrupts(terminated: threading.Event) -> Iterator[None]:
    """SIGTERM interrupts like Ctrl-C (and sets `terminated`), so a terminated run ends as orderly."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, frame: Any) -> None:
        terminated.set()
        signal.default_int_handler(signum, frame)

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def failure_sentence(error: BaseException) -> str:
    """What failed, in one sentence."""
    if isinstance(error, AgentflowsError):
        return _joined(str(error))
    if _is_prefect_api_failure(error):
        api = os.environ.get("PREFECT_API_URL") or "the configured Prefect API"
        return f"the Prefect API at {api} failed: {one_line(error)}; check that its server runs"
    if type(error).__module__.startswith("prefect"):
        return f"Prefect: {_joined(str(error))}"
    return f"unexpected {_joined(one_line(error))} (rerun with --debug for the traceback)"


def add_progress_option(cmd: argparse.ArgumentParser) -> None:
    """A command's `--progress` / `--no-progress` option (see `printed`)."""
    cmd.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="print each step as it starts and ends, on stderr (default: when stderr is a terminal)",
    )


@contextmanager
def printed(shown: bool | None) -> Iterator[None]:
    """Print each step's progress on stderr when `shown` (None: when stderr is a terminal); where to review
    a run waiting for a review, always."""
    from agentflows.progress import listening  # Prefect, imported once the CLI has set it up

    shown = shown if shown is not None else sys.stderr.isatty()

    def show(event: ProgressEvent) -> None:
        if event.status == "waiting" or (shown and event.status != "failed"):  # `error:` says a failure
            print(f"  {event}", file=sys.stderr, flush=True)

    with listening(show):
        yield


def quiet_prefect_console(*, debug: bool) -> None:
    """Keep Prefect's log records off stderr (they still reach the Prefect API), unless `debug`.

    A filter, not a level: Prefect's incremental logging set-up resets handler levels.
    """
    if debug:
        return
    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in list(logging.root.manager.loggerDict))]
    for handler in (h for logger in loggers for h in logger.handlers):
        prefects = type(handler).__module__.startswith("prefect") and isinstance(handler, logging.StreamHandler)
        if prefects and _silent not in handler.filters:
            handler.addFilter(_silent)


def _silent(record: logging.LogRecord) -> bool:
    return False


def _is_prefect_termination(error: BaseException) -> bool:
    if "prefect.exceptions" not in sys.modules:
        return False
    from prefect.exceptions import TerminationSignal

    return isinstance(error, TerminationSignal)


def _is_prefect_api_failure(error: BaseException) -> bool:
    import httpx

    if isinstance(error, httpx.HTTPError):
        return True
    return isinstance(error, RuntimeError) and str(error).startswith("Failed to reach API")


def _joined(text: str) -> str:
    lines = (line.strip().removeprefix("- ") for line in text.strip().splitlines())
    return "; ".join(line for line in lines if line) or "(no message)"

"""What the command line prints about a run that failed, beside its one `error:` line (`agentflows.console`).

- `error_object`: with `--json`, a failure prints one JSON object on stdout
  (`{"error": {...}}`): the error's type and message, the agent and flow run, the
  step that failed, what the run spent (calls, tokens, cost: every attempt, as
  written in the run's ledger) and the answers the failed step got; masked like
  the error line;
- `answers_summary`: how a stored step's answers went, for `agentflows show`.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from agentflows.errors import DefinitionError
from agentflows.tasks.artifacts import Attempt, AttemptCounts
from agentflows.tasks.errors import AgentflowsError
from agentflows.tasks.ledger import RunLedger
from agentflows.tasks.masking import environment_secrets, masked


def print_json_error(args: argparse.Namespace, exc: AgentflowsError, ledger: RunLedger) -> None:
    """The JSON error object on stdout, when the command was asked for JSON."""
    if getattr(args, "json", False):
        print(masked(json.dumps(error_object(exc, ledger), indent=2), environment_secrets(os.environ)))


def error_object(exc: AgentflowsError, ledger: RunLedger) -> dict[str, Any]:
    """What `--json` prints on failure: the error, and what the run spent and got back before it."""
    spent = ledger.usage
    failed = ledger.failures()
    error: dict[str, Any] = {
        "type": type(exc).__name__,
        "message": str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
        "agent": ledger.agent,
        "flow_run_id": ledger.flow_run_id,
        "failed_step": failed[0].label if failed else None,
        "model_calls": spent.calls,
        "prompt_tokens": spent.prompt_tokens,
        "completion_tokens": spent.completion_tokens,
        "cost": spent.cost,
        "attempts": [a.model_dump(mode="json") for a in failed[0].attempts] if failed else [],
    }
    if isinstance(exc, DefinitionError):
        error["problems"] = [str(p) for p in exc.problems]
    return {"error": error}


def answers_summary(attempts: list[dict[str, Any]]) -> str:
    """`(1 failed, 2 re-asks, 1 repaired)`: how a step's answers went, when not all at once."""
    counts = AttemptCounts.of([Attempt.model_validate(a) for a in attempts])
    said = [
        f"{counts.failed_calls} failed" if counts.failed_calls else "",
        f"{counts.reasks} re-ask{'s' if counts.reasks != 1 else ''}" if counts.reasks else "",
        f"{counts.repairs} repaired" if counts.repairs else "",
        f"{counts.degrades} degraded" if counts.degrades else "",
    ]
    shown = ", ".join(s for s in said if s)
    return f" ({shown})" if shown else ""

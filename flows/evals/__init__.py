"""Evals: an agent's cases, kept next to its definition, run and compared with a baseline.

    cases.py     evals/<agent>.yaml: cases (inputs) and assertions; checked like a definition
    judging.py   an assertion on one run's result: expression, built file, or a model-graded rubric
    running.py   the modes (live, offline, record, replay) and running a suite's cases
    report.py    pass rates per case and overall, the baseline, the report as text and JSON
    api.py       run_evals / run_evals_async: all of it, with the results stored
    flow.py      the `agent-evals` Prefect flow, with a table artifact

    from agentflows.evals import run_evals
    report = run_evals(["quiz"], mode="offline")

Names are imported on first use. An eval runs without a Prefect server: cases run the steps as plain
functions; only the flow talks to Prefect.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agentflows.evals.api import run_evals, run_evals_async
    from agentflows.evals.cases import EvalSuite, load_suites
    from agentflows.evals.report import CaseResult, EvalReport

_EXPORTS = {
    "run_evals": "agentflows.evals.api",
    "run_evals_async": "agentflows.evals.api",
    "EvalSuite": "agentflows.evals.cases",
    "load_suites": "agentflows.evals.cases",
    "CaseResult": "agentflows.evals.report",
    "EvalReport": "agentflows.evals.report",
}
__all__ = ["CaseResult", "EvalReport", "EvalSuite", "load_suites", "run_evals", "run_evals_async"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'agentflows.evals' has no attribute {name!r}")

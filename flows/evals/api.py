"""Run evals from Python, the CLI and the eval flow: cases, baseline, results stored.

    from agentflows.evals import run_evals
    report = run_evals(["quiz"], mode="offline")
    report.passed, report.pass_rate, [c.key for c in report.cases if not c.ok]

Every agent's suite runs in turn (its cases concurrently), is compared with the
baseline when one is given, and the results go to the content database's
`eval_results` table, one row per case, under the report's `eval_id`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import anyio

from agentflows.api import run_blocking
from agentflows.catalog import load_agents
from agentflows.errors import InputError
from agentflows.evals.cases import load_suites
from agentflows.evals.report import CaseResult, EvalReport, compared, read_baseline, report_of
from agentflows.evals.running import ANSWERS_FOLDER, MODES, Mode, run_suite
from agentflows.tasks.runtime import current_runtime

MAX_REPEAT = 100


async def run_evals_async(
    agents: Sequence[str] | None = None,
    *,
    repeat: int = 1,
    mode: Mode = "live",
    baseline: Path | None = None,
    answers: Path | None = None,
    definitions: Path | str | None = None,
    flow_run_id: str | None = None,
    on_case: Callable[[CaseResult], None] | None = None,
) -> EvalReport:
    """Run the eval cases of `agents` (default: every agent with an eval file) and report, compared and stored.

    `answers` is the folder of recorded answers for `record` and `replay` (default: `evals/answers/` of the
    definitions folder); `on_case` is told each case's result as soon as its agent's suite is done.
    """
    if not 1 <= repeat <= MAX_REPEAT:
        raise InputError(f"repeat {repeat} is not a number of runs from 1 to {MAX_REPEAT}")
    if mode not in MODES:
        raise InputError(f"mode {mode!r} is not one of {', '.join(MODES)}")
    catalog = load_agents(definitions)
    suites = load_suites(catalog.root, catalog, agents)
    rates = read_baseline(baseline) if baseline is not None else None
    await anyio.to_thread.run_sync(current_runtime().store)  # where results go, checked before any model call
    folder = answers if answers is not None else catalog.root / ANSWERS_FOLDER
    cases: list[CaseResult] = []
    offline = True
    for suite in suites:
        results, suite_offline = await run_suite(suite, repeat=repeat, mode=mode, answers=folder)
        offline = offline and suite_offline
        for case in compared(results, rates):
            cases.append(case)
            if on_case is not None:
                on_case(case)
    report = report_of(cases, mode=mode, repeat=repeat, offline=offline, baseline=baseline, eval_id=uuid.uuid4().hex)
    await anyio.to_thread.run_sync(store_report, report, flow_run_id)
    return report


def run_evals(agents: Sequence[str] | None = None, **options: Any) -> EvalReport:
    """`run_evals_async`, blocking (inside a running event loop, await `run_evals_async` instead)."""
    return run_blocking(lambda: run_evals_async(agents, **options), "run_evals")


def store_report(report: EvalReport, flow_run_id: str | None = None) -> None:
    """Write one row per case of `report` to the configured content database's `eval_results` table."""
    from agentflows.tasks.storage.eval_results import EvalResultStore  # SQLAlchemy only when storing

    rows = [
        {
            "eval_id": report.eval_id,
            "flow_run_id": flow_run_id,
            "agent": case.agent,
            "agent_version": case.agent_version,
            "case": case.case,
            "mode": report.mode,
            "runs": case.runs,
            "passed_runs": case.passed_runs,
            "pass_rate": case.pass_rate,
            "baseline": case.baseline,
            "regression": case.regression,
            "model_calls": case.model_calls,
            "failures": [
                *(
                    {"assertion": a.assertion, "failed": a.failed, "failures": a.failures}
                    for a in case.assertions
                    if a.failed
                ),
                *({"error": error} for error in case.errors),
            ],
        }
        for case in report.cases
    ]
    EvalResultStore(current_runtime().store().records).record(rows)

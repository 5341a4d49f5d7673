"""The eval as a Prefect flow, `agentflows.evals.flow:agent_evals` (a deployment in prefect.yaml).

It runs what `agentflows eval` runs, stores the results with the flow run's id,
shows every case as a row of a table artifact on the run page, and fails the
run with the failing cases' names when a case regressed or failed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from prefect import flow
from prefect.artifacts import acreate_table_artifact
from prefect.context import FlowRunContext

from agentflows.catalog import load_agents
from agentflows.errors import EvalFailed
from agentflows.evals.api import run_evals_async
from agentflows.evals.report import EvalReport

FLOW_NAME = "agent-evals"
ARTIFACT_KEY = "agent-evals"


@flow(name=FLOW_NAME, persist_result=False, validate_parameters=True)
async def agent_evals(
    agents: list[str] | None = None,
    repeat: int = 1,
    mode: Literal["offline", "live", "replay"] = "offline",
    baseline: str = "",
) -> dict[str, Any]:
    """Run the agents' eval cases and compare them with a baseline; the run fails on a regression.

    Args:
        agents: Agents whose eval cases to run (evals/<agent>.yaml); empty runs every agent that has them.
        repeat: Runs of each case (1 to 100); a case's pass rate is the share of its runs that passed.
        mode: offline (the built-in provider), live (the configured model) or replay (recorded answers only).
        baseline: A report of `agentflows eval --json` to compare with; a relative path is read from the
            definitions folder. Empty: every case must pass every run.
    """
    context = FlowRunContext.get()
    flow_run_id = str(context.flow_run.id) if context and context.flow_run else None
    report = await run_evals_async(
        agents or None, repeat=repeat, mode=mode, baseline=baseline_path(baseline), flow_run_id=flow_run_id
    )
    await acreate_table_artifact(key=ARTIFACT_KEY, table=table_rows(report), description=summary(report))
    if not report.passed:
        failing = ", ".join(c.key for c in report.cases if not c.ok)
        raise EvalFailed(f"{summary(report)}; failing: {failing}")
    return report.model_dump(mode="json")


def baseline_path(baseline: str) -> Path | None:
    """The baseline file: as given when absolute, else in the definitions folder (a worker's folder is temporary)."""
    if not baseline.strip():
        return None
    path = Path(baseline.strip()).expanduser()
    return path if path.is_absolute() else load_agents().root / path


def table_rows(report: EvalReport) -> list[dict[str, Any]]:
    """One row per case: its pass rate, the baseline's, and what failed."""
    return [
        {
            "case": case.key,
            "result": "pass" if case.ok else ("REGRESSION" if case.regression else "FAIL"),
            "passed runs": f"{case.passed_runs}/{case.runs}",
            "pass rate": f"{case.pass_rate:.0%}",
            "baseline": "" if case.baseline is None else f"{case.baseline:.0%}",
            "failed": "; ".join([*(f"{a.assertion} ({a.failed})" for a in case.assertions if a.failed), *case.errors])[
                :500
            ],
        }
        for case in report.cases
    ]


def summary(report: EvalReport) -> str:
    """One line: runs passed, pass rate, mode and regressions."""
    regressions = f", {len(report.regressions)} regressed" if report.baseline is not None else ""
    return (
        f"{report.passed_runs}/{report.runs} runs passed ({report.pass_rate:.0%}) in {len(report.cases)} cases, "
        f"{report.mode}{regressions}"
    )

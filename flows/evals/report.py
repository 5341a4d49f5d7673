"""What an eval found: pass rates per case and overall, compared with a baseline.

    EvalReport                what `agentflows eval --json` prints (and a baseline file holds)
    ├── cases: CaseResult     one per case: runs, passed runs, pass rate, baseline, regression
    │   ├── assertions        per assertion: how many runs it passed, failed, skipped; what was wrong
    │   └── errors            runs that made no content (a check that never held, a refused call)
    └── regressions           "agent/case" of every case below its baseline

A run passes when it made content and none of its assertions failed (a skipped
rubric does not fail it). A case regresses when its pass rate is below the
baseline's for the same agent and case; a case the baseline does not name must
pass every run. The report `passed` when no case regressed or failed that way.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentflows.errors import BaselineError

KEPT_FAILURES = 3
"""Distinct failure details kept per assertion (and errors per case)."""


class _Result(BaseModel):
    """Base of the report's parts: immutable; keys a newer agentflows adds are ignored when read back."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class AssertionResult(_Result):
    """How one assertion of a case fared over the case's runs."""

    assertion: str
    """Its message, else what it checks."""
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    failures: list[str] = Field(default_factory=list)
    """What was wrong, distinct, at most three (a skipped rubric says why here too)."""


class CaseResult(_Result):
    """How one case fared over its runs."""

    agent: str
    agent_version: str = ""
    case: str
    runs: int
    passed_runs: int
    pass_rate: float
    model_calls: int = 0
    assertions: list[AssertionResult] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)
    """Why runs made no content, distinct, at most three."""
    baseline: float | None = None
    """The baseline's pass rate of this case, when one was given and names it."""
    regression: bool = False
    """True when the pass rate is below the baseline's."""

    @property
    def key(self) -> str:
        return f"{self.agent}/{self.case}"

    @property
    def ok(self) -> bool:
        """Passes: not below its baseline, or, with no baseline for it, every run passed."""
        return not self.regression if self.baseline is not None else self.passed_runs == self.runs


class EvalReport(_Result):
    """What one `agentflows eval` found."""

    eval_id: str = ""
    """Id of the eval in the content database's `eval_results` table."""
    mode: str
    """`live` (as the environment configures the agents), `offline`, `record` or `replay`."""
    offline: bool = False
    """True when every answer came from the built-in offline provider (no language model was called)."""
    repeat: int
    runs: int
    passed_runs: int
    pass_rate: float
    passed: bool
    """No case regressed against the baseline, and every case the baseline does not name passed every run."""
    baseline: str | None = None
    """The baseline file compared with."""
    regressions: list[str] = Field(default_factory=list)
    """`agent/case` of every case below its baseline."""
    cases: list[CaseResult] = Field(default_factory=list)


def rate(passed: int, runs: int) -> float:
    return round(passed / runs, 4) if runs else 0.0


def distinct(texts: Iterable[str], limit: int = KEPT_FAILURES) -> list[str]:
    """The first `limit` different texts, in order."""
    return list(dict.fromkeys(t for t in texts if t))[:limit]


def read_baseline(path: Path) -> dict[str, float]:
    """Pass rate by `agent/case` from a report that `agentflows eval --json` wrote; `BaselineError` otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BaselineError(f"no baseline at {path}; write one with `agentflows eval --all --json > {path}`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BaselineError(f"cannot read baseline {path}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        report = EvalReport.model_validate(json.loads(text))
    except json.JSONDecodeError as exc:
        raise BaselineError(f"{path}:{exc.lineno}: the baseline is not JSON ({exc.msg})") from None
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        raise BaselineError(
            f"{path}: not a report of `agentflows eval --json` ({where}: {error['msg'].lower()})"
        ) from None
    return {case.key: case.pass_rate for case in report.cases}


def compared(cases: Sequence[CaseResult], baseline: dict[str, float] | None) -> list[CaseResult]:
    """`cases` with the baseline's pass rate of each and whether it fell below it."""
    if baseline is None:
        return list(cases)
    return [
        case.model_copy(
            update={
                "baseline": baseline.get(case.key),
                "regression": case.key in baseline and case.pass_rate < baseline[case.key],
            }
        )
        for case in cases
    ]


def report_of(
    cases: Sequence[CaseResult], *, mode: str, repeat: int, offline: bool, baseline: Path | None, eval_id: str = ""
) -> EvalReport:
    """The report of `cases` (already compared with the baseline, when there is one)."""
    runs = sum(c.runs for c in cases)
    passed_runs = sum(c.passed_runs for c in cases)
    return EvalReport(
        eval_id=eval_id,
        mode=mode,
        offline=offline,
        repeat=repeat,
        runs=runs,
        passed_runs=passed_runs,
        pass_rate=rate(passed_runs, runs),
        passed=all(c.ok for c in cases),
        baseline=str(baseline) if baseline is not None else None,
        regressions=[c.key for c in cases if c.regression],
        cases=list(cases),
    )


def report_lines(report: EvalReport) -> list[str]:
    """The report as a person reads it: a line per case, what failed under it, then the overall line."""
    lines = []
    for case in report.cases:
        verdict = "PASS" if case.ok else "FAIL"
        against = ""
        if case.baseline is not None:
            against = f"  baseline {case.baseline:.0%}" + ("  REGRESSION" if case.regression else "")
        lines.append(f"{verdict} {case.key:<32} {case.passed_runs}/{case.runs} runs  {case.pass_rate:>4.0%}{against}")
        lines += [f"     run failed: {error}" for error in case.errors]
        for result in case.assertions:
            if result.failed:
                lines.append(f"     - {result.assertion} (failed {result.failed} of {case.runs} runs)")
                lines += [f"       {failure}" for failure in result.failures]
            elif result.skipped:
                lines.append(f"     ~ {result.assertion} (skipped: {result.failures[0] if result.failures else ''})")
    note = " (offline provider: no language model was called)" if report.offline else ""
    compared_with = ""
    if report.baseline is not None:
        count = len(report.regressions)
        compared_with = f"; {count} regression{'s' if count != 1 else ''} against {report.baseline}"
    lines.append(
        f"{'passed' if report.passed else 'FAILED'}: {report.passed_runs}/{report.runs} runs passed "
        f"({report.pass_rate:.0%}) in {len(report.cases)} cases, {report.mode}{note}{compared_with}"
    )
    return lines

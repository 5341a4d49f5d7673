"""Smoke test of the benchmark harness: its quick pass runs end to end and writes a complete table.

It checks what the table reports (every scenario, agentflows and ideal times, model
calls that match), never how fast anything was: speed is the harness's to measure.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks.report import NOTES_MARKER, _rows_for, kept_notes, kept_rows, spread

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_the_quick_pass_writes_a_row_per_scenario_with_matching_model_calls(tmp_path: Path) -> None:
    output = tmp_path / "RESULTS.md"

    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--contents", "10", "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    table = output.read_text()
    assert table.startswith("# Benchmark results") and "Quick smoke pass" in table
    cells = [line.removeprefix("| ").split(" | ") for line in table.splitlines() if line.startswith("| ")]
    rows = {row[0]: row for row in cells}
    cold = rows["one agent run, cold (ebook, 4 chapters)"]
    cached = rows["identical run again (cached)"]
    assert cold[6] == "5 / 5" and cached[6] == "0 / 0"  # decide + 4 chapters; then nothing
    assert all(cell.endswith("]") for cell in (cold[2], cold[3], cached[2]))
    peers = {name.split(", e-book")[0].removeprefix("peer: ") for name in rows if name.startswith("peer: ")}
    assert {"agentflows", "Prefect tasks + openai", "pydantic-ai on Prefect", "crewAI Flow"} <= peers
    ours = rows["peer: agentflows, e-book cold (4 chapters)"]
    assert ours[6] == "5 / 5" and rows["peer: agentflows, identical run again"][6] == "0 / 0"
    persisted = [name for name in rows if name.startswith("persist 10 contents")]
    assert sorted(name.split(", ")[1] for name in persisted) == ["embedded", "postgres+s3"]
    assert all(rows[name][3].endswith("]") and rows[name][4] != "—" for name in persisted)
    for backend in ("sqlite", "postgres"):
        assert rows[f"knowledge: index 100 passages (10 files), {backend}"][2].endswith("]")
        assert rows[f"knowledge: keyword query, top 4 of 100, {backend}"][6] == "20/20 queries found"
        assert rows[f"knowledge: hybrid query, top 4 of 100, {backend}"][2].endswith("]")


def test_a_peer_row_is_met_when_agentflows_ratio_is_at_or_below_the_peers() -> None:
    def measured(cold: float, cached_calls: int = 0) -> dict[str, Any]:
        row = {"cold": cold, "cached": cold / 4, "ideal": 1.0, "cold_calls": 5, "cached_calls": cached_calls}
        return {"rows": [row], "peak_rss_mb": 100.0}

    data = {
        "agentflows": measured(1.2),
        "slower": measured(1.5, cached_calls=5),
        "faster": measured(1.1),
        "absent": {"missing": ".venv-absent/bin/python is not installed"},
    }

    table = {row.scenario: row for row in _rows_for("peers", "1 s", data)}

    assert table["peer: slower, e-book cold (4 chapters)"].met is True
    assert table["peer: faster, e-book cold (4 chapters)"].met is False
    assert table["peer: agentflows, e-book cold (4 chapters)"].met is None
    assert table["peer: slower, identical run again"].calls == "5 / 0"
    absent = table["peer: absent, e-book cold"]
    assert absent.cells()[2] == "—" and "not installed" in absent.target


def test_the_fanout_row_says_what_each_added_chapter_costs_over_its_model_call() -> None:
    run = {"wall_4": 2.5, "ideal_4": 2.0, "calls_4": 5, "wall_12": 4.9, "ideal_12": 4.0, "calls_12": 13}

    (row,) = _rows_for("fanout", "1 s", {"rows": [run], "small": 4, "large": 12})

    assert row.ratio == pytest.approx(4.9 / 4.0) and "adds 50 ms" in row.target and row.calls == "13 / 13"


def test_spread_is_the_median_with_the_range() -> None:
    assert spread([3.0, 1.0, 2.0]) == "2.00 s [1.00–3.00]"


def test_notes_below_the_marker_survive_a_new_table(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text(f"# old table\n\n{NOTES_MARKER}\n## Reading the results\nhand-written\n")

    assert kept_notes(results) == f"{NOTES_MARKER}\n## Reading the results\nhand-written\n"
    assert kept_notes(tmp_path / "missing.md") == ""


def test_a_partial_run_keeps_the_rows_of_the_scenarios_it_did_not_measure() -> None:
    previous = (
        "Measured 2026-11-21 20:17 UTC by …\n\n| scenario | model latency |\n|---|---|\n"
        "| router, 4 content types | 1 s |\n| knowledge: index 1,000 passages (100 files), sqlite | — |\n"
        f"\n{NOTES_MARKER}\n| not a row of the table |\n"
    )

    assert kept_rows(previous, {"knowledge"}) == (["| router, 4 content types | 1 s |"], "2026-11-21 20:17")


def test_milliseconds_print_as_such() -> None:
    assert spread([0.002, 0.001, 0.003], "ms") == "2.00 ms [1.00–3.00]"


def test_the_load_rows_are_met_only_when_every_run_completed_nothing_was_lost_and_both_workers_ran() -> None:
    clean = {"runs": 20, "completed": 20, "contents": 20, "lost_rows": 0, "duplicate_rows": 0, "missing_objects": 0}
    clean["slots_held"] = 0
    many = {**clean, "runs": 50, "completed": 50, "contents": 50, "wall": 30.0, "fake_calls": 150}
    data = {
        "concurrent": {**many, "recorded_calls": 150},
        "workers": {**clean, "wall": 60.0, "by_worker": {"worker-1": 11, "worker-2": 9}},
    }

    many, workers = _rows_for("load", "—", data)
    lost = _rows_for("load", "—", {**data, "concurrent": {**data["concurrent"], "lost_rows": 1}})[0]
    one_worker = _rows_for("load", "—", {**data, "workers": {**data["workers"], "by_worker": {"worker-1": 20}}})

    assert (many.met, workers.met, lost.met, one_worker[1].met) == (True, True, False, False)
    assert many.calls == "150 / 150" and "(measured: 11 / 9;" in workers.target


def test_the_ideal_starts_a_dependent_pipeline_when_its_upstream_ends() -> None:
    from benchmarks.ideal import Pipeline, replay
    from tests.fake_llm import FakeLLM

    def body(agent: str, step: str) -> dict[str, object]:
        return {"model": "m", "messages": [{"role": "system", "content": f'You are "{agent}"'}, {"content": step}]}

    lesson = Pipeline(body("lesson", "decide"), [body("lesson", "g1"), body("lesson", "g2")], 2, "lesson")
    quiz = Pipeline(body("quiz", "decide"), [body("quiz", "g1")], 2, "quiz", after=("lesson",))
    report = Pipeline(body("report", "decide"), [], 1, "report")
    with FakeLLM(latency=0.05) as fake:
        asyncio.run(replay(fake.base_url, [quiz, lesson, report], shared_limit=8))

    def calls(agent: str) -> list[Any]:
        return [r for r in fake.received if f'"{agent}"' in str(r.body["messages"][0]["content"])]

    assert min(c.started for c in calls("quiz")) >= max(c.ended for c in calls("lesson"))
    assert min(c.started for c in calls("report")) < max(c.ended for c in calls("lesson"))  # not held back

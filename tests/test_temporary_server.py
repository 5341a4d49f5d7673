"""The temporary Prefect server of CLI runs: where its state lives, how long it may take,
and that nothing of a run outlives it — killed at any point, no process of it survives
and none of its flow runs stays RUNNING once the CLI starts again.

Every test runs the installed `agentflows` command with no Prefect API configured,
as a new user does, against the fake model server on loopback.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentflows.deployments.temporary_server import prefect_environment
from tests.fake_llm import FakeLLM

AGENTFLOWS = str(Path(sys.executable).with_name("agentflows"))
KILL_POINTS = ("starting", "decide started", "generate started", "build started", "save started")
"""Where a run is killed: while its temporary server starts, then as each step starts."""


@pytest.fixture(scope="module")
def slow_llm() -> Iterator[FakeLLM]:
    """A model that takes 3 s per answer, so a run is caught mid-step."""
    with FakeLLM(latency=3) as server:
        yield server


def environment(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTFLOWS_", "PREFECT_"))}
    env.update(HOME=str(tmp / "user"), AGENTFLOWS_HOME=str(tmp / "home"), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    env.update(extra)
    return env


def quiz(topic: str, *more: str) -> list[str]:
    return [AGENTFLOWS, "run", "quiz", "-p", f"topic={topic}", "-p", "questions=2", *more]


def flow_runs(prefect_home: Path) -> list[tuple[str, str, str]]:
    """(name, state type, tags) of every flow run in the home's Prefect database."""
    with sqlite3.connect(prefect_home / "prefect.db") as db:
        return db.execute("SELECT name, state_type, tags FROM flow_run").fetchall()


def descendants(pid: int) -> set[int]:
    """Every living process below `pid`."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))):
            children.setdefault(int(stat[1]), []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def living(pids: set[int]) -> set[int]:
    return {pid for pid in pids if (stat := _stat(pid)) and stat[0] != "Z"}


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None


def test_prefect_state_goes_under_agentflows_home_unless_the_user_chose_a_prefect(tmp_path: Path) -> None:
    home = tmp_path / "home"
    user = {"HOME": str(tmp_path)}
    profiles = tmp_path / "profiles.toml"
    profiles.write_text('active = "remote"\n[profiles.remote]\nPREFECT_API_URL = "http://prefect:4200/api"\n')

    moved = prefect_environment(user, home)

    assert moved["PREFECT_HOME"] == str(home / "prefect") and moved["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    assert moved["PREFECT_PROFILES_PATH"].startswith(str(Path("~").expanduser()))  # the user's profiles still apply
    for chosen in (
        {"PREFECT_HOME": "/p"},
        {"PREFECT_API_URL": "http://x/api"},
        {"PREFECT_PROFILES_PATH": str(profiles)},
    ):
        assert "PREFECT_HOME" not in prefect_environment({**user, **chosen}, home), chosen


@pytest.mark.slow
def test_a_first_run_on_a_fresh_home_starts_and_leaves_nothing_behind(tmp_path: Path) -> None:
    cli = subprocess.Popen(
        quiz("Tides"), env=environment(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    seen: set[int] = set()
    while cli.poll() is None:
        seen |= descendants(cli.pid)
        time.sleep(0.2)
    out, err = cli.communicate()

    assert cli.returncode == 0, err
    assert err == "" and out.strip().splitlines()[-1].startswith("wrote file://")
    prefect_home = tmp_path / "home" / "prefect"
    assert [(name, state) for name, state, _ in flow_runs(prefect_home)] == [("quiz: Tides", "COMPLETED")]
    assert not (tmp_path / "user" / ".prefect").exists()  # nothing in the user's own Prefect home
    assert seen and living(seen) == set()  # the temporary server stopped with the run


@pytest.mark.slow
def test_a_server_that_cannot_start_in_time_is_one_line_saying_what_to_do(tmp_path: Path) -> None:
    env = environment(tmp_path, PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="1")

    done = subprocess.run(quiz("Tides"), env=env, capture_output=True, text=True, timeout=120)

    assert done.returncode == 1 and "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: the temporary Prefect server did not answer within 1 s")
    assert "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS" in line and "agentflows up" in line


@pytest.mark.slow
def test_concurrent_runs_sharing_a_fresh_home_print_no_server_errors(tmp_path: Path) -> None:
    env = environment(tmp_path)
    runs = [
        subprocess.Popen(quiz(f"Topic {n}"), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for n in range(3)
    ]
    results = [(run.wait(timeout=600), *run.communicate()) for run in runs]

    assert [code for code, _, _ in results] == [0, 0, 0], results
    assert all(err == "" for _, _, err in results), results
    log = (tmp_path / "home" / "prefect" / "temporary-server.log").read_text()
    assert "IntegrityError" not in log and "UNIQUE constraint" not in log and "NoSuchTableError" not in log, log
    assert len(flow_runs(tmp_path / "home" / "prefect")) == 3


@pytest.mark.slow
def test_a_run_killed_at_any_point_leaves_no_process_and_no_running_flow_run(slow_llm: FakeLLM, tmp_path: Path) -> None:
    env = environment(tmp_path, AGENTFLOWS_LLM_BASE_URL=slow_llm.base_url)
    killed: dict[str, int] = {}
    for number, point in enumerate(KILL_POINTS):
        cli = subprocess.Popen(
            quiz(f"Kill {number}", "--progress"), env=env, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        family = _wait_for(cli, point)
        os.kill(cli.pid, signal.SIGKILL)
        cli.wait()
        deadline = time.monotonic() + 30
        while living(family) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert living(family) == set(), f"killed at {point!r}: processes {living(family)} survived 30 s"
        killed[f"quiz: Kill {number}"] = cli.pid

    next_start = subprocess.run(quiz("After"), env=env, capture_output=True, text=True, timeout=600)

    assert next_start.returncode == 0, next_start.stderr
    states = {name: state for name, state, _ in flow_runs(tmp_path / "home" / "prefect")}
    assert states.pop("quiz: After") == "COMPLETED"
    assert set(states) <= set(killed) and "RUNNING" not in states.values() and "PENDING" not in states.values()
    assert states["quiz: Kill 1"] == states["quiz: Kill 2"] == "CRASHED"  # caught mid-model-call for sure


def _wait_for(cli: subprocess.Popen[str], point: str) -> set[int]:
    """Read the run's progress until `point` (or, for `starting`, until its server process exists); its processes."""
    assert cli.stderr is not None
    if point == "starting":
        while not descendants(cli.pid):
            assert cli.poll() is None, "the run ended before its server started"
            time.sleep(0.05)
        return {cli.pid, *descendants(cli.pid)}
    for line in cli.stderr:
        if point in line:
            return {cli.pid, *descendants(cli.pid)}
    raise AssertionError(f"the run ended before {point!r}")

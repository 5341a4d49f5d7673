"""Deployments end to end, the way a user runs them: `agentflows up` starts a real
`prefect server start` on a free loopback port (its own PREFECT_HOME), deploys
`prefect.yaml`, starts a process worker and the content viewer; flow runs are created through the
REST endpoint the UI's Run button calls, and a browser follows a run's artifact from the Prefect UI
to the content's page in the viewer; `agentflows down` stops it all."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from playwright.sync_api import expect
from prefect.deployments import run_deployment
from prefect.deployments.runner import RunnerDeployment
from prefect.settings import PREFECT_API_URL, temporary_settings

from agentflows import load_agents, open_store
from agentflows.deployments.stack import WORK_POOL, Stack, down, up
from agentflows.reviews import approve
from agentflows.tasks.artifacts import AgentResult
from agentflows.tasks.manifest import Manifest
from agentflows.tasks.review import PlanContent
from agentflows.tasks.storage.kept import built_from
from tests.conftest import REPO, SHIPPED_AGENTS
from tests.servers import free_port
from tests.viewing import chromium

TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
SCHEDULER_LOOP = "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS"
SCHEDULER_MAX_RUNS = "PREFECT_SERVER_SERVICES_SCHEDULER_MAX_RUNS"
PROJECT_YAML = yaml.safe_load((REPO / "prefect.yaml").read_text())


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Path]]:
    home = tmp_path_factory.mktemp("stack-home")
    previous = {name: os.environ.get(name) for name in ("AGENTFLOWS_HOME", SCHEDULER_LOOP, SCHEDULER_MAX_RUNS)}
    os.environ["AGENTFLOWS_HOME"] = str(home)
    os.environ[SCHEDULER_LOOP] = "5"  # the scheduler refills every 5 s instead of every minute
    os.environ[SCHEDULER_MAX_RUNS] = "3"  # not 100 runs ahead of a 20-second interval
    try:
        started = up(port=free_port(), viewer_port=free_port(), echo=False)
    finally:
        for name, value in previous.items():
            _restore(name, value)
    try:
        yield started, home
    finally:
        os.environ["AGENTFLOWS_HOME"] = str(home)
        try:
            assert down(echo=False)
        finally:
            _restore("AGENTFLOWS_HOME", previous["AGENTFLOWS_HOME"])
        for pid in (started.server_pid, started.worker_pid, started.viewer_pid):
            assert pid is not None and not _alive(pid), f"process {pid} is still running after `agentflows down`"


def _restore(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


TRANSIENT = {408, 429, 502, 503}  # the answers Prefect's own client retries


def api(stack: Stack, method: str, path: str, body: Any = None) -> httpx.Response:
    """One REST call, retried on a transient answer the way the UI's and Prefect's clients retry
    (a SQLite-backed server on two busy cores answers 503 now and then)."""
    for pause in (0.5, 1, 2, 4):
        response = httpx.request(method, f"{stack.api_url}{path}", json=body, timeout=30)
        if response.status_code not in TRANSIENT:
            return response
        time.sleep(pause)
    return httpx.request(method, f"{stack.api_url}{path}", json=body, timeout=30)


def start_run(stack: Stack, deployment_id: str, parameters: dict[str, Any]) -> str:
    """The id of a flow run created the way the UI's Run button creates it."""
    created = api(stack, "POST", f"/deployments/{deployment_id}/create_flow_run", {"parameters": parameters})
    assert created.status_code == 201, f"create_flow_run answered {created.status_code}: {created.text[:500]}"
    return str(created.json()["id"])


def deployment(stack: Stack, flow: str, name: str = "default") -> dict[str, Any]:
    found = api(stack, "POST", "/deployments/filter", {}).json()
    return next(d for d in found if d["entrypoint"].endswith(f":{flow}") and d["name"] == name)


def wait_for(
    stack: Stack, run_id: str, timeout: float = 180, until: Callable[[dict[str, Any]], bool] | None = None
) -> dict[str, Any]:
    """The flow run once it has finished (or once `until` holds for it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = api(stack, "GET", f"/flow_runs/{run_id}").json()
        if until(run) if until else run["state"]["type"] in TERMINAL:
            return run  # type: ignore[no-any-return]
        assert run["state"]["type"] not in TERMINAL, f"flow run {run_id} ended {run['state']['name']}"
        time.sleep(0.5)
    raise AssertionError(f"flow run {run_id} did not get there in {timeout:.0f} s")


def test_a_run_started_like_the_ui_run_button_ends_with_output_and_artifacts(
    stack: tuple[Stack, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, home = stack
    quiz = deployment(server, "quiz")

    run = wait_for(server, start_run(server, quiz["id"], {"topic": "Volcanoes", "questions": 2}))

    assert run["state"]["type"] == "COMPLETED" and run["name"] == "quiz: Volcanoes"
    artifacts = api(server, "POST", "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run["id"]]}}}).json()
    previews = [a for a in artifacts if a["type"] == "markdown" and a["key"]]
    links = [a for a in artifacts if a["type"] == "markdown" and not a["key"]]
    assert len(previews) == 1 and "# Volcanoes" in previews[0]["data"]
    monkeypatch.setenv("AGENTFLOWS_HOME", str(home))
    stored = [c for c in open_store().list() if c.agent == "quiz"]
    assert len(stored) == 1 and open_store().get(stored[0].id).flow_run_id == run["id"]
    assert links and f"({server.viewer_url}/contents/{stored[0].id}/)" in links[0]["data"]


def test_from_the_prefect_run_page_a_person_clicks_through_to_the_content(stack: tuple[Stack, Path]) -> None:
    server, _ = stack
    quiz = deployment(server, "quiz")
    run = wait_for(server, start_run(server, quiz["id"], {"topic": "Glaciers"}))
    artifacts = api(server, "POST", "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run["id"]]}}}).json()
    link = next(a for a in artifacts if a["type"] == "markdown" and not a["key"])
    content_page = re.search(r"\((http://[^)]+/contents/[0-9a-f]+/)\)", link["data"])
    assert run["state"]["type"] == "COMPLETED" and content_page is not None

    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{server.ui_url}/v2/runs/flow-run/{run['id']}")
        page.get_by_role("tab", name="Artifacts").click(timeout=60_000)
        page.locator(f'a[href="/v2/artifacts/artifact/{link["id"]}"]').first.click(timeout=60_000)
        page.locator(f'a[href="{content_page.group(1)}"]').click(timeout=60_000)

        expect(page.get_by_role("heading", level=1, name="Glaciers", exact=True)).to_be_visible(timeout=30_000)
        assert page.url == content_page.group(1)
        frame = page.frame_locator("iframe.content-frame")
        expect(frame.get_by_role("button", name="Check my answers")).to_be_visible()
        expect(page.get_by_role("link", name="Prefect flow run")).to_have_attribute(
            "href", f"{server.ui_url}/runs/flow-run/{run['id']}"
        )


@pytest.mark.parametrize("agent", [*SHIPPED_AGENTS, "router"])
def test_each_deployment_has_its_schedule_and_a_typed_parameter_form(stack: tuple[Stack, Path], agent: str) -> None:
    server, _ = stack
    found = deployment(server, agent)
    declared = next(d for d in PROJECT_YAML["deployments"] if d["entrypoint"].endswith(f":{agent}"))

    schedules = [(s["schedule"]["cron"], s["schedule"]["timezone"], s["active"]) for s in found["schedules"]]
    assert schedules == [(s["cron"], s["timezone"], s["active"]) for s in declared["schedules"]]
    assert found["work_pool_name"] == "agentflows-local" and found["enforce_parameter_schema"]
    assert found["entrypoint"] == f"agentflows.agents:{agent}"  # the installed module, found from any folder
    schema = found["parameter_openapi_schema"]
    assert set(schema.get("required", [])) <= set(found["parameters"])  # "Quick run" needs no typing
    properties = schema["properties"]
    if agent == "router":
        assert properties["content_types"]["anyOf"][0]["items"]["enum"] == sorted(SHIPPED_AGENTS)
        return
    for name, spec in load_agents()[agent].definition.inputs.items():
        assert properties[name]["description"] == spec.description
        if spec.enum and spec.type != "list":
            assert properties[name]["enum"] == spec.enum


def test_invalid_parameters_are_refused_by_the_server_and_never_run(stack: tuple[Stack, Path]) -> None:
    server, _ = stack
    ebook = deployment(server, "ebook")

    def started_runs() -> int:
        runs = api(server, "POST", "/flow_runs/filter", {"deployments": {"id": {"any_": [ebook["id"]]}}}).json()
        return sum(1 for r in runs if r["state"]["type"] != "SCHEDULED")  # the schedule's future runs aside

    before = started_runs()
    bad = [{"topic": "x"}, {"topic": "Tides", "chapters": 40}, {"topic": "Tides", "tone": "grim"}]
    answers = [api(server, "POST", f"/deployments/{ebook['id']}/create_flow_run", {"parameters": p}) for p in bad]

    assert [a.status_code for a in answers] == [409, 409, 409]
    assert "topic" in answers[0].json()["detail"] and "chapters" in answers[1].json()["detail"]
    time.sleep(2)
    assert started_runs() == before


def test_parameters_the_server_did_not_check_are_refused_by_the_flow_before_any_step(stack: tuple[Stack, Path]) -> None:
    """The UI's custom run with "Validate parameters" unticked sends `enforce_parameter_schema: false`."""
    server, _ = stack
    ebook, router = deployment(server, "ebook"), deployment(server, "router")

    unchecked = [
        (ebook, {"topic": "x", "chapters": 40}, "InputError: agent 'ebook': input 'topic'"),
        (router, {"request": "   "}, "RoutingError: the request is empty"),
    ]
    for found, parameters, message in unchecked:
        body = {"parameters": parameters, "enforce_parameter_schema": False}
        created = api(server, "POST", f"/deployments/{found['id']}/create_flow_run", body)
        assert created.status_code == 201, created.text
        run = wait_for(server, created.json()["id"])
        assert run["state"]["type"] == "FAILED" and message in run["state"]["message"], run["state"]
        assert "\n" not in run["state"]["message"]
        task_runs = api(server, "POST", "/task_runs/filter", {"flow_runs": {"id": {"any_": [run["id"]]}}}).json()
        assert task_runs == []  # refused before any step


def test_run_deployment_from_python_returns_the_result(stack: tuple[Stack, Path]) -> None:
    server, _ = stack

    with temporary_settings({PREFECT_API_URL: server.api_url}):
        run = run_deployment("ebook/default", parameters={"topic": "Glaciers", "chapters": 1}, timeout=180)
        result = run.state.result() if run.state else None

    assert isinstance(result, AgentResult)
    assert result.agent == "ebook" and Path(result.location.removeprefix("file://")).is_file()


def test_the_router_deployment_shows_its_components_as_a_table(stack: tuple[Stack, Path]) -> None:
    server, _ = stack

    with temporary_settings({PREFECT_API_URL: server.api_url}):
        run = run_deployment(
            "router/default", parameters={"request": "a quiz on glaciers and a lesson on glaciers"}, timeout=240
        )
        manifest = run.state.result() if run.state else None

    assert isinstance(manifest, Manifest) and manifest.status == "completed"
    assert sorted(c.agent for c in manifest.components) == ["lesson_plan", "quiz"]
    artifacts = api(server, "POST", "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [str(run.id)]}}}).json()
    tables = [a for a in artifacts if a["type"] == "table"]
    assert len(tables) == 1 and "lesson_plan" in str(tables[0]["data"])


def test_a_reviewed_deployment_run_suspends_and_an_approval_starts_it_again_on_the_worker(
    stack: tuple[Stack, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, home = stack
    lesson = deployment(server, "lesson_plan")
    parameters = {"topic": "Estuaries", "review": True}
    run_id = start_run(server, lesson["id"], parameters)

    suspended = wait_for(server, run_id, until=lambda run: run["state"]["name"] == "Suspended")
    assert suspended["state"]["type"] == "PAUSED"  # the flow's process has ended: the worker is free
    with temporary_settings({PREFECT_API_URL: server.api_url}):
        pending = approve(run_id, notes="fine from the desk", reviewer="ana")
    run = wait_for(server, run_id)

    assert pending.suspended and pending.agent == "lesson_plan"
    assert run["state"]["type"] == "COMPLETED"
    tasks = api(server, "POST", "/task_runs/filter", {"flow_runs": {"id": {"any_": [run_id]}}}).json()
    decided = sorted(t["state"]["name"] for t in tasks if t["name"] == "decide")
    assert decided == ["Cached", "Completed"]  # started again from the top: decide came from the cache
    monkeypatch.setenv("AGENTFLOWS_HOME", str(home))
    store = open_store()
    made = next(c for c in (store.get(c.id) for c in store.list()) if c.flow_run_id == run_id)
    assert [(r["decision"], r["notes"]) for r in made.reviews] == [("approve", "fine from the desk")]

    found = built_from(store, made.id)
    assert found is not None
    plan = {**PlanContent.of(found.plan).view(), "title": "Estuaries, retitled"}
    rework = deployment(server, "rework")
    parameters = {"content_id": made.id, "from_step": "build", "plan": plan, "notes": "a new title"}
    reworked = wait_for(server, start_run(server, rework["id"], parameters))
    assert reworked["state"]["type"] == "COMPLETED"
    again = next(c for c in store.list() if c.title == "Estuaries, retitled")
    assert store.get(again.id).reworked_from == made.id


def test_agentflows_serve_serves_every_agent_and_the_router(stack: tuple[Stack, Path]) -> None:
    server, home = stack
    env = {
        **os.environ,
        "PREFECT_API_URL": server.api_url,
        "AGENTFLOWS_HOME": str(home),
        "PREFECT_HOME": server.prefect_home,
    }
    agentflows = str(Path(sys.executable).with_name("agentflows"))
    served = subprocess.Popen(
        [agentflows, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 120
        names: list[str] = []
        while time.monotonic() < deadline and len(names) < 7:
            assert served.poll() is None, served.stderr.read().decode() if served.stderr else "serve exited"
            names = [
                d["entrypoint"] for d in api(server, "POST", "/deployments/filter", {}).json() if d["name"] == "serve"
            ]
            time.sleep(1)
        assert sorted(n.rsplit(":", 1)[1] for n in names) == sorted([*SHIPPED_AGENTS, "router", "rework"])
        with temporary_settings({PREFECT_API_URL: server.api_url}):
            run = run_deployment("lesson_plan/serve", parameters={"topic": "Tides"}, timeout=180)
        assert run.state is not None and run.state.is_completed()
    finally:
        os.killpg(served.pid, 15)
        served.wait(timeout=30)


def _runs(stack: Stack, deployment_id: str, state: str) -> list[dict[str, Any]]:
    body = {"deployments": {"id": {"any_": [deployment_id]}}, "flow_runs": {"state": {"type": {"any_": [state]}}}}
    return api(stack, "POST", "/flow_runs/filter", body).json()  # type: ignore[no-any-return]


def test_the_scheduler_fills_every_schedule_and_an_interval_deployment_runs(
    stack: tuple[Stack, Path], tmp_path: Path
) -> None:
    server, _ = stack
    scheduled = [d for d in PROJECT_YAML["deployments"] if d.get("schedules")]
    with contextlib.chdir(tmp_path):  # its `path`: the worker copies it into every run's folder (not the repo)
        interval = RunnerDeployment.from_entrypoint(
            "agentflows.agents:quiz", name="every-20s", interval=timedelta(seconds=20), parameters={"topic": "Comets"}
        )
    with temporary_settings({PREFECT_API_URL: server.api_url}):
        interval_id = str(interval.apply(work_pool_name=WORK_POOL))
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not _runs(server, interval_id, "COMPLETED"):
            time.sleep(2)
        completed = _runs(server, interval_id, "COMPLETED")
    finally:
        api(server, "POST", f"/deployments/{interval_id}/pause_deployment")

    assert completed, "the interval deployment's run was never completed by the worker"
    for declared in scheduled:
        flow = declared["entrypoint"].rsplit(":", 1)[1]
        upcoming = _runs(server, deployment(server, flow)["id"], "SCHEDULED")
        assert upcoming, f"{declared['entrypoint']} has no upcoming run"
    assert server_errors(Path(server.logs) / "server.log") == []


SQLITE_CONTENTION = "database is locked"
"""Prefect's SQLite-backed server under heavy load: a worker heartbeat loses a write race and is
sent again 30 s later (upstream behaviour, not a failed service; production servers use PostgreSQL)."""


def server_errors(log: Path) -> list[str]:
    """The last line of every traceback in a server log, but SQLite's write contention."""
    lines = log.read_text(errors="replace").splitlines()
    errors = []
    for start in (i for i, line in enumerate(lines) if line.startswith("Traceback")):
        end = next((i for i in range(start + 1, len(lines)) if lines[i] and not lines[i][0].isspace()), start)
        if not ("OperationalError" in lines[end] and SQLITE_CONTENTION in lines[end]):
            errors.append(lines[end])
    return errors

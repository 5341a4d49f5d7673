"""An editor in the loop, as people use it: `agentflows run … --review` against a real `prefect server start`
pauses after decide with the plan as a form; `agentflows approve | revise | reject` from another terminal
decide it; a timeout applies the agent's declared outcome; a router branch under review pauses on its own
while the others finish; `agentflows rerun` reworks a stored content; and a person fills in the form in the
Prefect UI (V2) in a real browser (Debian's Chromium, driven by Playwright)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from playwright.sync_api import expect

from agentflows import open_store
from agentflows.tasks.runtime import default_runtime
from tests.reviewing import CliRun, PrefectServer, branch_runs, cli, prefect_server, wait_for_state
from tests.viewing import chromium

pytestmark = pytest.mark.slow
Start = Callable[..., CliRun]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    with prefect_server(tmp_path_factory.mktemp("prefect")) as started:
        yield started


@pytest.fixture
def start(server: PrefectServer) -> Iterator[Start]:
    """Start `agentflows ARGS` in the background; whatever is still running at the end is stopped."""
    started: list[CliRun] = []

    def starting(*args: str) -> CliRun:
        started.append(CliRun(server, *args))
        return started[-1]

    yield starting
    for run in started:
        run.stop()


def finished(run: CliRun) -> Any:
    code, out, err = run.finish()
    assert code == 0, err
    return json.loads(out)


def shown(server: PrefectServer, content_id: str) -> Any:
    done = cli(server, "show", content_id, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_reviewed_run_pauses_with_the_plan_as_a_form_and_an_approval_from_another_terminal_ends_it(
    server: PrefectServer, start: Start
) -> None:
    run = start("run", "lesson_plan", "-p", "topic=Tides", "--review", "--json")
    run_id = run.waiting()

    assert server.flow_run(run_id)["state"]["type"] == "PAUSED"
    schema = server.run_input(run_id, "paused-review-1-schema")
    assert schema["properties"]["decision"]["enum"] == ["approve", "revise", "reject"]
    assert len(schema["properties"]["plan_items"]["default"]) == 5
    assert server.run_input(run_id, "paused-review-1-description").startswith("## Plan for review: Tides")
    said = next(line for line in run.lines if "review waiting" in line)
    assert f"{server.ui_url}/v2/runs/flow-run/{run_id}" in said and f"agentflows approve {run_id}" in said

    notes = "Good shape; keep the warm-up short"
    approved = cli(server, "approve", run_id, "--notes", notes, "--reviewer", "ana")
    assert approved.returncode == 0 and approved.stdout.startswith(f"approved flow run {run_id} (lesson_plan")
    result = finished(run)

    assert result["flow_run_id"] == run_id and result["model_calls"] == 6
    stored = shown(server, str(result["content_id"]))
    assert [(r["decision"], r["notes"], r["reviewer"]) for r in stored["reviews"]] == [("approve", notes, "ana")]
    assert "review round 1: approve" in [step["label"] for step in stored["lineage"]]
    assert server.flow_run(run_id)["state"]["type"] == "COMPLETED"


def test_a_rejected_run_ends_cancelled_in_one_line_and_stores_nothing(server: PrefectServer, start: Start) -> None:
    run = start("run", "lesson_plan", "-p", "topic=Waves", "--review")
    run_id = run.waiting()

    rejected = cli(server, "reject", run_id, "--notes", "Off topic for this unit", "--reviewer", "ana")
    code, out, err = run.finish()

    assert rejected.returncode == 0 and "it ends Cancelled and stores nothing" in rejected.stdout
    assert code == 1 and out == "" and "Traceback" not in err
    assert [line for line in err.splitlines() if not line.startswith("  ")] == [
        "error: lesson_plan: ana rejected the plan 'Waves': Off topic for this unit; nothing was stored"
    ]
    state = server.flow_run(run_id)["state"]
    assert state["type"] == "CANCELLED" and "Off topic for this unit" in state["message"]
    assert open_store().list() == []
    default_runtime().close()


def test_an_approval_without_edits_reuses_the_cached_drafts_and_an_edit_rewrites_only_its_item(
    server: PrefectServer, start: Start, tmp_path: Path
) -> None:
    plain = cli(server, "run", "lesson_plan", "-p", "topic=Rivers", "--json")
    assert plain.returncode == 0, plain.stderr
    cold = json.loads(plain.stdout)

    run = start("run", "lesson_plan", "-p", "topic=Rivers", "--review", "--json")
    assert cli(server, "approve", run.waiting(), "--notes", "as it is").returncode == 0
    unchanged = finished(run)
    assert cold["model_calls"] == 6 and unchanged["model_calls"] == 0
    assert unchanged["content_id"] == cold["content_id"]  # the same content; the review is found with it
    assert [r["notes"] for r in shown(server, cold["content_id"])["reviews"]] == ["as it is"]

    run = start("run", "lesson_plan", "-p", "topic=Rivers", "--review", "--json")
    run_id = run.waiting()
    plan = yaml.safe_load(cli(server, "review", run_id).stdout)
    plan_minutes = plan["items"][1]["minutes"]
    plan["items"][1]["minutes"] = 500
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(plan))
    refused = cli(server, "approve", run_id, "--plan", str(tmp_path / "bad.yaml"))
    assert refused.returncode == 1 and refused.stderr.splitlines() == [
        "error: the plan does not fit the form of lesson_plan: items[1].minutes: 500 is greater than the maximum of 90"
    ]
    assert server.flow_run(run_id)["state"]["type"] == "PAUSED"  # still waiting for a decision

    was = plan_minutes
    plan["items"][1]["minutes"] = was - 1  # decide's minutes are within the agent's bounds, 2 to 90
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(plan))
    assert cli(server, "approve", run_id, "--plan", str(tmp_path / "plan.yaml")).returncode == 0
    edited = finished(run)

    written = [s["label"] for s in edited["steps"] if not s["cached"]]
    assert edited["model_calls"] == 1 and written[0].startswith("generate 02-") and len(written) == 3  # + build, save
    edit = edited["reviews"][0]["edits"]
    assert len(edit) == 1 and edit[0].startswith("item 2 ") and edit[0].endswith(f": minutes: {was} → {was - 1}")


def test_revise_plans_again_with_the_notes_until_the_last_round(
    server: PrefectServer, start: Start, definitions: Path
) -> None:
    agent = definitions / "lesson_plan.yaml"
    agent.write_text(agent.read_text() + "\nreview: {rounds: 2}\n")
    run = start("--definitions", str(definitions), "run", "lesson_plan", "-p", "topic=Deltas", "--review", "--json")
    run_id = run.waiting()

    assert cli(server, "revise", run_id, "--notes", "Add a field trip").returncode == 0
    assert run.waiting(round_=2) == run_id
    again = cli(server, "revise", run_id, "--notes", "and more")
    assert again.returncode == 1 and again.stderr.splitlines() == [
        f"error: flow run {run_id} is in its last review round: decide approve or reject"
    ]
    listed = {row["run_id"]: row for row in json.loads(cli(server, "review", "--json").stdout)}
    assert listed[run_id]["round"] == 2 and listed[run_id]["decisions"] == ["approve", "reject"]
    assert cli(server, "approve", run_id).returncode == 0
    result = finished(run)

    reviews = result["reviews"]
    assert [(r["decision"], r["round"]) for r in reviews] == [("revise", 1), ("approve", 2)]
    assert reviews[0]["notes"] == "Add a field trip" and result["model_calls"] == 7
    lineage = {step["label"]: step for step in shown(server, str(result["content_id"]))["lineage"]}
    assert lineage["decide round 2"]["parent_checksum"] == lineage["review round 1: revise"]["checksum"]


def test_a_review_nobody_decides_ends_as_the_agent_declares(
    server: PrefectServer, start: Start, definitions: Path
) -> None:
    lesson, quiz = definitions / "lesson_plan.yaml", definitions / "quiz.yaml"
    lesson.write_text(lesson.read_text() + "\nreview: {default: true, timeout: 2s, on_timeout: approve}\n")
    quiz.write_text(quiz.read_text() + "\nreview: {timeout: 2s}\n")

    approved = start("--definitions", str(definitions), "run", "lesson_plan", "-p", "topic=Fjords", "--json")
    failed = start("--definitions", str(definitions), "run", "quiz", "-p", "topic=Fjords", "--review")
    result = finished(approved)
    code, _, err = failed.finish()

    review = result["reviews"][0]
    assert (
        review["decision"] == "approve" and review["automatic"] and review["reviewer"] == "agentflows (review timeout)"
    )
    assert code == 1 and [line for line in err.splitlines() if not line.startswith("  ")] == [
        "error: quiz: nobody reviewed the plan 'Fjords' within 2s (review.on_timeout: fail); nothing was stored"
    ]


def test_in_a_router_run_the_reviewed_branch_waits_while_the_others_finish(server: PrefectServer, start: Start) -> None:
    request = "Tides and the Moon for 8th grade"
    types = ("--type", "lesson_plan", "--type", "data_report")
    run = start("route", request, *types, "--review", "lesson_plan", "--json")
    lesson_id = run.waiting()
    lesson = server.flow_run(lesson_id)
    router_id = server.api("GET", f"/task_runs/{lesson['parent_task_run_id']}")["flow_run_id"]

    report = next(r for r in branch_runs(server, router_id, 2) if r["id"] != lesson_id)
    assert wait_for_state(server, report["id"], "COMPLETED", "FAILED")["state"]["type"] == "COMPLETED"
    assert server.flow_run(lesson_id)["state"]["type"] == "PAUSED"
    assert server.flow_run(router_id)["state"]["type"] == "RUNNING"

    assert cli(server, "approve", lesson_id, "--notes", "fine").returncode == 0
    manifest = finished(run)
    statuses = {c["agent"]: c["status"] for c in manifest["components"]}
    assert statuses == {"lesson_plan": "completed", "data_report": "completed"}


def test_rerun_from_generate_with_an_edited_plan_writes_only_the_changed_item(
    server: PrefectServer, tmp_path: Path
) -> None:
    plain = cli(server, "run", "lesson_plan", "-p", "topic=Reefs", "--json")
    original = json.loads(plain.stdout)["content_id"]
    printed = cli(server, "review", original)
    assert printed.stdout.startswith(f"# Edit, then: agentflows rerun {original} --from generate --plan FILE\n")
    plan = yaml.safe_load(printed.stdout)
    plan["items"][2]["title"] = "Reefs under threat"
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(plan))

    done = cli(server, "rerun", original, "--from", "generate", "--plan", str(tmp_path / "plan.yaml"), "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)

    written = [s["label"] for s in result["steps"] if s["step"] == "generate" and not s["cached"]]
    assert result["model_calls"] == 1 and written == ["generate 03-reefs-under-threat"]
    stored = shown(server, result["content_id"])
    assert stored["reworked_from"] == original and stored["reviews"][0]["from_step"] == "generate"
    assert stored["lineage"][0]["label"] == f"rework of {original} from generate"
    assert "Traceback" not in done.stderr and "INFO" not in done.stderr


def test_a_person_fills_in_the_review_form_in_the_prefect_ui_and_the_run_completes(
    server: PrefectServer, start: Start
) -> None:
    run = start("run", "lesson_plan", "-p", "topic=Coral reefs", "--review", "--json")
    run_id = run.waiting()

    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(f"{server.ui_url}/v2/runs/flow-run/{run_id}")
        page.get_by_role("button", name="Open menu").first.click(timeout=60_000)
        page.get_by_role("menuitem", name="Resume").click()
        form = page.get_by_role("dialog", name="Resume Flow Run")
        expect(form.get_by_role("heading", name="Plan for review: Coral reefs")).to_be_visible(timeout=60_000)
        form.get_by_role("button", name="Select Decision").click()
        page.get_by_role("option", name="approve", exact=True).click()
        form.get_by_label("Notes (Optional)").fill("Approved in the UI")
        form.get_by_label("Reviewer (Optional)").fill("Bea")
        form.get_by_label("Title", exact=True).nth(1).fill("How reefs are built")
        form.get_by_role("button", name="Select Stage").nth(2).click()
        page.get_by_role("option", name="assessment", exact=True).click()
        form.get_by_role("button", name="Resume", exact=True).click()
        expect(form).to_be_hidden(timeout=60_000)
        expect(page.get_by_text("Completed", exact=True).first).to_be_visible(timeout=120_000)

    result = finished(run)
    review = result["reviews"][0]
    assert (review["decision"], review["notes"], review["reviewer"]) == ("approve", "Approved in the UI", "Bea")
    assert any(re.search(r"^item 2 'How reefs are built': title: ", edit) for edit in review["edits"])
    assert any("stage: 'guided practice' → 'assessment'" in edit for edit in review["edits"])
    plan = yaml.safe_load(cli(server, "review", str(result["content_id"])).stdout)
    assert plan["items"][1]["title"] == "How reefs are built" and plan["items"][2]["stage"] == "assessment"

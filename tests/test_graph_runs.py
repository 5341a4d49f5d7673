"""Dependent content on the Prefect test server: one request becomes a graph.

The quiz runs after the lesson plan and tests what it taught (its prompts hold the
lesson's objectives, its lineage names the lesson's content id); a failed upstream
skips its dependents while the rest completes; editing the lesson's prompt re-runs
the lesson and then the quiz, nothing else; the sub-flows carry their dependencies
for the UI. Timing is shown with the fake model server's recorded call times.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

from agentflows import open_store, route
from agentflows.cli import main
from agentflows.tasks.manifest import Manifest
from tests.fake_llm import FakeLLM, Received
from tests.providers import CallLog, using
from tests.test_router import BrokenProvider, _router_state

pytestmark = pytest.mark.usefixtures("prefect_server")

WATER_CYCLE = (
    "Prepare a lesson plan about the water cycle for 6th grade, and a quiz that checks what that lesson taught"
)


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    code = main(list(argv))
    return code, json.loads(capsys.readouterr().out)


def test_the_quiz_builds_on_the_lesson_and_leads_back_to_it(capsys: pytest.CaptureFixture[str]) -> None:
    code, manifest = cli_json(capsys, "route", WATER_CYCLE, "--json")

    assert code == 0 and manifest["status"] == "completed" and manifest["problems"] == []
    lesson, quiz = manifest["components"]
    assert (lesson["agent"], quiz["agent"]) == ("lesson_plan", "quiz")
    assert "lesson_plan" in quiz["depends_on"] and lesson["depends_on"] == []
    assert quiz["started_at"] >= lesson["finished_at"]
    assert manifest["edges"] == [{"upstream": "lesson_plan", "dependent": "quiz", "source": "uses"}]
    assert manifest["parameters"]["quiz"]["audience"] == "6th grade"  # the request's level reached the quiz

    code, shown = cli_json(capsys, "show", quiz["content_id"], "--json")

    assert code == 0
    assert shown["builds_on"] == {"lesson_plan": lesson["content_id"]}
    uses = shown["lineage"][0]
    assert (uses["step"], uses["label"]) == ("uses", f"uses lesson_plan {lesson['content_id']}")
    objectives = lesson_objectives(lesson["content_id"])
    decide_prompt = next(s for s in shown["lineage"] if s["step"] == "decide")["attempts"][0]["prompt"]
    assert len(objectives) >= 2 and all(objective in decide_prompt for objective in objectives)
    generate_prompt = next(s for s in shown["lineage"] if s["step"] == "generate")["attempts"][0]["prompt"]
    assert objectives[0] in generate_prompt

    main(["show", quiz["content_id"]])
    assert f"builds on lesson_plan {lesson['content_id']}" in capsys.readouterr().out


def lesson_objectives(content_id: str) -> list[str]:
    """The objectives the lesson's plan holds, read from the model's answer in its stored lineage."""
    lineage = open_store().get(content_id).lineage
    decide = next(s for s in lineage if s["step"] == "decide")
    return list(json.loads(decide["attempts"][-1]["raw"])["objectives"])


def test_a_quiz_run_alone_gets_no_lesson_and_still_runs() -> None:
    manifest = route("a quiz on the water cycle")

    (quiz,) = manifest.components
    assert quiz.status == "completed" and quiz.depends_on == () and quiz.builds_on == {}
    stored = open_store().get(quiz.content_id or "")
    assert stored.builds_on == {}
    decide = next(s for s in stored.lineage if s["step"] == "decide")
    assert "The quiz checks what the lesson" not in decide["attempts"][0]["prompt"]


def test_a_failed_upstream_skips_its_dependents_and_the_rest_completes(definitions: Path) -> None:
    lesson = definitions / "lesson_plan.yaml"
    lesson.write_text(lesson.read_text().replace("model:\n", "model:\n  provider: broken\n", 1))

    with using(broken=BrokenProvider):
        manifest = route(
            "a lesson on tides, with a quiz, an e-book and a data report",
            content_types=["lesson_plan", "quiz", "ebook", "data_report"],
            definitions=definitions,
        )

    statuses = {c.agent: c.status for c in manifest.components}
    assert statuses == {"lesson_plan": "failed", "quiz": "skipped", "ebook": "skipped", "data_report": "completed"}
    assert manifest.component("quiz").error == "skipped: lesson_plan failed"
    assert manifest.component("quiz").started_at is None and manifest.component("quiz").flow_run_id is None
    assert manifest.status == "partly failed" and manifest.problems == ()
    assert _router_state(manifest.router_run_id) == ("COMPLETED", "Partly failed")
    assert {c.agent for c in open_store().list()} == {"data_report", "router"}


def test_editing_the_lessons_prompt_reruns_the_lesson_then_the_quiz_and_nothing_else(
    definitions: Path, model_calls: CallLog
) -> None:
    request = "a lesson on tides with a quiz, and a data report on tides"
    first = route(request, definitions=definitions)
    assert [c.agent for c in first.components] == ["data_report", "lesson_plan", "quiz"]
    before = len(model_calls)

    again = route(request, definitions=definitions)
    assert len(model_calls) == before and again.model_calls == 0  # identical request: everything cached

    decide = definitions / "prompts/lesson_plan/decide.md"
    decide.write_text(decide.read_text() + "\nMake the warm-up a question about the students' own day.\n")
    edited = route(request, definitions=definitions)

    rerun = {label.split("/")[0] for label in model_calls.labels()[before:]}
    assert rerun == {"lesson_plan", "quiz"}
    assert edited.component("data_report").model_calls == 0
    assert edited.component("quiz").model_calls == first.component("quiz").model_calls  # every quiz step again
    assert edited.component("quiz").builds_on == {"lesson_plan": edited.component("lesson_plan").content_id}


def test_after_sets_an_edge_by_hand(model_calls: CallLog) -> None:
    manifest = route("a lesson on tides and a data report on tides", after=["data_report=lesson_plan"])

    lesson, report = manifest.components
    assert (lesson.agent, report.agent, report.depends_on) == ("lesson_plan", "data_report", ("lesson_plan",))
    assert report.builds_on == {}  # the data report does not `use` the lesson: it only waits for it
    assert [e.source for e in manifest.edges] == ["after"]
    first_report_call = next(i for i, label in enumerate(model_calls.labels()) if label.startswith("data_report/"))
    assert all(label.startswith("lesson_plan/") for label in model_calls.labels()[:first_report_call])


def test_the_subflows_carry_their_dependencies_for_the_ui() -> None:
    manifest = route("a lesson on tides, with a quiz and a short e-book chapter")

    async def subflows() -> tuple[list[Any], dict[Any, Any]]:
        async with get_client() as client:
            runs = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[manifest.router_run_id])
                )
            )
            tracking = {r.id: await client.read_task_run(r.parent_task_run_id) for r in runs if r.parent_task_run_id}
            return runs, tracking

    runs, tracking = asyncio.run(subflows())

    by_id = {str(r.id): r for r in runs}
    flow_run = {c.agent: by_id[c.flow_run_id or ""] for c in manifest.components}
    assert sorted(flow_run, key=lambda a: flow_run[a].start_time)[0] == "lesson_plan"
    for dependent in ("quiz", "ebook"):
        waits = tracking[flow_run[dependent].id].task_inputs["wait_for"]
        assert [str(w.id) for w in waits] == [str(flow_run["lesson_plan"].id)]  # the edge the run graph draws
        assert flow_run[dependent].start_time >= flow_run["lesson_plan"].end_time
    assert "wait_for" not in tracking[flow_run["lesson_plan"].id].task_inputs
    assert manifest.parameters["ebook"]["chapters"] == 1


def test_the_stored_manifest_and_its_table_show_the_graph() -> None:
    manifest = route(WATER_CYCLE)

    stored = Manifest.model_validate_json(file_text(sibling(manifest.location, "manifest.json")))
    assert stored.edges == manifest.edges and stored.version == 2
    summary = file_text(manifest.location or "")
    assert "| quiz: Water cycle | quiz | lesson_plan | completed |" in summary
    assert [c.name for c in manifest.components] == ["lesson_plan: Water cycle", "quiz: Water cycle"]


VOLCANOES = "a lesson on volcanoes for 6th grade, with a quiz of 4 questions and a short e-book chapter"


def test_the_volcano_request_reads_as_a_user_means_it() -> None:
    """The issue's example: the level reaches every agent, "4 questions" and "short" are kept, names are readable."""
    manifest = route(VOLCANOES)

    assert [c.agent for c in manifest.components] == ["lesson_plan", "ebook", "quiz"]
    parameters = manifest.parameters
    assert parameters["quiz"]["audience"] == parameters["ebook"]["audience"] == "6th grade"
    assert parameters["lesson_plan"]["grade_level"] == "6th grade"
    assert (parameters["quiz"]["questions"], parameters["ebook"]["chapters"]) == (4, 1)
    assert [c.name for c in manifest.components] == [f"{c.agent}: {c.title}" for c in manifest.components]
    assert len({c.name for c in manifest.components}) == 3

    async def run_name() -> str:
        async with get_client() as client:
            return (await client.read_flow_run(manifest.router_run_id)).name  # type: ignore[arg-type]

    name = asyncio.run(run_name())
    assert name.endswith("…") and len(name) <= 80
    assert f"route: {VOLCANOES} ".startswith(name.removesuffix("…") + " ")  # cut where a word ends


def file_text(uri: str | None) -> str:
    return Path((uri or "").removeprefix("file://")).read_text(encoding="utf-8")


def sibling(location: str | None, name: str) -> str:
    return (location or "").rsplit("/", 1)[0] + "/" + name


# -- timing, with the fake model server -----------------------------------------------------------


@pytest.fixture
def fake_llm(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLLM]:
    with FakeLLM(latency=1.5) as fake:  # long enough that branches overlap even on a busy SQLite test server
        monkeypatch.setenv("AGENTFLOWS_LLM_BASE_URL", fake.base_url)
        monkeypatch.setenv("AGENTFLOWS_LLM_MODEL", "fake-model")
        monkeypatch.setenv("AGENTFLOWS_LLM_MAX_CONCURRENCY", "16")
        monkeypatch.setenv("AGENTFLOWS_LLM_LIMIT_SCOPE", "process")
        yield fake


def agent_of(call: Received) -> str:
    return str(call.body["messages"][0]["content"]).split('"')[1]  # the base prompt opens: You are "<agent>", …


def test_each_dependent_calls_the_model_only_after_its_upstreams_last_answer(fake_llm: FakeLLM) -> None:
    manifest = route(
        "a lesson on tides, with a quiz, an e-book and a data report",
        content_types=["lesson_plan", "quiz", "ebook", "data_report"],
    )

    assert manifest.status == "completed"
    calls: dict[str, list[Received]] = {}
    for call in fake_llm.received:
        calls.setdefault(agent_of(call), []).append(call)
    lesson_done = max(c.ended for c in calls["lesson_plan"])
    for dependent in ("quiz", "ebook"):
        assert min(c.started for c in calls[dependent]) >= lesson_done

    # Branches overlap in time: those of the branches themselves (a busy SQLite test server can take
    # seconds to create a sub-flow run, so the model calls of two branches need not overlap)
    def overlap(a: str, b: str) -> bool:
        x, y = manifest.component(a), manifest.component(b)
        assert x.started_at and x.finished_at and y.started_at and y.finished_at
        return x.started_at < y.finished_at and y.started_at < x.finished_at

    assert overlap("quiz", "ebook")  # both dependents run at once, as soon as the lesson is done
    assert overlap("lesson_plan", "data_report")  # the independent branch does not wait
    prompt = next(c for c in calls["quiz"] if "Plan a quiz" in str(c.body["messages"][1]["content"]))
    assert "The quiz checks what the lesson" in str(prompt.body["messages"][1]["content"])

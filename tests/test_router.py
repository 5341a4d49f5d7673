"""The router: one request, several agents as concurrent sub-flows, one manifest."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
from prefect import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

from agentflows import InputError, RoutingError, load_agents, open_store, route, route_async
from agentflows.cli import main
from agentflows.router import decide_route
from agentflows.routing import match_rules, request_inputs, request_subject
from agentflows.tasks.errors import ModelCallError
from agentflows.tasks.llm import ModelReply, ModelRequest
from tests.fake_llm import FakeLLM, Received, Reply
from tests.providers import using
from tests.test_flows import error_chain

LESSON_REQUEST = "a lesson on photosynthesis for 8th grade, with a quiz and a short e-book chapter for home reading"


# -- rules (no server) ------------------------------------------------------------------------


def test_the_rules_read_three_content_types_and_their_inputs_from_one_request() -> None:
    agents = {name: a.definition for name, a in load_agents().items()}

    matches = match_rules(LESSON_REQUEST, agents)

    assert [m.agent for m in matches] == ["ebook", "lesson_plan", "quiz"]
    assert request_inputs(LESSON_REQUEST, agents["lesson_plan"], {}) == {
        "topic": "photosynthesis",
        "grade_level": "8th grade",
    }
    assert request_inputs("a quiz on tides with 5 hard questions", agents["quiz"], {}) == {
        "topic": "tides",
        "questions": "5",
        "difficulty": "hard",
    }
    assert (
        request_inputs("a lesson on tides", agents["lesson_plan"], {"level": "9th grade"})["grade_level"] == "9th grade"
    )


@pytest.mark.parametrize(
    ("request_text", "subject"),
    [
        ("a quiz on the water cycle", "water cycle"),
        ("write a book about how tides work for teenagers", "how tides work"),
        ("scaffold a REST API for a to-do list using FastAPI", "to-do list"),
        ("a dashboard of monthly sales for a bakery", "monthly sales for a bakery"),
        ("hello there", None),
    ],
)
def test_the_subject_of_a_request(request_text: str, subject: str | None) -> None:
    assert request_subject(request_text) == subject


def test_a_request_that_matches_no_agent_lists_the_agents() -> None:
    with pytest.raises(
        RoutingError, match="matches no agent; the agents are: api_scaffold, data_report, ebook, lesson_plan, quiz"
    ):
        asyncio.run(decide_route("make me a sandwich", load_agents(), None, {}))


def test_a_missing_required_input_names_the_agent_and_the_field() -> None:
    with pytest.raises(InputError, match=r"agent 'quiz': input 'topic' is required"):
        asyncio.run(decide_route("something nice", load_agents(), ["quiz"], {}))


def test_an_unknown_explicit_type_lists_the_agents() -> None:
    with pytest.raises(RoutingError, match="unknown content type 'novel'; the agents are: api_scaffold"):
        asyncio.run(decide_route("a novel on tides", load_agents(), ["novel"], {}))


# -- on the Prefect server ------------------------------------------------------------------------

on_server = pytest.mark.usefixtures("prefect_server")


def file_text(uri: str) -> str:
    return Path(uri.removeprefix("file://")).read_text(encoding="utf-8")


@on_server
def test_a_request_for_three_content_types_runs_three_subflows() -> None:
    manifest = route(LESSON_REQUEST)

    assert manifest.status == "completed" and manifest.route == "rules"
    assert [c.agent for c in manifest.components] == ["lesson_plan", "ebook", "quiz"]  # after what they build on
    assert len({c.flow_run_id for c in manifest.components}) == 3  # each branch in its own run namespace
    assert manifest.parameters["lesson_plan"]["grade_level"] == "8th grade"
    store = open_store()
    for component in manifest.components:
        assert store.get(component.content_id or "").agent == component.agent
        assert "photosynthesis" in file_text(component.location or "").lower()
    stored = json.loads(file_text(_file(manifest.location, "manifest.json")))
    assert [c["agent"] for c in stored["components"]] == ["lesson_plan", "ebook", "quiz"]
    assert all(c.name == f"{c.agent}: {c.title}" and c.title.startswith("Photosynthesis") for c in manifest.components)


def _file(location: str | None, name: str) -> str:
    return (location or "").rsplit("/", 1)[0] + "/" + name


@on_server
def test_explicit_types_override_the_rules() -> None:
    manifest = route("a lesson on tides with a quiz", content_types=["quiz"])

    assert manifest.route == "explicit"
    assert [c.agent for c in manifest.components] == ["quiz"]
    assert manifest.parameters["quiz"]["topic"] == "tides"


@on_server
def test_an_unmatched_request_fails_with_the_list_of_agents() -> None:
    with pytest.raises(
        RoutingError, match="the agents are: api_scaffold, data_report, ebook, lesson_plan, quiz"
    ) as caught:
        route("make me a sandwich")

    assert not any(isinstance(e, RuntimeError) for e in error_chain(caught.value))  # its own traceback, no loop check


class BrokenProvider:
    """A model that always fails."""

    name = "broken"
    context_window = 100_000
    default_model = "none"

    def __init__(self, settings: object) -> None:
        pass

    async def complete(self, request: ModelRequest) -> ModelReply:
        raise ModelCallError(f"provider 'broken' model 'none' answered 500 for {request.label}")


@on_server
def test_a_branch_whose_model_fails_leaves_the_others_and_marks_the_manifest(definitions: Path) -> None:
    quiz = definitions / "quiz.yaml"
    quiz.write_text(quiz.read_text().replace("model:\n", "model:\n  provider: broken\n", 1))

    with using(broken=BrokenProvider):
        manifest = route(LESSON_REQUEST, definitions=definitions)

    assert manifest.status == "partly failed"
    failed = manifest.failed()
    assert [c.agent for c in failed] == ["quiz"]
    assert "answered 500" in (failed[0].error or "")
    assert {c.agent for c in manifest.components if c.status == "completed"} == {"ebook", "lesson_plan"}
    stored_agents = {c.agent for c in open_store().list()}
    assert {"ebook", "lesson_plan", "router"} <= stored_agents and "quiz" not in stored_agents
    assert _router_state(manifest.router_run_id) == ("COMPLETED", "Partly failed")


def _router_state(run_id: str | None) -> tuple[str, str]:
    async def read() -> tuple[str, str]:
        async with get_client() as client:
            run = await client.read_flow_run(run_id)  # type: ignore[arg-type]
            assert run.state is not None
            return run.state.type.value, run.state.name or ""

    return asyncio.run(read())


@on_server
def test_the_manifest_is_a_table_on_the_router_run() -> None:
    manifest = route("a quiz on tides and a lesson on tides")

    async def tables() -> list[Any]:
        async with get_client() as client:
            found = await client.read_artifacts(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[manifest.router_run_id]))
            )
            return [a for a in found if a.type == "table"]

    (table,) = asyncio.run(tables())
    rows = json.loads(table.data) if isinstance(table.data, str) else table.data
    assert sorted(row["agent"] for row in rows) == ["lesson_plan", "quiz"]


@pytest.fixture
def fake_llm(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLLM]:
    with FakeLLM(latency=1.5) as fake:  # long enough that branches overlap even on a busy SQLite test server
        monkeypatch.setenv("AGENTFLOWS_LLM_BASE_URL", fake.base_url)
        monkeypatch.setenv("AGENTFLOWS_LLM_MODEL", "fake-model")
        monkeypatch.setenv("AGENTFLOWS_LLM_MAX_CONCURRENCY", "16")
        monkeypatch.setenv("AGENTFLOWS_LLM_LIMIT_SCOPE", "process")
        yield fake


def _agent_of(call: Received) -> str:
    system = str(call.body["messages"][0]["content"])
    return system.split('"')[1]  # the base prompt opens: You are "<agent>", …


@on_server
def test_branches_run_concurrently(fake_llm: FakeLLM) -> None:
    manifest = route("a quiz, a short e-book chapter and a data report on photosynthesis")  # none builds on another

    assert manifest.status == "completed"
    calls = fake_llm.received
    overlapping = {
        frozenset((_agent_of(a), _agent_of(b)))
        for a, b in combinations(calls, 2)
        if _agent_of(a) != _agent_of(b) and a.started < b.ended and b.started < a.ended
    }
    assert overlapping  # calls of different branches were in flight at the same time
    assert {_agent_of(c) for c in calls} == {"ebook", "data_report", "quiz"}


@on_server
def test_the_classifier_decides_when_the_rules_find_nothing(fake_llm: FakeLLM) -> None:
    answer = {"content_types": ["quiz"], "parameters": {"quiz": {"topic": "volcanoes", "questions": 2}}}
    fake_llm.script(Reply(content=json.dumps(answer)))

    manifest = route("help my students check what they know about volcanoes")

    assert manifest.route == "classifier" and manifest.evidence == {"quiz": ["classifier"]}
    assert [c.agent for c in manifest.components] == ["quiz"]
    assert manifest.parameters["quiz"]["questions"] == 2
    first = fake_llm.received[0].body["messages"][1]["content"]
    assert "«help my students check what they know about volcanoes»" in first


VOLCANO_REQUEST = "help my students check what they know about volcanoes"


def test_the_classifier_renders_the_prompt_loaded_with_the_definitions(fake_llm: FakeLLM, definitions: Path) -> None:
    prompt = definitions / "prompts/router/classify.md"
    (definitions / "prompts/router/hint.md").write_text("When in doubt, prefer the quiz.\n")
    prompt.write_text(prompt.read_text() + '{% include "prompts/router/hint.md" %}\n')
    catalog = load_agents(definitions)
    prompt.write_text("Edited after loading: {{ inputs.request }}\n")
    fake_llm.script(Reply(content=json.dumps({"content_types": ["quiz"], "parameters": {"quiz": {"topic": "lava"}}})))

    chosen = asyncio.run(decide_route(VOLCANO_REQUEST, catalog, None, {}))

    sent = fake_llm.received[0].body["messages"][1]["content"]
    assert "When in doubt, prefer the quiz." in sent and "Edited after loading" not in sent
    assert (chosen.method, chosen.agents) == ("classifier", ("quiz",))


def test_without_a_classifier_prompt_only_the_classifier_fails(fake_llm: FakeLLM, definitions: Path) -> None:
    (definitions / "prompts/router/classify.md").unlink()
    catalog = load_agents(definitions)  # the prompt is optional: the rules route without it

    assert asyncio.run(decide_route("a quiz on tides", catalog, None, {})).agents == ("quiz",)
    with pytest.raises(RoutingError, match=r"^the classifier needs the template 'prompts/router/classify.md' in /"):
        asyncio.run(decide_route(VOLCANO_REQUEST, catalog, None, {}))
    assert fake_llm.received == []


@on_server
def test_two_concurrent_identical_requests_overwrite_nothing() -> None:
    async def both() -> list[Any]:
        return list(await asyncio.gather(route_async(LESSON_REQUEST), route_async(LESSON_REQUEST)))

    first, second = asyncio.run(both())

    assert [c.content_id for c in first.components] == [c.content_id for c in second.components]
    assert first.router_run_id != second.router_run_id and first.content_id != second.content_id
    store = open_store()
    contents = store.list()
    assert len(contents) == len({c.id for c in contents}) == 3 + 2  # three components, two manifests
    for component in first.components:
        stored = store.get(component.content_id or "")
        for path in stored.files:
            assert store.read(stored, path)  # every object is there and readable


@on_server
def test_a_new_agent_with_routing_hints_is_routable_without_code(definitions: Path) -> None:
    shutil.copy(definitions / "ebook.yaml", definitions / "podcast.yaml")
    text = (definitions / "podcast.yaml").read_text()
    text = text.replace("name: ebook", "name: podcast").replace(
        "keywords: [e-book, ebook, book, chapter, chapters, home reading]", "keywords: [podcast, episode]"
    )
    text = text.replace("patterns: ['\\bbook (about|on)\\b']", "patterns: []")
    (definitions / "podcast.yaml").write_text(text)

    manifest = route("a podcast episode about volcanoes", definitions=definitions)

    assert [c.agent for c in manifest.components] == ["podcast"]
    assert manifest.components[0].status == "completed"


@on_server
def test_route_on_the_command_line_prints_the_manifest(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["route", "a quiz on tides", "--json"])
    out = capsys.readouterr().out

    assert code == 0
    manifest = json.loads(out)
    assert manifest["version"] == 2 and manifest["status"] == "completed"
    assert [c["agent"] for c in manifest["components"]] == ["quiz"]

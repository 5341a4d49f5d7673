"""Dependent content without a server: the graph of a request, running it, the check after the merge,
and what the router reads from a request (shared level, size words, readable names)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import pytest

from agentflows import RoutingError, load_agents
from agentflows.branches import BranchRun, run_status, unique_names
from agentflows.dag import consistency_problems, run_graph
from agentflows.dependencies import DependencyGraph, route_graph
from agentflows.router import decide_route
from agentflows.routing import request_inputs
from agentflows.tasks.artifacts import ContentType
from agentflows.tasks.manifest import Component, Edge
from agentflows.tasks.names import shortened

SHIPPED_USES = {"quiz": ("lesson_plan",), "ebook": ("lesson_plan",)}


# -- the graph of one request ---------------------------------------------------------------------


def test_declared_uses_become_edges_between_the_chosen_agents_only() -> None:
    three = route_graph(["ebook", "lesson_plan", "quiz"], SHIPPED_USES)
    alone = route_graph(["quiz"], SHIPPED_USES)

    assert [(e.upstream, e.dependent, e.source) for e in three.edges] == [
        ("lesson_plan", "ebook", "uses"),
        ("lesson_plan", "quiz", "uses"),
    ]
    assert three.order() == ("lesson_plan", "ebook", "quiz")  # each after its upstream, else route order
    assert three.describe() == "ebook after lesson_plan; quiz after lesson_plan"
    assert alone.edges == () and alone.order() == ("quiz",)


def test_after_sets_an_edge_by_hand() -> None:
    graph = route_graph(["data_report", "lesson_plan"], {}, ["data_report=lesson_plan"])

    assert graph.edges == (Edge(upstream="lesson_plan", dependent="data_report", source="after"),)
    assert graph.order() == ("lesson_plan", "data_report")


@pytest.mark.parametrize(
    ("after", "message"),
    [
        (["quiz"], "after 'quiz' needs the form AGENT=UPSTREAM"),
        (["quiz=ebook"], r"'ebook' is not one of the agents this request runs \(lesson_plan, quiz\)"),
        (["quiz=quiz"], "an agent cannot run after itself"),
        (["lesson_plan=quiz"], r"would wait for each other \(lesson_plan → quiz → lesson_plan"),
    ],
)
def test_a_wrong_after_is_refused_before_anything_runs(after: list[str], message: str) -> None:
    with pytest.raises(RoutingError, match=message):
        route_graph(["lesson_plan", "quiz"], SHIPPED_USES, after)


# -- running the graph ----------------------------------------------------------------------------


def component(agent: str, status: str = "completed", **fields: object) -> Component:
    return Component.model_validate(
        {"agent": agent, "content_type": ContentType.text, "status": status, "name": agent, **fields}
    )


def test_a_dependent_starts_when_its_own_upstream_finishes_not_when_a_wave_does() -> None:
    """lesson → quiz, and a slow data report: the quiz must start while the report still runs."""
    graph = DependencyGraph(("lesson", "report", "quiz"), (Edge(upstream="lesson", dependent="quiz", source="uses"),))
    events: list[str] = []

    async def scenario() -> list[BranchRun]:
        quiz_started = asyncio.Event()

        async def start(agent: str, upstream: Mapping[str, BranchRun]) -> BranchRun:
            events.append(f"{agent} started after {sorted(upstream)}")
            if agent == "report":
                await asyncio.wait_for(quiz_started.wait(), 5)  # a wave-by-wave runner never gets here
            if agent == "quiz":
                quiz_started.set()
            events.append(f"{agent} done")
            return BranchRun(component(agent))

        return await run_graph(graph, start, lambda agent, _: BranchRun(component(agent, "skipped")))

    runs = asyncio.run(scenario())

    assert [r.component.agent for r in runs] == ["lesson", "report", "quiz"]
    assert events.index("quiz started after ['lesson']") > events.index("lesson done")
    assert events.index("quiz done") < events.index("report done")


def test_a_failed_upstream_skips_its_dependents_and_theirs_while_the_rest_completes() -> None:
    edges = (
        Edge(upstream="lesson", dependent="quiz", source="uses"),
        Edge(upstream="quiz", dependent="review", source="after"),
    )
    graph = DependencyGraph(("lesson", "quiz", "review", "report"), edges)
    started: list[str] = []

    async def start(agent: str, upstream: Mapping[str, BranchRun]) -> BranchRun:
        started.append(agent)
        return BranchRun(component(agent, "failed" if agent == "lesson" else "completed"))

    def skip(agent: str, upstream: Mapping[str, BranchRun]) -> BranchRun:
        return BranchRun(component(agent, "skipped", error=f"skipped: {', '.join(upstream)}"))

    runs = asyncio.run(run_graph(graph, start, skip))

    assert {r.component.agent: r.component.status for r in runs} == {
        "lesson": "failed",
        "quiz": "skipped",
        "review": "skipped",
        "report": "completed",
    }
    assert started == ["lesson", "report"]
    assert run_status([r.component for r in runs]) == "partly failed"
    assert run_status([component("a", "failed"), component("b", "skipped")]) == "failed"


# -- the consistency check after the merge ----------------------------------------------------------

T0 = datetime(2026, 1, 1, tzinfo=UTC)
USES = (Edge(upstream="lesson_plan", dependent="quiz", source="uses"),)


def lesson(**fields: object) -> Component:
    defaults = {"content_id": "lesson-v1", "started_at": T0, "finished_at": T0 + timedelta(seconds=5)}
    return component("lesson_plan", **{**defaults, **fields})


def quiz(**fields: object) -> Component:
    defaults = {
        "depends_on": ("lesson_plan",),
        "builds_on": {"lesson_plan": "lesson-v1"},
        "started_at": T0 + timedelta(seconds=5),
    }
    return component("quiz", **{**defaults, **fields})


def test_a_consistent_merge_has_no_problem() -> None:
    assert consistency_problems([lesson(), quiz()], USES) == []
    skipped = component("quiz", "skipped", depends_on=("lesson_plan",))
    assert consistency_problems([lesson(status="failed"), skipped], USES) == []


@pytest.mark.parametrize(
    ("components", "problem"),
    [
        ([lesson(), quiz(builds_on={"lesson_plan": "lesson-v0"})], "quiz used content lesson-v0 of lesson_plan"),
        ([lesson(), quiz(builds_on={})], "quiz used nothing of lesson_plan, but lesson_plan made lesson-v1"),
        ([lesson(), quiz(started_at=T0)], "quiz started before lesson_plan, which it depends on, finished"),
        ([lesson(status="failed"), quiz()], "quiz completed, but lesson_plan, which it depends on, failed"),
        ([lesson(), component("quiz", "skipped", depends_on=("lesson_plan",))], "quiz was skipped, but every"),
        ([lesson(), quiz(depends_on=())], "quiz depends on nothing, unlike the edges"),
    ],
)
def test_the_check_after_the_merge_names_what_is_inconsistent(components: list[Component], problem: str) -> None:
    problems = consistency_problems(components, USES)

    assert any(problem in p for p in problems), problems


# -- what routing reads from the request -------------------------------------------------------------

VOLCANOES = "a lesson on volcanoes for 6th grade, with a quiz of 4 questions and a short e-book chapter"


def test_the_level_the_numbers_and_the_size_words_of_a_request_reach_every_agent() -> None:
    route = asyncio.run(decide_route(VOLCANOES, load_agents(), None, {}))

    lesson_plan, quiz, ebook = (route.parameters[a] for a in ("lesson_plan", "quiz", "ebook"))
    assert lesson_plan["grade_level"] == quiz["audience"] == ebook["audience"] == "6th grade"
    assert lesson_plan["stages"] == 5  # "short" is the e-book's, not the lesson's
    assert quiz["questions"] == 4
    assert ebook["chapters"] == 1  # "a short e-book chapter"
    assert {lesson_plan["topic"], quiz["topic"], ebook["topic"]} == {"volcanoes"}


@pytest.mark.parametrize(
    ("request_text", "agent", "expected"),
    [
        ("a brief quiz on tides", "quiz", {"questions": 3}),
        ("a short quiz of 10 questions on tides", "quiz", {"questions": "10"}),  # a number the request gives wins
        ("a long, detailed e-book on tides", "ebook", {"chapters": 8}),
        ("an in-depth lesson plan on tides", "lesson_plan", {"stages": 7, "duration_minutes": 90}),
        ("a short quiz and a lesson on tides", "lesson_plan", {}),
        ("a lesson on tides in Portuguese", "lesson_plan", {"language": "Portuguese"}),
        (
            "a lesson on Spanish history for high school students",
            "lesson_plan",
            {"grade_level": "high school students"},
        ),
    ],
)
def test_size_words_and_shared_values_of_a_request(request_text: str, agent: str, expected: dict[str, object]) -> None:
    definition = load_agents()[agent].definition
    found = request_inputs(request_text, definition, {})

    assert {k: v for k, v in found.items() if k != "topic"} == expected


def test_a_shared_parameter_given_by_the_caller_beats_the_request_and_an_exact_name_beats_a_mapped_one() -> None:
    quiz = load_agents()["quiz"].definition

    assert request_inputs("a quiz on tides for 6th grade", quiz, {"level": "9th grade"})["audience"] == "9th grade"
    both = {"level": "9th grade", "audience": "teachers in training"}
    assert request_inputs("a quiz on tides", quiz, both)["audience"] == "teachers in training"


def test_names_people_read_are_cut_at_a_word_boundary() -> None:
    long = "route: a lesson on volcanoes for 6th grade, with a quiz of 4 questions and a short e-book chapter"

    assert shortened(long, 70) == "route: a lesson on volcanoes for 6th grade, with a quiz of 4…"
    assert shortened("quiz:   The  water\ncycle") == "quiz: The water cycle"
    assert shortened("x" * 30, 10) == "x" * 9 + "…"


def test_components_whose_names_still_clash_get_a_content_hash_suffix() -> None:
    first, second = (
        component("ebook", name="ebook: Tides", content_id="abc123def"),
        component("ebook", name="ebook: Tides"),
    )

    named = unique_names([first, second])

    assert named[0].name == "ebook: Tides (abc123)" and named[1].name.startswith("ebook: Tides (")
    assert named[0].name != named[1].name

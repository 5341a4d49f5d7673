"""Agents run end to end as Prefect flows on a real (throwaway) Prefect server.

Covers: every shipped agent runs; steps run in order and pass typed artifacts
that survive Prefect's result persistence; identical reruns make no model call;
editing a template re-runs exactly the steps that render it; retries back off
and only for retryable errors; a run killed mid-way repeats no finished step;
the parameter schema `prefect deploy` reads; inputs are data, never code.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from prefect import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.sorting import TaskRunSort
from prefect.flows import load_flow_from_entrypoint
from prefect.settings import PREFECT_API_URL
from prefect.utilities.callables import parameter_schema

from agentflows import InputError, load_agents, open_store, run_agent
from agentflows.compiler import REVIEW_HELP
from agentflows.tasks.artifacts import AgentResult, BuiltContent, Draft, Plan, SavedContent
from agentflows.tasks.errors import ModelCallError, ProviderNotFound
from tests.conftest import REPO, SHIPPED_AGENTS
from tests.offline_steps import INPUTS
from tests.providers import CallLog, FlakyProvider, using

pytestmark = pytest.mark.usefixtures("prefect_server")


def file_text(uri: str) -> str:
    return Path(uri.removeprefix("file://")).read_text(encoding="utf-8")


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")


@pytest.mark.parametrize("agent", SHIPPED_AGENTS)
def test_each_shipped_agent_runs_end_to_end(agent: str, model_calls: CallLog) -> None:
    definition = load_agents()[agent].definition

    result = run_agent(agent, **INPUTS[agent])

    items = len(result.steps) - 3
    assert [s.step for s in result.steps] == ["decide", *["generate"] * items, "build", "save"]
    assert result.content_type == definition.content_type
    assert result.offline is True
    assert result.model_calls == len(model_calls) == 1 + items
    assert model_calls.steps() == ["decide", *["generate"] * items]
    page = file_text(result.location)
    assert result.title in page or result.title.replace("'", "&#39;") in page
    assert "no language model was called" in page
    stored = open_store().get(result.content_id)
    assert stored.agent == agent and set(stored.files) == set(result.files)
    assert [step["step"] for step in stored.lineage] == ["decide", *["generate"] * items, "build"]


def test_steps_run_in_order_and_pass_typed_artifacts() -> None:
    result = run_agent("ebook", topic="Volcanoes", chapters=2)

    runs = asyncio.run(_task_runs(result.flow_run_id, count=5))
    values = asyncio.run(_results(runs))

    assert [run.name for run in runs] == ["decide", *sorted(r.name for r in runs[1:3]), "build", "save"]
    assert all(run.name.startswith("generate-") for run in runs[1:3])
    assert [type(v) for v in values] == [Plan, Draft, Draft, BuiltContent, SavedContent]
    plan, first, second, built, saved = values
    assert first.provenance.parent_checksum == plan.checksum == second.provenance.parent_checksum
    assert saved.provenance.parent_checksum == built.checksum
    assert plan.provenance.template_hashes.keys() >= {"prompts/base/system.md", "prompts/ebook/decide.md"}


async def _task_runs(flow_run_id: str | None, count: int) -> list[Any]:
    """The flow run's task runs in start order, once all `count` have finished (state
    updates reach the server as events, a moment after the run returns)."""
    async with get_client() as client:
        for _ in range(100):
            runs = await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
                sort=TaskRunSort.EXPECTED_START_TIME_ASC,
            )
            if len(runs) == count and all(r.state and r.state.is_completed() for r in runs):
                return sorted(runs, key=lambda r: (r.start_time, r.name))
            await asyncio.sleep(0.1)
    raise AssertionError(f"expected {count} finished task runs, found {len(runs)}")


async def _results(runs: list[Any]) -> list[Any]:
    return [await run.state.aresult() for run in runs]


def test_identical_rerun_is_served_from_cache_with_zero_model_calls(model_calls: CallLog) -> None:
    first = run_agent("quiz", **INPUTS["quiz"])
    calls_after_first = len(model_calls)

    second = run_agent("quiz", **INPUTS["quiz"])

    assert calls_after_first == 4
    assert len(model_calls) == calls_after_first
    assert second.model_calls == 0
    assert second.cache_hits == 1 + 3 + 1  # decide, three questions, build
    assert second.content_id == first.content_id
    assert len(open_store().list()) == 1


def test_refresh_bypasses_the_cache(model_calls: CallLog) -> None:
    run_agent("quiz", **INPUTS["quiz"])

    again = run_agent("quiz", refresh=True, **INPUTS["quiz"])

    assert again.model_calls == 4 and again.cache_hits == 0
    assert len(model_calls) == 8


def test_editing_a_template_reruns_only_the_steps_that_render_it(definitions: Path, model_calls: CallLog) -> None:
    def run() -> AgentResult:
        return run_agent("ebook", definitions=definitions, **INPUTS["ebook"])

    run()
    before = len(model_calls)

    append(definitions / "prompts/ebook/generate.md", "\nPrefer short sentences.\n")
    edited_generate = run()
    append(definitions / "prompts/modules/markdown_style.md", "\nUse sentence case in subheadings.\n")
    edited_include = run()
    append(definitions / "layouts/ebook.html", "\n<!-- edited layout -->\n")
    edited_layout = run()

    assert model_calls.steps()[before:] == ["generate"] * 6
    assert [(s.step, s.cached) for s in edited_generate.steps if s.step in ("decide", "build")] == [
        ("decide", True),
        ("build", False),
    ]
    assert edited_include.model_calls == 3 and edited_include.steps[0].cached
    assert edited_layout.model_calls == 0
    assert [s.step for s in edited_layout.steps if not s.cached] == ["build", "save"]
    assert "<!-- edited layout -->" in file_text(edited_layout.location)


def test_a_step_that_fails_twice_is_retried_with_backoff(definitions: Path) -> None:
    append(definitions / "ebook.yaml", "\nretries: {attempts: 2, backoff_seconds: 0.2, jitter: 0}\n")
    log = CallLog()
    flaky = FlakyProvider(log, failures=2, steps=("decide",))

    with using(offline=lambda settings: flaky):
        result = run_agent("ebook", definitions=definitions, topic="Glaciers", chapters=1)

    decide_calls = [c for c in log.calls if c.label.endswith("/decide")]
    assert len(decide_calls) == 3
    gaps = [later.started - earlier.started for earlier, later in pairwise(decide_calls)]
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4  # exponential: 0.2 s, then 0.4 s
    assert result.model_calls == 2  # the answered decide call and one chapter


def test_an_error_that_is_not_retryable_fails_at_once(definitions: Path) -> None:
    append(definitions / "ebook.yaml", "\nretries: {attempts: 3, backoff_seconds: 0.1, jitter: 0}\n")
    log = CallLog()
    flaky = FlakyProvider(log, failures=5, steps=("decide",), retryable=False)

    with using(offline=lambda settings: flaky), pytest.raises(ModelCallError, match="scripted failure 1"):
        run_agent("ebook", definitions=definitions, topic="Glaciers", chapters=1)

    assert log.labels() == ["ebook/decide"]
    assert open_store().list() == []


CHILD = """
import pathlib, sys, time
import agentflows.tasks.steps

marker = pathlib.Path(sys.argv[1])

def hang_in_save(built, run):
    marker.write_text("saving")
    time.sleep(600)

agentflows.tasks.steps.save_content = hang_in_save
from agentflows import run_agent
run_agent("ebook", topic="Interrupted tides", chapters=2)
"""


def test_a_run_killed_after_generate_repeats_no_finished_step(
    tmp_path: Path, agentflows_home: Path, model_calls: CallLog
) -> None:
    marker = tmp_path / "saving"
    env = {
        **os.environ,
        "AGENTFLOWS_HOME": str(agentflows_home),
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
    }
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(marker)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while not marker.exists():
            assert child.poll() is None, child.stderr.read().decode() if child.stderr else "child exited"
            assert time.monotonic() < deadline, "the child run never reached save"
            time.sleep(0.1)
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    assert open_store().list() == []  # killed before save: nothing stored

    result = run_agent("ebook", topic="Interrupted tides", chapters=2)

    assert len(model_calls) == 0
    assert result.cache_hits == 4  # decide, two chapters, build
    assert len(open_store().list()) == 1


@pytest.mark.parametrize("agent", SHIPPED_AGENTS)
def test_parameter_schema_as_prefect_deploy_reads_it(agent: str) -> None:
    flow = load_flow_from_entrypoint(f"agentflows.agents:{agent}")
    schema = parameter_schema(flow).model_dump_for_openapi()
    inputs = load_agents()[agent].definition.inputs
    json_types = {"string": "string", "integer": "integer", "number": "number", "boolean": "boolean", "list": "array"}

    builds_on = ["builds_on"] if load_agents()[agent].definition.uses else []  # what the router passes a dependent
    assert set(schema["properties"]) == {*inputs, "refresh", "context", "review", *builds_on}
    assert set(schema.get("required", [])) == {name for name, spec in inputs.items() if spec.is_required}
    for name, spec in inputs.items():
        prop = schema["properties"][name]
        assert prop["description"] == spec.description
        assert prop["type"] == json_types[spec.type]
        if spec.enum:
            assert (prop["items"] if spec.type == "list" else prop)["enum"] == spec.enum
        if spec.has_default:
            assert prop["default"] == spec.default
        if spec.minimum is not None:
            assert prop["minimum"] == spec.minimum and prop["maximum"] == spec.maximum
    assert schema["properties"]["refresh"]["type"] == "boolean"
    review = schema["properties"]["review"]  # a checkbox on the Run form, with its help text
    assert review["type"] == "boolean" and review["default"] is False and review["description"] == REVIEW_HELP
    assert flow.name == agent and flow.version == load_agents()[agent].flow_version


def test_template_syntax_in_an_input_is_printed_not_run() -> None:
    payload = "{{ ''.__class__.__mro__ }}"

    result = run_agent("ebook", topic=payload, chapters=1)

    page = file_text(result.location)
    markdown = file_text(result.files["index.md"])
    assert payload in markdown
    assert "{{ &#39;&#39;.__class__.__mro__ }}" in page
    assert "<class" not in page and "<class" not in markdown


def test_bad_inputs_are_rejected_before_any_model_call(model_calls: CallLog) -> None:
    with pytest.raises(InputError, match=r"'topic'.*at least 3 characters"):
        run_agent("ebook", topic="x")
    with pytest.raises(InputError, match=r"'chapters'.*less than or equal to 12"):
        run_agent("ebook", topic="Tides", chapters=99)
    with pytest.raises(InputError, match=r"unknown input 'colour' \(inputs: topic, audience"):
        run_agent("ebook", topic="Tides", colour="blue")
    with pytest.raises(InputError, match=r"input 'topic' is required"):
        run_agent("ebook")
    assert len(model_calls) == 0


def test_a_failed_run_shows_its_own_error_not_the_event_loop_check() -> None:
    with pytest.raises(InputError) as caught:
        run_agent("ebook", topic="x")

    assert not any(isinstance(e, RuntimeError) for e in error_chain(caught.value))


def test_run_agent_inside_an_event_loop_says_to_await_run_agent_async() -> None:
    async def inside_a_loop() -> None:
        run_agent("ebook", topic="Tides")

    with pytest.raises(RuntimeError, match=r"^run_agent was called inside a running event loop; await run_agent_async"):
        asyncio.run(inside_a_loop())


def error_chain(error: BaseException) -> list[BaseException]:
    """`error` and every error it was raised from or while handling."""
    chain = []
    current: BaseException | None = error
    while current is not None:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def test_an_unknown_provider_fails_before_any_model_call(definitions: Path, model_calls: CallLog) -> None:
    text = (definitions / "quiz.yaml").read_text()
    (definitions / "quiz.yaml").write_text(text.replace("model:\n", "model:\n  provider: nowhere\n", 1))

    with pytest.raises(
        ProviderNotFound,
        match=r"'nowhere' is neither registered nor a saved model provider block; registered providers are: .*offline",
    ):
        run_agent("quiz", definitions=definitions, topic="Tides")
    assert len(model_calls) == 0


def test_the_run_page_gets_a_preview_and_a_link() -> None:
    result = run_agent("lesson_plan", **INPUTS["lesson_plan"])

    async def artifacts() -> list[Any]:
        async with get_client() as client:
            return await client.read_artifacts(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[result.flow_run_id]))
            )

    found = [a for a in asyncio.run(artifacts()) if a.type == "markdown"]
    preview = next(a for a in found if a.key)
    link = next(a for a in found if not a.key)  # Prefect stores link artifacts as Markdown links
    assert preview.key == f"lesson-plan-{result.content_id}"
    assert f"# {result.title}" in str(preview.data)
    assert str(link.data) == f"[{result.title}]({result.location})"

"""Inputs are cleaned before they are validated, and every text input is bounded.

Cleaning removes control and invisible characters (zero-width spaces, bidi
overrides) and trims surrounding whitespace; `min_length` and `max_length` count
what is left. The same annotations serve the CLI, the Python API, the router and
the flow's own parameter validation (what a deployment run from the UI passes through).
"""

from __future__ import annotations

import asyncio

import pytest
from prefect.utilities.callables import parameter_schema
from pydantic import TypeAdapter

from agentflows import InputError, agent_flow, load_agents, open_store, route, run_agent
from agentflows.cli import main
from agentflows.fields import DEFAULT_MAX_CHARACTERS, DEFAULT_MAX_ITEMS, InputSpec
from agentflows.inputs import input_annotation, validate_inputs
from agentflows.tasks.artifacts import AgentResult
from tests.providers import CallLog

ZERO_WIDTH = "\u200b\u200b\u200b\u200b"
MEGABYTE = "x" * 1_000_000
TOPIC_TOO_SHORT = (
    "agent 'ebook': input 'topic': String should have at least 3 characters "
    "(got '' once control and invisible characters and surrounding spaces are removed)"
)


def test_a_zero_width_topic_from_the_command_line_is_refused_before_any_run(
    capsys: pytest.CaptureFixture[str], model_calls: CallLog
) -> None:
    code = main(["run", "ebook", "-p", f"topic={ZERO_WIDTH}"])

    assert code == 1
    assert capsys.readouterr().err.splitlines() == [f"error: {TOPIC_TOO_SHORT}"]
    assert len(model_calls) == 0


@pytest.mark.parametrize("topic", ["    ", ZERO_WIDTH, " \u202e\u2066 \t "])
def test_a_topic_of_nothing_but_spaces_and_invisible_characters_fails_min_length(
    topic: str, model_calls: CallLog
) -> None:
    with pytest.raises(InputError) as caught:
        run_agent("ebook", topic=topic)

    assert str(caught.value) == TOPIC_TOO_SHORT
    assert len(model_calls) == 0


def test_cleaned_values_are_what_the_run_gets() -> None:
    ebook = load_agents()["ebook"].definition
    api = load_agents()["api_scaffold"].definition

    assert validate_inputs(ebook, {"topic": "  \u200bTides\u202e \n"})["topic"] == "Tides"
    assert validate_inputs(ebook, {"topic": "Tides", "tone": "formal\u200b "})["tone"] == "formal"
    assert validate_inputs(api, {"service": "notes", "resources": [" users\u200b", "tasks "]})["resources"] == [
        "users",
        "tasks",
    ]


def test_a_megabyte_of_text_through_the_python_api_is_an_input_error_of_one_short_line(
    model_calls: CallLog,
) -> None:
    with pytest.raises(InputError) as caught:
        run_agent("lesson_plan", topic="Tides", language=MEGABYTE)

    assert str(caught.value) == (
        f"agent 'lesson_plan': input 'language': String should have at most {DEFAULT_MAX_CHARACTERS} characters "
        f"(got {'x' * 60!r}… (1,000,000 characters))"
    )
    assert len(model_calls) == 0


def test_a_megabyte_for_the_router_is_an_input_error_before_any_branch(model_calls: CallLog) -> None:
    with pytest.raises(InputError, match=r"^router: input 'language': String should have at most 2000 characters"):
        route("a quiz on the tides", language=MEGABYTE)
    with pytest.raises(InputError, match=r"^router: input 'request': String should have at least 3 characters"):
        route(ZERO_WIDTH)
    assert len(model_calls) == 0


def test_list_inputs_bound_their_items_and_their_count() -> None:
    api = load_agents()["api_scaffold"].definition
    undeclared = TypeAdapter(input_annotation(InputSpec(type="list", description="Tags."))).json_schema()

    with pytest.raises(InputError, match=r"input 'resources.0': String should have at most 2000 characters"):
        validate_inputs(api, {"service": "notes", "resources": ["x" * 2001]})
    assert undeclared["maxItems"] == DEFAULT_MAX_ITEMS and undeclared["items"]["maxLength"] == DEFAULT_MAX_CHARACTERS


def test_the_ui_form_shows_the_default_bound_of_inputs_that_declare_none() -> None:
    properties = parameter_schema(agent_flow("lesson_plan")).model_dump()["properties"]

    assert properties["language"]["maxLength"] == DEFAULT_MAX_CHARACTERS  # declares no max_length
    assert properties["topic"]["maxLength"] == 200  # declares its own
    assert properties["context"]["maxLength"] == 4000


@pytest.mark.usefixtures("prefect_server")
def test_the_flow_itself_cleans_its_parameters_as_a_deployment_run_passes_them(model_calls: CallLog) -> None:
    flow = agent_flow("quiz")

    result = asyncio.run(flow(topic="\u200b  The water cycle \u202e", questions=1))

    assert isinstance(result, AgentResult) and result.title
    assert open_store().get(result.content_id).parameters["topic"] == "The water cycle"
    calls = len(model_calls)
    with pytest.raises(InputError, match="at least 3 characters"):  # the flow checks them in its body
        asyncio.run(flow(topic=ZERO_WIDTH, questions=1))
    assert len(model_calls) == calls

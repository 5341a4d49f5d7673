"""Structured output that fits the server, and answers that fit the schema but are not content.

Pure functions: the strict form of a step's schema, the ladder of formats and what
counts as a refusal, what the prompt shows, and the checks that re-ask an answer
which echoes the schema or a field's description, is far too short, or repeats itself.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from agentflows import load_agents
from agentflows.compiler import step_specs
from agentflows.fields import FieldSpec, object_schema
from agentflows.reporting import answers_summary
from agentflows.tasks.answers import content_problems, is_runaway, looks_like_schema
from agentflows.tasks.llm.offline import answer_for
from agentflows.tasks.llm.structured import (
    drop_nulls,
    field_guide,
    is_structured_output_refusal,
    ladder,
    shape_instruction,
    wire_schema,
)
from agentflows.tasks.parsing import TRUNCATED, read_answer, schema_problems
from agentflows.tasks.steps import plan_schema
from tests.conftest import SHIPPED_AGENTS

STEP = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "description": "Chapter title.", "examples": ["Why tides matter"]},
        "path": {"type": "string", "format": "path"},
        "when": {"type": "string", "format": "date"},
        "body": {"type": "string", "x-min-words": 100, "x-max-words": 300, "description": "The chapter's text."},
        "cells": {"type": "array", "items": {"type": ["string", "number", "boolean"]}, "uniqueItems": True},
        "note": {"type": "string"},
        "kind": {"type": "string", "enum": ["bar", "line"]},
    },
    "required": ["title", "path", "when", "body", "cells"],
    "additionalProperties": False,
}


def every_object(schema: Any) -> list[dict[str, Any]]:
    found = []
    if isinstance(schema, dict):
        if "properties" in schema:
            found.append(schema)
        for value in schema.values():
            found += every_object(value)
    elif isinstance(schema, list):
        for value in schema:
            found += every_object(value)
    return found


def every_key(schema: Any) -> set[str]:
    if isinstance(schema, dict):
        return set(schema) | {k for v in schema.values() if isinstance(v, dict | list) for k in every_key(v)}
    if isinstance(schema, list):
        return {k for v in schema for k in every_key(v)}
    return set()


def test_the_wire_schema_is_strict_every_property_required_and_optional_ones_nullable() -> None:
    wired = wire_schema(STEP, lengths=False)

    assert wired["required"] == list(STEP["properties"]) and wired["additionalProperties"] is False
    assert wired["properties"]["note"] == {"type": ["string", "null"]}
    assert wired["properties"]["kind"]["enum"] == ["bar", "line", None]
    assert wired["properties"]["when"]["format"] == "date"  # a standard format stays
    assert "format" not in wired["properties"]["path"]  # ours do not
    assert wired["properties"]["cells"]["items"] == {
        "anyOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]
    }
    assert every_key(wired).isdisjoint({"examples", "uniqueItems", "x-min-words", "x-max-words", "minLength"})


@pytest.mark.parametrize("agent", SHIPPED_AGENTS)
def test_every_shipped_steps_wire_schema_is_strict_and_a_valid_json_schema(agent: str) -> None:
    specs = step_specs(load_agents()[agent])
    for schema in (plan_schema(specs.decide, 1, 3), specs.generate.draft_schema):
        for lengths in (False, True):
            wired = wire_schema(schema, lengths=lengths)
            Draft202012Validator.check_schema(wired)
            for obj in every_object(wired):
                assert obj["required"] == list(obj["properties"]) and obj["additionalProperties"] is False


def test_the_bounded_form_turns_word_bounds_into_length_bounds() -> None:
    body = wire_schema(STEP, lengths=True)["properties"]["body"]

    assert (body["minLength"], body["maxLength"]) == (700, 3000)


def test_nulls_for_optional_fields_are_dropped_before_the_answer_is_checked() -> None:
    answer = {"title": "T", "note": None, "kind": None, "cells": [1]}

    assert drop_nulls(answer, STEP) == {"title": "T", "cells": [1]}
    assert drop_nulls({"title": None}, STEP) == {"title": None}  # a required field keeps its null: a schema error


def test_the_ladder_goes_from_the_strongest_format_to_the_prompt_alone() -> None:
    assert [f.name for f in ladder("auto")] == ["json_schema+lengths", "json_schema", "json_object", "off"]
    assert [f.name for f in ladder("json_schema")] == ["json_schema+lengths", "json_schema"]
    assert [f.name for f in ladder("json_object")] == ["json_object"]
    assert [f.name for f in ladder("off")] == ["off"]


@pytest.mark.parametrize(
    ("status", "message", "refusal"),
    [
        (400, "Unable to generate parser for this template. Automatic parser generation failed: JSON schema", True),
        (400, "Invalid schema for response_format 'answer': 'maxLength' is not permitted.", True),
        (400, 'response_format type must be one of "text" or "json_object", but got: json_schema', True),
        (422, "guided decoding: unsupported JSON schema keyword", True),
        (400, "request (5031 tokens) exceeds the available context size (4096 tokens)", False),
        (401, "Incorrect API key provided: response_format", False),
    ],
)
def test_what_counts_as_a_refusal_of_structured_output(status: int, message: str, refusal: bool) -> None:
    assert is_structured_output_refusal(status, message) is refusal


def test_the_prompt_guides_each_field_by_kind_and_size_and_shows_a_skeleton_only_when_asked() -> None:
    guide = field_guide(STEP)
    shape = shape_instruction(STEP)

    assert "- body: text, 100 to 300 words" in guide
    assert '- kind: one of "bar", "line"' in guide
    assert "The chapter's text" not in guide  # a small model copies the descriptions it is shown
    assert json.loads(shape.split("\n", 1)[1])["body"] == "<text, 100 to 300 words>"
    assert '"type"' not in shape  # a skeleton to fill in, not a schema to copy


def test_an_answer_that_is_the_schema_is_re_asked_as_such() -> None:
    reading = read_answer(json.dumps(STEP), STEP)

    assert looks_like_schema(json.loads(json.dumps(STEP)), STEP)
    assert reading.payload is None
    assert reading.problems == [
        "the answer is a JSON Schema, not the content; give the values themselves for "
        "`title`, `path`, `when`, `body`, `cells`, `note`, `kind`"
    ]


def test_a_field_that_repeats_its_description_is_not_content() -> None:
    schema = {
        "type": "object",
        "properties": {
            "body": {
                "type": "string",
                "description": "The chapter's text in Markdown, 400 to 900 words, without the chapter title.",
            }
        },
    }

    assert content_problems(
        {"body": "The chapter's text in Markdown, 400 to 900 words, without the chapter title."}, schema
    )
    assert content_problems({"body": "The chapter's text in Markdown, 400 to 900 words"}, schema)
    assert not content_problems({"body": "Text"}, schema)
    assert not content_problems({"body": "Tides rise and fall twice a day because the Moon pulls the sea."}, schema)


def test_an_example_the_description_quotes_is_a_fine_answer() -> None:
    schema = {
        "type": "object",
        "properties": {"title": {"type": "string", "description": 'What the file is, e.g. "Application entry point".'}},
    }

    assert content_problems({"title": "Application entry point"}, schema) == []


def test_a_text_far_below_its_minimum_is_re_asked_with_its_count() -> None:
    schema = {"type": "object", "properties": {"body": {"type": "string", "x-min-words": 150}}}

    assert content_problems({"body": "Tides are caused by the Moon."}, schema) == [
        "`body` has 6 words, fewer than the 150 it needs; write a longer body"
    ]


def test_a_runaway_repetition_is_not_content() -> None:
    text = "Tides are fascinating. " + "It's a topic that has been studied by many people. " * 20
    schema = {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"type": "object", "properties": {"summary": {"type": "string"}}}}
        },
    }

    problems = content_problems({"items": [{"summary": text}]}, schema)

    assert problems == [
        "`items/0/summary` repeats itself ('it s a topic that has been studied by many people' 20 times); "
        "say each thing once"
    ]
    assert is_runaway('{"summary": "' + text) and not is_runaway("Tides rise and fall. " + "The Moon pulls. " * 3)


def test_a_cut_off_answer_is_never_used_repaired() -> None:
    cut = '{"title": "Tides", "path": "a.md", "when": "2024-01-01", "body": "The Moon pulls the'

    assert read_answer(cut, STEP).method == "repaired"  # what the tolerant reader would do
    assert read_answer(cut, STEP, truncated=True).problems == [TRUNCATED]


@pytest.mark.parametrize("agent", SHIPPED_AGENTS)
def test_the_offline_provider_writes_content_the_checks_accept(agent: str) -> None:
    specs = step_specs(load_agents()[agent])
    for schema in (plan_schema(specs.decide, 2, 2), specs.generate.draft_schema):
        answer = answer_for(schema, {"inputs": {"topic": "How tides work"}}, agent)

        assert content_problems(answer, schema) == []


def test_show_counts_how_a_steps_answers_went() -> None:
    attempts = [
        {"model": "m", "raw": "", "error": "timed out", "failed_call": True},
        {"model": "m", "raw": "x", "error": "no JSON"},
        {"model": "m", "raw": "{…}", "method": "reasked+repaired"},
    ]

    assert answers_summary(attempts) == " (1 failed, 1 re-ask, 1 repaired)"
    assert answers_summary([{"model": "m", "raw": "{}", "method": "strict"}]) == ""


def test_a_fields_pattern_goes_to_the_server_and_an_answer_that_misses_it_is_a_problem() -> None:
    question = FieldSpec(type="string", pattern="^[^\n]{10,300}[?]$", max_words=40)
    schema = object_schema({"check": question})

    wired = wire_schema(schema, lengths=True)["properties"]["check"]
    assert wired["pattern"] == "^[^\n]{10,300}[?]$"
    assert schema_problems({"check": "Which gas do plants take in?"}, schema) == []
    assert schema_problems({"check": "Plants take in carbon dioxide."}, schema)
    with pytest.raises(ValidationError, match="pattern applies to string fields, not integer"):
        FieldSpec(type="integer", pattern="^1$")
    with pytest.raises(ValidationError, match="is not a valid regular expression"):
        FieldSpec(type="string", pattern="([a-z")

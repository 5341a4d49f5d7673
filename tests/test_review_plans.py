"""An editor's plan, without a paused run: the form Prefect shows (fields, defaults, help text, bounds, and no
name its V2 UI would misread), what an edit changes, plan files, the revision turns decide is given, which
drafts an edit leaves cached — and reworks of a stored content, in process, counting the model calls."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from agentflows import InputError, load_agents, open_store, run_agent
from agentflows.compiler import step_specs
from agentflows.inputs import validate_inputs
from agentflows.plan_files import plan_file_text, read_plan_file
from agentflows.review_form import ITEMS_FIELD, SCHEMA_KEYWORDS, content_of_values, form_values, review_form
from agentflows.review_spec import ReviewSpec
from agentflows.rework import rework
from agentflows.tasks.artifacts import Plan
from agentflows.tasks.review import PlanContent, edited_plan, plan_edits
from agentflows.tasks.specs import DecideSpec, PlanRevision, RunContext
from agentflows.tasks.steps import draft_scope, make_plan, revision_messages
from agentflows.tasks.storage.kept import built_from
from tests.providers import CallLog


def lesson_plan() -> tuple[DecideSpec, Plan]:
    """The lesson_plan agent's decide spec and the plan the offline provider makes for it."""
    loaded = load_agents()["lesson_plan"]
    spec = step_specs(loaded).decide
    inputs = validate_inputs(loaded.definition, {"topic": "Tides", "stages": 4})
    return spec, asyncio.run(make_plan(spec, inputs, RunContext()))


def edited(plan: Plan, **changes: Any) -> PlanContent:
    """The content of `plan` with item 2's fields changed."""
    content = PlanContent.of(plan)
    items = list(content.items)
    items[1] = {**items[1], **changes}
    return content.model_copy(update={"items": tuple(items)})


def test_the_form_is_the_plan_prefilled_with_help_text_and_the_declared_bounds() -> None:
    spec, plan = lesson_plan()
    schema = review_form(spec, plan, last_round=False, description="## Plan").model_json_schema()
    props = schema["properties"]

    assert props["title"]["default"] == plan.title and props["title"]["description"]
    assert props["objectives"]["default"] == plan.fields["objectives"]
    items = props[ITEMS_FIELD]
    assert [i["title"] for i in items["default"]] == [item.title for item in plan.items]
    assert (items["minItems"], items["maxItems"]) == (3, 8) and "reorder, add or remove" in items["description"]
    item = schema["$defs"]["PlanItemForm"]["properties"]
    assert item["stage"]["enum"][0] == "warm-up" and item["minutes"]["maximum"] == 90
    assert item["title"]["description"] == 'Name of the stage, e.g. "Warm-up".'
    assert props["decision"]["enum"] == ["approve", "revise", "reject"] and schema["required"] == ["decision"]


def test_no_form_field_is_named_like_a_json_schema_keyword_the_v2_ui_would_misread() -> None:
    spec, plan = lesson_plan()
    spec = spec.model_copy(update={"plan_fields": {**spec.plan_fields, "type": {"type": "string"}}})
    plan = plan.model_copy(update={"fields": {**plan.fields, "type": "field trip"}})
    props = review_form(spec, plan, last_round=False, description="").model_json_schema()["properties"]

    # `title` stays: the V2 UI reads its value, a string, as a schema's title, which is harmless.
    assert set(props) & SCHEMA_KEYWORDS == {"title"}
    assert props["plan_type"]["default"] == "field trip"
    assert content_of_values(form_values(PlanContent.of(plan))) == PlanContent.of(plan)


def test_the_last_round_offers_only_approve_and_reject() -> None:
    spec, plan = lesson_plan()
    schema = review_form(spec, plan, last_round=True, description="").model_json_schema()

    assert schema["properties"]["decision"]["enum"] == ["approve", "reject"]


def test_an_unchanged_plan_is_decides_own_so_its_drafts_stay_cached() -> None:
    _, plan = lesson_plan()
    # A form sends null for an optional field left empty: that is no change.
    with_nulls = PlanContent.of(plan).model_copy(update={"fields": {**plan.fields, "notes_for_teacher": None}})

    assert edited_plan(plan, with_nulls, parent=plan.checksum) is plan
    assert plan_edits(PlanContent.of(plan), with_nulls) == ()


def test_an_edit_is_a_new_plan_whose_parent_is_the_decision_and_whose_edits_are_listed() -> None:
    _, plan = lesson_plan()
    items = edited(plan, minutes=7).items
    exit_ticket = {"title": "Exit ticket", "stage": "wrap-up", "minutes": 5}
    content = PlanContent.of(plan).model_copy(update={"items": (*items[:2], items[3], exit_ticket)})

    approved = edited_plan(plan, content, parent="decision-checksum")

    assert approved.provenance.parent_checksum == "decision-checksum" and approved.provenance.model is None
    assert [i.key for i in approved.items][:2] == [i.key for i in plan.items][:2]
    assert approved.items[3].key == "04-exit-ticket" and approved.items[1].fields["minutes"] == 7
    assert plan_edits(PlanContent.of(plan), content) == (
        f"removed item 3 {plan.items[2].title!r}",
        f"item 2 {plan.items[1].title!r}: minutes: {plan.items[1].fields['minutes']!r} → 7",
        "added item 4 'Exit ticket'",
    )


def test_a_draft_is_keyed_on_its_own_item_so_an_edit_of_another_leaves_it_cached() -> None:
    _, plan = lesson_plan()
    approved = edited_plan(plan, edited(plan, minutes=7), parent=plan.checksum)
    first, second = plan.items[0].key, plan.items[1].key

    assert draft_scope(approved, first) == draft_scope(plan, first)
    assert draft_scope(approved, second) != draft_scope(plan, second)


def test_a_revision_shows_decide_its_plan_and_the_editors_notes_as_data() -> None:
    _, plan = lesson_plan()
    revision = PlanRevision(
        round=2, notes="More «practice», less talk", previous=PlanContent.of(plan).view(), parent="x"
    )

    made, asked = revision_messages(revision)

    assert made.role == "assistant" and plan.title in made.content
    assert asked.role == "user" and "«More practice, less talk»" in asked.content


def test_review_true_is_short_for_a_default_review() -> None:
    assert ReviewSpec.model_validate(True) == ReviewSpec(default=True)
    assert ReviewSpec(timeout="90m").timeout_seconds == 5400


def test_a_plan_file_reads_back_as_it_was_printed(tmp_path: Path) -> None:
    _, plan = lesson_plan()
    path = tmp_path / "plan.yaml"
    path.write_text(plan_file_text(PlanContent.of(plan), content_id="abc"))

    assert read_plan_file(path) == PlanContent.of(plan)
    assert path.read_text().startswith("# Edit, then: agentflows rerun abc --from generate --plan FILE\n")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "--plan '{path}' cannot be read: No such file or directory"),
        ("title: [unclosed\n", "{path}:2: not valid YAML or JSON (expected ',' or ']'"),
        ("- just a list\n", "{path}: a plan file is a mapping with `title`, the plan's fields and `items`"),
        ("title: T\nitems: [{stage: warm-up}]\n", "{path}: `items` must be a list of mappings, each with a `title`"),
    ],
)
def test_a_bad_plan_file_is_one_line_naming_it(tmp_path: Path, text: str | None, message: str) -> None:
    path = tmp_path / "plan.yaml"
    if text is not None:
        path.write_text(text)

    with pytest.raises(InputError) as raised:
        read_plan_file(path)

    assert str(raised.value).startswith(message.format(path=path)) and "\n" not in str(raised.value)


@pytest.mark.usefixtures("prefect_server")
def test_a_rework_from_generate_writes_only_the_edited_item_and_names_the_original(model_calls: CallLog) -> None:
    original = run_agent("lesson_plan", topic="Tides", stages=4)
    stored_plan = stored(original.content_id)
    plan = edited(stored_plan, title="The Moon's pull")
    model_calls.calls.clear()

    result = rework(original.content_id, from_step="generate", plan=plan, notes="sharper", reviewer="ana")

    assert model_calls.labels() == ["lesson_plan/generate/02-the-moon-s-pull"]
    assert [s.label for s in result.steps if s.step == "generate" and not s.cached] == ["generate 02-the-moon-s-pull"]
    made = open_store().get(result.content_id)
    assert made.reworked_from == original.content_id
    assert made.lineage[0]["label"] == f"rework of {original.content_id} from generate"
    review = made.reviews[0]
    assert (review["decision"], review["notes"], review["reviewer"]) == ("rework", "sharper", "ana")
    assert review["edits"] == [f'item 2 "The Moon\'s pull": title: {stored_plan.items[1].title!r} → "The Moon\'s pull"']


@pytest.mark.usefixtures("prefect_server")
def test_a_rework_from_build_calls_no_model_and_a_changed_input_rewrites_every_item(model_calls: CallLog) -> None:
    original = run_agent("lesson_plan", topic="Tides", stages=3)
    model_calls.calls.clear()

    rebuilt = rework(original.content_id, from_step="build")
    assert model_calls.labels() == [] and rebuilt.model_calls == 0
    with pytest.raises(InputError, match="--from build keeps every stored draft"):
        rework(original.content_id, from_step="build", plan=edited(stored(original.content_id), minutes=9))

    regraded = rework(original.content_id, from_step="generate", params={"grade_level": "7th grade"})
    assert model_calls.steps() == ["generate"] * 3
    assert open_store().get(regraded.content_id).parameters["grade_level"] == "7th grade"


def stored(content_id: str) -> Plan:
    """The plan the stored content `content_id` was written from."""
    found = built_from(open_store(), content_id)
    assert found is not None
    return found.plan

"""The form an editor fills in to review a plan: a Prefect `RunInput` made for the plan, with the plan as Markdown.

    ReviewForm       decision (approve | revise | reject), notes and reviewer: the part every agent shares
    review_form()    a `ReviewForm` whose other fields are the plan, prefilled and editable: its title, its
                     plan-level fields and its items (types, enums and bounds from the agent's decide schema)
    plan_markdown()  the plan as the Markdown shown above the form
    form_values()    a plan's content as the form's values (what `agentflows approve --plan FILE` sends)
    plan_content()   an answered form's plan, as `PlanContent`; `content_of_values` the same from plain values

The form is flat, as Prefect's UI renders best. Prefect 3.8's V2 UI checks a
form's values as if they were a JSON Schema before it resumes a run, so no
top-level field may be named after a JSON Schema keyword: the items are
`plan_items`, and a plan-level field named like a keyword (or like one of the
form's own fields) is shown as `plan_<name>` (`form_name`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

import pydantic
from prefect.input import RunInput
from pydantic import BaseModel, ConfigDict, Field

from agentflows.tasks.artifacts import Plan
from agentflows.tasks.review import PlanContent
from agentflows.tasks.specs import DecideSpec

Decision = Literal["approve", "revise", "reject"]
ITEMS_FIELD = "plan_items"
OWN_FIELDS = frozenset({"decision", "notes", "reviewer", "title", ITEMS_FIELD})
SCHEMA_KEYWORDS = frozenset(
    {
        *("items", "properties", "required", "type", "enum", "const", "default", "format", "minimum", "maximum"),
        *("examples", "pattern", "not", "description", "title", "contains", "dependencies", "definitions"),
        *("if", "then", "else", "deprecated"),
    }
)
"""Names the V2 UI would read as JSON Schema keywords (identifiers only: definitions are lower case)."""
CELL_CHARS = 120
SIMPLE_TYPES: dict[str, Any] = {"string": str, "integer": int, "number": float, "boolean": bool}
DECISION_HELP = (
    "approve: write the drafts from the plan below, with your edits; revise: have the model plan again, "
    "following your notes; reject: end the run and store nothing."
)


class ReviewForm(RunInput):
    """An editor's decision on a plan; `review_form` adds the plan's own fields."""

    decision: Decision = Field(description=DECISION_HELP)
    notes: str = Field(
        default="", description="What to change (revise), why you reject, or a note for the record (approve)."
    )
    reviewer: str = Field(default="", description="Your name, kept with your decision in the content's lineage.")


def form_name(name: str) -> str:
    """The form field of plan-level field `name`: the same, or `plan_<name>` where the form needs the name."""
    return f"plan_{name}" if name in SCHEMA_KEYWORDS | OWN_FIELDS else name


def review_form(spec: DecideSpec, plan: Plan, *, last_round: bool, description: str) -> type[ReviewForm]:
    """The form for reviewing `plan`, prefilled with it; the last round offers only approve and reject."""
    item_model = _model("PlanItemForm", spec.item_schema)
    values = PlanContent.of(plan).normal()
    fields: dict[str, Any] = {
        "title": (str, Field(default=values.title, description="Title of the whole piece of content.")),
        **{
            form_name(name): _field(name, schema, name in spec.plan_required, values.fields.get(name))
            for name, schema in spec.plan_fields.items()
        },
        ITEMS_FIELD: (
            list[item_model],  # type: ignore[valid-type]
            Field(
                default=[item_model.model_validate(item) for item in values.items],
                min_length=spec.items_min,
                max_length=spec.items_max,
                description=f"What the drafts are written from, in order: edit, reorder, add or remove "
                f"({spec.items_min} to {spec.items_max} items).",
            ),
        ),
    }
    if last_round:
        fields["decision"] = (Literal["approve", "reject"], Field(description=DECISION_HELP.split("; revise")[0]))
    form: type[ReviewForm] = pydantic.create_model("PlanReview", __base__=ReviewForm, **fields)
    form._description = description  # what Prefect shows above the form, as Markdown
    return form


def plan_content(spec: DecideSpec, answer: ReviewForm) -> PlanContent:
    """The plan in an answered form."""
    data = answer.model_dump(mode="json")
    return PlanContent(
        title=data["title"],
        fields={name: data.get(form_name(name)) for name in spec.plan_fields},
        items=tuple(data[ITEMS_FIELD]),
    )


def form_values(content: PlanContent) -> dict[str, Any]:
    """The form's values for a plan with `content` (its title, plan-level fields and items)."""
    return {
        "title": content.title,
        **{form_name(name): value for name, value in content.fields.items()},
        ITEMS_FIELD: [dict(item) for item in content.items],
    }


def content_of_values(values: Mapping[str, Any]) -> PlanContent:
    """The plan in a form's values (or in the defaults of its JSON Schema): the inverse of `form_values`."""
    fields = {
        _plan_name(name): value
        for name, value in values.items()
        if name not in OWN_FIELDS and name not in ReviewForm.model_fields
    }
    return PlanContent(title=values.get("title", ""), fields=fields, items=tuple(values.get(ITEMS_FIELD, [])))


def _plan_name(name: str) -> str:
    """The plan-level field a form field shows: `form_name` undone."""
    bare = name.removeprefix("plan_")
    return bare if bare != name and bare in SCHEMA_KEYWORDS | OWN_FIELDS else name


def plan_markdown(plan: Plan, agent: str, round_: int, rounds: int, waits: str) -> str:
    """`plan` as the Markdown above the review form: its fields, a table of its items, what each decision does."""
    content = PlanContent.of(plan).normal()
    columns = list(dict.fromkeys(name for item in content.items for name in item))
    lines = [
        f"## Plan for review: {_cell(content.title)}",
        "",
        f"**{agent}** · round {round_} of {rounds} · {len(content.items)} items · {waits}",
        "",
    ]
    for name, value in content.fields.items():
        shown = "".join(f"\n- {_cell(v)}" for v in value) if isinstance(value, list) else f" {_cell(value)}"
        lines += [f"**{name.replace('_', ' ').capitalize()}**:{shown}", ""]
    lines += [
        "| # | " + " | ".join(c.replace("_", " ") for c in columns) + " |",
        "|---|" + "---|" * len(columns),
        *(
            f"| {n} | " + " | ".join(_cell(item.get(c, "")) for c in columns) + " |"
            for n, item in enumerate(content.items, start=1)
        ),
        "",
        "**approve** writes the drafts from this plan (edit its title, fields and items in the form first, if you "
        "like); **revise** has the model plan again with your notes"
        + (" (this is the last round)" if round_ == rounds else "")
        + "; **reject** ends the run and stores nothing.",
    ]
    return "\n".join(lines)


def _model(name: str, schema: Mapping[str, Any]) -> type[BaseModel]:
    """A pydantic model for a JSON Schema object (an item of the plan, or an object field)."""
    required = set(schema.get("required", []))
    fields: dict[str, Any] = {
        key: _field(key, sub, key in required) for key, sub in schema.get("properties", {}).items()
    }
    return pydantic.create_model(name, __config__=ConfigDict(extra="forbid"), **fields)


def _field(name: str, schema: Mapping[str, Any], required: bool, default: Any = None) -> tuple[Any, Any]:
    """`(annotation, Field)` for one JSON Schema property: required with no default, else defaulted."""
    annotation = _annotation(schema, name)
    help_text = schema.get("description") or None
    given: dict[str, Any] = {"min_length": schema.get("minItems"), "max_length": schema.get("maxItems")}
    bounds: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    if default is None and required:
        return annotation, Field(description=help_text, **bounds)
    if default is None:
        return annotation | None, Field(default=None, description=help_text, **bounds)
    return annotation, Field(default=default, description=help_text, **bounds)


def _annotation(schema: Mapping[str, Any], name: str) -> Any:
    if schema.get("enum"):
        return Literal[tuple(schema["enum"])]
    kind = schema.get("type", "string")
    if isinstance(kind, list):
        return str | float | bool
    if kind == "array":
        return list[_annotation(schema.get("items", {}), name)]  # type: ignore[misc]
    if kind == "object":
        title = "".join(part.capitalize() for part in name.split("_"))
        return _model(f"{title}Form", schema) if schema.get("properties") else dict[str, Any]
    base = SIMPLE_TYPES.get(kind, str)
    given: dict[str, Any] = {"ge": schema.get("minimum"), "le": schema.get("maximum")}
    # A whole-number field keeps whole-number bounds: messages say "maximum of 90", not "90.0".
    limits: dict[str, Any] = {k: base(v) if base is int else v for k, v in given.items() if v is not None}
    return Annotated[base, Field(**limits)] if limits else base


def _cell(value: Any) -> str:
    """A value as one line of a Markdown table cell: no pipes, no line breaks, at most `CELL_CHARS`."""
    text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"

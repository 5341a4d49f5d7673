"""The schema of what goes in and out of an agent: its declared inputs and the fields it asks the model for.

An input (`InputSpec`) becomes a parameter of the agent's flow and a field of
its form in the Prefect UI; a field (`FieldSpec`) becomes part of the JSON
Schema a model step must answer with (`json_schema`, `object_schema`). `Spec`,
the base of every definition model, forbids unknown keys so a typo is reported
instead of ignored.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

IDENTIFIER_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
Identifier = Annotated[str, StringConstraints(pattern=IDENTIFIER_PATTERN)]


def _compiles(pattern: str) -> str:
    """`pattern`, if it is a valid regular expression."""
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{pattern!r} is not a valid regular expression: {exc}") from None
    return pattern


RegularExpression = Annotated[str, AfterValidator(_compiles)]
"""A regular expression (Python's `re`), checked when the definition is read."""
Scalar = str | int | float | bool
DEFAULT_MAX_CHARACTERS = 2_000
"""Most characters a string input takes (each item of a list input too) when its definition sets no `max_length`."""
DEFAULT_MAX_ITEMS = 100
"""Most items a list input takes when its definition sets no `max_length`."""


class Spec(BaseModel):
    """Base of the definition models: unknown keys are errors, docstrings document fields."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, frozen=True)


class InputSpec(Spec):
    """One input of the agent; it becomes a parameter of the flow and a field of the UI form."""

    type: Literal["string", "integer", "number", "boolean", "list"] = "string"
    """Value type; `list` is a list of strings."""
    description: str = Field(min_length=1)
    """Help text shown in the Prefect UI form and used by the router."""
    default: Scalar | list[str] | None = None
    """Value used when the caller gives none; makes the input optional."""
    required: bool | None = None
    """Whether callers must give a value; defaults to true unless a default is given."""
    enum: list[Scalar] | None = Field(default=None, min_length=1)
    """Allowed values (a dropdown in the UI); for `list`, the allowed items."""
    minimum: float | None = None
    """Smallest allowed value (integer and number inputs)."""
    maximum: float | None = None
    """Largest allowed value (integer and number inputs)."""
    min_length: int | None = Field(default=None, ge=0)
    """Fewest characters (string inputs) or items (list inputs), counted once the value is cleaned."""
    max_length: int | None = Field(default=None, ge=1)
    """Most characters (string inputs) or items (list inputs); without it a string takes at most
    `DEFAULT_MAX_CHARACTERS` and a list at most `DEFAULT_MAX_ITEMS` items."""
    examples: list[Scalar | list[str]] = Field(default_factory=list)
    """Example values, shown to users and to the router's classifier."""

    @model_validator(mode="after")
    def _keywords_fit_type(self) -> InputSpec:
        numeric = self.type in ("integer", "number")
        if (self.minimum is not None or self.maximum is not None) and not numeric:
            raise ValueError(f"minimum/maximum apply to integer and number inputs, not {self.type}")
        if (self.min_length is not None or self.max_length is not None) and self.type not in (
            "string",
            "list",
        ):
            raise ValueError(f"min_length/max_length apply to string and list inputs, not {self.type}")
        if self.enum is not None and self.type == "boolean":
            raise ValueError("enum does not apply to boolean inputs")
        if self.required and self.has_default:
            raise ValueError("a required input cannot have a default; remove one of them")
        return self

    @property
    def has_default(self) -> bool:
        return "default" in self.model_fields_set

    @property
    def is_required(self) -> bool:
        return self.required if self.required is not None else not self.has_default


FieldType = Literal["string", "integer", "number", "boolean", "scalar", "list", "object"]


class FieldSpec(Spec):
    """One field the model must return; becomes part of the step's JSON schema."""

    type: FieldType = "string"
    """Value type; `scalar` is any of string, number or boolean."""
    description: str = ""
    """What the field holds; sent to the model as part of the schema."""
    format: Literal["plain", "markdown", "code", "path"] | None = None
    """Kind of text in a string field: prose, Markdown, source code or a relative file path."""
    enum: list[Scalar] | None = Field(default=None, min_length=1)
    """Allowed values."""
    examples: list[Any] = Field(default_factory=list)
    """Example values, sent to the model; the offline provider uses them in turn."""
    minimum: float | None = None
    maximum: float | None = None
    min_items: int | None = Field(default=None, ge=0)
    max_items: int | None = Field(default=None, ge=1)
    min_words: int | None = Field(default=None, ge=1)
    """Fewest words of a text (string or scalar) field; a shorter answer is asked again."""
    max_words: int | None = Field(default=None, ge=1)
    """Most words of a text (string or scalar) field; servers that hold the answer to its schema stop it there."""
    pattern: RegularExpression | None = None
    """Regular expression a string field matches (JSON Schema `pattern`): an answer that does not is asked
    again, and servers that hold the answer to its schema write one that does."""
    items: FieldSpec | None = None
    """Schema of the items, for `list` fields."""
    fields: dict[Identifier, FieldSpec] | None = None
    """Schema of the members, for `object` fields."""
    required: bool = True
    """Whether the model must always return this field."""

    @model_validator(mode="after")
    def _keywords_fit_type(self) -> FieldSpec:
        if self.type == "list" and self.items is None:
            raise ValueError("a list field needs `items` (the schema of one item)")
        if self.type != "list" and (self.items is not None or self.min_items or self.max_items):
            raise ValueError(f"items/min_items/max_items apply to list fields, not {self.type}")
        if self.type == "object" and not self.fields:
            raise ValueError("an object field needs `fields` (its members)")
        if self.type != "object" and self.fields is not None:
            raise ValueError(f"fields applies to object fields, not {self.type}")
        if self.format is not None and self.type != "string":
            raise ValueError(f"format applies to string fields, not {self.type}")
        if (self.min_words or self.max_words) and self.type not in ("string", "scalar"):
            raise ValueError(f"min_words/max_words apply to string and scalar fields, not {self.type}")
        if self.pattern is not None and self.type != "string":
            raise ValueError(f"pattern applies to string fields, not {self.type}")
        if self.min_words and self.max_words and self.min_words > self.max_words:
            raise ValueError(f"min_words ({self.min_words}) is larger than max_words ({self.max_words})")
        return self

    def json_schema(self) -> dict[str, Any]:
        """This field as JSON Schema (what providers send to the model)."""
        schema: dict[str, Any] = {}
        if self.type == "scalar":
            schema["type"] = ["string", "number", "boolean"]
        elif self.type == "list":
            schema["type"] = "array"
        else:
            schema["type"] = self.type
        for key, value in (
            ("description", self.description),
            ("format", self.format),
            ("enum", self.enum),
            ("examples", self.examples),
            ("minimum", self.minimum),
            ("maximum", self.maximum),
            ("minItems", self.min_items),
            ("maxItems", self.max_items),
        ):
            if value not in (None, "", []):
                schema[key] = value
        if self.pattern is not None:
            schema["pattern"] = self.pattern
        if self.format == "path":
            # Held by the server's grammar where it compiles the schema: no leading '/', no '..', no spaces.
            schema["pattern"] = SAFE_PATH_PATTERN
        schema.update(text_size(self.min_words, self.max_words))
        if self.items is not None:
            schema["items"] = self.items.json_schema()
        if self.fields is not None:
            schema.update(object_schema(self.fields))
        return schema


SAFE_PATH_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*(/[A-Za-z0-9_][A-Za-z0-9_.\-]*)*$"
"""A relative file path inside the content: what the code tree builder accepts (`format: path` fields)."""


def text_size(min_words: int | None, max_words: int | None) -> dict[str, Any]:
    """Schema annotations of a text size, `x-min-words` and `x-max-words`: checked when the answer is read,
    and sent as length bounds to servers that hold the answer to the schema (`tasks.llm.structured`)."""
    size: dict[str, Any] = {}
    if min_words:
        size["x-min-words"] = min_words
    if max_words:
        size["x-max-words"] = max_words
    return size


def object_schema(fields: dict[str, FieldSpec], fixed: dict[str, Any] | None = None) -> dict[str, Any]:
    """JSON Schema of an object with `fixed` members first, then the declared `fields`."""
    properties = dict(fixed or {})
    properties.update({name: spec.json_schema() for name, spec in fields.items()})
    required = list(fixed or {}) + [name for name, spec in fields.items() if spec.required]
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }

"""The built-in offline provider: deterministic answers, no network, no model.

It reads the JSON schema a step asks for and the structured values the prompt
was rendered from (the inputs, the plan item) and writes a schema-valid answer
derived from them: titles and prose that name the request's topic, code files
that match their paths (`agentflows.tasks.llm.offline_code`: an entry point of the
`framework` input, tests with a test in them), tables with one cell per column,
questions where a field asks for one, and item numbers that add up to the input
they share a name with (a lesson's stage `minutes` take its `duration_minutes`),
so the shipped agents' checks hold. The same request always gets the same answer.
It exists so agentflows runs end to end on a machine with no model; every reply
says `offline=True`, and built content shows a notice.

Schema keywords it honours: `type`, `properties`, `required`, `items`,
`minItems`/`maxItems`, `enum`, `examples`, `minimum`/`maximum`, `format`
(`markdown`, `code`, `path`, `plain`), the word bounds `x-min-words`/`x-max-words` and the length
bounds `minLength`/`maxLength`.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from typing import Any

from agentflows.tasks.answers import word_count
from agentflows.tasks.artifacts import Usage
from agentflows.tasks.llm.base import ModelReply, ModelRequest
from agentflows.tasks.llm.offline_code import source_file, suffix_of
from agentflows.tasks.llm.settings import ModelSettings
from agentflows.tasks.names import slug

MODEL_NAME = "agentflows-offline-1"
TOPIC_KEYS = ("topic", "subject", "title", "theme", "name", "question", "goal")
FACETS = (
    "{t}: why it matters",
    "{t}: the foundations",
    "{t}: how it works",
    "{t} in practice",
    "{t}: common pitfalls",
    "{t}: key terms",
    "{t}: a worked example",
    "{t}: questions people ask",
    "{t}: measuring progress",
    "{t}: what comes next",
)
SENTENCES = (
    "{s} is easiest to understand through a concrete example.",
    "Start with what {s} is for, then look at how its parts fit together.",
    "A useful habit is to connect {s} to something the reader already knows.",
    "Most confusion about {s} comes from skipping the basic vocabulary.",
    "Looking at {s} from two angles makes the trade-offs visible.",
    "Small, deliberate practice with {s} builds lasting understanding.",
    "Each idea about {s} here builds on the one before it.",
    "Notice which questions about {s} remain open after this part.",
)
LANGUAGES = {
    ".py": "python",
    ".md": "markdown",
    ".toml": "toml",
    ".json": "json",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".js": "javascript",
    ".ts": "typescript",
    ".html": "html",
    ".css": "css",
    ".sql": "sql",
    ".txt": "text",
    ".cfg": "ini",
    ".ini": "ini",
}
LABEL_WORDS = {
    "month": ["January", "February", "March", "April", "May", "June", "July", "August"],
    "quarter": ["Q1 2024", "Q2 2024", "Q3 2024", "Q4 2024", "Q1 2025", "Q2 2025", "Q3 2025", "Q4 2025"],
    "year": [str(y) for y in range(2018, 2026)],
    "region": ["North", "South", "East", "West", "Central", "Coastal", "Highlands", "Islands"],
    "day": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday", "Monday+"],
}


class OfflineProvider:
    """Answers every request from its schema and context, deterministically."""

    name = "offline"
    context_window = 1_000_000
    default_model = MODEL_NAME

    def __init__(self, settings: ModelSettings | None = None) -> None:
        self.settings = settings or ModelSettings()

    async def complete(self, request: ModelRequest) -> ModelReply:
        answer = answer_for(request.output_schema, request.context, request.label)
        text = json.dumps(answer, ensure_ascii=False, indent=1)
        prompt_chars = sum(len(m.content) for m in request.messages)
        usage = Usage(calls=1, prompt_tokens=prompt_chars // 4 + 1, completion_tokens=len(text) // 4 + 1)
        return ModelReply(text=text, provider=self.name, model=MODEL_NAME, usage=usage, offline=True)


def answer_for(schema: dict[str, Any], context: dict[str, Any], label: str) -> Any:
    """The deterministic, schema-valid answer for `schema` given `context` (what `complete` returns, as data)."""
    seed = hashlib.sha256((label + json.dumps(context, sort_keys=True, default=str)).encode()).hexdigest()
    return _Writer(context, random.Random(seed)).value(schema, "", 0, {})


class _Writer:
    """Writes one schema-valid value; `siblings` are the fields already written beside it."""

    def __init__(self, context: dict[str, Any], rng: random.Random) -> None:
        self.rng = rng
        inputs = context.get("inputs") if isinstance(context.get("inputs"), dict) else {}
        self.inputs: dict[str, Any] = inputs or {}
        item = context.get("item") if isinstance(context.get("item"), dict) else {}
        self.topic = _topic(inputs or {}) or "the subject"
        self.item: dict[str, Any] = item or {}
        self.subject = str(self.item.get("title") or self.topic)
        self.item_index = _index_of(item or {})
        self._starts: dict[str, int] = {}

    def value(self, schema: dict[str, Any], name: str, index: int, siblings: dict[str, Any]) -> Any:
        if schema.get("enum"):
            return schema["enum"][(index + self.item_index) % len(schema["enum"])]
        kind = schema.get("type", "string")
        kind = kind[0] if isinstance(kind, list) else kind
        examples = schema.get("examples") or []
        if examples and kind != "object":
            return self.example(examples, name, schema.get("format"), index + self.item_index)
        if kind == "object":
            return self.obj(schema, name)
        if kind == "array":
            return self.array(schema, name, siblings)
        if kind in ("integer", "number"):
            return self.number(schema, name, index, siblings, integer=kind == "integer")
        if kind == "boolean":
            return index % 2 == 0
        return self.sized(self.string(schema, name, index, siblings), schema)

    def sized(self, text: str, schema: dict[str, Any]) -> str:
        """`text` cut to the field's `x-max-words` (and `maxLength`), or grown with sentences it does not repeat
        to its `x-min-words` (and `minLength`: a server that holds answers to a schema sends length bounds)."""
        least, most = schema.get("x-min-words"), schema.get("x-max-words")
        shortest, longest = schema.get("minLength") or 0, schema.get("maxLength")
        if isinstance(most, int) and word_count(text) > most:
            text = " ".join(text.split()[:most])
        if isinstance(longest, int) and len(text) > longest:
            text = text[:longest].rsplit(" ", 1)[0] if " " in text[:longest] else text[:longest]
        if not self._short(text, least, shortest):
            return text
        extra: list[str] = []
        for lap in range(len(FACETS) * len(SENTENCES)):
            facet = _facet(self.topic, lap // len(SENTENCES))
            extra.append(f"{_capitalise(facet)}: {SENTENCES[lap % len(SENTENCES)].format(s=self.subject)}")
            if not self._short(text.rstrip() + "\n\n" + " ".join(extra), least, shortest):
                break
        return text.rstrip() + "\n\n" + " ".join(extra)

    @staticmethod
    def _short(text: str, least: Any, shortest: int) -> bool:
        return (isinstance(least, int) and word_count(text) < least) or len(text) < shortest

    def example(self, examples: list[Any], name: str, fmt: str | None, position: int) -> Any:
        """The schema's example at `position`, numbered when the examples have run out and
        the value must stay unique (a file path, a title)."""
        chosen, lap = examples[position % len(examples)], position // len(examples) + 1
        if lap == 1 or not isinstance(chosen, str):
            return chosen
        if fmt == "path":
            stem, dot, suffix = chosen.rpartition(".")
            return f"{stem}_{lap}.{suffix}" if dot and "/" not in suffix else f"{chosen}_{lap}"
        return f"{chosen} ({lap})" if name == "title" else chosen

    def obj(self, schema: dict[str, Any], name: str) -> dict[str, Any]:
        props: dict[str, Any] = schema.get("properties", {})
        self._fields = set(props)
        result: dict[str, Any] = {}
        # Fields that depend on their siblings are written after them.
        for key in sorted(props, key=lambda k: k in ("rows", "answer", "code", "chart", "x", "y")):
            result[key] = self.value(props[key], key, 0, result)
            if key == "columns" and isinstance(result[key], list):
                self._columns = result[key]
        if {"x", "y"} <= props.keys() and isinstance(self._columns, list) and len(self._columns) > 1:
            result["x"], result["y"] = self._columns[0], self._columns[1]
        return {key: result[key] for key in props}

    _columns: list[Any] | None = None
    _fields: set[str] = set()  # noqa: RUF012 (replaced per object, never mutated)

    def array(self, schema: dict[str, Any], name: str, siblings: dict[str, Any]) -> list[Any]:
        low, high = schema.get("minItems", 0), schema.get("maxItems", 50)
        count = max(low, min(high, 4 if name == "choices" else 6 if name == "rows" else 3))
        item_schema = schema.get("items", {"type": "string"})
        if name == "rows" and isinstance(siblings.get("columns"), list):
            rows = self.rows(siblings["columns"], count)
            cells = list(item_schema.get("properties") or {})  # object rows: {label, value}, cells in order
            return [dict(zip(cells, row, strict=False)) for row in rows] if cells else rows
        if name == "items":
            items = [self.plan_item(item_schema, i) for i in range(count)]
            return share_totals(items, item_schema, self.inputs)
        if name == "choices":
            return self.choices(count)
        return [self.value(item_schema, name, i, siblings) for i in range(count)]

    def plan_item(self, schema: dict[str, Any], index: int) -> dict[str, Any]:
        props: dict[str, Any] = schema.get("properties", {})
        item = {key: self.value(spec, key, index, {}) for key, spec in props.items()}
        if "title" in props and not props["title"].get("examples"):
            item["title"] = _facet(self.subject, index)
        if "question" in props and props["question"].get("type") == "string" and "title" in item:
            item["question"] = f"What do the figures say about “{item['title']}”?"
        return item

    def choices(self, count: int) -> list[str]:
        correct = self.rng.randrange(count)
        self._correct = correct
        focus = f"“{self.subject}”"
        wrong = [
            f"{focus} has nothing to do with {self.topic}.",
            f"{focus} only matters to specialists.",
            f"{focus} was replaced long ago and is no longer used.",
            f"{focus} cannot be explained without advanced mathematics.",
            f"{focus} is a matter of opinion only.",
        ]
        right = f"{focus} is part of {self.topic}."
        return [right if i == correct else wrong[(i - (i > correct)) % len(wrong)] for i in range(count)]

    _correct = 0

    def rows(self, columns: list[Any], count: int) -> list[list[Any]]:
        labels = LABEL_WORDS.get(_label_kind(str(columns[0])))
        rows = []
        for r in range(count):
            label = labels[r % len(labels)] if labels else f"{columns[0]} {chr(65 + r % 26)}"
            values = [round(self.rng.uniform(10, 100) * (1 + r / 10), 1) for _ in columns[1:]]
            rows.append([label, *values])
        return rows

    def number(
        self, schema: dict[str, Any], name: str, index: int, siblings: dict[str, Any], *, integer: bool
    ) -> int | float:
        if name == "answer" and isinstance(siblings.get("choices"), list):
            return self._correct
        low = schema.get("minimum", 1)
        high = schema.get("maximum", max(low, 10) * 3)
        value = low + (high - low) * ((index + self.item_index) % 5) / 4
        return round(value) if integer else round(value, 2)

    def string(self, schema: dict[str, Any], name: str, index: int, siblings: dict[str, Any]) -> str:
        fmt = schema.get("format")
        if fmt == "markdown":
            return self.markdown()
        if fmt == "path" or name == "path":
            return f"{slug(self.subject, 40)}-{index + 1}.md"
        path = str(siblings.get("path") or self.item.get("path") or "")
        if fmt == "code" or name == "code":
            return source_file(path, self.subject, self.topic, str(self.inputs.get("framework") or ""))
        if name == "language":
            return LANGUAGES.get(suffix_of(path), "text")
        if name in ("title", "heading", "name"):
            return _capitalise(self.subject if name != "title" or index == 0 else _facet(self.topic, index))
        if name == "question" and "choices" in self._fields:
            return f"Which statement about “{self.subject}” is correct?"
        if "question" in name or "question" in str(schema.get("description", "")).lower():
            return f"How would you explain “{self.subject}” to a classmate in your own words?"
        if name == "explanation":
            return f"“{self.subject}” is part of {self.topic}; the other options misstate it."
        return self.sentence(name, index)

    def sentence(self, name: str, index: int) -> str:
        """A sentence about the topic; the items of one list (same `name`) get different ones."""
        if name not in self._starts:
            self._starts[name] = self.rng.randrange(len(SENTENCES))
        sentence = SENTENCES[(self._starts[name] + index) % len(SENTENCES)]
        return _capitalise(sentence.format(s=self.topic))

    def markdown(self) -> str:
        picks = self.rng.sample(range(len(SENTENCES)), 5)
        said = [_capitalise(SENTENCES[i].format(s=self.topic)) for i in picks]
        return (
            f"This part, “{self.subject}”, looks at one side of {self.topic}. {said[0]} {said[1]}\n\n"
            f"- {said[2]}\n- {said[3]}\n- {said[4]}\n\n"
            f"Together these points connect “{self.subject}” to the rest of {self.topic}.\n"
        )


def share_totals(items: list[dict[str, Any]], schema: dict[str, Any], inputs: dict[str, Any]) -> list[dict[str, Any]]:
    """`items` whose integer field named like the end of an integer input (`minutes`, `duration_minutes`)
    adds up to that input: a lesson's stages take the lesson's length, within each field's bounds."""
    for field, spec in (schema.get("properties") or {}).items():
        total = next(
            (
                value
                for name, value in inputs.items()
                if (name == field or name.endswith(f"_{field}")) and isinstance(value, int)
            ),
            None,
        )
        if spec.get("type") == "integer" and isinstance(total, int) and not isinstance(total, bool):
            shares = split_total(total, len(items), int(spec.get("minimum", 0)), int(spec.get("maximum", total)))
            for item, share in zip(items, shares, strict=True):
                item[field] = share
    return items


def split_total(total: int, parts: int, low: int, high: int) -> list[int]:
    """`parts` whole numbers within low..high that add up to `total` where bounds allow: the first and the
    last get one share, those between two (an opening and a close shorter than the body)."""
    if parts == 0:
        return []
    weights = [1 if i in (0, parts - 1) else 2 for i in range(parts)]
    values = [low] * parts
    left = total - low * parts
    while left > 0 and any(v < high for v in values):
        room = [i for i in range(parts) if values[i] < high]
        weight = sum(weights[i] for i in room)
        given = 0
        for i in room:
            share = min(high - values[i], max(1, left * weights[i] // weight), left - given)
            values[i] += share
            given += share
        left -= given
    return values


def _topic(inputs: dict[str, Any]) -> str:
    for key in TOPIC_KEYS:
        if isinstance(inputs.get(key), str) and inputs[key].strip():
            return str(inputs[key]).strip()
    strings = [v for v in inputs.values() if isinstance(v, str) and v.strip()]
    return strings[0].strip() if strings else ""


def _index_of(item: dict[str, Any]) -> int:
    match = re.match(r"(\d+)", str(item.get("key", "")))
    return int(match.group(1)) - 1 if match else 0


def _facet(subject: str, index: int) -> str:
    facet = FACETS[index % len(FACETS)].format(t=subject)
    return facet if index < len(FACETS) else f"{facet} ({index // len(FACETS) + 1})"


def _label_kind(column: str) -> str:
    lowered = column.lower()
    return next((kind for kind in LABEL_WORDS if kind in lowered), "")


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]

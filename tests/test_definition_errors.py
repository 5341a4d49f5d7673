"""Broken definitions, each reported by `agentflows validate` as one line with file and line.

Every case starts from a small valid definitions folder (`BASE_FILES`, written
into `tmp_path`), changes one thing, runs the real CLI entry point and checks
that stderr holds only `<file>:<line>: [<yaml path>: ]<message>` lines plus the
summary, no traceback, and the one problem the change should cause.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from agentflows.cli import main
from tests.conftest import SHIPPED_AGENTS

AGENT = "agent.yaml"
DECIDE = "prompts/demo/decide.md"
GENERATE = "prompts/demo/generate.md"
DOMAIN = "prompts/demo/domain.md"
LAYOUT = "layouts/document.html"
STYLE = "prompts/modules/style.md"
SYSTEM = "prompts/base/system.md"
CLASSIFIER = "prompts/router/classify.md"
CLASSIFIER_PROMPT = (
    "Which of these does «{{ inputs.request }}» ask for?\n{% for a in agents %}- {{ a.name }}\n{% endfor %}"
)
UPSTREAM = "lesson.yaml"

BASE_YAML = """\
name: demo
version: "1.0.0"
description: A few short sections on a topic.
content_type: text
run_name: "demo: {topic}"
inputs:
  topic:
    type: string
    description: What the sections are about.
    min_length: 3
  sections:
    type: integer
    description: How many sections to write.
    default: 2
    minimum: 1
    maximum: 5
  tone:
    type: string
    description: Voice of the writing.
    enum: [plain, playful]
    default: plain
prompts:
  domain: prompts/demo/domain.md
model:
  temperature: 0.5
retries:
  attempts: 2
timeout_seconds: 60
cache:
  expires_after: 7d
steps:
  decide:
    prompt: prompts/demo/decide.md
    returns:
      fields:
        subtitle: {type: string, description: One-line subtitle.}
      items:
        count: "{{ inputs.sections }}"
        max: 5
        fields:
          summary: {type: string, description: One sentence on the section.}
  generate:
    prompt: prompts/demo/generate.md
    concurrency: 2
    returns:
      body: {type: string, format: markdown, description: The section text.}
routing:
  keywords: [demo]
  patterns: ['\\bdemo\\b']
"""

BASE_FILES: dict[str, str] = {
    AGENT: BASE_YAML,
    SYSTEM: (
        "You are {{ agent.name }}: {{ agent.description }}\n"
        "{% if context.request %}The request: {{ context.request }}{% endif %}\n"
    ),
    DOMAIN: 'You write short, clear sections in a {{ inputs.tone }} voice.\n{% include "prompts/modules/style.md" %}\n',
    STYLE: "Keep sentences short.\n",
    DECIDE: (
        "Plan {{ inputs.sections }} sections on «{{ inputs.topic }}».\n"
        "Give the whole a title and a subtitle, and each section a title and a summary.\n"
    ),
    GENERATE: (
        'Write the section "{{ item.title }}" of "{{ plan.title }}".\n'
        "It covers: {{ item.summary }}\n"
        "Topic: {{ inputs.topic }}\n"
    ),
    LAYOUT: (
        "<!doctype html>\n"
        "<title>{{ title }}</title>\n"
        '{% for section in sections %}<section id="{{ section.key }}">{{ section.html }}</section>{% endfor %}\n'
    ),
}

PROBLEM_LINE = re.compile(r"^(?P<file>/[^:]+):(?P<line>[1-9]\d*): (?P<rest>\S.*)$")
SUMMARY_LINE = re.compile(r"^\d+ problem\(s\) found$")


def replace_once(text: str, old: str, new: str) -> str:
    """`text` with `old`, which must occur exactly once, replaced by `new`."""
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


def edit(old: str, new: str, file: str = AGENT) -> dict[str, str]:
    """The base `file` with `old` (which must occur exactly once) replaced by `new`."""
    return {file: replace_once(BASE_FILES[file], old, new)}


KNOWLEDGE_FILE = "knowledge/demo/facts.md"


def with_knowledge(block: str, files: Mapping[str, str | bytes] | None = None) -> dict[str, str | bytes | None]:
    """The base agent with a `knowledge:` key holding `block`, a knowledge file, and any other `files`."""
    return {
        AGENT: BASE_YAML + "knowledge:\n" + block,
        KNOWLEDGE_FILE: "# Facts\n\nThe demo's one fact.\n",
        **(files or {}),
    }


def with_checks(step: str, block: str) -> dict[str, str]:
    """The base agent with `checks:` (the YAML list `block`, indented under it) on model step `step`."""
    anchor = {
        "decide": "          summary: {type: string, description: One sentence on the section.}\n",
        "generate": "      body: {type: string, format: markdown, description: The section text.}\n",
    }[step]
    indented = "".join(f"      {line}\n" for line in block.splitlines())
    return edit(anchor, f"{anchor}    checks:\n{indented}")


@dataclass(frozen=True)
class Case:
    """One broken definition and the problem `validate` must report for it."""

    id: str
    files: dict[str, str | bytes | None]
    """Files to write over the base folder (None deletes one), relative to it."""
    where: str
    """File the problem must name, relative to the folder."""
    line: int | str
    """Line the problem must name, or a text that starts on that line (its first occurrence in `where`)."""
    path: str
    """YAML path the problem must name ('' when it names none)."""
    message: str
    """A distinctive part of the message."""
    extra: dict[str, str] = field(default_factory=dict)
    """Files to write next to the folder (outside it), relative to its parent."""


CASES = [
    # -- the YAML itself ----------------------------------------------------------------------------------
    Case(
        "yaml-syntax-error",
        edit("description: A few short sections on a topic.", "description: Sections: on a topic"),
        AGENT,
        3,
        "",
        "invalid YAML: mapping values are not allowed here",
    ),
    Case(
        "yaml-unclosed-flow-list",
        edit("  keywords: [demo]", "  keywords: [demo, sections"),
        AGENT,
        "  patterns:",
        "",
        "invalid YAML: while parsing a flow sequence, expected ',' or ']'",
    ),
    Case(
        "yaml-two-documents",
        {AGENT: BASE_YAML + "---\nname: other\n"},
        AGENT,
        "---",
        "",
        "expected a single document in the stream, but found another document",
    ),
    Case(
        "yaml-duplicate-key",
        edit("content_type: text\n", "content_type: text\nname: other\n"),
        AGENT,
        "name: other",
        "",
        "duplicate key 'name'; it is already set on line 1",
    ),
    Case(
        "yaml-key-read-as-boolean",
        edit("          summary: {type: string,", "          on: {type: string,"),
        AGENT,
        "          on:",
        "",
        "key 'on' was read as a boolean, but keys are names; put it in quotes",
    ),
    Case(
        "yaml-alias-loop",
        {AGENT: BASE_YAML + "loop: &loop [*loop]\n"},
        AGENT,
        "loop:",
        "",
        "contains an alias (*name) to itself",
    ),
    Case(
        "yaml-control-character",
        edit("A few short sections", "A few\x07short sections"),
        AGENT,
        3,
        "",
        "invalid YAML: the file holds the control character '\\x07'",
    ),
    Case(
        "file-not-utf8",
        {AGENT: BASE_YAML.replace("on a topic.", "on a topic \N{EURO SIGN}.").encode("cp1252")},
        AGENT,
        3,
        "",
        "the file is not UTF-8 text: byte 0x80 cannot be decoded",
    ),
    Case(
        "file-is-a-list",
        {AGENT: "- name: demo\n- version: '1.0.0'\n"},
        AGENT,
        1,
        "",
        "the file holds a list, but a definition is a mapping with keys such as name, version",
    ),
    Case("file-is-empty", {AGENT: "# nothing yet\n"}, AGENT, 1, "", "the file is empty; a definition is a mapping"),
    # -- missing keys -------------------------------------------------------------------------------------
    Case("missing-name", edit("name: demo\n", ""), AGENT, 1, "name", "required key 'name' is missing: Agent and flow"),
    Case(
        "missing-version",
        edit('version: "1.0.0"\n', ""),
        AGENT,
        1,
        "version",
        "required key 'version' is missing: Version such as \"1.0.0\" (quoted)",
    ),
    Case(
        "missing-description",
        edit("description: A few short sections on a topic.\n", ""),
        AGENT,
        1,
        "description",
        "required key 'description' is missing: One or two sentences",
    ),
    Case(
        "missing-content-type",
        edit("content_type: text\n", ""),
        AGENT,
        1,
        "content_type",
        "required key 'content_type' is missing: What the agent makes: text, code, chart, file, interactive or mixed.",
    ),
    Case(
        "missing-prompts",
        edit("prompts:\n  domain: prompts/demo/domain.md\n", ""),
        AGENT,
        1,
        "prompts",
        "required key 'prompts' is missing",
    ),
    Case(
        "missing-domain-prompt",
        edit("prompts:\n  domain: prompts/demo/domain.md\n", "prompts:\n  base: prompts/base/system.md\n"),
        AGENT,
        "prompts:",
        "prompts.domain",
        "required key 'domain' is missing: The agent's knowledge and voice",
    ),
    Case(
        "missing-steps",
        {AGENT: BASE_YAML.split("steps:\n")[0]},
        AGENT,
        1,
        "steps",
        "required key 'steps' is missing: The steps `decide` and `generate` (required)",
    ),
    Case(
        "missing-decide-prompt",
        edit("    prompt: prompts/demo/decide.md\n", ""),
        AGENT,
        "  decide:",
        "steps.decide.prompt",
        "required key 'prompt' is missing: The step's prompt template",
    ),
    Case(
        "missing-input-description",
        edit("    description: What the sections are about.\n", ""),
        AGENT,
        "  topic:",
        "inputs.topic.description",
        "required key 'description' is missing: Help text",
    ),
    Case(
        "key-without-value",
        edit("description: A few short sections on a topic.", "description:"),
        AGENT,
        3,
        "description",
        "'description' has no value; description is: One or two sentences",
    ),
    # -- unknown keys -------------------------------------------------------------------------------------
    Case(
        "unknown-top-level-key",
        edit("description: A few", "descripton: A few"),
        AGENT,
        "descripton:",
        "descripton",
        "unknown key 'descripton'; did you mean 'description'? Valid keys here: cache, content_type, description",
    ),
    Case(
        "unknown-key-nothing-close",
        {AGENT: BASE_YAML + "author: Ada\n"},
        AGENT,
        "author:",
        "author",
        "unknown key 'author'; valid keys here: cache, content_type",
    ),
    Case(
        "unknown-nested-key",
        edit("    concurrency: 2", "    concurency: 2"),
        AGENT,
        "concurency:",
        "steps.generate.concurency",
        "unknown key 'concurency'; did you mean 'concurrency'?",
    ),
    Case(
        "unknown-input-key",
        edit("    min_length: 3", "    min_lenght: 3"),
        AGENT,
        "min_lenght:",
        "inputs.topic.min_lenght",
        "did you mean 'min_length'?",
    ),
    # -- wrong types and values ---------------------------------------------------------------------------
    Case(
        "name-not-an-identifier",
        edit("name: demo", "name: Demo Agent"),
        AGENT,
        1,
        "name",
        "'Demo Agent' is not a name of lower case letters, digits and underscores that starts with a letter",
    ),
    Case(
        "input-name-not-an-identifier",
        edit("  topic:\n", "  Topic:\n"),
        AGENT,
        "Topic:",
        "inputs.Topic",
        "'Topic' is not a name of lower case letters",
    ),
    Case(
        "version-unquoted-float",
        edit('version: "1.0.0"', "version: 1.0"),
        AGENT,
        2,
        "version",
        "the value was read as a number (1.0), but text is expected here; put it in quotes",
    ),
    Case(
        "text-read-as-boolean",
        edit("description: A few short sections on a topic.", "description: yes"),
        AGENT,
        3,
        "description",
        "the value was read as a boolean (True), but text is expected here",
    ),
    Case(
        "content-type-not-in-enum",
        edit("content_type: text", "content_type: video"),
        AGENT,
        4,
        "content_type",
        "input should be 'text', 'code', 'chart', 'file', 'interactive' or 'mixed' (got 'video')",
    ),
    Case(
        "input-type-not-in-enum",
        edit("    type: integer", "    type: int"),
        AGENT,
        "type: int",
        "inputs.sections.type",
        "input should be 'string', 'integer', 'number', 'boolean' or 'list' (got 'int')",
    ),
    Case(
        "required-input-with-default",
        edit("    default: 2\n", "    default: 2\n    required: true\n"),
        AGENT,
        "  sections:",
        "inputs.sections",
        "a required input cannot have a default; remove one of them",
    ),
    Case(
        "default-of-wrong-type",
        edit("    default: 2", "    default: two"),
        AGENT,
        "default: two",
        "inputs.sections.default",
        "default 'two' does not fit the input",
    ),
    Case(
        "default-above-maximum",
        edit("    default: 2", "    default: 9"),
        AGENT,
        "default: 9",
        "inputs.sections.default",
        "default 9 does not fit the input: Input should be less than or equal to 5",
    ),
    Case(
        "default-not-in-enum",
        edit("    default: plain", "    default: grim"),
        AGENT,
        "default: grim",
        "inputs.tone.default",
        "default 'grim' does not fit the input: Input should be 'plain' or 'playful'",
    ),
    Case(
        "enum-value-of-wrong-type",
        edit("    enum: [plain, playful]", "    enum: [plain, 3]"),
        AGENT,
        "enum: [plain, 3]",
        "inputs.tone.enum",
        "enum value 3 is not a string",
    ),
    Case(
        "minimum-on-string-input",
        edit("    min_length: 3", "    minimum: 3"),
        AGENT,
        "  topic:",
        "inputs.topic",
        "minimum/maximum apply to integer and number inputs, not string",
    ),
    Case(
        "reserved-input-name",
        edit("  tone:\n", "  refresh:\n"),
        AGENT,
        "refresh:",
        "inputs.refresh",
        "input name 'refresh' is reserved for the flow; choose another (reserved: builds_on, context, refresh, review)",
    ),
    Case(
        "list-field-without-items",
        edit("      body: {type: string,", "      body: {type: list,"),
        AGENT,
        "      body:",
        "steps.generate.returns.body",
        "a list field needs `items`",
    ),
    Case(
        "object-field-without-fields",
        edit("        subtitle: {type: string,", "        subtitle: {type: object,"),
        AGENT,
        "subtitle:",
        "steps.decide.returns.fields.subtitle",
        "an object field needs `fields`",
    ),
    Case(
        "format-on-non-string-field",
        edit("        subtitle: {type: string,", "        subtitle: {type: integer, format: markdown,"),
        AGENT,
        "subtitle:",
        "steps.decide.returns.fields.subtitle",
        "format applies to string fields, not integer",
    ),
    Case(
        "empty-generate-returns",
        edit(
            "    returns:\n      body: {type: string, format: markdown, description: The section text.}",
            "    returns: {}",
        ),
        AGENT,
        "    returns: {}",
        "steps.generate.returns",
        "dictionary should have at least 1 item",
    ),
    Case(
        "bad-cache-duration",
        edit("  expires_after: 7d", "  expires_after: a week"),
        AGENT,
        "expires_after:",
        "cache.expires_after",
        "'a week' is not a duration; use seconds or e.g. '90s', '30m', '12h', '7d'",
    ),
    Case(
        "temperature-out-of-range",
        edit("  temperature: 0.5", "  temperature: 3"),
        AGENT,
        "temperature:",
        "model.temperature",
        "less than or equal to 2 (got 3)",
    ),
    Case(
        "retry-attempts-too-large",
        edit("  attempts: 2", "  attempts: 50"),
        AGENT,
        "attempts:",
        "retries.attempts",
        "less than or equal to 10 (got 50)",
    ),
    Case(
        "negative-timeout",
        edit("timeout_seconds: 60", "timeout_seconds: -5"),
        AGENT,
        "timeout_seconds:",
        "timeout_seconds",
        "greater than 0 (got -5)",
    ),
    Case(
        "section-not-a-mapping",
        edit("model:\n  temperature: 0.5", "model: gpt-4"),
        AGENT,
        "model:",
        "model",
        "'gpt-4' is not valid here: a mapping of keys to values is expected; model is: Model settings",
    ),
    Case(
        "keywords-not-a-list",
        edit("  keywords: [demo]", "  keywords: {demo: 1}"),
        AGENT,
        "keywords:",
        "routing.keywords",
        "input should be a valid list",
    ),
    Case(
        "invalid-routing-regex",
        edit("  patterns: ['\\bdemo\\b']", "  patterns:\n    - '\\bdemo\\b'\n    - '(demo'"),
        AGENT,
        "    - '(demo'",
        "routing.patterns[1]",
        "'(demo' is not a valid regular expression: missing ), unterminated subpattern",
    ),
    Case(
        "items-min-above-max",
        edit("        max: 5\n", "        min: 6\n        max: 5\n"),
        AGENT,
        "      items:",
        "steps.decide.returns.items",
        "min (6) is larger than max (5)",
    ),
    Case(
        "count-outside-bounds",
        edit('count: "{{ inputs.sections }}"', "count: 9"),
        AGENT,
        "      items:",
        "steps.decide.returns.items",
        "count 9 is outside min..max (1..5)",
    ),
    Case(
        "totals-of-a-text-field",
        edit(
            "        fields:\n          summary:",
            "        totals: {summary: 10}\n        fields:\n          summary:",
        ),
        AGENT,
        "        totals: {summary: 10}",
        "steps.decide.returns.items.totals.summary",
        "totals 'summary' is a string field; item number fields: none",
    ),
    Case(
        "totals-over-an-unknown-input",
        edit(
            "        fields:\n          summary:",
            '        totals: {words: "{{ inputs.length }}"}\n        fields:\n          words: {type: integer}\n'
            "          summary:",
        ),
        AGENT,
        '        totals: {words: "{{ inputs.length }}"}',
        "steps.decide.returns.items.totals.words",
        "totals words '{{ inputs.length }}' ",
    ),
    Case(
        "unknown-builder",
        edit("routing:\n", "  build:\n    builder: pdf\nrouting:\n"),
        AGENT,
        "builder: pdf",
        "steps.build.builder",
        "input should be 'document', 'code_tree', 'quiz_page' or 'data_report' (got 'pdf')",
    ),
    Case(
        "absolute-template-path",
        edit("    prompt: prompts/demo/decide.md", "    prompt: /etc/passwd"),
        AGENT,
        "prompt: /etc/passwd",
        "steps.decide.prompt",
        "'/etc/passwd' is not a path relative to the definitions folder",
    ),
    # -- templates ----------------------------------------------------------------------------------------
    Case(
        "template-missing",
        edit("    prompt: prompts/demo/decide.md", "    prompt: prompts/demo/decid.md"),
        AGENT,
        "prompt: prompts/demo/decid.md",
        "steps.decide.prompt",
        "template 'prompts/demo/decid.md' does not exist under",
    ),
    Case(
        "template-missing-did-you-mean",
        edit("    prompt: prompts/demo/decide.md", "    prompt: prompts/demo/decid.md"),
        AGENT,
        "prompt: prompts/demo/decid.md",
        "steps.decide.prompt",
        "; did you mean 'prompts/demo/decide.md'?",
    ),
    Case(
        "default-layout-missing",
        {LAYOUT: None},
        AGENT,
        "steps:",
        "steps.build",
        "template 'layouts/document.html' does not exist",
    ),
    Case(
        "template-syntax-error",
        edit("It covers: {{ item.summary }}", "It covers: {{ item.summary }", GENERATE),
        GENERATE,
        2,
        "steps.generate.prompt",
        "template syntax error: unexpected '}'",
    ),
    Case(
        "template-unclosed-block",
        edit("Topic: {{ inputs.topic }}", "{% if inputs.topic %}Topic: {{ inputs.topic }}", GENERATE),
        GENERATE,
        3,
        "steps.generate.prompt",
        "template syntax error: Unexpected end of template. Jinja was looking for the following tags: 'elif'",
    ),
    Case(
        "template-undefined-variable",
        edit("Topic: {{ inputs.topic }}", "Topic: {{ topic }}", GENERATE),
        GENERATE,
        3,
        "steps.generate.prompt",
        "uses variable 'topic', which this step does not provide; "
        "available: agent, context, inputs, item, knowledge, plan",
    ),
    Case(
        "template-unknown-input",
        edit("on «{{ inputs.topic }}»", "on «{{ inputs.topc }}»", DECIDE),
        DECIDE,
        1,
        "steps.decide.prompt",
        "uses inputs.topc, but 'inputs' has no 'topc'; it has: sections, tone, topic",
    ),
    Case(
        "template-unknown-item-field",
        edit("It covers: {{ item.summary }}", "It covers: {{ item['sumary'] }}", GENERATE),
        GENERATE,
        2,
        "steps.generate.prompt",
        "uses item.sumary, but 'item' has no 'sumary'; it has: key, summary, title",
    ),
    Case(
        "item-in-decide-prompt",
        edit("and each section a title", "and each section a title like {{ item.title }}", DECIDE),
        DECIDE,
        2,
        "steps.decide.prompt",
        "uses variable 'item', which this step does not provide; available: agent, context, inputs",
    ),
    Case(
        "undefined-variable-in-an-include",
        edit("Keep sentences short.", "Keep sentences short for {{ reader }}.", STYLE),
        STYLE,
        1,
        "prompts.domain",
        "uses variable 'reader', which this step does not provide",
    ),
    Case(
        "layout-undefined-variable",
        edit("<title>{{ title }}</title>", "<title>{{ heading }}</title>", LAYOUT),
        LAYOUT,
        2,
        "steps.build",
        "uses variable 'heading', which this step does not provide; available: agent, inputs, notice, offline, plan",
    ),
    Case(
        "include-outside-folder",
        edit('{% include "prompts/modules/style.md" %}', '{% include "../outside.md" %}', DOMAIN),
        DOMAIN,
        2,
        "prompts.domain",
        "include '../outside.md' leaves the definitions folder; paths are relative to",
        extra={"outside.md": "Outside the folder.\n"},
    ),
    Case(
        "include-missing-template",
        edit(
            '{% include "prompts/modules/style.md" %}',
            'Be brief.\n{% include "prompts/modules/styles.md" %}\n{% include "prompts/modules/style.md" %}',
            DOMAIN,
        ),
        DOMAIN,
        3,
        "prompts.domain",
        "includes 'prompts/modules/styles.md', which does not exist under",
    ),
    Case(
        "include-missing-did-you-mean",
        edit('{% include "prompts/modules/style.md" %}', '{% include "prompts/modules/styles.md" %}', DOMAIN),
        DOMAIN,
        2,
        "prompts.domain",
        "; did you mean 'prompts/modules/style.md'?",
    ),
    Case(
        "import-of-missing-template",
        edit(
            "Keep sentences short.", 'Keep sentences short.\n{% from "prompts/modules/macros.md" import note %}', STYLE
        ),
        STYLE,
        2,
        "prompts.domain",
        "includes 'prompts/modules/macros.md', which does not exist",
    ),
    Case(
        "include-computed-name",
        edit('{% include "prompts/modules/style.md" %}', '{% include "prompts/modules/" ~ inputs.tone %}', DOMAIN),
        DOMAIN,
        2,
        "prompts.domain",
        "includes a template whose name is computed; write the included path literally",
    ),
    # -- expressions, builder and plan --------------------------------------------------------------------
    Case(
        "count-unknown-input",
        edit('count: "{{ inputs.sections }}"', 'count: "{{ inputs.chapters }}"'),
        AGENT,
        "count:",
        "steps.decide.returns.items.count",
        "count '{{ inputs.chapters }}' uses inputs.chapters, but 'inputs' has no 'chapters'",
    ),
    Case(
        "count-invalid-expression",
        edit('count: "{{ inputs.sections }}"', 'count: "{{ inputs.sections + }}"'),
        AGENT,
        "count:",
        "steps.decide.returns.items.count",
        "count '{{ inputs.sections + }}' is not a valid expression",
    ),
    Case(
        "run-name-unknown-input",
        edit('run_name: "demo: {topic}"', 'run_name: "demo: {subject}"'),
        AGENT,
        5,
        "run_name",
        "run_name uses {subject}, which is not an input; inputs: topic, sections, tone",
    ),
    Case(
        "run-name-bad-format",
        edit('run_name: "demo: {topic}"', 'run_name: "demo: {topic"'),
        AGENT,
        5,
        "run_name",
        "run_name 'demo: {topic' is not a valid format string",
    ),
    Case(
        "builder-field-missing",
        edit("      body: {type: string,", "      text: {type: string,"),
        AGENT,
        "    returns:\n      text:",
        "steps.generate.returns",
        "builder 'document' needs a draft field 'body' (string with format markdown); declare it here or in the plan",
    ),
    Case(
        "builder-field-wrong-format",
        edit("format: markdown", "format: plain"),
        AGENT,
        "      body:",
        "steps.generate.returns.body",
        "builder 'document' needs 'body' to be string with format markdown, not string with format plain",
    ),
    Case(
        "plan-field-named-title",
        edit("        subtitle: {type: string,", "        title: {type: string,"),
        AGENT,
        "        title:",
        "steps.decide.returns.fields.title",
        "plan field 'title' is built in; choose another name",
    ),
    Case(
        "item-field-named-key",
        edit("          summary: {type: string,", "          key: {type: string,"),
        AGENT,
        "          key:",
        "steps.decide.returns.items.fields.key",
        "item field 'key' is built in; choose another name",
    ),
    Case(
        "item-title-not-a-string",
        edit("          summary: {type: string,", "          title: {type: integer,"),
        AGENT,
        "          title:",
        "steps.decide.returns.items.fields.title",
        "an item's title is a string",
    ),
    # -- checks -------------------------------------------------------------------------------------------
    Case(
        "check-syntax-error",
        with_checks("decide", '- that: "plan.items | length >"\n  message: "a plan needs items"'),
        AGENT,
        '      - that: "plan.items | length >"',
        "steps.decide.checks[0].that",
        "that 'plan.items | length >' is not a valid expression: unexpected 'end of template'",
    ),
    Case(
        "check-two-expressions",
        with_checks("decide", '- that: "plan.title }} {{ plan.items"\n  message: "x"'),
        AGENT,
        "      - that:",
        "steps.decide.checks[0].that",
        "is not a valid expression: unexpected '}}' after the expression",
    ),
    Case(
        "check-unknown-input",
        with_checks("decide", '- that: "plan.items | length == inputs.chapters"\n  message: "one item a chapter"'),
        AGENT,
        "      - that:",
        "steps.decide.checks[0].that",
        "uses inputs.chapters, but 'inputs' has no 'chapters'; it has: sections, tone, topic",
    ),
    Case(
        "check-unknown-variable",
        with_checks("generate", '- that: "bodyy | wordcount > 50"\n  message: "write more"'),
        AGENT,
        "      - that:",
        "steps.generate.checks[0].that",
        "uses variable 'bodyy', which this step does not provide; available: agent, body, context, inputs, item, plan",
    ),
    Case(
        "check-item-in-decide",
        with_checks("decide", '- that: "item.title != plan.title"\n  message: "x"'),
        AGENT,
        "      - that:",
        "steps.decide.checks[0].that",
        "uses variable 'item', which this step does not provide; available: agent, context, inputs, plan",
    ),
    Case(
        "check-it-without-each",
        with_checks("decide", '- that: "it.summary"\n  message: "every section needs a summary"'),
        AGENT,
        "      - that:",
        "steps.decide.checks[0].that",
        "uses variable 'it', which this step does not provide",
    ),
    Case(
        "check-message-syntax-error",
        with_checks("decide", '- that: "plan.items"\n  message: "needs {{ inputs.sections } items"'),
        AGENT,
        "        message:",
        "steps.decide.checks[0].message",
        "message 'needs {{ inputs.sections } items' is not a valid template: unexpected '}'",
    ),
    Case(
        "check-each-unknown-plan-field",
        with_checks("decide", '- each: plan.sections\n  that: "it.summary"\n  message: "x"'),
        AGENT,
        "      - each:",
        "steps.decide.checks[0].each",
        "uses plan.sections, but 'plan' has no 'sections'; it has: items, subtitle, title",
    ),
    Case(
        "check-without-message",
        with_checks("generate", '- that: "body | wordcount > 50"'),
        AGENT,
        "      - that:",
        "steps.generate.checks[0].message",
        "required key 'message' is missing: What is wrong when it is false",
    ),
    Case(
        "check-field-hides-a-variable",
        {
            AGENT: replace_once(
                with_checks("generate", '- that: "body"\n  message: "write it"')[AGENT],
                "      body: {type: string,",
                "      plan: {type: string, description: x}\n      body: {type: string,",
            )
        },
        AGENT,
        "      plan:",
        "steps.generate.returns.plan",
        "draft field 'plan' would hide the checks' variable 'plan'; choose another name",
    ),
    # -- the folder ---------------------------------------------------------------------------------------
    Case(
        "duplicate-agent-names",
        {"other.yaml": "# The same agent again, under another file name.\n" + BASE_YAML},
        "other.yaml",
        2,
        "name",
        "agent name 'demo' is already used by agent.yaml; names must be unique",
    ),
    # -- the router's classifier prompt (optional; checked against what the classifier renders it with) -----
    Case(
        "classifier-syntax-error",
        {CLASSIFIER: CLASSIFIER_PROMPT.replace("{{ a.name }}", "{{ a.name }")},
        CLASSIFIER,
        "{% for a in agents %}",
        "",
        "template syntax error: unexpected '}'",
    ),
    Case(
        "classifier-unknown-variable",
        {CLASSIFIER: CLASSIFIER_PROMPT + "\nMake it fit {{ plan.title }}.\n"},
        CLASSIFIER,
        "Make it fit",
        "",
        "uses variable 'plan', which this step does not provide; available: agent, agents, context, inputs",
    ),
    Case(
        "classifier-input-it-does-not-get",
        {CLASSIFIER: CLASSIFIER_PROMPT.replace("inputs.request", "inputs.topic")},
        CLASSIFIER,
        1,
        "",
        "uses inputs.topic, but 'inputs' has no 'topic'; it has: request",
    ),
    Case(
        "classifier-includes-a-missing-template",
        {CLASSIFIER: CLASSIFIER_PROMPT + '\n{% include "prompts/router/cards.md" %}\n'},
        CLASSIFIER,
        "{% include",
        "",
        "includes 'prompts/router/cards.md', which does not exist under",
    ),
    Case(
        "classifier-system-prompt-uses-an-agent-input",
        {CLASSIFIER: CLASSIFIER_PROMPT, SYSTEM: BASE_FILES[SYSTEM] + "Stay on {{ inputs.topic }}.\n"},
        SYSTEM,
        "Stay on",
        "",
        "uses inputs.topic, but 'inputs' has no 'topic'; it has: request",
    ),
    # -- review -------------------------------------------------------------------------------------------
    Case(
        "review-timeout-not-a-duration",
        {AGENT: BASE_YAML + "review: {default: true, timeout: tomorrow}\n"},
        AGENT,
        "review:",
        "review.timeout",
        "'tomorrow' is not a duration; use seconds or e.g. '90s', '30m', '12h', '7d'",
    ),
    Case(
        "review-timeout-too-long",
        {AGENT: BASE_YAML + "review:\n  timeout: 45d\n"},
        AGENT,
        "  timeout: 45d",
        "review.timeout",
        "review timeout '45d' is longer than 30 days",
    ),
    Case(
        "review-unknown-outcome",
        {AGENT: BASE_YAML + "review:\n  on_timeout: cancel\n"},
        AGENT,
        "  on_timeout: cancel",
        "review.on_timeout",
        "'fail' or 'approve'",
    ),
    Case(
        "review-no-rounds",
        {AGENT: BASE_YAML + "review:\n  rounds: 0\n"},
        AGENT,
        "  rounds: 0",
        "review.rounds",
        "greater than or equal to 1",
    ),
    # -- knowledge ----------------------------------------------------------------------------------------
    Case(
        "knowledge-source-missing",
        with_knowledge("  sources:\n    - knowledge/demo/\n    - knowledge/missing/\n"),
        AGENT,
        "    - knowledge/missing/",
        "knowledge.sources[1]",
        "knowledge source 'knowledge/missing/' does not exist under",
    ),
    Case(
        "knowledge-source-leaves-the-folder",
        with_knowledge("  sources:\n    - ../notes/\n"),
        AGENT,
        "    - ../notes/",
        "knowledge.sources[0]",
        "a file or folder relative to the definitions folder, such as knowledge/lesson_plan/ (no '..'",
        extra={"notes/facts.md": "# Outside\nNot part of the definitions.\n"},
    ),
    Case(
        "knowledge-source-absolute",
        with_knowledge("  sources: [/etc/]\n"),
        AGENT,
        "  sources: [/etc/]",
        "knowledge.sources[0]",
        "a file or folder relative to the definitions folder",
    ),
    Case(
        "knowledge-source-not-text",
        with_knowledge("  sources: [knowledge/demo/table.csv]\n", {"knowledge/demo/table.csv": "a,b\n1,2\n"}),
        AGENT,
        "  sources:",
        "knowledge.sources[0]",
        "knowledge source 'knowledge/demo/table.csv' is not a Markdown or text file; knowledge files end in .markdown",
    ),
    Case(
        "knowledge-folder-without-knowledge-files",
        with_knowledge("  sources: [knowledge/tables/]\n", {"knowledge/tables/table.csv": "a,b\n"}),
        AGENT,
        "  sources:",
        "knowledge.sources[0]",
        "knowledge folder 'knowledge/tables/' holds no knowledge files (.markdown, .md, .txt)",
    ),
    Case(
        "knowledge-file-not-utf8",
        with_knowledge(
            "  sources: [knowledge/demo/]\n",
            {"knowledge/demo/old.txt": "caf\N{LATIN SMALL LETTER E WITH ACUTE}".encode("cp1252")},
        ),
        AGENT,
        "  sources:",
        "knowledge.sources[0]",
        "knowledge file 'knowledge/demo/old.txt' is not UTF-8 text (byte 3); save it as UTF-8",
    ),
    Case(
        "knowledge-without-sources",
        with_knowledge("  top_k: 3\n"),
        AGENT,
        "knowledge:",
        "knowledge.sources",
        "required key 'sources' is missing",
    ),
    Case(
        "knowledge-top-k-zero",
        with_knowledge("  sources: [knowledge/demo/]\n  top_k: 0\n"),
        AGENT,
        "  top_k: 0",
        "knowledge.top_k",
        "0",
    ),
    Case(
        "knowledge-input-unknown",
        with_knowledge("  sources: [knowledge/demo/]\n  input: material\n"),
        AGENT,
        "  input: material",
        "knowledge.input",
        "'material' is not an input; inputs: topic, sections, tone",
    ),
    Case(
        "knowledge-input-not-text",
        with_knowledge("  sources: [knowledge/demo/]\n  input: sections\n"),
        AGENT,
        "  input: sections",
        "knowledge.input",
        "input 'sections' is integer; a knowledge input holds folders or s3:// prefixes",
    ),
    Case(
        "knowledge-query-unknown-item-field",
        with_knowledge("  sources: [knowledge/demo/]\n  query:\n    generate: '{{ item.sumary }}'\n"),
        AGENT,
        "    generate:",
        "knowledge.query.generate",
        "query '{{ item.sumary }}' uses item.sumary, but 'item' has no 'sumary'; it has: key, summary, title",
    ),
    Case(
        "knowledge-query-item-in-decide",
        with_knowledge("  sources: [knowledge/demo/]\n  query: {decide: '{{ item.title }}'}\n"),
        AGENT,
        "  query:",
        "knowledge.query.decide",
        "query '{{ item.title }}' uses variable 'item', which this step does not provide",
    ),
]


UPSTREAM_YAML = replace_once(BASE_YAML, "name: demo", "name: lesson").replace("prompts/demo/", "prompts/lesson/")
"""A second valid agent, `lesson`, with templates of its own, that `demo` may build on (its plan has a
`subtitle` field)."""
UPSTREAM_FILES = {
    UPSTREAM: UPSTREAM_YAML,
    **{name.replace("/demo/", "/lesson/"): BASE_FILES[name] for name in (DECIDE, GENERATE, DOMAIN)},
}


def builds_on(uses: str, **files: str) -> dict[str, str | bytes | None]:
    """The base folder plus the `lesson` agent, with `demo` given this `uses` block (and files edited)."""
    return {**UPSTREAM_FILES, AGENT: BASE_YAML + uses, **files}


EARLIER = "uses:\n  lesson: {as: earlier}\n"
CASES += [
    # -- what an agent builds on (`uses`), checked across the folder -------------------------------------
    Case(
        "uses-an-agent-that-does-not-exist",
        builds_on("uses:\n  lessen: {as: earlier}\n"),
        AGENT,
        "  lessen:",
        "uses.lessen",
        "'lessen' is not an agent in",
    ),
    Case(
        "uses-in-a-cycle",
        {**UPSTREAM_FILES, UPSTREAM: UPSTREAM_YAML + "uses:\n  demo: {}\n", AGENT: BASE_YAML + EARLIER},
        AGENT,
        "  lesson:",
        "uses.lesson",
        "'demo' builds on 'lesson', which leads back to it (demo → lesson → demo)",
    ),
    Case(
        "uses-a-field-the-upstream-lacks",
        builds_on(
            EARLIER, **{DECIDE: BASE_FILES[DECIDE] + "{% if earlier %}After {{ earlier.subtitel }}.{% endif %}\n"}
        ),
        DECIDE,
        "{% if earlier",
        "uses.lesson",
        "uses earlier.subtitel, but 'earlier' has no 'subtitel'; it has: agent, content_id, inputs, items, location, "
        "subtitle, text, title",
    ),
    Case(
        "uses-the-upstream-without-checking-it-is-there",
        builds_on(EARLIER, **{GENERATE: BASE_FILES[GENERATE] + "It follows {{ earlier.title }}.\n"}),
        GENERATE,
        "It follows",
        "uses.lesson",
        "reads 'earlier' outside `{% if earlier %}`; it is none when 'lesson' is not part of the run",
    ),
    Case(
        "uses-a-built-in-variable-name",
        builds_on("uses:\n  lesson: {as: plan}\n"),
        AGENT,
        "  lesson: {as: plan}",
        "uses.lesson.as",
        "template variable 'plan' is built in; set another name with `as`",
    ),
    Case("uses-itself", builds_on("uses:\n  demo: {}\n"), AGENT, "  demo: {}", "uses.demo", "cannot build on itself"),
    Case(
        "uses-a-variable-that-is-not-a-name",
        builds_on("uses:\n  lesson: {as: Earlier}\n"),
        AGENT,
        "  lesson:",
        "uses.lesson.as",
        "'Earlier' is not a name of lower case letters, digits and underscores",
    ),
    Case(
        "uses-an-unknown-key",
        builds_on("uses:\n  lesson: {name: earlier}\n"),
        AGENT,
        "  lesson:",
        "uses.lesson.name",
        "unknown key 'name'; valid keys here: as",
    ),
    # -- size words the router maps onto inputs ---------------------------------------------------------
    Case(
        "sizes-an-unknown-input",
        {AGENT: BASE_YAML + "  sizes:\n    short: {sectionz: 1}\n"},
        AGENT,
        "    short:",
        "routing.sizes.short.sectionz",
        "'sectionz' is not an input; inputs: topic, sections, tone",
    ),
    Case(
        "sizes-a-value-that-does-not-fit",
        {AGENT: BASE_YAML + "  sizes:\n    long: {sections: 9}\n"},
        AGENT,
        "    long:",
        "routing.sizes.long.sections",
        "9 does not fit input 'sections': Input should be less than or equal to 5",
    ),
    Case(
        "sizes-an-unknown-size-word",
        {AGENT: BASE_YAML + "  sizes:\n    tiny: {sections: 1}\n"},
        AGENT,
        "    tiny:",
        "routing.sizes.tiny",
        "'short', 'medium' or 'long'",
    ),
]


def write_files(folder: Path, files: Mapping[str, str | bytes | None]) -> None:
    """Write (or, for None, delete) each file relative to `folder`; text as UTF-8."""
    for name, content in files.items():
        target = folder / name
        if content is None:
            target.unlink()
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content.encode() if isinstance(content, str) else content)


def line_number(case: Case, folder: Path) -> int:
    """The line the case expects: given, or the line its text starts on (first occurrence in the named file)."""
    if isinstance(case.line, int):
        return case.line
    text = (folder / case.where).read_bytes().decode(errors="replace")
    assert case.line in text, f"{case.line!r} is not in {case.where}"
    return text[: text.index(case.line)].count("\n") + 1


def validate(capsys: pytest.CaptureFixture[str], path: Path) -> tuple[int, list[str]]:
    """Run `agentflows validate path`; return the exit code and the problem lines (summary checked and removed)."""
    code = main(["validate", str(path)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    lines = err.splitlines()
    if code == 0:
        assert lines == []
        return code, []
    assert lines, "validate failed without saying why"
    assert SUMMARY_LINE.match(lines[-1]), lines[-1]
    assert lines[-1] == f"{len(lines) - 1} problem(s) found"
    for line in lines[:-1]:
        match = PROBLEM_LINE.match(line)
        assert match, f"not '<file>:<line>: <message>': {line!r}"
        assert Path(match["file"]).is_file(), f"names no existing file: {line!r}"
    return code, lines[:-1]


@pytest.fixture
def base(tmp_path: Path) -> Path:
    """A valid definitions folder with one agent, `demo`."""
    folder = tmp_path / "definitions"
    write_files(folder, dict(BASE_FILES))
    return folder


def test_the_base_folder_is_valid(capsys: pytest.CaptureFixture[str], base: Path) -> None:
    code, problems = validate(capsys, base)

    assert (code, problems) == (0, [])


def test_the_shipped_definitions_are_valid(capsys: pytest.CaptureFixture[str], definitions: Path) -> None:
    code, problems = validate(capsys, definitions)

    assert (code, problems) == (0, [])
    assert {p.stem for p in definitions.glob("*.yaml")} == set(SHIPPED_AGENTS)


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 45
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_broken_definition_gets_a_one_line_error(capsys: pytest.CaptureFixture[str], base: Path, case: Case) -> None:
    write_files(base, case.files)
    write_files(base.parent, case.extra)

    code, problems = validate(capsys, base)

    assert code == 1
    where = f"{base / case.where}:{line_number(case, base)}: " + (f"{case.path}: " if case.path else "")
    matching = [p for p in problems if p.startswith(where) and case.message in p]
    assert matching, f"expected {where}…{case.message}…, got:\n" + "\n".join(problems)


def test_every_problem_of_a_file_is_reported_at_once(capsys: pytest.CaptureFixture[str], base: Path) -> None:
    broken = BASE_YAML
    for old, new in [
        ("description: A few", "descripton: A few"),
        ("    type: integer", "    type: int"),
        ("  temperature: 0.5", "  temperature: 3"),
        ("  attempts: 2", "  attempts: 50"),
    ]:
        broken = replace_once(broken, old, new)
    write_files(base, {AGENT: broken})

    code, problems = validate(capsys, base)

    assert code == 1
    assert [p.removeprefix(f"{base / AGENT}:").split(": ")[:2] for p in problems] == [
        ["3", "descripton"],
        ["12", "inputs.sections.type"],
        ["25", "model.temperature"],
        ["27", "retries.attempts"],
    ]


def test_every_template_and_reference_problem_is_reported_at_once(
    capsys: pytest.CaptureFixture[str], base: Path
) -> None:
    write_files(
        base,
        {
            **edit('run_name: "demo: {topic}"', 'run_name: "demo: {subject}"'),
            **edit("Topic: {{ inputs.topic }}", "Topic: {{ topic }}", GENERATE),
            **edit("on «{{ inputs.topic }}»", "on «{{ inputs.topc }}»", DECIDE),
            **edit("Keep sentences short.", "Keep sentences short. {% if %}", STYLE),
            LAYOUT: None,
        },
    )

    code, problems = validate(capsys, base)

    assert code == 1
    assert sorted(p.removeprefix(f"{base}/").split(": ")[0] for p in problems) == [
        "agent.yaml:31",  # steps: the default layout is missing
        "agent.yaml:5",  # run_name: {subject}
        "prompts/demo/decide.md:1",  # inputs.topc
        "prompts/demo/generate.md:3",  # topic
        "prompts/modules/style.md:1",  # {% if %}
    ]


def test_problems_in_several_files_are_all_reported(capsys: pytest.CaptureFixture[str], base: Path) -> None:
    second = BASE_YAML.replace("name: demo", "name: second").replace("  temperature: 0.5", "  temperature: 3")
    write_files(base, {**edit("description: A few", "descripton: A few"), "second.yaml": second})

    code, problems = validate(capsys, base)

    assert code == 1
    assert len(problems) == 2
    assert problems[0].startswith(f"{base / AGENT}:3: descripton: ")
    assert problems[1].startswith(f"{base / 'second.yaml'}:25: model.temperature: ")


def test_validating_one_file_reports_its_problem(capsys: pytest.CaptureFixture[str], base: Path) -> None:
    write_files(base, edit("description: A few", "descripton: A few"))

    code, problems = validate(capsys, base / AGENT)

    assert code == 1
    assert problems == [
        f"{base / AGENT}:3: descripton: unknown key 'descripton'; did you mean 'description'? "
        + "Valid keys here: cache, content_type, description, inputs, knowledge, model, name, prompts, retries, "
        + "review, routing, run_name, steps, timeout_seconds, uses, version"
    ]


def test_validating_one_file_checks_what_it_uses_against_the_files_beside_it(
    capsys: pytest.CaptureFixture[str], base: Path
) -> None:
    write_files(base, builds_on("uses:\n  lessen: {as: earlier}\n"))

    code, problems = validate(capsys, base / AGENT)
    valid, _ = validate(capsys, base / UPSTREAM)

    assert code == 1 and valid == 0
    line = (base / AGENT).read_text().split("\n").index("  lessen: {as: earlier}") + 1
    assert [p.removeprefix(f"{base / AGENT}:").split(": ")[:2] for p in problems] == [[str(line), "uses.lessen"]]
    assert "did you mean 'lesson'?" in problems[0]


def test_a_template_problem_the_classifier_shares_with_an_agent_is_reported_once(
    capsys: pytest.CaptureFixture[str], base: Path
) -> None:
    shared = f'{CLASSIFIER_PROMPT}\n{{% include "{STYLE}" %}}\n'
    write_files(base, {CLASSIFIER: shared, **edit("Keep sentences short.", "Keep sentences short. {% if %}", STYLE)})

    code, problems = validate(capsys, base)

    assert code == 1
    assert [p.removeprefix(f"{base}/").split(": ")[0] for p in problems] == ["prompts/modules/style.md:1"]

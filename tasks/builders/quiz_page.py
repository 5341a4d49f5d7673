"""Quiz page builder: questions → a self-contained interactive HTML page.

Each draft is one multiple-choice question: `question`, `choices`, `answer` (the
0-based index of the right choice) and `explanation`. The layout receives
`questions` (mappings with those keys plus `key` and `title`) and `quiz_json`,
the same data as JSON that is safe to place inside a `<script>` element. The
page needs no network: styles and script are inline.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from markupsafe import Markup

from agentflows.tasks.artifacts import BuiltFile
from agentflows.tasks.builders.common import (
    Assembly,
    BuildJob,
    html_file,
    no_plan_checks,
    render_layout,
    section_fields,
)

REQUIRES = {
    "question": ("string", None),
    "choices": ("list", None),
    "answer": ("integer", None),
    "explanation": ("string", None),
}
LAYOUT_VARIABLES = frozenset({"questions", "quiz_json"})


check_plan = no_plan_checks


def check(fields: Mapping[str, Any]) -> list[str]:
    """Problems with one question that a model could fix when asked again."""
    choices, answer = fields.get("choices"), fields.get("answer")
    if not isinstance(choices, list) or len(choices) < 2:
        return ["`choices` must list at least two answers"]
    if len({str(c).strip().lower() for c in choices}) != len(choices):
        return ["`choices` repeats an answer; make every choice different"]
    if not isinstance(answer, int) or isinstance(answer, bool) or not 0 <= answer < len(choices):
        return [f"`answer` must be the 0-based index of the right choice, 0 to {len(choices) - 1}; got {answer!r}"]
    return []


def assemble(job: BuildJob) -> Assembly:
    questions = []
    for draft in job.drafts:
        fields = section_fields(job, draft)
        questions.append(
            {
                "key": draft.item_key,
                "title": draft.title,
                "question": fields["question"],
                "choices": fields["choices"],
                "answer": fields["answer"],
                "explanation": fields["explanation"],
            }
        )
    data = {"title": job.plan.title, "offline": job.offline, "questions": questions}
    page = render_layout(job, questions=questions, quiz_json=script_json(data))
    return Assembly(
        files=(
            html_file("index.html", page),
            BuiltFile(
                path="quiz.json", media_type="application/json", text=json.dumps(data, indent=2, ensure_ascii=False)
            ),
        ),
        primary="index.html",
        metadata={"questions": len(questions), "interactive": True},
    )


def script_json(data: object) -> Markup:
    """JSON that cannot close the `<script>` element it sits in."""
    text = json.dumps(data, ensure_ascii=False)
    for char, escape in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escape)
    return Markup(text)

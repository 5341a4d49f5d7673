"""Builders turn offline drafts into the files a reader opens: the right files, an
offline notice, model output that can never become a live script, and draft
checks that reject what a builder cannot use with a message the model can act on."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from typing import Any

import pytest

from agentflows.tasks.artifacts import BuiltContent, Draft, Plan
from agentflows.tasks.builders import code_tree, data_report, document, quiz_page
from agentflows.tasks.builders.common import OFFLINE_NOTICE
from agentflows.tasks.errors import BuildError, ModelOutputError
from agentflows.tasks.llm import ModelReply, ModelRequest, ModelSettings, OfflineProvider
from agentflows.tasks.steps import write_draft
from tests.conftest import SHIPPED_AGENTS
from tests.offline_steps import CONTEXT, OfflineRun, offline_run, with_fields
from tests.providers import using

XSS = "<script>alert(1)</script>"


def scripts(html: str) -> list[str]:
    """Every opening script tag of a page, whatever its case."""
    return re.findall(r"<script\b", html, flags=re.IGNORECASE)


def embedded_quiz(page: str) -> str:
    """The JSON text the quiz page's own script starts from."""
    match = re.search(r"<script>\s*const quiz = (.*?);\n", page, flags=re.DOTALL)
    assert match, "the quiz page embeds its questions in its script"
    return match.group(1)


def online(run: OfflineRun) -> tuple[Plan, tuple[Draft, ...]]:
    """The run's plan and drafts as if a real model had written them."""

    def real(artifact: Any) -> Any:
        return artifact.model_copy(update={"provenance": artifact.provenance.model_copy(update={"offline": False})})

    return real(run.plan), tuple(real(d) for d in run.drafts)


def replaced(run: OfflineRun, index: int, **fields: Any) -> BuiltContent:
    """Build the run with the fields of draft `index` replaced."""
    drafts = list(run.drafts)
    drafts[index] = with_fields(drafts[index], **fields)
    return run.build(tuple(drafts))


# -- the files each builder makes -------------------------------------------------------


@pytest.mark.parametrize("agent", ["ebook", "lesson_plan"])
def test_document_builds_an_html_page_and_a_markdown_book(agent: str) -> None:
    run = offline_run(agent)

    built = run.build()

    assert {f.path: f.media_type for f in built.files} == {"index.html": "text/html", "index.md": "text/markdown"}
    assert built.primary == "index.html" and built.title == run.plan.title
    source, page = built.file("index.md").text, built.file("index.html").text
    assert source.startswith(f"# {run.plan.title}\n")
    for draft in run.drafts:
        assert f"## {draft.title}\n" in source
        assert str(draft.fields["body"]).strip() in source
        assert f'id="{draft.item_key}"' in page
    assert page.count("<li>") >= 3 * len(run.drafts), "the Markdown bullet lists become HTML lists"
    assert built.metadata["sections"] == len(run.drafts)


def test_quiz_page_builds_a_page_and_its_questions_as_json() -> None:
    run = offline_run("quiz")

    built = run.build()

    assert {f.path for f in built.files} == {"index.html", "quiz.json"} and built.primary == "index.html"
    data = json.loads(built.file("quiz.json").text)
    assert data["title"] == run.plan.title and data["offline"] is True
    assert [(q["key"], q["choices"], q["answer"]) for q in data["questions"]] == [
        (d.item_key, d.fields["choices"], d.fields["answer"]) for d in run.drafts
    ]
    page = built.file("index.html").text
    assert page.count('<fieldset class="question"') == len(run.drafts)
    assert len(scripts(page)) == 1


def test_code_tree_writes_one_file_per_draft_and_a_preview() -> None:
    run = offline_run("api_scaffold")

    built = run.build()

    paths = [str(item.fields["path"]) for item in run.plan.items]
    assert [f.path for f in built.files] == [code_tree.PREVIEW, *paths]
    assert built.primary == code_tree.PREVIEW
    for draft, path in zip(run.drafts, paths, strict=True):
        assert built.file(path).text == draft.fields["code"]
    assert built.file("app/main.py").media_type == "text/x-python"
    assert built.file("README.md").media_type == "text/markdown"
    preview = built.file(code_tree.PREVIEW).text
    assert all(f"<code>{path}</code>" in preview for path in paths)
    assert built.metadata["languages"] == ["markdown", "python"]


def test_data_report_writes_report_tables_and_vega_lite_charts() -> None:
    run = offline_run("data_report", sections=3)

    built = run.build()

    keys = [d.item_key for d in run.drafts]
    assert {f.path for f in built.files} == {
        "index.html",
        "report.md",
        *(f"tables/{k}.csv" for k in keys),
        *(f"charts/{k}.vl.json" for k in keys),
    }
    for draft in run.drafts:
        columns, rows, chart = draft.fields["columns"], draft.fields["rows"], draft.fields["chart"]
        assert isinstance(columns, list) and isinstance(rows, list) and isinstance(chart, dict)
        table = list(csv.reader(io.StringIO(built.file(f"tables/{draft.item_key}.csv").text)))
        assert table[0] == columns and len(table) == len(rows) + 1

        spec = json.loads(built.file(f"charts/{draft.item_key}.vl.json").text)
        assert "vega-lite" in spec["$schema"] and spec["title"] == draft.title
        assert spec["mark"]["type"] == chart["kind"]
        assert "x" not in chart and spec["encoding"]["x"]["field"] == columns[0]  # the shipped chart names no axes
        assert spec["encoding"]["y"]["field"] == columns[1] and spec["encoding"]["y"]["type"] == "quantitative"
        assert all(isinstance(row, dict) and isinstance(row["value"], float) for row in rows)
        assert spec["data"]["values"] == [{columns[0]: row["label"], columns[1]: row["value"]} for row in rows]
    page = built.file("index.html").text
    assert page.count("<svg") == len(keys) and page.count("<table") == len(keys)
    assert scripts(page) == []
    assert "| --- |" in built.file("report.md").text


def test_drafts_are_built_in_plan_order_whatever_order_they_arrive_in() -> None:
    run = offline_run("ebook")

    assert run.build(tuple(reversed(run.drafts))).checksum == run.build().checksum


# -- the offline notice ----------------------------------------------------------------


@pytest.mark.parametrize("agent", SHIPPED_AGENTS)
def test_offline_content_says_so(agent: str) -> None:
    built = offline_run(agent).build()

    assert OFFLINE_NOTICE in built.file(built.primary).text
    for file in built.files:
        if file.path in ("index.md", "report.md"):
            assert OFFLINE_NOTICE in file.text, file.path
    assert built.metadata["offline"] is True and built.provenance.offline is True


@pytest.mark.parametrize("agent", ["ebook", "quiz", "data_report"])
def test_content_from_a_real_model_has_no_offline_notice(agent: str) -> None:
    run = offline_run(agent)
    plan, drafts = online(run)

    built = OfflineRun(run.specs, run.inputs, plan, drafts).build()

    assert all(OFFLINE_NOTICE not in f.text for f in built.files)
    assert built.metadata["offline"] is False


# -- model output is never a live script ------------------------------------------------


def test_markdown_with_html_is_escaped_in_the_document() -> None:
    run = offline_run("ebook")
    body = f"Intro {XSS}\n\n<img src=x onerror=alert(1)>\n\n[click](javascript:alert(1))\n"

    built = replaced(run, 0, body=body)

    page = built.file("index.html").text
    assert scripts(page) == [] and "<img" not in page and 'href="javascript:' not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert XSS in built.file("index.md").text, "the Markdown source keeps what the model wrote"


def test_plan_title_and_fields_are_escaped_in_the_layout() -> None:
    run = offline_run("ebook")
    plan = run.plan.model_copy(update={"title": f"Tides {XSS}", "fields": {"subtitle": XSS}})

    built = OfflineRun(run.specs, run.inputs, plan, run.drafts).build()

    page = built.file("index.html").text
    assert scripts(page) == []
    assert "<title>Tides &lt;script&gt;alert(1)&lt;/script&gt;</title>" in page


def test_quiz_text_is_escaped_and_the_page_keeps_only_its_own_script() -> None:
    run = offline_run("quiz")
    choices = [f"</script>{XSS}", "<img src=x onerror=alert(1)>", "Evaporation & condensation"]

    built = replaced(run, 1, question=f"Which {XSS}?", choices=choices, answer=2, explanation=XSS)

    page = built.file("index.html").text
    assert len(scripts(page)) == 1 and "<img" not in page
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Evaporation &amp; condensation" in page
    data = embedded_quiz(page)
    assert "<" not in data
    embedded = json.loads(data)
    assert embedded["questions"][1]["choices"] == choices and embedded["questions"][1]["answer"] == 2
    assert json.loads(built.file("quiz.json").text)["questions"][1]["choices"] == choices


@pytest.mark.parametrize(
    "text",
    ["</script><script>alert(1)</script>", "</SCRIPT >", "<!--<script>", "a\u2028b\u2029c", "&lt;", "]]>"],
)
def test_quiz_json_cannot_break_out_of_its_script_element(text: str) -> None:
    data = {"questions": [{"choices": [text]}], text: text}

    encoded = str(quiz_page.script_json(data))

    assert not set("<>&\u2028\u2029") & set(encoded)
    assert json.loads(encoded) == data


def test_table_cells_headers_and_chart_labels_are_escaped() -> None:
    run = offline_run("data_report")
    columns = [f"Month {XSS}", "Revenue"]
    rows = [[XSS, 10.0], ["<b>May</b>", 20.5], ["June", 30]]

    built = replaced(
        run, 0, columns=columns, rows=rows, chart={"kind": "line", "x": columns[0], "y": "Revenue"}, narrative=XSS
    )

    page = built.file("index.html").text
    assert scripts(page) == [] and "<b>May</b>" not in page
    assert "<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>" in page
    assert "&lt;b&gt;May&lt;/b&gt;" in page
    key = run.drafts[0].item_key
    assert list(csv.reader(io.StringIO(built.file(f"tables/{key}.csv").text)))[1] == [XSS, "10.0"]


def test_code_is_escaped_in_the_preview_but_written_verbatim() -> None:
    run = offline_run("api_scaffold")
    code = f'"""</code></pre>{XSS}"""\n'

    built = replaced(run, 0, code=code)

    assert scripts(built.file(code_tree.PREVIEW).text) == []
    assert built.file("app/main.py").text == code


# -- draft checks ---------------------------------------------------------------------


QUESTION = {"question": "Which?", "choices": ["Rain", "Snow", "Hail"], "answer": 1, "explanation": "Because."}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"answer": 3}, "`answer` must be the 0-based index of the right choice, 0 to 2; got 3"),
        ({"answer": -1}, "0 to 2; got -1"),
        ({"answer": True}, "got True"),
        ({"answer": "1"}, "got '1'"),
        ({"choices": ["Rain", " rain ", "Hail"]}, "`choices` repeats an answer; make every choice different"),
        ({"choices": ["Rain"], "answer": 0}, "`choices` must list at least two answers"),
        ({"choices": "Rain, Snow"}, "`choices` must list at least two answers"),
    ],
)
def test_quiz_check_rejects_unusable_questions(change: dict[str, Any], message: str) -> None:
    problems = quiz_page.check({**QUESTION, **change})

    assert len(problems) == 1 and message in problems[0]


def test_quiz_check_accepts_a_good_question() -> None:
    assert quiz_page.check(QUESTION) == []


@pytest.mark.parametrize(
    "path",
    ["../x", "/etc/passwd", "app/../../x", "a//b", "a\\b.py", "./a.py", ".env", "app/", "", "a b.py"],
)
def test_code_tree_check_rejects_unsafe_paths(path: str) -> None:
    problems = code_tree.check({"path": path, "code": "x = 1\n"})

    assert len(problems) == 1
    assert repr(path) in problems[0] or (not path and "`path` is empty" in problems[0])
    assert "relative" in problems[0]


def test_code_tree_check_keeps_the_preview_name_for_itself_and_needs_code() -> None:
    assert code_tree.check({"path": code_tree.PREVIEW, "code": ""}) == [
        f"`path` {code_tree.PREVIEW!r} is reserved for the preview page"
    ]
    assert code_tree.check({"path": "app/main.py", "code": None}) == ["`code` must be the file's full text"]
    assert code_tree.check({"path": "app/v1.0/main_file-2.py", "code": ""}) == []


TABLE = {
    "narrative": "Sales grew.",
    "columns": ["Month", "Revenue", "Orders"],
    "rows": [["May", 10.5, 3], ["June", 12, 4]],
    "chart": {"kind": "bar", "x": "Month", "y": "Revenue"},
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"rows": [["May", 10.5, 3], ["June", 12]]}, "row 1 has 2 cells; every row needs 3, one per column"),
        ({"rows": [["May", 10.5, 3], "June"]}, "row 1 has 0 cells"),
        ({"rows": []}, "`rows` must hold at least one row"),
        ({"chart": {"kind": "bar", "x": "Day", "y": "Revenue"}}, "`chart.x` is 'Day'; it must be one of the columns"),
        ({"chart": {"kind": "bar", "x": "Month", "y": "Profit"}}, "`chart.y` is 'Profit'"),
        ({"chart": {"kind": "bar", "x": "Month", "y": "Month"}}, "column 'Month' is the chart's y axis"),
        ({"rows": [["May", "10.5", 3]]}, "column 'Revenue' is the chart's y axis, so every row needs a number there"),
        ({"rows": [["May", True, 3]]}, "every row needs a number there"),
        ({"chart": {"kind": "pie", "x": "Month", "y": "Revenue"}}, "`chart.kind` is 'pie'; it must be 'bar' or 'line'"),
        ({"chart": "bar"}, "`chart` must give its kind"),
        ({"rows": [{"label": "May", "value": "10.5", "orders": 3}]}, "column 'Revenue' is the chart's y axis"),
        ({"rows": [{"label": "May", "value": 10.5}]}, "row 0 has 2 cells; every row needs 3"),
        ({"chart": {"kind": "bar", "x": "Revenue"}}, "column 'Month' is the chart's y axis"),  # y: the first but x
        ({"columns": ["Month", "Month", "Orders"]}, "`columns` must name at least two different columns"),
    ],
)
def test_data_report_check_rejects_unusable_tables(change: dict[str, Any], message: str) -> None:
    problems = data_report.check({**TABLE, **change})

    assert len(problems) == 1 and message in problems[0]


def test_data_report_check_accepts_a_good_table() -> None:
    assert data_report.check(TABLE) == []


def test_a_table_of_object_rows_without_axes_charts_its_first_two_columns() -> None:
    run = offline_run("data_report")
    rows = [{"label": "May", "value": 1.5}, {"label": "June", "value": 2}]

    built = replaced(run, 0, columns=["Month", "Revenue"], rows=rows, chart={"kind": "line"})

    key = run.drafts[0].item_key
    spec = json.loads(built.file(f"charts/{key}.vl.json").text)
    assert (spec["encoding"]["x"]["field"], spec["encoding"]["y"]["field"]) == ("Month", "Revenue")
    assert spec["data"]["values"] == [{"Month": "May", "Revenue": 1.5}, {"Month": "June", "Revenue": 2}]
    assert built.file(f"tables/{key}.csv").text.splitlines() == ["Month,Revenue", "May,1.5", "June,2.0"]


def test_document_check_wants_a_body() -> None:
    assert document.check({"body": "  \n"}) == ["`body` is empty; write the section's text"]
    assert document.check({"body": "Text."}) == []


class WrongAnswerProvider(OfflineProvider):
    """The offline answers, with the quiz answer pointing past the last choice."""

    async def complete(self, request: ModelRequest) -> ModelReply:
        reply = await super().complete(request)
        answer = json.loads(reply.text)
        answer["choices"] = answer["choices"][:3]
        answer["answer"] = 3  # within the schema's 0..3, past the last of these three choices
        return reply.model_copy(update={"text": json.dumps(answer)})


def test_model_answer_failing_the_builder_check_is_refused_with_the_reason() -> None:
    run = offline_run("quiz")
    spec = run.specs.generate.model_copy(update={"model": ModelSettings(provider="wrong-answer")})
    key = run.plan.items[0].key

    with using(**{"wrong-answer": WrongAnswerProvider}), pytest.raises(ModelOutputError) as caught:
        asyncio.run(write_draft(spec, run.inputs, CONTEXT, run.plan, key))

    assert str(caught.value).startswith(f"quiz/generate/{key}: no answer fit the schema after 3 attempts (2 re-asks)")
    assert "`answer` must be the 0-based index of the right choice, 0 to 2; got 3" in str(caught.value)


# -- build errors ---------------------------------------------------------------------


def test_code_tree_refuses_two_drafts_writing_the_same_path() -> None:
    run = offline_run("api_scaffold")
    first, second = run.plan.items[0], run.plan.items[1]
    items = (first, second.model_copy(update={"fields": {**second.fields, "path": first.fields["path"]}}))
    plan = run.plan.model_copy(update={"items": (*items, *run.plan.items[2:])})

    with pytest.raises(BuildError) as caught:
        OfflineRun(run.specs, run.inputs, plan, run.drafts).build()

    assert str(caught.value) == (
        f"drafts {first.key!r} and {second.key!r} both write 'app/main.py'; each plan item must name a different file"
    )


@pytest.mark.parametrize(
    ("one", "other"), [("app", "app/main.py"), ("app/main.py", "app"), ("docs/Guide.md", "docs/guide.md")]
)
def test_code_tree_refuses_paths_that_cannot_both_exist(one: str, other: str) -> None:
    run = offline_run("api_scaffold")

    with pytest.raises(BuildError, match=rf"{re.escape(repr(one))}.*{re.escape(repr(other))}"):
        run.build((with_fields(run.drafts[0], path=one), with_fields(run.drafts[1], path=other), *run.drafts[2:]))


def test_code_tree_refuses_an_unsafe_path_that_slipped_past_the_checks() -> None:
    run = offline_run("api_scaffold")

    with pytest.raises(BuildError, match=r"draft '01-application-entry-point': `path` '\.\./evil\.py' is not a safe"):
        replaced(run, 0, path="../evil.py")


def test_data_report_refuses_a_bad_table_at_build_time() -> None:
    run = offline_run("data_report")

    with pytest.raises(BuildError, match=rf"draft {run.drafts[0].item_key!r}: row 0 has 1 cells; every row needs"):
        replaced(run, 0, rows=[["only one"]])


@pytest.mark.parametrize(
    ("column", "field"),
    [("Sales (in 1.000 €) [net]", r"Sales (in 1\.000 €) \[net\]"), ("'Best' day", r"\'Best\' day"), ("Plain", "Plain")],
)
def test_chart_fields_with_dots_brackets_or_quotes_are_escaped_for_vega_lite(column: str, field: str) -> None:
    run = offline_run("data_report")
    columns = ["Month", column]

    built = replaced(
        run, 0, columns=columns, rows=[["May", 1.5], ["June", 2]], chart={"kind": "bar", "x": "Month", "y": columns[1]}
    )

    spec = json.loads(built.file(f"charts/{run.drafts[0].item_key}.vl.json").text)
    assert spec["encoding"]["y"]["field"] == field
    assert re.sub(r"\\(.)", r"\1", field) in spec["data"]["values"][0]

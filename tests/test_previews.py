"""What a finished run shows on its Prefect run page: a preview of each content type's substance, and
links to the viewer's content page when AGENTFLOWS_VIEWER_URL is set (else to the stored file)."""

from __future__ import annotations

import json

import pytest
from prefect import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

from agentflows import run_agent
from agentflows.tasks.builders.data_report import table_rows
from agentflows.tasks.errors import ConfigurationError
from agentflows.tasks.manifest import Component, table_row
from agentflows.tasks.previews import preview_markdown, viewer_link
from agentflows.tasks.settings import Settings
from tests.offline_steps import offline_run


def test_the_quiz_preview_shows_every_question_its_choices_and_the_answer() -> None:
    built = offline_run("quiz").build()
    questions = json.loads(built.file("quiz.json").text)["questions"]

    preview = preview_markdown(built, "abc123", "http://viewer/contents/abc123/")

    assert preview.startswith(f"# {built.title}\n") and "[open](http://viewer/contents/abc123/)" in preview
    for number, question in enumerate(questions, 1):
        assert f"{number}. **{question['question']}**" in preview
        right = question["choices"][question["answer"]]
        assert f"{chr(65 + question['answer'])}. {right} ✔ *(answer)*" in preview
        assert all(choice in preview for choice in question["choices"])


def test_the_report_preview_has_its_key_finding_narrative_and_tables() -> None:
    run = offline_run("data_report")
    preview = preview_markdown(run.build(), "abc123", "file:///x")

    assert f"**Key finding:** {run.plan.fields['key_finding']}" in preview
    assert all(f"| {table_rows(draft.fields['rows'])[0][0]} |" in preview for draft in run.drafts)
    assert all(f"## {draft.title}" in preview for draft in run.drafts)


def test_the_scaffold_preview_is_its_file_tree() -> None:
    built = offline_run("api_scaffold").build()
    sources = sorted(f.path for f in built.files if f.path != "agentflows-preview.html")

    preview = preview_markdown(built, "abc123", "file:///x")

    assert f"**{len(sources)} files**" in preview
    for path in sources:
        *folders, name = path.split("/")
        assert f"{'  ' * len(folders)}- `{name}` (" in preview
        assert all(f"- `{folder}/`" in preview for folder in folders)


def test_long_previews_are_cut_at_a_line() -> None:
    built = offline_run("ebook", chapters=6).build()

    preview = preview_markdown(built, "abc123", "file:///x", limit=300)

    assert preview.endswith("\n\n…") and len(preview) < 300 + 200


def test_links_go_to_the_viewer_when_it_is_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    assert viewer_link("abc", "file:///x/index.html") == "file:///x/index.html"
    monkeypatch.setenv("AGENTFLOWS_VIEWER_URL", "http://viewer.example:4300/")
    component = Component(
        agent="quiz", content_type="interactive", status="completed", name="Q", content_id="abc",
        location="file:///x/index.html", started_at="2026-01-01T00:00:00Z", seconds=1,
    )  # fmt: skip

    assert viewer_link("abc", "file:///x/index.html") == "http://viewer.example:4300/contents/abc/"
    assert table_row(component, viewer_link(component.content_id, component.location))["uri"] == (
        "http://viewer.example:4300/contents/abc/"
    )
    assert viewer_link(None, None) is None
    with pytest.raises(ConfigurationError, match="AGENTFLOWS_VIEWER_URL='viewer:4300' is not an http"):
        Settings.from_env({"AGENTFLOWS_VIEWER_URL": "viewer:4300"})


@pytest.mark.usefixtures("prefect_server")
def test_a_run_links_its_artifacts_to_the_viewer_and_previews_the_questions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTFLOWS_VIEWER_URL", "http://127.0.0.1:4300")

    result = run_agent("quiz", topic="Volcanoes", questions=2)

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[result.flow_run_id]))
        )
    page = f"http://127.0.0.1:4300/contents/{result.content_id}/"
    link = next(a for a in found if a.type == "markdown" and a.key is None)
    preview = next(a for a in found if a.type == "markdown" and a.key is not None)
    assert link.data == f"[{result.title}]({page})"
    assert f"[open]({page})" in str(preview.data) and "**2 questions**" in str(preview.data)

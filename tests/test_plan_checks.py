"""Problems of the plan as a whole are found in `decide` and re-asked there, before any draft is paid for.

The model is the fake OpenAI-compatible server, scripted to answer `decide` with a plan
that breaks a rule: an unsafe or repeated file path, the wrong number of items, a value
outside an item field's enum. Each is sent back to the model with the problem; the
drafts are written only for the corrected plan, and a plan that stays wrong fails the
run in `decide` with no `generate` call at all.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from agentflows import open_store, run_agent
from agentflows.tasks.builders.code_tree import check_plan
from agentflows.tasks.errors import ModelOutputError
from tests.fake_llm import FakeLLM, Reply

pytestmark = pytest.mark.usefixtures("prefect_server")
FILES = ["app/main.py", "app/models.py", "tests/test_api.py", "README.md"]


@pytest.fixture
def fake_llm(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLLM]:
    with FakeLLM() as fake:
        monkeypatch.setenv("AGENTFLOWS_LLM_BASE_URL", fake.base_url)
        monkeypatch.setenv("AGENTFLOWS_LLM_MODEL", "fake-model")
        monkeypatch.setenv("AGENTFLOWS_LLM_LIMIT_SCOPE", "process")
        yield fake


def scaffold_plan(paths: list[str]) -> Reply:
    items = [{"title": f"File {n}", "path": path, "purpose": "Part of the service."} for n, path in enumerate(paths)]
    return Reply(content=json.dumps({"title": "Notes API", "package": "notes", "items": items}))


def is_reask(body: dict[str, Any]) -> bool:
    return len(body["messages"]) > 2


def decide_attempts(content_id: str) -> list[dict[str, Any]]:
    return list(open_store().get(content_id).lineage[0]["attempts"])


@pytest.mark.parametrize(
    ("paths", "problem"),
    [
        (
            ["../../etc/passwd", *FILES[1:]],
            "items/0/path: `path` '../../etc/passwd' is not a safe relative path",
        ),
        (
            [FILES[0], FILES[1], FILES[0], FILES[3]],
            "items/2/path: 'app/main.py' is already the path of items/0; give each item its own file",
        ),
        (
            ["app", "app/main.py", *FILES[2:]],
            "items/1/path: 'app/main.py' cannot exist beside 'app' of items/0 (one is a folder of the other",
        ),
    ],
    ids=["escaping-path", "same-file-twice", "file-and-folder"],
)
def test_a_plan_with_unusable_paths_is_reasked_in_decide_before_any_draft(
    fake_llm: FakeLLM, paths: list[str], problem: str
) -> None:
    fake_llm.script(scaffold_plan(paths), scaffold_plan(FILES))

    result = run_agent("api_scaffold", service="a notes service")

    bodies = [r.body for r in fake_llm.received]
    assert [is_reask(b) for b in bodies] == [False, True] + [False] * len(FILES)  # drafts only for the new plan
    assert problem in bodies[1]["messages"][-1]["content"]
    attempts = decide_attempts(result.content_id)
    assert [a["method"] for a in attempts] == [None, "reasked+strict"] and problem in attempts[0]["error"]
    assert sorted(p for p in result.files if p != "agentflows-preview.html") == sorted(FILES)


def test_a_plan_that_stays_unusable_fails_in_decide_with_no_draft_paid_for(fake_llm: FakeLLM) -> None:
    fake_llm.script(*[scaffold_plan(["../../etc/passwd", *FILES[1:]])] * 3)  # the first answer and both re-asks

    with pytest.raises(ModelOutputError) as caught:
        run_agent("api_scaffold", service="a notes service")

    assert "no answer fit the schema after 3 attempts" in str(caught.value)
    assert "items/0/path: `path` '../../etc/passwd' is not a safe relative path" in str(caught.value)
    assert len(fake_llm.received) == 3


@pytest.mark.parametrize(
    ("plan", "problem"),
    [
        ({"title": "Tides", "items": [{"title": "Moon", "skill": "memorise"}]}, "items/0/skill: 'memorise' is not one"),
        (
            {"title": "Tides", "items": [{"title": "Moon", "skill": "recall"}, {"title": "Sun", "skill": "recall"}]},
            "items: [{'title': 'Moon', 'skill': 'recall'}, {'title': 'Sun', 'skill': 'recall'}] is too long",
        ),
    ],
    ids=["value-outside-the-enum", "more-items-than-asked"],
)
def test_item_counts_and_enum_values_are_reasked_in_decide(
    fake_llm: FakeLLM, plan: dict[str, Any], problem: str
) -> None:
    fake_llm.script(Reply(content=json.dumps(plan)))

    result = run_agent("quiz", topic="Tides", questions=1)

    bodies = [r.body for r in fake_llm.received]
    assert [is_reask(b) for b in bodies] == [False, True, False]
    assert problem in bodies[1]["messages"][-1]["content"]
    assert decide_attempts(result.content_id)[1]["method"] == "reasked+strict"


def test_items_without_a_path_leave_the_paths_to_the_drafts() -> None:
    assert check_plan([{"title": "Entry point"}, {"title": "Models"}]) == []
    assert check_plan([{"title": "A", "path": "app/a.py"}, {"title": "B", "path": "App/A.py"}]) == [
        "items/1/path: 'App/A.py' cannot exist beside 'app/a.py' of items/0 (one is a folder of the other, "
        "or they differ only in case); give each item its own file"
    ]

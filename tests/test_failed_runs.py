"""What a run that fails, or partly fails, tells its user.

A fan-out that allows it (`min_items_ok`) builds the content without the drafts
that still fail, says so, and keeps their answers in the lineage; a failed router
branch shows its flow run, calls and tokens; `run --json` prints a JSON error
object on stdout and the console shows one line, no traceback; every call is
counted, the failed ones too.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL

from agentflows import open_store, route, run_agent
from agentflows.tasks.errors import ModelOutputError
from tests.fake_llm import FakeLLM, Reply

pytestmark = pytest.mark.usefixtures("prefect_server")
REPEATS = json.dumps(
    {"question": "Which is wet?", "choices": ["Water", "water", "Sand"], "answer": 0, "explanation": "x"}
)


@pytest.fixture
def fake_llm(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLLM]:
    """One slot, so drafts go one at a time, in plan order, and a script meets the call it is written for."""
    with FakeLLM(slots=1) as fake:
        monkeypatch.setenv("AGENTFLOWS_LLM_BASE_URL", fake.base_url)
        monkeypatch.setenv("AGENTFLOWS_LLM_MODEL", "fake-model")
        monkeypatch.setenv("AGENTFLOWS_LLM_LIMIT_SCOPE", "process")
        yield fake


def allow_partial(definitions: Path, agent: str, least: int) -> None:
    yaml = definitions / f"{agent}.yaml"
    text = yaml.read_text()
    shipped = re.sub(r"\n    min_items_ok: \d+[^\n]*", "", text)  # the shipped quiz sets its own
    yaml.write_text(shipped.replace("  generate:\n", f"  generate:\n    min_items_ok: {least}\n", 1))


def test_a_draft_that_keeps_failing_is_dropped_and_said_so(fake_llm: FakeLLM, definitions: Path) -> None:
    allow_partial(definitions, "quiz", 2)
    fake_llm.script(Reply(), Reply(), *[Reply(content=REPEATS)] * 3)  # decide, question 1, then 3 bad answers

    result = run_agent("quiz", definitions=definitions, topic="Rain", questions=3)

    assert result.model_calls == len(fake_llm.received) == 1 + 1 + 3 + 1
    (warning,) = [w for w in result.warnings if "dropped" in w]
    assert warning.startswith("generate 02-") and "`choices` repeats an answer" in warning
    content = open_store().get(result.content_id)
    quiz = json.loads(Path(content.files["quiz.json"].removeprefix("file://")).read_text())
    assert len(quiz["questions"]) == 2
    (dropped,) = [step for step in content.lineage if step["label"].endswith("(dropped)")]
    assert dropped["usage"]["calls"] == 3 and [a["raw"] for a in dropped["attempts"]] == [REPEATS] * 3
    build = next(step for step in content.lineage if step["label"] == "build")
    assert build["warnings"] == [f"built without 1 of 3 items: {dropped['label'].split()[1]}"]


def test_fewer_good_drafts_than_min_items_ok_fail_the_run_saying_how_many(fake_llm: FakeLLM, definitions: Path) -> None:
    allow_partial(definitions, "quiz", 2)
    fake_llm.script(Reply(), Reply(), *[Reply(content=REPEATS)] * 6)  # decide, question 1, then 2 bad questions

    with pytest.raises(
        ModelOutputError, match=r"quiz/generate: 1 of 3 drafts succeeded, fewer than min_items_ok \(2\)"
    ):
        run_agent("quiz", definitions=definitions, topic="Rain", questions=3)


def test_once_too_many_drafts_failed_for_min_items_ok_the_rest_are_not_written(
    fake_llm: FakeLLM, definitions: Path
) -> None:
    allow_partial(definitions, "quiz", 2)
    fake_llm.script(Reply(), *[Reply(content=REPEATS)] * 6)  # decide, then questions 1 and 2 fail

    with pytest.raises(
        ModelOutputError,
        match=r"quiz/generate: 0 of 3 drafts succeeded \(1 not written once too many had failed\), "
        r"fewer than min_items_ok \(2\); first: quiz/generate/01-",
    ):
        run_agent("quiz", definitions=definitions, topic="Rain", questions=3)
    assert len(fake_llm.received) == 1 + 2 * 3  # question 3 could not save the run: never asked for


def test_without_min_items_ok_one_failed_draft_stops_the_fan_out(fake_llm: FakeLLM) -> None:
    fake_llm.script(Reply(), *[Reply(content="Chapter one, in prose.")] * 3)  # decide, then chapter 1 fails

    with pytest.raises(ModelOutputError, match=r"^ebook/generate/01-[^:]*: no answer fit the schema after 3 attempts"):
        run_agent("ebook", topic="Rain", chapters=3)
    assert len(fake_llm.received) == 1 + 3  # chapters 2 and 3 were never asked for


def test_a_failed_branch_shows_its_flow_run_calls_and_tokens(fake_llm: FakeLLM) -> None:
    fake_llm.script(*[Reply(content="I cannot write a quiz.")] * 5, model="fake-model")  # quiz's decide: 4 re-asks

    manifest = route("a quiz on rain", content_types=["quiz"])

    (branch,) = manifest.components
    assert branch.status == "failed" and manifest.status == "failed"
    assert branch.flow_run_id is not None and branch.failed_step == "quiz/decide"
    assert branch.model_calls == 5 and branch.tokens == 5 * (120 + 80)
    assert "no answer fit the schema after 5 attempts" in (branch.error or "")


def test_run_json_on_failure_prints_an_error_object_and_one_line_no_traceback(fake_llm: FakeLLM) -> None:
    fake_llm.script(*[Reply(content="I cannot write a quiz.")] * 5)
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}

    done = subprocess.run(
        [
            Path(sys.executable).with_name("agentflows"),
            "run",
            "quiz",
            "-p",
            "topic=Rain",
            "-p",
            "questions=1",
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 1
    error = json.loads(done.stdout)["error"]
    assert (error["type"], error["agent"], error["failed_step"]) == ("ModelOutputError", "quiz", "quiz/decide")
    assert error["flow_run_id"] and error["model_calls"] == 5 == len(fake_llm.received)
    assert (error["prompt_tokens"], error["completion_tokens"]) == (600, 400)
    assert [a["raw"] for a in error["attempts"]] == ["I cannot write a quiz."] * 5
    assert "Traceback" not in done.stderr and " | ERROR " not in done.stderr  # Prefect's report stays in the UI
    assert (
        done.stderr.strip().splitlines()[-1].startswith("error: quiz/decide: no answer fit the schema after 5 attempts")
    )

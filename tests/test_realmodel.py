"""The real-model tier: every shipped agent, and the router, against a real small model on loopback.

SmolLM2-135M-Instruct on llama.cpp's own server (`tests/llama_server.py`), one
CPU thread, one slot, reached the way a user reaches it: the CLI with
`AGENTFLOWS_LLM_BASE_URL` on loopback and nothing else configured, so the
client's loopback defaults, the slots the server reports and the structured
output it negotiates are what is tested. One agent per test with the smallest
sizes (the whole set at default sizes is the benchmark's `realmodel` scenario);
a fixed seed narrows the model's answers, though llama.cpp's prompt cache still
varies them between runs. Run only this tier with `pytest -m realmodel`, or
leave it out with `-m "not realmodel"`.

What it asserts is what a user would notice: the run completes and says what it
spent (every call counted, re-asks in `agentflows show`), or — for an agent the
model truly cannot do (`BEYOND_THE_MODEL`, with the check it fails), as the issue
allows — ends in one `error:` line after its bounded re-asks with every answer
kept; no answer still streaming was cut off by a timeout; and the router's
request ends within three times the time its model calls took (a ratio of one
run, not a wall-clock bound). Every other agent must complete.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect.settings import PREFECT_API_URL

from tests.conftest import SHIPPED_AGENTS
from tests.llama_server import LlamaServer, llama_server

pytestmark = [pytest.mark.realmodel, pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]
SMALLEST: dict[str, list[str]] = {
    "ebook": ["topic=How tides work", "chapters=1"],
    "lesson_plan": ["topic=Photosynthesis", "stages=3", "duration_minutes=30"],
    "quiz": ["topic=Photosynthesis", "questions=2"],
    "api_scaffold": ["service=a to-do list with due dates"],
    "data_report": ["subject=monthly sales of a small bakery", "sections=1"],
}
BEYOND_THE_MODEL = {
    "lesson_plan": "stages it writes past its token limit, more than `min_items_ok` allows, or no warm-up first in "
    "five plans (its minutes are scaled to the lesson's length, not checked)",
    "quiz": "its plan's check that every question tests a different idea (it names them all after the topic, and "
    "its fresh re-asks draw distinct ideas only by chance), or choices that repeat an answer in every question",
    "api_scaffold": "its checks that each Python file parses: it writes prose in them (3 of 3 tries)",
}
"""What SmolLM2-135M gets wrong often enough that a run of these agents may end in one clear line after bounded
attempts (as the issue's acceptance allows) instead of completing; `python -m benchmarks.completion` counts how
often lesson_plan, quiz and the router's request complete. ebook and data_report must complete."""
MOST_CALLS = 40
"""Bound on the calls of a failed run: (re-asks + 1) × (decide + every item), with room for failed calls."""
ROUTER_REQUEST = "a short lesson on photosynthesis for 8th grade with a short quiz"
"""The issue's request at the smallest sizes (a 3-stage lesson, 3 questions); the benchmark runs it as written."""
RUN_TIMEOUT = 900
"""Seconds a CLI command may take before the test gives up on it (the steps' own timeouts are 600 s)."""


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    with llama_server(log=tmp_path_factory.mktemp("llama") / "server.log") as server:
        yield server


def agentflows(llama: LlamaServer, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed `agentflows` command, configured for the small model as a user would."""
    env = {
        **os.environ,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "AGENTFLOWS_LLM_BASE_URL": llama.base_url,
        "AGENTFLOWS_LLM_MODEL": "smollm2",
        "AGENTFLOWS_LLM_SEED": "1",
        "AGENTFLOWS_LLM_FREQUENCY_PENALTY": "0.5",  # what README recommends for SmolLM2-135M
    }
    command = [str(Path(sys.executable).with_name("agentflows")), *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT)


def lineage(llama: LlamaServer, content_id: str) -> list[dict[str, Any]]:
    shown = agentflows(llama, "show", content_id, "--json")
    assert shown.returncode == 0, shown.stderr
    steps: list[dict[str, Any]] = json.loads(shown.stdout)["lineage"]
    return steps


def assert_no_answer_was_cut_off_while_streaming(steps: list[dict[str, Any]]) -> None:
    failed = [a["error"] for step in steps for a in step["attempts"] if a.get("failed_call")]
    assert [e for e in failed if "timed out" in e] == []  # AnswerTimeout: no first token, or a stream that stopped


@pytest.mark.parametrize("agent", SHIPPED_AGENTS)
def test_each_shipped_agent_completes_or_says_in_one_line_why_not(agent: str, llama: LlamaServer) -> None:
    done = agentflows(llama, "run", agent, *(f"--param={p}" for p in SMALLEST[agent]), "--json")

    if agent in BEYOND_THE_MODEL and done.returncode != 0:  # the issue allows it; it must say so clearly
        assert_a_clear_failure_after_bounded_answers(done)
        return
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    result = json.loads(done.stdout)
    assert result["offline"] is False and result["model_calls"] >= 2
    steps = lineage(llama, result["content_id"])
    assert {step["model"] for step in steps if step["step"] in ("decide", "generate")} == {"smollm2"}
    assert_no_answer_was_cut_off_while_streaming(steps)
    assert sum(step["usage"]["calls"] for step in steps) == result["model_calls"]  # every attempt counted
    assert_show_counts_the_reasks(llama, result["content_id"], steps)


def assert_a_clear_failure_after_bounded_answers(done: subprocess.CompletedProcess[str]) -> None:
    """An agent the small model cannot do ends in one `error:` line after its bounded re-asks: the model
    answered, but no answer was content (a check or the schema refused each), or the built content failed the
    definition's checks; the JSON error object says what it spent — never a traceback or a timeout storm."""
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert [line for line in done.stderr.splitlines() if line.strip()] == [done.stderr.strip()]
    assert done.stderr.startswith("error: ")
    error = json.loads(done.stdout)["error"]
    if error["type"] == "ModelOutputError":  # a step gave up: every answer is in the error object, with its problem
        match = re.search(r"no answer fit the schema after (\d+) attempts \((\d+) re-asks\)", error["message"])
        assert match and int(match[1]) == int(match[2]) + 1 <= 9, error["message"]
        answers = [a for a in error["attempts"] if not a.get("failed_call")]
        assert len(answers) == int(match[1]) and all(a["error"] for a in answers)
    else:  # or the built content failed the definition's checks (a file that does not parse)
        assert error["type"] == "BuildError", error
    assert 0 < error["model_calls"] <= MOST_CALLS
    assert [a for a in error["attempts"] if "timed out" in (a.get("error") or "")] == []


def assert_show_counts_the_reasks(llama: LlamaServer, content_id: str, steps: list[dict[str, Any]]) -> None:
    """`agentflows show` prints, on each model step's line, its calls and how many answers were asked again."""
    shown = agentflows(llama, "show", content_id)
    assert shown.returncode == 0, shown.stderr
    steps = [step for step in steps if step["step"] in ("decide", "generate", "build")]
    lines = {
        step["label"]: next(line for line in shown.stdout.splitlines() if f" {step['label']} " in line)
        for step in steps
    }
    for step in steps:
        answers = [a for a in step["attempts"] if not a.get("failed_call")]
        assert f"calls {step['usage']['calls']}" in lines[step["label"]]
        if len(answers) > 1:
            assert f"{len(answers) - 1} re-ask" in lines[step["label"]]


def test_the_router_request_ends_within_three_times_its_model_time(llama: LlamaServer) -> None:
    done = agentflows(llama, "route", ROUTER_REQUEST, "--json")

    manifest = json.loads(done.stdout)
    components = {c["agent"]: c for c in manifest["components"]}
    assert set(components) == {"lesson_plan", "quiz"}, done.stderr[-3000:]
    for agent, component in components.items():
        if component["status"] == "completed":
            assert_no_answer_was_cut_off_while_streaming(lineage(llama, component["content_id"]))
        elif component["status"] == "skipped":  # the quiz builds on the lesson
            assert agent == "quiz" and component["error"] == "skipped: lesson_plan failed"
        else:  # a branch the model cannot do: one line, its flow run, what it spent, the step that gave up
            assert agent in BEYOND_THE_MODEL and component["error"].startswith("ModelOutputError: "), component
            assert "no answer fit the schema after" in component["error"] and "\n" not in component["error"]
            assert component["flow_run_id"] and component["failed_step"] and 0 < component["model_calls"] <= MOST_CALLS
    assert done.returncode == (0 if manifest["status"] == "completed" else 1)
    model_seconds = sum(c["model_seconds"] for c in manifest["components"])
    assert 0 < manifest["seconds"] <= 3 * model_seconds  # the branches' own model time, not waiting around it

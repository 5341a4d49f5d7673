"""The real-model tier: every shipped agent, and the router, against a real small model on loopback.

SmolLM2-135M-Instruct on llama.cpp's own server (`tests/llama_server.py`), one
CPU thread, one slot, reached the way a user reaches it: the CLI with
`AGENTFLOWS_LLM_BASE_URL` on loopback and nothing else configured, so the
client's loopback defaults, the slots the server reports and the structured
output it negotiates are what is tested. One agent per test with the smallest
sizes (the whole set at default sizes is the benchmark's `realmodel` scenario);
a fixed seed makes the model's answers repeatable. Run only this tier with
`pytest -m realmodel`, or leave it out with `-m "not realmodel"`.

What it asserts is what a user would notice: the run completes and says what it
spent (re-asks and repairs in `agentflows show`), no answer still streaming was
cut off by a timeout, and the router's request completes within three times the
time its model calls took (a ratio of one run, not a wall-clock bound).
"""

from __future__ import annotations

import json
import os
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
ROUTER_REQUEST = "a lesson on photosynthesis for 8th grade with a quiz"
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
def test_each_shipped_agent_completes_on_the_small_model(agent: str, llama: LlamaServer) -> None:
    done = agentflows(llama, "run", agent, *(f"--param={p}" for p in SMALLEST[agent]), "--json")

    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    result = json.loads(done.stdout)
    assert result["offline"] is False and result["model_calls"] >= 2
    steps = lineage(llama, result["content_id"])
    assert {step["model"] for step in steps if step["step"] in ("decide", "generate")} == {"smollm2"}
    assert_no_answer_was_cut_off_while_streaming(steps)
    assert sum(step["usage"]["calls"] for step in steps) == result["model_calls"]  # every attempt counted
    assert_show_counts_the_reasks(llama, result["content_id"], steps)


def assert_show_counts_the_reasks(llama: LlamaServer, content_id: str, steps: list[dict[str, Any]]) -> None:
    """`agentflows show` prints, on each model step's line, its calls and how many answers were asked again."""
    shown = agentflows(llama, "show", content_id)
    assert shown.returncode == 0, shown.stderr
    lines = {
        step["label"]: next(line for line in shown.stdout.splitlines() if f" {step['label']} " in line)
        for step in steps
    }
    for step in steps:
        answers = [a for a in step["attempts"] if not a.get("failed_call")]
        assert f"calls {step['usage']['calls']}" in lines[step["label"]]
        if len(answers) > 1:
            assert f"{len(answers) - 1} re-ask" in lines[step["label"]]


def test_the_router_request_completes_within_three_times_its_model_time(llama: LlamaServer) -> None:
    done = agentflows(llama, "route", ROUTER_REQUEST, "--json")

    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    manifest = json.loads(done.stdout)
    assert manifest["status"] == "completed" and {c["agent"] for c in manifest["components"]} == {"lesson_plan", "quiz"}
    model_seconds = sum(c["model_seconds"] for c in manifest["components"])
    assert 0 < manifest["seconds"] <= 3 * model_seconds
    for component in manifest["components"]:
        assert_no_answer_was_cut_off_while_streaming(lineage(llama, component["content_id"]))

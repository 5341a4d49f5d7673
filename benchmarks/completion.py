"""How often the router's request and its two agents complete on the small real model, over several topics.

python -m benchmarks.completion              5 topics each for lesson_plan and quiz, then the router's request
                                             5 times (~20 min on two cores)
python -m benchmarks.completion --runs 3     3 of each

The real-model tier (`tests/test_realmodel.py`) runs each agent once and the
benchmark's `realmodel` scenario once per agent; with a fixed seed one run says
little about a rate. This runs what a user runs — `agentflows run … --refresh
--json` and `agentflows route …` through the CLI, against SmolLM2-135M on
llama.cpp's server (one thread, one slot, seed 1, frequency penalty 0.5, as the
tier) — on a fresh home with its own temporary Prefect server, and prints a
Markdown table: each run's outcome and time, and how many completed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.llama_server import MODEL_ALIAS, llama_server

TOPICS = ["Photosynthesis", "The water cycle", "Volcanoes", "Fractions", "The French Revolution"]
SIZES = {"lesson_plan": ["stages=3", "duration_minutes=30"], "quiz": ["questions=2"]}
"""The tier's smallest sizes."""
REQUEST = "a short lesson on photosynthesis for 8th grade with a short quiz"
"""The issue's request at the smallest sizes, as the tier asks it."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.completion", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="topics per agent and router requests (default 5)")
    runs = parser.parse_args(argv).runs
    agentflows = str(Path(sys.executable).with_name("agentflows"))
    rows: list[tuple[str, str, bool, float, str]] = []
    with tempfile.TemporaryDirectory(prefix="agentflows-completion-") as home, llama_server() as server:
        env = {
            **os.environ,
            "AGENTFLOWS_HOME": home,
            "AGENTFLOWS_LLM_BASE_URL": server.base_url,
            "AGENTFLOWS_LLM_MODEL": MODEL_ALIAS,
            "AGENTFLOWS_LLM_SEED": "1",
            "AGENTFLOWS_LLM_FREQUENCY_PENALTY": "0.5",
        }
        env.pop("PREFECT_API_URL", None)
        for agent, sizes in SIZES.items():
            for topic in TOPICS[:runs]:
                params = [f"--param={p}" for p in [f"topic={topic}", *sizes]]
                rows.append(_run(agent, topic, [agentflows, "run", agent, "--refresh", "--json", *params], env))
        for number in range(1, runs + 1):
            rows.append(_run("router", f"#{number}", [agentflows, "route", REQUEST, "--refresh", "--json"], env))
    print(_table(rows))
    return 0


def _run(name: str, case: str, command: list[str], env: dict[str, str]) -> tuple[str, str, bool, float, str]:
    started = time.monotonic()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800)
    seconds = time.monotonic() - started
    outcome = _outcome(done)
    row = (name, case, done.returncode == 0, seconds, outcome)
    print(_line(row), file=sys.stderr, flush=True)
    return row


def _outcome(done: subprocess.CompletedProcess[str]) -> str:
    try:
        answer = json.loads(done.stdout)
    except ValueError:
        return (done.stderr.strip().splitlines() or ["no answer"])[-1][:200]
    if "components" in answer:  # a router manifest: each branch's status, and the wall over the model time
        model = sum(c["model_seconds"] for c in answer["components"]) or 1
        branches = ", ".join(f"{c['agent']} {c['status']}" for c in answer["components"])
        return f"{branches}; {answer['seconds'] / model:.2f} × its model time"
    if "error" in answer:
        return str(answer["error"]["message"])[:200]
    dropped = [w for w in answer.get("warnings", []) if "dropped" in w]
    return "completed" + (f", {len(dropped)} item dropped" if dropped else "")


def _line(row: tuple[str, str, bool, float, str]) -> str:
    name, case, ok, seconds, outcome = row
    return f"| {name} | {case} | {'yes' if ok else 'no'} | {seconds:.0f} s | {outcome.replace('|', '/')} |"


def _table(rows: list[tuple[str, str, bool, float, str]]) -> str:
    lines = ["| run | topic | completed | wall | outcome |", "|---|---|---|---|---|", *map(_line, rows), ""]
    for name in dict.fromkeys(r[0] for r in rows):
        mine = [r for r in rows if r[0] == name]
        lines.append(f"- {name}: {sum(r[2] for r in mine)} of {len(mine)} completed")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

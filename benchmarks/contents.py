"""Distinct, realistic contents to persist: the shipped agents' offline output, varied."""

from __future__ import annotations

from itertools import cycle, islice

from agentflows.tasks.artifacts import BuiltContent
from agentflows.tasks.storage import RunInfo
from tests.offline_steps import offline_run
from tests.test_storage import run_info

AGENTS = ("ebook", "lesson_plan", "quiz", "api_scaffold", "data_report")


def distinct_contents(count: int) -> list[tuple[BuiltContent, RunInfo]]:
    """`count` contents of every shipped type, each different (so each is a new row and new objects)."""
    bases = [(run, run.build()) for run in (offline_run(agent) for agent in AGENTS)]
    contents = []
    for number, (run, built) in enumerate(islice(cycle(bases), count)):
        primary = built.file(built.primary)
        varied = primary.model_copy(update={"text": primary.text + f"\n<!-- copy {number} -->\n"})
        files = tuple(varied if f.path == built.primary else f for f in built.files)
        copy = built.model_copy(update={"files": files}).sealed()
        contents.append((copy, run_info(run, copy, f"bench-{number}")))
    return contents

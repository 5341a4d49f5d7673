"""Distinct, realistic contents to persist: the shipped agents' offline output, varied."""

from __future__ import annotations

from itertools import cycle, islice

from tasks.artifacts import BuiltContent
from tasks.storage import LineageEntry, RunInfo
from tests.offline_steps import offline_run

AGENTS = ("ebook", "lesson_plan", "quiz", "api_scaffold", "data_report")


def distinct_contents(count: int) -> list[tuple[BuiltContent, RunInfo]]:
    """`count` contents of every shipped type, each different (so each is a new row and new objects)."""
    bases = []
    for agent in AGENTS:
        run = offline_run(agent)
        built = run.build()
        lineage = [
            LineageEntry(checksum=run.plan.checksum, label="decide", provenance=run.plan.provenance),
            *(
                LineageEntry(checksum=d.checksum, label=f"generate {d.item_key}", provenance=d.provenance)
                for d in run.drafts
            ),
            LineageEntry(checksum=built.checksum, label="build", provenance=built.provenance),
        ]
        bases.append((built, lineage, run.inputs))
    contents = []
    for number, (built, lineage, inputs) in enumerate(islice(cycle(bases), count)):
        primary = built.file(built.primary)
        varied = primary.model_copy(update={"text": primary.text + f"\n<!-- copy {number} -->\n"})
        files = tuple(varied if f.path == built.primary else f for f in built.files)
        copy = built.model_copy(update={"files": files}).sealed()
        contents.append((copy, RunInfo(flow_run_id=f"bench-{number}", inputs=inputs, lineage=lineage)))
    return contents

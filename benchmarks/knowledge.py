"""The knowledge scenario: index 1,000 passages and query them, on the database in BENCH_DATABASE_URL.

It writes a definitions-like folder of Markdown files (10 sections each, varied
vocabulary, so BM25 has real term statistics), then measures through the library's
own path (`KnowledgeBase.open`: read the files, split, sync; `KnowledgeBase.search`):

- index: the first sync of every file into an empty index;
- resync: the same sources again, nothing changed (what every run pays);
- query: one search for the top 4 passages (the median of QUERIES searches);
- with `AGENTFLOWS_LLM_EMBEDDINGS_MODEL` set (the harness points it at the fake server,
  which answers instantly): embedding every passage, and one hybrid search.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

SECTIONS_PER_FILE = 10
QUERIES = 20
TOP_K = 4
WORDS = 3000
"""Size of the vocabulary the passages are written from."""


def knowledge(repeats: int) -> dict[str, Any]:
    """Index BENCH_PASSAGES passages (default 1,000) and query them, `repeats` times on a fresh database."""
    from benchmarks.scenarios import fresh_home

    passages = int(os.environ.get("BENCH_PASSAGES", "1000"))
    rows = []
    for repeat in range(repeats):
        fresh_home()
        os.environ["AGENTFLOWS_DATABASE_URL"] = (
            os.environ["BENCH_DATABASE_URL"]
            .replace("{home}", os.environ["AGENTFLOWS_HOME"])
            .replace("{repeat}", str(repeat))
        )
        _migrate()
        root = Path(tempfile.mkdtemp(prefix="agentflows-bench-knowledge-"))
        queries = write_files(root, passages, random.Random(repeat))
        rows.append(asyncio.run(measure(root, queries)))
    return {"rows": rows}


def write_files(root: Path, passages: int, rng: random.Random) -> list[str]:
    """`passages` sections in files of SECTIONS_PER_FILE under root/knowledge; queries that hit some of them."""
    vocabulary = [
        f"{rng.choice('bcdfghklmnprstvz')}{rng.choice('aeiou')}{n:x}{rng.choice('aeiou')}" for n in range(WORDS)
    ]
    folder = root / "knowledge"
    folder.mkdir(parents=True)
    queries: list[str] = []
    for file_number in range(-(-passages // SECTIONS_PER_FILE)):
        lines = [f"# Topic {file_number}"]
        for section in range(min(SECTIONS_PER_FILE, passages - file_number * SECTIONS_PER_FILE)):
            words = rng.choices(vocabulary, k=90)
            lines += ["", f"## Section {file_number}.{section} {' '.join(words[:3])}", "", " ".join(words) + "."]
            if len(queries) < QUERIES and rng.random() < 0.05:
                queries.append(" ".join(rng.sample(words, 4)))
        (folder / f"topic_{file_number:04d}.md").write_text("\n".join(lines) + "\n")
    while len(queries) < QUERIES:
        queries.append(" ".join(rng.sample(vocabulary, 4)))
    return queries


async def measure(root: Path, queries: list[str]) -> dict[str, Any]:
    from agentflows.tasks.knowledge.index import KnowledgeIndex
    from agentflows.tasks.knowledge.retrieval import KnowledgeBase
    from agentflows.tasks.knowledge.setup import KnowledgeSetup
    from agentflows.tasks.knowledge.vectors import embedder_of
    from agentflows.tasks.llm.settings import ModelSettings
    from agentflows.tasks.runtime import current_runtime

    runtime = current_runtime()
    index = KnowledgeIndex.for_engine(runtime.store().records.engine)
    setup = KnowledgeSetup("bench", root, ("knowledge/",), TOP_K, 1500, {})
    keyword = KnowledgeBase(index)
    started = time.perf_counter()
    scope = await keyword.open(setup, {})
    indexed = time.perf_counter() - started
    started = time.perf_counter()
    await keyword.open(setup, {})
    resync = time.perf_counter() - started
    row: dict[str, Any] = {
        "passages": scope.report.passages,
        "files": scope.report.documents,
        "index": indexed,
        "resync": resync,
        "query": await _median_search(keyword, scope, queries),
        "found": sum(bool(hits) for hits in await keyword.search(scope, queries, TOP_K)),
    }
    if os.environ.get("AGENTFLOWS_LLM_EMBEDDINGS_MODEL"):
        embedder = embedder_of(await runtime.provider(ModelSettings(provider="openai")))
        hybrid = KnowledgeBase(index, embedder)
        started = time.perf_counter()
        hybrid_scope = await hybrid.open(setup, {})
        row["embed"] = time.perf_counter() - started
        row["embedded"] = hybrid_scope.embedded
        row["hybrid_query"] = await _median_search(hybrid, hybrid_scope, queries)
    return row


async def _median_search(base: Any, scope: Any, queries: list[str]) -> float:
    """Median seconds of one search, over every query."""
    timings = []
    for query in queries:
        started = time.perf_counter()
        await base.search(scope, [query], TOP_K)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def _migrate() -> None:
    from agentflows.tasks.runtime import current_runtime
    from agentflows.tasks.storage.migrate import upgrade
    from agentflows.tasks.storage.records import open_engine

    config = current_runtime().settings.store
    if not config.embedded:
        engine = open_engine(config.database_url.get_secret_value())
        upgrade(engine)
        engine.dispose()

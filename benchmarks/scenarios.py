"""The benchmark scenarios. Each runs in its own process (`python -m benchmarks.scenarios NAME`)
so its peak memory is its own, and prints one JSON line of measurements.

The environment says where things are: `PREFECT_API_URL` (the running Prefect
server), `AGENTFLOWS_LLM_BASE_URL` (the fake model server, which has a fixed
latency; for `realmodel`, the small real model on llama.cpp's server), `BENCH_FAKE_CONTROL` (to read
what the fake server received), and for persistence `BENCH_DATABASE_URL`, `BENCH_STORAGE_URL`,
`AGENTFLOWS_S3_ENDPOINT_URL` (the knowledge scenario reads `BENCH_DATABASE_URL` and `BENCH_PASSAGES`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from benchmarks.ideal import pipelines_from, replay

EBOOK: dict[str, Any] = {"topic": "How tides work", "chapters": 4}
ROUTER_TYPES = ["ebook", "quiz", "api_scaffold", "data_report"]
"""Four agents none of which builds on another: the router's fan-out alone."""
ROUTER_REQUEST = "an e-book, a quiz, an API and a data report about photosynthesis for 8th grade"
GRAPH_TYPES = ["lesson_plan", "quiz", "ebook"]
"""A three-node graph: the quiz and the e-book build on the lesson plan (their `uses`)."""
GRAPH_REQUEST = "a lesson on photosynthesis for 8th grade, with a quiz and an e-book that build on it"
CONCURRENT_REQUESTS = 20
PERSISTENCE_BATCH = 50
"""Contents per `ContentStore.save_many` call in the persistence scenario."""
PERSISTENCE_WRITERS = 4
"""Batches written at once in the persistence scenario."""


def fresh_home() -> None:
    """A new, empty AGENTFLOWS_HOME: nothing cached, nothing stored."""
    os.environ["AGENTFLOWS_HOME"] = tempfile.mkdtemp(prefix="agentflows-bench-")
    os.environ.pop("AGENTFLOWS_RESULT_STORAGE", None)


def cold_cache() -> None:
    """An empty step cache, keeping the content store and the process's runtime (a cold run, not a first install).

    The result folder is emptied, not switched: another `AGENTFLOWS_RESULT_STORAGE` would make a new runtime,
    which loads and compiles every definition again inside the timed run (≈1 s), what `warm_up` leaves out.
    """
    from agentflows.tasks.runtime import current_runtime

    storage = current_runtime().settings.result_storage
    if isinstance(storage, Path):
        shutil.rmtree(storage, ignore_errors=True)


def received() -> list[dict[str, Any]]:
    """Request bodies the fake model server received since the last `reset_received`."""
    return httpx.get(os.environ["BENCH_FAKE_CONTROL"] + "/received", timeout=30).json()


def reset_received() -> None:
    httpx.post(os.environ["BENCH_FAKE_CONTROL"] + "/reset", timeout=30)


def timed(coroutine: Callable[[], Coroutine[Any, Any, Any]]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = asyncio.run(coroutine())
    return time.perf_counter() - started, result


def ideal(
    bodies: list[dict[str, Any]], generates_per_pipeline: int | None = None, after: dict[str, list[str]] | None = None
) -> float:
    """Seconds the ideal script takes for the same calls, with each agent's fan-out, the provider's limit and
    the dependencies (`after`: the agents each waits for) of a routed graph."""
    from agentflows.catalog import load_agents

    fan_out = {name: agent.definition.steps.generate.concurrency for name, agent in load_agents().items()}
    pipelines = pipelines_from(bodies, fan_out, generates_per_pipeline, after)
    limit = int(os.environ["AGENTFLOWS_LLM_MAX_CONCURRENCY"])
    return asyncio.run(replay(os.environ["AGENTFLOWS_LLM_BASE_URL"], pipelines, shared_limit=limit))


def warm_up(run: Callable[[], Coroutine[Any, Any, Any]]) -> None:
    """One untimed run first, so timings leave out what a process pays once: imports, loading and
    compiling the definitions, Prefect's client set-up (the start-up rows measure those)."""
    cold_cache()
    asyncio.run(run())


# -- scenarios ----------------------------------------------------------------------------------


def agent_cold_and_cached(repeats: int) -> dict[str, Any]:
    """One ebook run (4 chapters) with a cold cache, then the identical run again."""
    from agentflows import run_agent_async

    fresh_home()
    warm_up(lambda: run_agent_async("ebook", topic="Warming up", chapters=1))
    rows = []
    for _ in range(repeats):
        cold_cache()
        reset_received()
        cold, first = timed(lambda: run_agent_async("ebook", **EBOOK))
        bodies = received()
        cached, second = timed(lambda: run_agent_async("ebook", **EBOOK))
        baseline = ideal(bodies)
        rows.append(
            {
                "cold": cold,
                "cached": cached,
                "ideal": baseline,
                "cold_calls": first.model_calls,
                "cached_calls": second.model_calls,
            }
        )
    return {"rows": rows}


FANOUT_CHAPTERS = 12
"""The e-book's largest plan (its `chapters` input allows 1 to 12)."""


def fanout(repeats: int) -> dict[str, Any]:
    """A 4-chapter and a 12-chapter e-book, cold: what each generate item costs on top of its model call."""
    from agentflows import run_agent_async

    fresh_home()
    warm_up(lambda: run_agent_async("ebook", topic="Warming up", chapters=1))
    rows = []
    for _ in range(repeats):
        row: dict[str, Any] = {}
        for chapters in (EBOOK["chapters"], FANOUT_CHAPTERS):
            cold_cache()
            reset_received()
            inputs = {**EBOOK, "chapters": chapters}
            wall, result = timed(lambda inputs=inputs: run_agent_async("ebook", **inputs))  # type: ignore[misc]
            row[f"wall_{chapters}"], row[f"ideal_{chapters}"] = wall, ideal(received())
            row[f"calls_{chapters}"] = result.model_calls
        rows.append(row)
    return {"rows": rows, "small": EBOOK["chapters"], "large": FANOUT_CHAPTERS}


def router_four_types(repeats: int) -> dict[str, Any]:
    """The router with four content types, as concurrent sub-flows."""
    from agentflows import route_async

    fresh_home()
    warm_up(lambda: route_async("a quiz about the tides", content_types=["quiz"]))
    rows = []
    for _ in range(repeats):
        cold_cache()
        reset_received()
        wall, manifest = timed(lambda: route_async(ROUTER_REQUEST, content_types=ROUTER_TYPES))
        bodies = received()
        assert manifest.status == "completed", manifest
        baseline = ideal(bodies, after=waits_of(manifest))
        rows.append({"wall": wall, "ideal": baseline, "calls": manifest.model_calls})
    return {"rows": rows}


def router_graph(repeats: int) -> dict[str, Any]:
    """The router on a three-node graph (lesson → quiz, lesson → ebook); the ideal replays the same calls
    along the same edges, so it is the critical path of the model calls."""
    from agentflows import route_async

    fresh_home()
    warm_up(lambda: route_async("a lesson on the tides", content_types=GRAPH_TYPES))
    rows = []
    for _ in range(repeats):
        cold_cache()
        reset_received()
        wall, manifest = timed(lambda: route_async(GRAPH_REQUEST, content_types=GRAPH_TYPES))
        bodies = received()
        assert manifest.status == "completed" and not manifest.problems, manifest
        edges = sorted((e.upstream, e.dependent) for e in manifest.edges)
        assert edges == [("lesson_plan", "ebook"), ("lesson_plan", "quiz")], edges
        baseline = ideal(bodies, after=waits_of(manifest))
        rows.append({"wall": wall, "ideal": baseline, "calls": manifest.model_calls, "edges": len(edges)})
    return {"rows": rows}


def waits_of(manifest: Any) -> dict[str, list[str]]:
    """The agents each component of a manifest ran after."""
    return {c.agent: list(c.depends_on) for c in manifest.components}


def concurrent_requests(repeats: int) -> dict[str, Any]:
    """20 quiz requests at once under the provider's concurrency limit (AGENTFLOWS_LLM_MAX_CONCURRENCY)."""
    from agentflows import run_agent_async

    limit = int(os.environ["AGENTFLOWS_LLM_MAX_CONCURRENCY"])
    fresh_home()
    warm_up(lambda: run_agent_async("quiz", topic="Warming up", questions=1))
    rows = []
    for repeat in range(repeats):
        cold_cache()
        reset_received()

        topics = [f"Topic {repeat}-{i}" for i in range(CONCURRENT_REQUESTS)]

        async def all_requests(topics: list[str] = topics) -> list[Any]:
            return await asyncio.gather(*(run_agent_async("quiz", topic=t, questions=3) for t in topics))

        wall, results = timed(all_requests)
        bodies = received()
        baseline = ideal(bodies, generates_per_pipeline=3)
        rows.append({"wall": wall, "ideal": baseline, "calls": sum(r.model_calls for r in results), "limit": limit})
    return {"rows": rows}


def persistence(repeats: int) -> dict[str, Any]:
    """Save 1,000 distinct normalized contents in batches (`ContentStore.save_many`, 4 batches at a time)
    to the store in BENCH_DATABASE_URL / BENCH_STORAGE_URL."""
    from agentflows.tasks.runtime import open_store
    from benchmarks.contents import distinct_contents

    contents = distinct_contents(int(os.environ.get("BENCH_CONTENTS", "1000")))
    rows = []
    for repeat in range(repeats):
        fresh_home()
        for target, source in (
            ("AGENTFLOWS_DATABASE_URL", "BENCH_DATABASE_URL"),
            ("AGENTFLOWS_STORAGE_URL", "BENCH_STORAGE_URL"),
        ):
            os.environ[target] = (
                os.environ[source].replace("{home}", os.environ["AGENTFLOWS_HOME"]).replace("{repeat}", str(repeat))
            )
        _prepare_store()
        store = open_store()
        started = time.perf_counter()
        batches = [contents[i : i + PERSISTENCE_BATCH] for i in range(0, len(contents), PERSISTENCE_BATCH)]
        with ThreadPoolExecutor(max_workers=PERSISTENCE_WRITERS) as pool:
            list(pool.map(store.save_many, batches))
        wall = time.perf_counter() - started
        assert len(store.records.content_ids()) == len(contents)
        ideal_seconds, objects = objects_alone(store.objects, contents)
        rows.append(
            {
                "wall": wall,
                "ideal": ideal_seconds,
                "contents": len(contents),
                "objects": objects,
                "per_second": len(contents) / wall,
                "batch": PERSISTENCE_BATCH,
                "writers": PERSISTENCE_WRITERS,
            }
        )
    return {"rows": rows}


def objects_alone(objects: Any, contents: list[tuple[Any, Any]]) -> tuple[float, int]:
    """Seconds to write the same files with no agentflows code: one plain fsspec `pipe` call
    (concurrent on S3) or a plain write per file, under a prefix of their own; no rows. Also how many files."""
    from agentflows.tasks.normalize import normalize

    files = {f"{objects.root}/ideal/{f.key}": f.data for built, _ in contents for f in normalize(built).files}
    started = time.perf_counter()
    if objects.local:
        for path, data in files.items():
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_bytes(data)
    else:
        objects.fs.pipe(files)
    return time.perf_counter() - started, len(files)


def _prepare_store() -> None:
    """Create the bucket and migrate the database of this repetition's store."""
    from agentflows.tasks.runtime import current_runtime
    from agentflows.tasks.storage.migrate import upgrade
    from agentflows.tasks.storage.records import open_engine

    config = current_runtime().settings.store
    if config.storage_url.startswith("s3://"):
        import s3fs

        options = {k: v for k, v in config.storage_options().items() if k in ("endpoint_url", "key", "secret")}
        s3fs.S3FileSystem(**options).mkdir(config.storage_url.removeprefix("s3://").split("/")[0])
    if not config.embedded:
        engine = open_engine(config.database_url.get_secret_value())
        upgrade(engine)
        engine.dispose()


def knowledge_index_and_query(repeats: int) -> dict[str, Any]:
    """Index 1,000 knowledge passages and query them (`benchmarks.knowledge`)."""
    from benchmarks.knowledge import knowledge

    return knowledge(repeats)


def load(repeats: int) -> dict[str, Any]:
    """50 runs at once, and 20 runs over 2 process workers, on PostgreSQL + S3 (`benchmarks.load`)."""
    from benchmarks.load import load as load_scenario

    return load_scenario(repeats)


def workers(repeats: int) -> dict[str, Any]:
    """100 deployment runs over 2 process workers (`benchmarks.load`)."""
    from benchmarks.load import workers as workers_scenario

    return workers_scenario(repeats)


REALMODEL_AGENTS: dict[str, dict[str, Any]] = {
    "ebook": {"topic": "How tides work", "chapters": 2},
    "lesson_plan": {"topic": "Photosynthesis", "stages": 3, "duration_minutes": 30},
    "quiz": {"topic": "Photosynthesis", "questions": 3},
    "api_scaffold": {"service": "a to-do list with due dates"},
    "data_report": {"subject": "monthly sales of a small bakery", "sections": 2},
}
REALMODEL_REQUEST = "a lesson on photosynthesis for 8th grade with a quiz"


def realmodel(repeats: int) -> dict[str, Any]:
    """Each shipped agent, then the router's request, against the small real model in AGENTFLOWS_LLM_BASE_URL:
    what each run spent and how its answers went, from the run's ledger (failed runs included)."""
    from agentflows import route_async, run_agent_async

    rows = []
    for _ in range(repeats):
        for agent, inputs in REALMODEL_AGENTS.items():
            rows.append(_ledgered(agent, inputs, lambda a=agent, i=inputs: run_agent_async(a, **i)))  # type: ignore[misc]
        rows.append(_ledgered("router", {"request": REALMODEL_REQUEST}, lambda: route_async(REALMODEL_REQUEST)))
    return {"rows": rows}


def _ledgered(name: str, inputs: dict[str, Any], run: Callable[[], Coroutine[Any, Any, Any]]) -> dict[str, Any]:
    from agentflows.tasks.artifacts import AttemptCounts
    from agentflows.tasks.errors import AgentflowsError
    from agentflows.tasks.ledger import run_ledger

    fresh_home()
    error = None
    with run_ledger(fresh=True) as ledger:
        started = time.perf_counter()
        try:
            result = asyncio.run(run())
        except AgentflowsError as exc:
            result, error = None, str(exc).splitlines()[0][:300]
        wall = time.perf_counter() - started
    if result is not None and getattr(result, "status", "completed") != "completed":
        error = "; ".join(f"{c.agent}: {c.error}" for c in result.failed())
    counts = AttemptCounts.of([a for account in ledger.steps.values() for a in account.attempts])
    usage = ledger.usage
    warnings = list(getattr(result, "warnings", []) or [])
    return {
        "name": name,
        "inputs": inputs,
        "wall": wall,
        "model_seconds": usage.latency_seconds,
        "calls": usage.calls,
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        **counts.model_dump(),
        "dropped": sum(1 for w in warnings if "dropped" in w),
        "error": error,
    }


SCENARIOS: dict[str, Callable[[int], dict[str, Any]]] = {
    "agent": agent_cold_and_cached,
    "fanout": fanout,
    "router": router_four_types,
    "graph": router_graph,
    "concurrent": concurrent_requests,
    "persistence": persistence,
    "knowledge": knowledge_index_and_query,
    "load": load,
    "workers": workers,
    "realmodel": realmodel,
}


def main() -> None:
    parser = argparse.ArgumentParser(description="run one benchmark scenario and print its measurements as JSON")
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    measured = SCENARIOS[args.scenario](args.repeats)
    measured["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(measured))
    sys.stdout.flush()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()

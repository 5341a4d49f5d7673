"""The load scenario: many runs at once on the production layout, counted the way a user would count them.

    concurrent   50 quiz runs at once from one process (`run_agent_async`)
    workers      20 runs of a deployment, picked up by 2 process workers (`prefect worker start`)

The `workers` scenario (`python -m benchmarks --scenario workers`) is the second part alone with
100 runs, for throughput and the p95 of the runs' own durations.

Both run against the harness's PostgreSQL-backed Prefect server, store into PostgreSQL + S3
(moto), and take model-call slots of the server-scope concurrency limit (the harness sets
`AGENTFLOWS_LLM_LIMIT_SCOPE=server`, so the 50 in-process runs use it too). Each reports how many
runs completed, rows lost (a completed run without its generation or content row), rows stored
twice (more generations than flow runs, more content rows than distinct contents), objects
missing from the bucket, slots still held afterwards, and model calls recorded against those the
fake server answered; the worker part also which worker ran each run.

The environment names the store (`AGENTFLOWS_DATABASE_URL`, `AGENTFLOWS_STORAGE_URL`,
`AGENTFLOWS_S3_ENDPOINT_URL`) besides what every scenario gets (see `benchmarks.scenarios`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any
from uuid import UUID

CONCURRENT_RUNS = 50
WORKER_RUNS = 20
SCALE_WORKER_RUNS = 100
"""Runs of the `workers` scenario."""
WORKERS = 2
WORKER_LIMIT = 5
"""Flow runs each worker runs at once (each is a Python process of its own)."""
POOL = "agentflows-load"
_SUBMITTED = re.compile(r"Worker '[^']+' submitting flow run '([0-9a-f-]{36})'")
_ABORTED = re.compile(r"Aborted submission of flow run '([0-9a-f-]{36})'")


def load(repeats: int) -> dict[str, Any]:
    """Both parts once (`repeats` is ignored: each part is already many runs)."""
    from benchmarks.scenarios import _prepare_store, fresh_home

    fresh_home()
    _prepare_store()
    return {"concurrent": concurrent_runs(), "workers": worker_runs()}


def concurrent_runs() -> dict[str, Any]:
    from agentflows import run_agent_async
    from agentflows.tasks.artifacts import AgentResult
    from agentflows.tasks.errors import one_line
    from benchmarks.scenarios import received, reset_received

    reset_received()
    topics = [f"Load test topic {number}" for number in range(CONCURRENT_RUNS)]

    async def every_run() -> list[Any]:
        runs = (run_agent_async("quiz", topic=topic, questions=2) for topic in topics)
        return await asyncio.gather(*runs, return_exceptions=True)

    started = time.perf_counter()
    results = asyncio.run(every_run())
    wall = time.perf_counter() - started
    completed = [r for r in results if isinstance(r, AgentResult)]
    failures = [one_line(r) for r in results if isinstance(r, BaseException)]
    counted = stored({str(r.flow_run_id): r.content_id for r in completed})
    return {
        "wall": wall,
        "runs": CONCURRENT_RUNS,
        "completed": len(completed),
        "failures": failures[:3],
        "fake_calls": len(received()),
        "recorded_calls": sum(r.model_calls for r in completed),
        **counted,
        "slots_held": asyncio.run(slots_held()),
    }


def workers(repeats: int) -> dict[str, Any]:
    """100 deployment runs over 2 process workers (`repeats` is ignored)."""
    from benchmarks.scenarios import _prepare_store, fresh_home

    fresh_home()
    _prepare_store()
    return worker_runs(SCALE_WORKER_RUNS)


def worker_runs(count: int = WORKER_RUNS) -> dict[str, Any]:
    from prefect.deployments.runner import RunnerDeployment

    from agentflows.deployments.stack import stop_group

    asyncio.run(_create_pool())
    folder = Path(tempfile.mkdtemp(prefix="agentflows-load-workers-"))
    # A deployment made here keeps the working directory as its `path`, and a worker copies that folder into
    # each flow run's own before importing the flow: from the repository, 2 GB a run (.venv and .git), which
    # filled the disk. The flow is imported from the installed package; the folder it copies is empty.
    code = folder / "code"
    code.mkdir()
    with contextlib.chdir(code):
        RunnerDeployment.from_entrypoint("agentflows.agents:quiz", name="load").apply(work_pool_name=POOL)
    workers = [_start_worker(number, folder) for number in range(1, WORKERS + 1)]
    try:
        started = time.perf_counter()
        states = asyncio.run(_run_all_and_wait(count))
        wall = time.perf_counter() - started
    finally:
        for worker in workers:
            stop_group(worker.pid, grace=30)
    results, durations = asyncio.run(_results(states))
    by_worker = {log.stem: len(ran_by(log) & set(states)) for log in sorted(folder.glob("*.log"))}
    return {
        "wall": wall,
        "runs": count,
        "durations": durations,
        "completed": sum(1 for state in states.values() if state == "COMPLETED"),
        "states": dict(Counter(states.values())),
        "by_worker": by_worker,
        **stored(results),
        "slots_held": asyncio.run(slots_held()),
    }


def ran_by(log: Path) -> set[str]:
    """The flow runs a worker ran, from its log: those it submitted, less those the server gave another worker."""
    text = log.read_text(errors="replace")
    return set(_SUBMITTED.findall(text)) - set(_ABORTED.findall(text))


def stored(runs: dict[str, str]) -> dict[str, int]:
    """Rows lost and stored twice for completed runs (`{flow run id: content id}`), and objects missing."""
    from sqlalchemy import select

    from agentflows.tasks.runtime import open_store
    from agentflows.tasks.storage.schema import GeneratedContent, Generation

    store = open_store()
    with store.records.session() as session:
        generations = Counter(
            session.scalars(select(Generation.flow_run_id).where(Generation.flow_run_id.in_(list(runs))))
        )
        contents = list(session.scalars(select(GeneratedContent).where(GeneratedContent.id.in_(set(runs.values())))))
    found = {c.id for c in contents}
    keys = [key for content in contents for key in content.files.values()]
    return {
        "lost_rows": sum(1 for run in runs if run not in generations)
        + sum(1 for cid in set(runs.values()) if cid not in found),
        "duplicate_rows": sum(n - 1 for n in generations.values()) + len(contents) - len(found),
        "missing_objects": sum(1 for key in keys if not store.objects.exists(key)),
        "contents": len(found),
    }


async def slots_held() -> int:
    """Slots of the model-call limit still held once the runs are over (0: none leaked)."""
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound

    from agentflows.tasks.llm.server_limits import limit_name

    async with get_client() as client:
        try:
            limit = await client.read_global_concurrency_limit_by_name(limit_name("openai"))
        except ObjectNotFound:  # no run used the server-scope limit
            return 0
        return int(limit.active_slots)


async def _create_pool() -> None:
    from prefect import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists

    async with get_client() as client:
        with contextlib.suppress(ObjectAlreadyExists):
            await client.create_work_pool(WorkPoolCreate(name=POOL, type="process"))


def _start_worker(number: int, folder: Path) -> subprocess.Popen[bytes]:
    prefect = str(Path(sys.executable).with_name("prefect"))
    command = [prefect, "worker", "start", "--pool", POOL, "--name", f"worker-{number}"]
    env = {
        **os.environ,
        "PREFECT_LOGGING_LEVEL": "INFO",  # the worker says which flow runs it submits
        "PREFECT_WORKER_QUERY_SECONDS": "2",
    }
    with (folder / f"worker-{number}.log").open("wb") as log:
        return subprocess.Popen(
            [*command, "--limit", str(WORKER_LIMIT)],
            env=env,
            cwd=folder,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # stopped with its flow-run processes as one group
        )


async def _run_all_and_wait(count: int, timeout: float = 2400) -> dict[str, str]:
    """Create the worker runs at once, then wait until each has finished; their states by run id."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.deployments.flow_runs import arun_deployment

    created = [
        await arun_deployment("quiz/load", parameters={"topic": f"Worker topic {n}", "questions": 2}, timeout=0)
        for n in range(count)
    ]
    run_ids = [r.id for r in created]

    terminal = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
    deadline = time.monotonic() + timeout
    async with get_client() as client:
        while True:
            runs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=run_ids)))
            states = {str(r.id): r.state.type.value if r.state else "PENDING" for r in runs}
            if all(state in terminal for state in states.values()) or time.monotonic() > deadline:
                return states
            await asyncio.sleep(2)


async def _results(states: dict[str, str]) -> tuple[dict[str, str], list[float]]:
    """`{flow run id: content id}` of the completed runs, from their persisted results, and each completed
    run's seconds from its creation (the request) to its end."""
    from prefect import get_client

    from agentflows.tasks.artifacts import AgentResult

    found = {}
    durations = []
    async with get_client() as client:
        for run_id, state in states.items():
            if state != "COMPLETED":
                continue
            run = await client.read_flow_run(UUID(run_id))
            result = await run.state.aresult() if run.state else None
            if isinstance(result, AgentResult):
                found[run_id] = result.content_id
            if run.created and run.end_time:
                durations.append((run.end_time - run.created).total_seconds())
    return found, durations

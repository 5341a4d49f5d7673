"""Run every scenario against real servers and write the results table.

The harness starts what the scenarios need, each on loopback:

- a PostgreSQL cluster (the Prefect server's database, and the content store's);
- a Prefect server backed by that PostgreSQL, as in production (a SQLite-backed
  server slows concurrent runs several times; see README);
- moto's S3 endpoint, for the persistence and load scenarios;
- a fake model server that answers embeddings at once, for the knowledge scenario;
- a fake OpenAI-compatible model server per latency;
- for `realmodel`, a real small model (SmolLM2-135M-Instruct on llama.cpp's
  server, `tests/llama_server.py`).

Each scenario runs in a subprocess (`benchmarks.scenarios`) so its peak memory is
its own; the ideal baselines replay the model calls each agentflows run made.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentflows.deployments.stack import start_server, stop_group
from tests.fake_llm import FakeLLM
from tests.llama_server import llama_server
from tests.servers import PostgresCluster, S3Server, free_port

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Options:
    """What to measure."""

    latencies: tuple[float, ...] = (0.2, 1.0)
    repeats: int = 3
    contents: int = 1000
    concurrency_limit: int = 8
    scenarios: tuple[str, ...] = (
        "agent",
        "fanout",
        "router",
        "graph",
        "concurrent",
        "peers",
        "persistence",
        "knowledge",
        "startup",
        "load",
        "realmodel",
    )
    """The default scenarios; `workers` (100 runs over 2 process workers, ~30 min here) runs when named."""
    passages: int = 1000
    """Knowledge passages indexed in the knowledge scenario."""
    profile: tuple[str, ...] = ()
    output: Path = ROOT / "benchmarks" / "RESULTS.md"
    quick: bool = False
    """A smoke pass: the table says its verdicts are not measurements."""


@dataclass
class Results:
    """Raw measurements, by scenario and latency."""

    machine: dict[str, Any]
    options: Options
    runs: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def run(options: Options) -> Results:
    """Start the servers, run the scenarios, stop everything; return the measurements."""
    started = time.perf_counter()
    results = Results(machine=machine(), options=options)
    postgres = PostgresCluster()
    s3 = S3Server()
    prefect: subprocess.Popen[bytes] | None = None
    try:
        postgres.create_database("prefect")
        prefect, api_url = start_prefect(postgres)
        base_env = {
            **os.environ,
            "PREFECT_API_URL": api_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_LOGGING_LEVEL": "WARNING",
            "AGENTFLOWS_LLM_MODEL": "bench-model",
            "AGENTFLOWS_LLM_MAX_CONCURRENCY": str(options.concurrency_limit),
        }
        for latency in options.latencies:
            with FakeLLM(latency=latency) as fake:
                env = {**base_env, "AGENTFLOWS_LLM_BASE_URL": fake.base_url, "BENCH_FAKE_CONTROL": fake.control_url}
                for name in ("agent", "fanout", "router", "graph", "concurrent"):
                    if name in options.scenarios:
                        results.runs[f"{name}@{latency}"] = scenario(name, env, options)
                if "peers" in options.scenarios:
                    results.runs[f"peers@{latency}"] = peers(env, options)
        if "persistence" in options.scenarios:
            results.runs.update(persistence(postgres, s3, base_env, options))
        if "knowledge" in options.scenarios:
            results.runs.update(knowledge(postgres, base_env, options))
        if "startup" in options.scenarios:
            results.runs["startup"] = startup(base_env)
        if "load" in options.scenarios:
            results.runs["load"] = load(postgres, s3, base_env, options)
        if "workers" in options.scenarios:
            results.runs["workers"] = load(postgres, s3, base_env, options, "workers")
        if "realmodel" in options.scenarios:
            results.runs["realmodel"] = realmodel(base_env, options)
    finally:
        if prefect is not None:
            stop_group(prefect.pid)
        s3.stop()
        postgres.remove()
    results.seconds = time.perf_counter() - started
    return results


def start_prefect(postgres: PostgresCluster) -> tuple[subprocess.Popen[bytes], str]:
    """A Prefect server on a free port, backed by the cluster's `prefect` database."""
    port = free_port()
    home = Path(tempfile.mkdtemp(prefix="agentflows-bench-prefect-"))
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": postgres.url("prefect").replace("+psycopg", "+asyncpg"),
    }
    return start_server("127.0.0.1", port, env, home / "server.log"), f"http://127.0.0.1:{port}/api"


def scenario(name: str, env: dict[str, str], options: Options) -> dict[str, Any]:
    """Run one scenario in a subprocess and return its measurements.

    With `name` in options.profile it runs once more, one repetition under
    pyinstrument, writing benchmarks/profiles/<name>.txt; the profiler's own
    overhead stays out of the measurements.
    """
    timeout = SCENARIO_TIMEOUTS.get(name, 1200)
    measured = _run_scenario(
        ["-m", "benchmarks.scenarios", name, "--repeats", str(options.repeats)], name, env, timeout=timeout
    )
    if name in options.profile:
        profile = ROOT / "benchmarks" / "profiles" / f"{name}.txt"
        profile.parent.mkdir(exist_ok=True)
        _run_scenario(
            ["-m", "pyinstrument", "-o", str(profile), "-m", "benchmarks.scenarios", name, "--repeats", "1"], name, env
        )
    return measured


SCENARIO_TIMEOUTS = {"workers": 3600}
"""Seconds a scenario may take (default 1200): 100 runs over 2 workers took longer than 20 min at load 9."""


def _run_scenario(
    args: list[str], name: str, env: dict[str, str], python: Path | str = sys.executable, timeout: float = 1200
) -> dict[str, Any]:
    done = subprocess.run([str(python), *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"scenario {name!r} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


PEERS: tuple[tuple[str, str, dict[str, str], Path], ...] = (
    ("agentflows", "agentflows", {}, Path(sys.executable)),
    ("agentflows, server-scope limits", "agentflows", {"AGENTFLOWS_LLM_LIMIT_SCOPE": "server"}, Path(sys.executable)),
    ("Prefect tasks + openai", "prefect", {}, Path(sys.executable)),
    ("pydantic-ai on Prefect", "pydantic-ai", {}, Path(sys.executable)),
    ("crewAI Flow", "crewai", {}, ROOT / ".venv-crewai" / "bin" / "python"),
)
"""Label, `benchmarks.peers` name, extra environment and interpreter of each peer (crewAI has an
environment of its own: it pins pydantic < 2.13 and openai < 3, below what agentflows and pydantic-ai use)."""


def peers(env: dict[str, str], options: Options) -> dict[str, Any]:
    """The e-book pipeline by each peer (`benchmarks.peers`), replaying one recorded agentflows run's calls.

    A peer that is not installed (the `peers` extra, `.venv-crewai`) gets a row saying so."""
    recorded = Path(tempfile.mkdtemp(prefix="agentflows-bench-peers-")) / "recorded.json"
    env = {**env, "BENCH_RECORDED": str(recorded)}
    _run_scenario(["-m", "benchmarks.peers", "record"], "peers", env)
    measured: dict[str, Any] = {}
    for label, name, extra, python in PEERS:
        if not python.exists():
            measured[label] = {"missing": f"{python.relative_to(ROOT)} is not installed"}
            continue
        args = ["-m", "benchmarks.peers", name, "--repeats", str(options.repeats)]
        try:
            measured[label] = _run_scenario(args, f"peers {name}", {**env, **extra}, python)
        except RuntimeError as exc:
            measured[label] = {"missing": str(exc).strip().splitlines()[-1][:200]}
    return measured


def persistence(postgres: PostgresCluster, s3: S3Server, env: dict[str, str], options: Options) -> dict[str, Any]:
    """1,000 contents into PostgreSQL + S3, and into the embedded default; a fresh store per repetition."""
    measured = {}
    for repeat in range(options.repeats):
        postgres.create_database(f"bench{repeat}")
    backends = {
        "postgres+s3": {
            "BENCH_DATABASE_URL": postgres.url("bench{repeat}"),
            "BENCH_STORAGE_URL": "s3://bench-{repeat}/outputs",
            "AGENTFLOWS_S3_ENDPOINT_URL": s3.endpoint,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
        },
        "embedded": {"BENCH_DATABASE_URL": "sqlite:///{home}/agentflows.db", "BENCH_STORAGE_URL": "{home}/outputs"},
    }
    for backend, extra in backends.items():
        measured[f"persistence:{backend}"] = scenario(
            "persistence", {**env, **extra, "BENCH_CONTENTS": str(options.contents)}, options
        )
    return measured


def knowledge(postgres: PostgresCluster, env: dict[str, str], options: Options) -> dict[str, Any]:
    """Index 1,000 passages and query them, on SQLite and on PostgreSQL; embeddings from a fake server
    that answers at once, so the hybrid rows show agentflows' own cost."""
    measured = {}
    for repeat in range(options.repeats):
        postgres.create_database(f"knowledge{repeat}")
    backends = {
        "sqlite": "sqlite:///{home}/agentflows.db",
        "postgres": postgres.url("knowledge{repeat}"),
    }
    with FakeLLM() as fake:
        extra = {
            "AGENTFLOWS_LLM_BASE_URL": fake.base_url,
            "AGENTFLOWS_LLM_EMBEDDINGS_MODEL": "bench-embeddings",
            "AGENTFLOWS_LLM_LIMIT_SCOPE": "process",
            "BENCH_PASSAGES": str(options.passages),
        }
        for backend, url in backends.items():
            measured[f"knowledge:{backend}"] = scenario(
                "knowledge", {**env, **extra, "BENCH_DATABASE_URL": url}, options
            )
    return measured


LOAD_LATENCY = 0.2
"""Model latency of the load scenario."""


def load(
    postgres: PostgresCluster, s3: S3Server, env: dict[str, str], options: Options, name: str = "load"
) -> dict[str, Any]:
    """Many runs at once into PostgreSQL + S3 (`benchmarks.load`), against a fake model of its own; `name` is
    `load` (50 runs at once, 20 over 2 workers) or `workers` (100 over 2 workers)."""
    postgres.create_database(name)
    with FakeLLM(latency=LOAD_LATENCY) as fake:
        store = {
            "AGENTFLOWS_LLM_BASE_URL": fake.base_url,
            "BENCH_FAKE_CONTROL": fake.control_url,
            "AGENTFLOWS_DATABASE_URL": postgres.url(name),
            "AGENTFLOWS_STORAGE_URL": f"s3://{name}/outputs",
            "AGENTFLOWS_LLM_LIMIT_SCOPE": "server",  # the slots the load scenario counts as leaked or not
            "AGENTFLOWS_S3_ENDPOINT_URL": s3.endpoint,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        return scenario(name, {**env, **store}, options)


def startup(env: dict[str, str]) -> dict[str, Any]:
    """One small run from the command line in ephemeral mode (no server), and against the running server."""
    command = [
        str(Path(sys.executable).with_name("agentflows")),
        "run",
        "quiz",
        "-p",
        "topic=Tides",
        "-p",
        "questions=1",
    ]
    timings = {}
    for mode in ("ephemeral", "server"):
        run_env = {**env, "AGENTFLOWS_HOME": tempfile.mkdtemp(prefix="agentflows-bench-")}
        run_env.pop("AGENTFLOWS_LLM_BASE_URL", None)
        if mode == "ephemeral":
            run_env.pop("PREFECT_API_URL")
            run_env["PREFECT_HOME"] = tempfile.mkdtemp(prefix="agentflows-bench-prefect-")
        started = time.perf_counter()
        subprocess.run(command, env=run_env, cwd=ROOT, check=True, capture_output=True, timeout=600)
        timings[mode] = time.perf_counter() - started
    return timings


def realmodel(env: dict[str, str], options: Options) -> dict[str, Any]:
    """Every agent and the router on SmolLM2-135M, served by llama.cpp on one thread and one slot, on loopback.

    One repetition: a pass takes ~15 minutes on two cores, and with a fixed seed the model answers the same."""
    log = Path(tempfile.mkdtemp(prefix="agentflows-bench-llama-")) / "server.log"
    with llama_server(log=log) as server:
        run_env = {**env, "AGENTFLOWS_LLM_BASE_URL": server.base_url, "AGENTFLOWS_LLM_MODEL": "smollm2"}
        run_env["AGENTFLOWS_LLM_SEED"] = "1"
        run_env["AGENTFLOWS_LLM_FREQUENCY_PENALTY"] = "0.5"  # as README recommends for SmolLM2-135M
        run_env.pop("AGENTFLOWS_LLM_MAX_CONCURRENCY", None)  # the server's slots decide
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.scenarios", "realmodel", "--repeats", "1"],
            env=run_env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=3600,
        )
    if done.returncode != 0:
        raise RuntimeError(f"scenario 'realmodel' failed:\n{done.stderr[-4000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    from importlib.metadata import version

    memory = ""
    try:
        with open("/proc/meminfo") as meminfo:
            memory = f"{int(meminfo.readline().split()[1]) / 1024 / 1024:.0f} GiB"
    except OSError:
        pass
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": memory,
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "prefect": version("prefect"),
        "agentflows": version("agentflows"),
    }

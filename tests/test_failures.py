"""A corpus of operational failures, each through the real `agentflows` command.

Every case runs the installed CLI in a subprocess against real servers on loopback
(the fake OpenAI-compatible server scripted per case, the session's Prefect server or
a temporary one, PostgreSQL, moto's S3) and asserts what a user sees: the exit status,
one `error:` line naming what failed (at most 3 lines on stderr in all), no Python
traceback, and no secret — the API key, and passwords in the model, database, S3 and
Prefect URLs, all of which contain `SECRET` — anywhere in the output.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL

from tests.fake_llm import FakeLLM, Reply
from tests.servers import PostgresCluster, S3Server, free_port

AGENTFLOWS = str(Path(sys.executable).with_name("agentflows"))
API_KEY = "sk-corpus-SECRET-key"
SECRET = "SECRET"
"""In every secret of the corpus: none may be printed."""
FOREVER = 40
"""Replies scripted for a failure that does not pass (more than any retry budget asks)."""


@dataclass(frozen=True)
class Case:
    """One operational failure: what is run, in which environment, and the error line it must give."""

    name: str
    args: tuple[str, ...]
    message: str
    """A fragment of the one `error:` line."""
    env: dict[str, str] = field(default_factory=dict)
    """Variables, formatted with the servers' addresses: {llm}, {api}, {pg}, {s3}, {closed}."""
    replies: tuple[Reply, ...] = ()
    """What the fake model answers, in order, for this case's model name."""
    code: int = 1
    prefect: str = "api"
    """`api`: the session's Prefect server; `temporary`: the CLI starts its own."""


def run_quiz(topic: str) -> tuple[str, ...]:
    return ("run", "quiz", "-p", f"topic={topic}", "-p", "questions=2", "--refresh")


def failing(status: int, body: str = '{"error": {"message": "no"}}', **headers: str) -> tuple[Reply, ...]:
    return (Reply(status=status, body=body, headers=headers),) * FOREVER


LLM = {"AGENTFLOWS_LLM_BASE_URL": "{llm}", "AGENTFLOWS_LLM_API_KEY": API_KEY}
CASES = [
    # -- the model endpoint ----------------------------------------------------------------
    Case("model-401", run_quiz("Tides"), "answered 401 Unauthorized", LLM, failing(401), prefect="temporary"),
    Case("model-403", run_quiz("Tides"), "answered 403 Forbidden", LLM, failing(403)),
    Case("model-404", run_quiz("Tides"), "answered 404 Not Found", LLM, failing(404, '{"error": "no such model"}')),
    Case(
        "model-401-echoes-the-key",
        run_quiz("Tides"),
        "Incorrect API key provided: ***",
        LLM,
        failing(401, f'{{"error": {{"message": "Incorrect API key provided: {API_KEY}"}}}}'),
    ),
    Case("model-429-forever", run_quiz("Tides"), "answered 429", LLM, failing(429, "{}", **{"retry-after": "0"})),
    Case("model-500-forever", run_quiz("Tides"), "answered 500", LLM, failing(500)),
    Case("model-502-html", run_quiz("Tides"), "answered 502", LLM, failing(502, "<html><h1>Bad gateway</h1></html>")),
    Case(
        "model-timeout",
        run_quiz("Tides"),
        "timed out",
        {**LLM, "AGENTFLOWS_LLM_READ_TIMEOUT": "0.5"},
        (Reply(delay=3),) * FOREVER,
    ),
    Case(
        "model-unreachable", run_quiz("Tides"), "connection failed", {**LLM, "AGENTFLOWS_LLM_BASE_URL": "{closed}/v1"}
    ),
    Case("model-garbage-body", run_quiz("Tides"), "not a chat completion", LLM, failing(200, "this is not JSON")),
    Case("model-json-not-a-completion", run_quiz("Tides"), "not a chat completion", LLM, failing(200, '{"a": 1}')),
    Case(
        "model-answers-no-plan",
        run_quiz("Tides"),
        "decide",
        LLM,
        (Reply(content="I would rather not."),) * FOREVER,
    ),
    # -- settings --------------------------------------------------------------------------
    Case(
        "concurrency-not-a-number",
        run_quiz("Tides"),
        "AGENTFLOWS_LLM_MAX_CONCURRENCY is invalid",
        {**LLM, "AGENTFLOWS_LLM_MAX_CONCURRENCY": "abc"},
    ),
    Case(
        "base-url-without-scheme",
        run_quiz("Tides"),
        "AGENTFLOWS_LLM_BASE_URL is invalid: must be an http:// or https:// URL",
        {"AGENTFLOWS_LLM_BASE_URL": "agent:SECRET@localhost:8000/v1"},
    ),
    Case(
        "negative-timeout",
        run_quiz("Tides"),
        "AGENTFLOWS_LLM_READ_TIMEOUT is invalid",
        {**LLM, "AGENTFLOWS_LLM_READ_TIMEOUT": "-1"},
    ),
    Case(
        "result-storage-url",
        run_quiz("Tides"),
        "AGENTFLOWS_RESULT_STORAGE='s3://bucket/results' is a URL",
        {"AGENTFLOWS_RESULT_STORAGE": "s3://bucket/results"},
    ),
    Case(
        "startup-timeout-not-a-number",
        run_quiz("Tides"),
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS='soon' is invalid",
        {"PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "soon"},
        prefect="temporary",
    ),
    # -- the content database and the object storage ---------------------------------------
    Case(
        "database-unknown-dialect",
        run_quiz("Tides"),
        "names 'notadb', which is no database dialect",
        {"AGENTFLOWS_DATABASE_URL": "notadb://user:SECRET@host/db"},
    ),
    Case(
        "database-driver-not-installed",
        run_quiz("Tides"),
        "needs the driver 'psycopg2', which is not installed",
        {"AGENTFLOWS_DATABASE_URL": "postgresql://user:SECRET@127.0.0.1/db"},
    ),
    Case(
        "database-unreachable",
        run_quiz("Tides"),
        "database",
        {"AGENTFLOWS_DATABASE_URL": "postgresql+psycopg://user:SECRET@{closed_host}/agentflows"},
    ),
    Case(
        "database-unknown",
        run_quiz("Tides"),
        "does not exist",
        {"AGENTFLOWS_DATABASE_URL": "{pg}/nosuchdb"},
    ),
    Case(
        "storage-unknown-protocol",
        run_quiz("Tides"),
        "has the protocol 'nosuchproto', which is not known",
        {"AGENTFLOWS_STORAGE_URL": "nosuchproto://bucket/x"},
    ),
    Case(
        "storage-missing-bucket",
        run_quiz("Tides"),
        "nosuchbucket",
        {"AGENTFLOWS_STORAGE_URL": "s3://nosuchbucket/outputs", "AGENTFLOWS_S3_ENDPOINT_URL": "{s3}"},
    ),
    Case(
        "storage-endpoint-unreachable",
        run_quiz("Tides"),
        "cannot",
        {
            "AGENTFLOWS_STORAGE_URL": "s3://bucket/outputs",
            "AGENTFLOWS_S3_ENDPOINT_URL": "{closed}",
        },
    ),
    Case(
        "content-store-block-missing",
        run_quiz("Tides"),
        "names 'no-such-store', but no agentflows content store block",
        {"AGENTFLOWS_CONTENT_STORE": "no-such-store"},
    ),
    # -- requests the router must refuse ----------------------------------------------------
    Case("route-empty", ("route", ""), "the request is empty"),
    Case("route-blank", ("route", "   "), "the request is empty"),
    Case("route-unknown-type", ("route", "tides", "--type", "nosuch"), "unknown content type 'nosuch'"),
    Case("route-matches-nothing", ("route", "xyzzy plugh frobnicate"), "the request matches no agent"),
    # -- the CLI itself and Prefect ---------------------------------------------------------
    Case("unknown-agent", ("run", "novel", "-p", "topic=x"), "no agent is named 'novel'"),
    Case("input-out-of-bounds", ("run", "quiz", "-p", "topic=Tides", "-p", "questions=99"), "input 'questions'"),
    Case(
        "prefect-api-down",
        run_quiz("Tides"),
        "the Prefect API at http://user:***@",
        {"PREFECT_API_URL": "http://user:SECRET@{closed_host}/api"},
    ),
]


@pytest.fixture(scope="module")
def fake_llm() -> Iterator[FakeLLM]:
    with FakeLLM() as server:
        yield server


@pytest.fixture(scope="module")
def places(prefect_server: None, postgres: PostgresCluster, s3: S3Server, fake_llm: FakeLLM) -> dict[str, str]:
    """What the cases' variables are formatted with."""
    closed = f"127.0.0.1:{free_port()}"
    return {
        "llm": fake_llm.base_url.replace("http://", "http://agent:SECRET@"),
        "api": str(PREFECT_API_URL.value()),
        "pg": postgres.url("postgres", password=SECRET).rsplit("/", 1)[0],
        "s3": s3.endpoint,
        "closed": f"http://{closed}",
        "closed_host": closed,
    }


@pytest.fixture(scope="module")
def shared_prefect_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One Prefect home for the cases that start a temporary server: its migrations run once."""
    return tmp_path_factory.mktemp("prefect-home")


def cli_environment(case: Case, places: dict[str, str], home: Path, prefect_home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTFLOWS_", "PREFECT_", "AWS_"))}
    env.update(
        AGENTFLOWS_HOME=str(home),
        PREFECT_HOME=str(prefect_home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        AGENTFLOWS_LLM_MODEL=case.name,
        AGENTFLOWS_LLM_MAX_ATTEMPTS="2",
        AGENTFLOWS_LLM_BACKOFF_SECONDS="0",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="aws-SECRET-access-key",
        AWS_DEFAULT_REGION="us-east-1",
    )
    if case.prefect == "api":
        env["PREFECT_API_URL"] = places["api"]
    env.update({name: value.format(**places) for name, value in case.env.items()})
    return env


def assert_one_line(done: subprocess.CompletedProcess[str], message: str, code: int = 1) -> None:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    assert 1 <= len(lines) <= 3, done.stderr
    assert lines[-1].startswith("error: ") and message in lines[-1], done.stderr
    assert SECRET not in done.stderr + done.stdout


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_an_operational_failure_is_one_line_with_no_traceback_and_no_secret(
    case: Case, fake_llm: FakeLLM, places: dict[str, str], shared_prefect_home: Path, tmp_path: Path
) -> None:
    fake_llm.script(*case.replies, model=case.name)
    prefect_home = shared_prefect_home if case.prefect == "temporary" else tmp_path / "prefect-client"
    env = cli_environment(case, places, tmp_path / "home", prefect_home)

    done = subprocess.run([AGENTFLOWS, *case.args], env=env, capture_output=True, text=True, timeout=600)

    assert_one_line(done, case.message, case.code)


def test_the_corpus_is_large_enough_and_its_names_are_unique() -> None:
    assert len(CASES) >= 25 and len({c.name for c in CASES}) == len(CASES)


def heeding_ctrl_c() -> None:
    """In the CLI's process before it starts: SIGINT as a terminal's foreground command has it.

    A command started in the background by a shell without job control (`pytest … &`, as a CI
    script may run it) inherits SIGINT ignored, and a program keeps an ignored SIGINT ignored
    (as `nohup` relies on): the CLI would rightly not stop, and this test would fail for how
    pytest was started, not for what the CLI does."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
def test_ctrl_c_mid_run_exits_130_with_one_line(fake_llm: FakeLLM, places: dict[str, str], tmp_path: Path) -> None:
    case = Case("ctrl-c", run_quiz("Tides"), "interrupted", LLM, (Reply(delay=60),) * FOREVER, code=130)
    fake_llm.script(*case.replies, model=case.name)
    env = cli_environment(case, places, tmp_path / "home", tmp_path / "prefect-client")
    cli = subprocess.Popen(
        [AGENTFLOWS, *case.args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=heeding_ctrl_c,
    )
    deadline = time.monotonic() + 120
    while case.name not in fake_llm.models() and time.monotonic() < deadline and cli.poll() is None:
        time.sleep(0.2)
    os.killpg(cli.pid, signal.SIGINT)  # what a terminal sends its foreground process group on Ctrl-C
    out, err = cli.communicate(timeout=120)

    assert_one_line(subprocess.CompletedProcess(cli.args, cli.returncode, out, err), case.message, case.code)


@pytest.mark.slow
def test_no_secret_reaches_results_or_the_prefect_database(
    fake_llm: FakeLLM, places: dict[str, str], shared_prefect_home: Path, tmp_path: Path
) -> None:
    """A run that fails with a password in the model URL: the results and Prefect's database never hold it."""
    marker = f"marker-{uuid.uuid4().hex[:8]}"
    case = Case("stored", run_quiz(marker), "answered 401", LLM, failing(401), prefect="temporary")
    fake_llm.script(*case.replies, model=case.name)
    home = tmp_path / "home"

    done = subprocess.run(
        [AGENTFLOWS, *case.args],
        env=cli_environment(case, places, home, shared_prefect_home),
        capture_output=True,
        text=True,
        timeout=600,
    )

    assert_one_line(done, "agent:***@127.0.0.1")
    database = b"".join(p.read_bytes() for p in shared_prefect_home.glob("prefect.db*"))
    assert marker.encode() in database  # the run is recorded there...
    assert b"agent:***@" in database and b"agent:SECRET" not in database  # ...with its error masked
    stored = [p.read_bytes() for p in home.rglob("*") if p.is_file()]
    assert stored and not any(SECRET.encode() in data for data in stored)

"""`agentflows view` as a user starts it: after an offline run it serves the index, pages and JSON; a port
in use, or a public address without a token, is one line and exit 1; with a token every request needs it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from agentflows import open_store
from agentflows.viewer.server import prefect_ui_url
from tests.offline_steps import offline_run
from tests.servers import free_port
from tests.test_storage import run_info
from tests.viewing import wait_until_up

AGENTFLOWS = str(Path(sys.executable).with_name("agentflows"))


@contextmanager
def viewer(*args: str, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[str]]:
    """`agentflows view ARGS` in the background; stopped with Ctrl-C (SIGINT) at the end."""
    process = subprocess.Popen(
        [AGENTFLOWS, "view", *args],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=30)


def stored_quiz() -> str:
    run = offline_run("quiz")
    built = run.build()
    return open_store().save(built, run_info(run, built)).content_id


def run_view(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [AGENTFLOWS, "view", *args], env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
def test_view_serves_what_an_offline_run_stored_and_stops_on_ctrl_c() -> None:
    content_id = stored_quiz()
    port = free_port()

    with viewer("--port", str(port)) as process:
        base = f"http://127.0.0.1:{port}"
        wait_until_up(f"{base}/api/health")
        index = httpx.get(base + "/")
        page = httpx.get(f"{base}/contents/{content_id}/")
        listed = httpx.get(base + "/api/contents").json()
    _, errors = process.communicate(timeout=30)

    assert index.status_code == 200 and f"/contents/{content_id}/" in index.text
    assert page.status_code == 200 and "content-security-policy" in page.headers
    assert [item["id"] for item in listed["items"]] == [content_id]
    assert process.returncode == 0 and f"viewer on {base}" in errors and "Traceback" not in errors


def test_a_port_in_use_is_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_view("--port", str(port))

    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"error: port {port} on 127.0.0.1 is in use; stop what listens there or pick --port"
    ]


def test_a_public_address_without_a_token_is_refused_before_anything_listens() -> None:
    done = run_view("--host", "0.0.0.0", "--port", str(free_port()))

    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1
    assert "AGENTFLOWS_VIEWER_TOKEN" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow
def test_on_a_public_address_every_request_needs_the_token() -> None:
    content_id = stored_quiz()
    port = free_port()
    token = "s3cret-token"

    with viewer("--host", "0.0.0.0", "--port", str(port), env={"AGENTFLOWS_VIEWER_TOKEN": token}):
        base = f"http://127.0.0.1:{port}"
        wait_until_up(f"{base}/api/health")
        anonymous = [httpx.get(base + path) for path in ("/", f"/contents/{content_id}/", "/api/contents")]
        wrong = httpx.get(base + "/", headers={"Authorization": "Bearer nope"})
        bearer = httpx.get(base + "/api/contents", headers={"Authorization": f"Bearer {token}"})
        with httpx.Client(base_url=base) as browser:
            entered = browser.get(f"/contents/{content_id}/?token={token}")
            followed = browser.get(entered.headers["location"])

    assert [a.status_code for a in anonymous] == [401, 401, 401] and wrong.status_code == 401
    assert anonymous[2].json() == {"detail": "this viewer needs its token: open it with ?token=…"}
    assert bearer.status_code == 200 and bearer.json()["total"] == 1
    assert entered.status_code == 303 and entered.headers["location"].endswith(f"/contents/{content_id}/")
    assert "httponly" in entered.headers["set-cookie"].lower() and followed.status_code == 200
    assert token not in followed.text


def test_flow_runs_link_to_the_prefect_ui_the_environment_names() -> None:
    assert prefect_ui_url({"PREFECT_UI_URL": "http://ui:4200/"}) == "http://ui:4200"
    assert prefect_ui_url({"PREFECT_API_URL": "http://prefect:4200/api"}) == "http://prefect:4200"

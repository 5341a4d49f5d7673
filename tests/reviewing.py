"""Helpers of the review tests: a real `prefect server start` (its services on, UI included) and the
`agentflows` command run as a user runs it, in a process of its own, with its stderr read as it comes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from agentflows.deployments.stack import start_server, stop_group
from tests.servers import free_port

AGENTFLOWS = str(Path(sys.executable).with_name("agentflows"))
WAITING = re.compile(
    r"review waiting: flow run (?P<id>[0-9a-f-]{36}) (?P<how>paused|suspended) for review .*\(round (?P<round>\d+) of"
)
GUARD_SECONDS = 240.0
"""How long a helper waits for what a test expects before it fails the test (a guard, not an assertion on time)."""


@dataclass(frozen=True)
class PrefectServer:
    api_url: str
    ui_url: str
    home: Path

    def env(self) -> dict[str, str]:
        """The environment of a CLI process that uses this server (and the test's AGENTFLOWS_HOME)."""
        return {
            **os.environ,
            "PREFECT_HOME": str(self.home),
            "PREFECT_API_URL": self.api_url,
            "PREFECT_UI_URL": self.ui_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }

    def api(self, method: str, path: str, body: Any = None) -> Any:
        response = httpx.request(method, f"{self.api_url}{path}", json=body, timeout=30)
        response.raise_for_status()
        return response.json()

    def flow_run(self, run_id: str) -> dict[str, Any]:
        return self.api("GET", f"/flow_runs/{run_id}")  # type: ignore[no-any-return]

    def run_input(self, run_id: str, key: str) -> Any:
        """A flow run input the run saved (its review form's schema or description)."""
        return self.api("GET", f"/flow_runs/{run_id}/input/{key}")


@contextmanager
def prefect_server(home: Path) -> Iterator[PrefectServer]:
    """`prefect server start` on a free loopback port, its state under `home`; stopped at the end."""
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_API_URL": api_url}
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    server = start_server("127.0.0.1", port, env, home / "server.log")
    try:
        yield PrefectServer(api_url=api_url, ui_url=f"http://127.0.0.1:{port}", home=home)
    finally:
        stop_group(server.pid)


class CliRun:
    """`agentflows ARGS` in the background; its stderr is collected line by line while it runs."""

    def __init__(self, server: PrefectServer, *args: str) -> None:
        self.process = subprocess.Popen(
            [AGENTFLOWS, *args],
            env=server.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def waiting(self, round_: int = 1) -> str:
        """The flow run id once the run says it waits for review round `round_`."""
        deadline = time.monotonic() + GUARD_SECONDS
        with self._changed:
            while True:
                found = [m for m in map(WAITING.search, self.lines) if m and int(m["round"]) == round_]
                if found:
                    return found[0]["id"]
                if not self._reader.is_alive() or time.monotonic() > deadline:
                    raise AssertionError("the run never waited for review:\n" + "\n".join(self.lines))
                self._changed.wait(timeout=1)

    def finish(self) -> tuple[int, str, str]:
        """Exit status, stdout and stderr once the command has ended."""
        out = self.process.stdout.read() if self.process.stdout else ""
        code = self.process.wait(timeout=GUARD_SECONDS)
        self._reader.join(timeout=30)
        self._close()
        return code, out, "\n".join(self.lines)

    def stop(self) -> None:
        """End the command's process group if it is still running (a failed test leaves no process)."""
        if self.process.poll() is None:
            stop_group(self.process.pid)
            self.process.wait(timeout=30)
            self._reader.join(timeout=30)
        self._close()

    def _close(self) -> None:
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None and not stream.closed:
                stream.close()


def cli(server: PrefectServer, *args: str) -> subprocess.CompletedProcess[str]:
    """`agentflows ARGS` to its end."""
    return subprocess.run([AGENTFLOWS, *args], env=server.env(), capture_output=True, text=True, timeout=GUARD_SECONDS)


def wait_for_state(server: PrefectServer, run_id: str, *types: str) -> dict[str, Any]:
    """The flow run once its state is of one of `types`."""
    deadline = time.monotonic() + GUARD_SECONDS
    while time.monotonic() < deadline:
        run = server.flow_run(run_id)
        if run["state"]["type"] in types:
            return run
        time.sleep(0.5)
    raise AssertionError(f"flow run {run_id} never reached {types}: it is {run['state']['name']}")


def branch_runs(server: PrefectServer, router_id: str, count: int) -> list[dict[str, Any]]:
    """The sub-flow runs of router run `router_id`, once there are `count` of them."""
    body = {"flow_runs": {"parent_flow_run_id": {"any_": [router_id]}}}
    deadline = time.monotonic() + GUARD_SECONDS
    while time.monotonic() < deadline:
        runs: list[dict[str, Any]] = server.api("POST", "/flow_runs/filter", body)
        if len(runs) >= count:
            return runs
        time.sleep(0.5)
    raise AssertionError(f"router run {router_id} never had {count} branch runs")

"""`agentflows up` / `agentflows down`: a local Prefect stack to try agentflows in the UI.

`up` starts, each in its own process group and with its own state under
`$AGENTFLOWS_HOME/stack/`:

1. the content viewer (`agentflows view`, default port 4300), so Prefect artifacts can link to it;
2. a Prefect server on loopback (UI included, analytics off, its own PREFECT_HOME);
3. registers the Block types of `blocks/` so they appear in the UI catalogue;
4. creates the `agentflows-local` process work pool and runs
   `prefect --no-prompt deploy --all` on this project's `prefect.yaml`;
5. starts a process worker on that pool, with `AGENTFLOWS_VIEWER_URL` set: the
   artifacts of its runs link to the viewer's content pages.

It records what it started in `stack.json`; `down` stops exactly those processes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from agentflows.deployments.blocks import register_blocks
from agentflows.deployments.errors import StackError
from agentflows.deployments.processes import alive, spawn, stop_group, tail
from agentflows.deployments.temporary_server import STARTUP_TIMEOUT_VARIABLE, startup_timeout
from agentflows.tasks.runtime import current_runtime
from agentflows.tasks.settings import VIEWER_URL_VARIABLE

PROJECT = Path(__file__).resolve().parent.parent
WORK_POOL = "agentflows-local"


@dataclass(frozen=True)
class Stack:
    """The processes `up` started."""

    api_url: str
    ui_url: str
    server_pid: int
    worker_pid: int | None
    prefect_home: str
    logs: str
    viewer_pid: int | None = None
    viewer_url: str | None = None


def stack_dir() -> Path:
    return current_runtime().settings.home / "stack"


def up(
    host: str = "127.0.0.1", port: int = 4200, worker: bool = True, echo: bool = True, viewer_port: int = 4300
) -> Stack:
    """Start the stack (or report the one already running)."""
    running = read_stack()
    if running is not None and alive(running.server_pid):
        _say(echo, f"already running: {running.ui_url} (stop it with `agentflows down`)")
        return running
    if not (PROJECT / "prefect.yaml").is_file():
        raise StackError(f"no prefect.yaml in {PROJECT}; `agentflows up` runs from a clone of the project")
    folder = stack_dir()
    logs = folder / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = stack_environment(host, port, folder)
    viewer_url = f"http://{host}:{viewer_port}"
    env[VIEWER_URL_VARIABLE] = viewer_url
    _say(echo, f"starting the content viewer on {host}:{viewer_port}")
    viewer = start_viewer(host, viewer_port, env, logs / "viewer.log")
    try:
        stack = _start_prefect(host, port, env, logs, worker, echo)
    except BaseException:
        stop_group(viewer.pid)
        raise
    stack = Stack(**{**asdict(stack), "viewer_pid": viewer.pid, "viewer_url": viewer_url})
    (folder / "stack.json").write_text(json.dumps(asdict(stack), indent=2))
    _say(echo, f"ready: open {stack.ui_url}; contents at {viewer_url}")
    _say(echo, f"use this server from a shell with PREFECT_API_URL={stack.api_url}")
    return stack


def _start_prefect(host: str, port: int, env: dict[str, str], logs: Path, worker: bool, echo: bool) -> Stack:
    """The Prefect server, Blocks, work pool, deployments and worker of `up`."""
    api_url = env["PREFECT_API_URL"]
    _say(echo, f"starting the Prefect server on {host}:{port} (logs in {logs})")
    server = start_server(host, port, env, logs / "server.log")
    _say(echo, "registering blocks, creating the work pool, deploying prefect.yaml")
    register_blocks(api_url)
    _run([_prefect(), "work-pool", "create", WORK_POOL, "--type", "process", "--overwrite"], env, logs / "deploy.log")
    _run([_prefect(), "--no-prompt", "deploy", "--all"], env, logs / "deploy.log")
    worker_pid = None
    if worker:
        _say(echo, f"starting a process worker on the {WORK_POOL!r} pool")
        # The worker starts in the stack's own folder: runs find the package, not this clone.
        worker_process = spawn(
            [_prefect(), "worker", "start", "--pool", WORK_POOL], env, logs / "worker.log", logs.parent
        )
        worker_pid = worker_process.pid
    return Stack(
        api_url=api_url,
        ui_url=f"http://{host}:{port}",
        server_pid=server.pid,
        worker_pid=worker_pid,
        prefect_home=env["PREFECT_HOME"],
        logs=str(logs),
    )


def down(echo: bool = True) -> bool:
    """Stop what `up` started; False when nothing was running."""
    stack = read_stack()
    if stack is None:
        _say(echo, "nothing to stop: no stack was started with `agentflows up`")
        return False
    for name, pid in (("worker", stack.worker_pid), ("server", stack.server_pid), ("viewer", stack.viewer_pid)):
        if pid is not None and alive(pid):
            _say(echo, f"stopping the {name} (process group {pid})")
            stop_group(pid)
    (stack_dir() / "stack.json").unlink(missing_ok=True)
    return True


def read_stack() -> Stack | None:
    path = stack_dir() / "stack.json"
    if not path.is_file():
        return None
    return Stack(**json.loads(path.read_text()))


def stack_environment(host: str, port: int, folder: Path) -> dict[str, str]:
    """The environment of the stack's processes: its own Prefect home and API URL, analytics off."""
    return {
        **os.environ,
        "PREFECT_HOME": str(folder / "prefect"),
        "PREFECT_API_URL": f"http://{host}:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_URL": f"http://{host}:{port}",
        "AGENTFLOWS_HOME": str(current_runtime().settings.home),
    }


def start_server(host: str, port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`prefect server start` on `host:port` in a process group of its own, once its API answers.

    Stop it with `stop_group(server.pid)`.
    """
    server = spawn([_prefect(), "server", "start", "--host", host, "--port", str(port)], env, log, PROJECT)
    _wait_healthy(f"http://{host}:{port}/api", server, log)
    return server


def start_viewer(host: str, port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`agentflows view` on `host:port` in a process group of its own, once it answers."""
    command = [sys.executable, "-m", "agentflows.cli", "view", "--host", host, "--port", str(port)]
    viewer = spawn(command, env, log, PROJECT)
    _wait_healthy(f"http://{host}:{port}/api", viewer, log, "the content viewer")
    return viewer


def _prefect() -> str:
    """The `prefect` command of this environment."""
    beside = Path(sys.executable).with_name("prefect")
    found = str(beside) if beside.exists() else shutil.which("prefect")
    if not found:
        raise StackError("the `prefect` command is not installed in this environment")
    return found


def _run(command: list[str], env: dict[str, str], log: Path) -> None:
    with log.open("ab") as out:
        done = subprocess.run(command, env=env, cwd=PROJECT, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise StackError(f"`{' '.join(command[1:])}` failed (exit {done.returncode}): {tail(log, 1)!r}; see {log}")


def _wait_healthy(api_url: str, server: subprocess.Popen[bytes], log: Path, name: str = "the Prefect server") -> None:
    timeout = startup_timeout()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise StackError(f"{name} exited with status {server.returncode}: {tail(log, 1)!r}; see {log}")
        try:
            if httpx.get(f"{api_url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    stop_group(server.pid)
    raise StackError(
        f"{name} did not answer within {timeout:.0f} s; see {log}; on a slow machine raise {STARTUP_TIMEOUT_VARIABLE}"
    )


def _say(echo: bool, message: str) -> None:
    if echo:
        print(message, file=sys.stderr)

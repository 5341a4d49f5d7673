"""Processes agentflows starts for Prefect: each in a process group of its own, stopped as a group.

Nothing here imports Prefect, so the CLI can start a server before Prefect reads
its settings.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path


def spawn(command: list[str], env: Mapping[str, str], log: Path, cwd: Path) -> subprocess.Popen[bytes]:
    """`command` in a new process group, its output appended to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(
            command, env=dict(env), cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop_group(pid: int, grace: float = 10.0) -> None:
    """SIGTERM the process group of `pid`, then SIGKILL what is left after `grace` seconds."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    _wait_gone(pid, grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    _wait_gone(pid, 5.0)  # SIGKILL is not instant: collect the process once it has really ended


def _wait_gone(pid: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and alive(pid):
        time.sleep(0.1)


def alive(pid: int) -> bool:
    """Whether process `pid` exists (our own exited children are collected first)."""
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on at `host` right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def tail(log: Path, lines: int = 15) -> str:
    """The last `lines` lines of `log` ('' when it cannot be read)."""
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _reap(pid: int) -> None:
    """Collect `pid` if it is our exited child, so it stops counting as alive."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)

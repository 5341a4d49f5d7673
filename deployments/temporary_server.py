"""The temporary Prefect server a CLI run uses when no Prefect API is configured.

Prefect's own ephemeral mode starts a server from inside its client: the server
keeps its state in ~/.prefect, has 20 s to answer, writes its log on the CLI's
stderr, and is stopped by an `atexit` hook only, so a killed CLI leaves it running.
The CLI starts this one itself, before Prefect reads its settings. Contracts:

- its state lives under `$AGENTFLOWS_HOME/prefect` (`prefect_environment`), unless
  PREFECT_HOME or PREFECT_API_URL is set, so migrations run once per home;
- it has `PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS` (300 unless set) to
  answer; if it does not, one `StackError` sentence says what to do;
- one server starts at a time per Prefect home (a file lock held until it answers),
  so concurrent CLI runs do not race its migrations and block registration;
- its output goes to `$PREFECT_HOME/temporary-server.log`, never to the CLI's stderr;
- it dies with the CLI: stopped when the CLI ends, and killed by the kernel when the
  CLI dies in any other way, SIGKILL included (a parent-death signal, set on Linux
  before it executes uvicorn). It has a process group of its own, so a Ctrl-C in the
  terminal reaches the CLI alone, which records how its run ended before the server
  stops.

Nothing here imports Prefect.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from agentflows.deployments.errors import StackError
from agentflows.deployments.processes import free_port, spawn, stop_group
from agentflows.tasks.errors import ConfigurationError

STARTUP_TIMEOUT_VARIABLE = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
DEFAULT_STARTUP_TIMEOUT = 300.0
"""Seconds a temporary server may take to answer: on a fresh home, a 2-core machine at load 12 took up to ~2 min."""
LOG_NAME = "temporary-server.log"
MAX_LOG_BYTES = 5_000_000
"""A log longer than this is moved to `temporary-server.log.1` when the next server starts."""
UP_ADVICE = "or start a server with `agentflows up` and set PREFECT_API_URL=http://127.0.0.1:4200/api"

_DIE_WITH_PARENT = """\
import ctypes, os, signal, sys
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die when the CLI dies
except (AttributeError, OSError):
    pass  # not Linux: the CLI stops the server when it ends
if os.getppid() != int(sys.argv[1]):
    sys.exit(1)  # the CLI died before the signal was set
os.execv(sys.executable, [sys.executable, *sys.argv[2:]])
"""


def startup_timeout(environ: Mapping[str, str] | None = None) -> float:
    """Seconds a Prefect server started here may take to answer (`PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS`)."""
    value = (os.environ if environ is None else environ).get(STARTUP_TIMEOUT_VARIABLE, "").strip()
    if not value:
        return DEFAULT_STARTUP_TIMEOUT
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if seconds <= 0:
        raise ConfigurationError(f"{STARTUP_TIMEOUT_VARIABLE}={value!r} is invalid: give a number of seconds, e.g. 300")
    return seconds


def configured_api_url(environ: Mapping[str, str]) -> str | None:
    """The Prefect API the environment or the active Prefect profile names, or None."""
    return _given(environ, "PREFECT_API_URL") or _given(_active_profile(environ), "PREFECT_API_URL")


def prefect_environment(environ: Mapping[str, str], agentflows_home: Path) -> dict[str, str]:
    """The variables a CLI run sets before Prefect reads its settings.

    Without a Prefect home or API of the user's, Prefect's state goes under
    `agentflows_home`; the user's Prefect profiles are still read from where they are.
    """
    variables = {"PREFECT_SERVER_ANALYTICS_ENABLED": environ.get("PREFECT_SERVER_ANALYTICS_ENABLED", "false")}
    profile = _active_profile(environ)
    if configured_api_url(environ) or _given(environ, "PREFECT_HOME") or _given(profile, "PREFECT_HOME"):
        return variables
    variables["PREFECT_HOME"] = str(agentflows_home / "prefect")
    variables["PREFECT_PROFILES_PATH"] = str(_profiles_path(environ))
    return variables


@dataclass
class TemporaryServer:
    """A Prefect server on loopback for the life of one CLI run (see the module docstring)."""

    api_url: str
    log: Path
    process: subprocess.Popen[bytes]

    @classmethod
    def start(cls, prefect_home: Path, timeout: float | None = None) -> TemporaryServer:
        """A server on `prefect_home`'s database, once it answers; `StackError` if it cannot start."""
        timeout = startup_timeout() if timeout is None else timeout
        deadline = time.monotonic() + timeout
        prefect_home.mkdir(parents=True, exist_ok=True)
        log = prefect_home / LOG_NAME
        with _one_start_at_a_time(prefect_home / "temporary-server.lock", deadline, timeout):
            _rotate(log)
            for _ in range(3):  # a port taken between choosing it and binding it is chosen again
                started = log.stat().st_size if log.exists() else 0
                server = cls._spawn(log)
                spawned = time.monotonic()
                try:
                    if _answers(server, deadline):
                        with log.open("a") as out:
                            out.write(f"--- answered after {time.monotonic() - spawned:.1f} s\n")
                        return server
                except BaseException:  # Ctrl-C while it starts
                    server.stop()
                    raise
                if server.process.poll() is None:
                    server.stop()
                    raise StackError(
                        f"the temporary Prefect server did not answer within {timeout:.0f} s (its log: {log}); "
                        f"on a slow machine raise {STARTUP_TIMEOUT_VARIABLE}, {UP_ADVICE}"
                    )
                if "address already in use" not in _written_since(log, started).lower():
                    break
        raise StackError(
            f"the temporary Prefect server exited with status {server.process.returncode} while starting "
            f"(its log: {log}); fix what the log says, {UP_ADVICE}"
        )

    @classmethod
    def _spawn(cls, log: Path) -> TemporaryServer:
        port = free_port()
        command = [
            sys.executable,
            "-c",
            _DIE_WITH_PARENT,
            str(os.getpid()),
            *("-m", "uvicorn", "--factory", "prefect.server.api.server:create_app"),
            *("--host", "127.0.0.1", "--port", str(port), "--log-level", "error", "--lifespan", "on"),
        ]
        env = {
            **os.environ,
            "PREFECT_UI_ENABLED": "0",
            "PREFECT__SERVER_EPHEMERAL": "1",  # what Prefect's own temporary server runs: no UI, fewer services
            "PREFECT__SERVER_FINAL": "1",
        }
        env.pop("PREFECT_API_URL", None)
        with log.open("a") as out:
            out.write(f"--- temporary server on port {port} for agentflows process {os.getpid()}\n")
        return cls(f"http://127.0.0.1:{port}/api", log, spawn(command, env, log, Path.cwd()))

    def stop(self) -> None:
        """Stop the server (its process group), waiting for it to end."""
        stop_group(self.process.pid)

    def __enter__(self) -> TemporaryServer:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def _answers(server: TemporaryServer, deadline: float) -> bool:
    """Whether the server answers its health check before `deadline` (False as soon as it exits)."""
    with httpx.Client(timeout=2) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                return False
            try:
                if client.get(f"{server.api_url}/health").status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
    return False


@contextmanager
def _one_start_at_a_time(lock: Path, deadline: float, timeout: float) -> Iterator[None]:
    with lock.open("a") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StackError(
                        f"another agentflows run kept starting its temporary Prefect server for {timeout:.0f} s "
                        f"(lock {lock}); raise {STARTUP_TIMEOUT_VARIABLE}, {UP_ADVICE}"
                    ) from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _rotate(log: Path) -> None:
    if log.exists() and log.stat().st_size > MAX_LOG_BYTES:
        log.replace(log.with_name(log.name + ".1"))


def _written_since(log: Path, offset: int) -> str:
    with log.open("rb") as handle:
        handle.seek(offset)
        return handle.read().decode(errors="replace")


def _profiles_path(environ: Mapping[str, str]) -> Path:
    home = _given(environ, "PREFECT_HOME") or "~/.prefect"
    return Path(_given(environ, "PREFECT_PROFILES_PATH") or Path(home) / "profiles.toml").expanduser()


def _active_profile(environ: Mapping[str, str]) -> dict[str, str]:
    """The settings of the active Prefect profile (`PREFECT_PROFILE`, else the file's `active`)."""
    try:
        data = tomllib.loads(_profiles_path(environ).read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    name = _given(environ, "PREFECT_PROFILE") or str(data.get("active") or "ephemeral")
    profile = data.get("profiles", {}).get(name)
    return {str(k): str(v) for k, v in profile.items()} if isinstance(profile, dict) else {}


def _given(values: Mapping[str, str], name: str) -> str | None:
    return values.get(name, "").strip() or None

"""Flow runs a dead CLI process left RUNNING, marked Crashed when the CLI next starts a run.

A CLI run tags its flow runs (sub-flows and task runs inherit the tag) with the
process that runs them, `agentflows-cli:<host>:<pid>:<start>`, the start being the
process's start time in clock ticks since boot, so a reused process id is not
taken for the same process. Before the next CLI run starts, every flow run still
PENDING or RUNNING whose tag names a process of this host that no longer lives is
set to Crashed, and so are its unfinished task runs. Runs of live processes, of
other hosts, of workers and of Python code (which carry no such tag) are left alone.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
    TaskRunFilter,
    TaskRunFilterFlowRunId,
    TaskRunFilterState,
    TaskRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.states import Crashed

from agentflows.deployments.processes import alive

OWNER_PREFIX = "agentflows-cli:"
UNFINISHED = [StateType.PENDING, StateType.RUNNING]


@dataclass(frozen=True)
class Owner:
    """The CLI process that runs a flow run."""

    host: str
    pid: int
    start: str
    """Start time of the process in clock ticks since boot ('' where /proc is not there to tell)."""

    @classmethod
    def this_process(cls) -> Owner:
        return cls(socket.gethostname(), os.getpid(), process_start(os.getpid()) or "")

    @classmethod
    def from_tag(cls, tag: str) -> Owner | None:
        host, _, rest = tag.removeprefix(OWNER_PREFIX).partition(":")
        pid, _, start = rest.partition(":")
        return cls(host, int(pid), start) if tag.startswith(OWNER_PREFIX) and pid.isdigit() else None

    @property
    def tag(self) -> str:
        return f"{OWNER_PREFIX}{self.host}:{self.pid}:{self.start}"

    def is_gone(self) -> bool:
        """Whether this owner, a process of this host, has ended (False for other hosts: they cannot be told)."""
        if self.host != socket.gethostname():
            return False
        started = process_start(self.pid)
        if started is None:
            return not alive(self.pid)
        return started != self.start


def process_start(pid: int) -> str | None:
    """Start time of process `pid` in clock ticks since boot; None when it does not exist or /proc is absent."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    if fields[0] == "Z":  # a zombie has ended; only its exit status is left
        return "ended"
    return fields[19]


def mark_crashed(client: SyncPrefectClient) -> list[str]:
    """Set Crashed every unfinished flow run (and its task runs) whose CLI process is gone; their ids."""
    unfinished = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=UNFINISHED)))
    crashed = []
    for run in client.read_flow_runs(flow_run_filter=unfinished, limit=200):
        owner = next((o for o in map(Owner.from_tag, run.tags) if o is not None), None)
        if owner is None or not owner.is_gone():
            continue
        message = f"its agentflows CLI process ({owner.pid} on {owner.host}) ended before the run did"
        for task_run in client.read_task_runs(
            task_run_filter=TaskRunFilter(
                flow_run_id=TaskRunFilterFlowRunId(any_=[run.id]),
                state=TaskRunFilterState(type=TaskRunFilterStateType(any_=UNFINISHED)),
            )
        ):
            client.set_task_run_state(task_run.id, Crashed(message=message), force=True)
        client.set_flow_run_state(run.id, Crashed(message=message), force=True)
        crashed.append(str(run.id))
    return crashed

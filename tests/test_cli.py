"""The `agentflows` command line, called through its entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agentflows.cli import main
from tests.conftest import REPO, SHIPPED_AGENTS


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.usefixtures("prefect_server")
def test_run_prints_progress_and_json_then_show_reads_it_back(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(
        capsys, "run", "quiz", "-p", "topic=The water cycle", "-p", "questions=2", "--json", "--progress"
    )

    assert code == 0
    result = json.loads(out)
    assert result["agent"] == "quiz" and result["content_type"] == "interactive"
    assert result["model_calls"] == 3 and result["cache_hits"] == 0 and result["offline"] is True
    assert result["location"].startswith("file://") and result["location"].endswith("/index.html")
    for step in ("decide", "generate", "build", "save"):
        assert f"quiz · {step} started" in err
    assert "quiz · save done: file://" in err

    code, out, _ = run_cli(capsys, "show", result["content_id"][:8])
    assert code == 0
    assert f"id {result['content_id']}" in out and "quiz.json" in out
    assert "lineage (generation " in out and "decide" in out and "agentflows-offline-1" in out

    code, out, _ = run_cli(capsys, "contents", "--type", "interactive")
    assert code == 0 and result["content_id"] in out


@pytest.mark.usefixtures("prefect_server")
def test_run_without_json_ends_with_where_the_output_was_written(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "run", "ebook", "-p", "topic=Glaciers", "-p", "chapters=1")

    assert code == 0
    assert err == ""  # stderr is no terminal here: no progress lines unless --progress
    last = out.strip().splitlines()[-1]
    assert last.startswith("wrote file://") and Path(last.removeprefix("wrote file://")).is_file()
    assert "offline provider: no language model was called" in out


def test_list_shows_every_shipped_agent(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "list", "--json")

    assert code == 0
    rows = {row["name"]: row for row in json.loads(out)}
    assert set(rows) == set(SHIPPED_AGENTS)
    assert rows["api_scaffold"]["content_type"] == "code"


def test_validate_passes_on_the_shipped_definitions(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "validate", str(REPO / "agent_definitions"))

    assert code == 0 and out.startswith("ok:") and err == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "novel", "-p", "topic=x"], "no agent is named 'novel'; the agents are: api_scaffold, data_report"),
        (["run", "ebook", "-p", "topic=Tides", "-p", "chapters=many"], "'chapters' takes a whole number"),
        (["run", "ebook", "-p", "topic"], "needs the form NAME=VALUE"),
        (["run", "ebook", "-p", "topic=Tides", "-p", "tone=grim"], "input 'tone'"),
        (["show", "0000000000"], "no stored content has id '0000000000'"),
    ],
)
def test_mistakes_get_one_line_errors_and_exit_1(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, _, err = run_cli(capsys, *args)

    assert code == 1
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_the_installed_command_has_help() -> None:
    done = subprocess.run(
        [Path(sys.executable).with_name("agentflows"), "run", "--help"], capture_output=True, text=True, check=True
    )

    assert "--refresh" in done.stdout and "--json" in done.stdout and "NAME=VALUE" in done.stdout


def test_view_has_help_with_its_address_options() -> None:
    done = subprocess.run(
        [Path(sys.executable).with_name("agentflows"), "view", "--help"], capture_output=True, text=True, check=True
    )

    assert "--host" in done.stdout and "--port" in done.stdout and "AGENTFLOWS_VIEWER_TOKEN" in done.stdout


def test_a_reader_that_closed_the_pipe_ends_the_command_quietly() -> None:
    command = subprocess.Popen(
        [Path(sys.executable).with_name("agentflows"), "list"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert command.stdout is not None and command.stderr is not None
    command.stdout.close()  # before the command has written anything (its imports take longer): `… | head -0`
    errors = command.stderr.read().decode()
    assert command.wait(timeout=120) == 141  # 128 + SIGPIPE, as a shell reports it
    assert errors == ""

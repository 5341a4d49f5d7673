"""`agentflows eval`: run agents' eval cases, compare them with a baseline, exit 1 on a regression.

    agentflows eval AGENT|--all [--repeat N] [--baseline FILE] [--json]
                    [--offline | --record | --replay] [--answers DIR]

The cases are `evals/<agent>.yaml` in the definitions folder. Without a mode flag
the agents answer as configured (`agentflows run` would call the same model);
`--offline` uses the built-in provider, `--record` keeps every answer in
`<answers>/<agent>.jsonl` and `--replay` answers from there with no network.
Progress and the report go to stderr and stdout; `--json` prints the report as
JSON, which a later `--baseline` reads back.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from agentflows.errors import InputError
from agentflows.evals.report import CaseResult, report_lines


def add_eval_command(sub: Any) -> None:
    """Add `eval` to the top-level subparsers `sub`."""
    cmd = sub.add_parser(
        "eval",
        help="run agents' eval cases and compare them with a baseline; exit 1 on a regression",
        description="Run the eval cases of an agent (evals/<agent>.yaml in the definitions folder), report the "
        "pass rate of every case and overall, compare them with a baseline and store them in the content "
        "database. Exits 1 when a case falls below its baseline, or, without one, when a run fails.",
    )
    cmd.add_argument("agent", nargs="?", help="agent whose cases to run (see `agentflows list`)")
    cmd.add_argument("--all", action="store_true", help="run the cases of every agent that has an eval file")
    cmd.add_argument("--repeat", type=int, default=1, metavar="N", help="runs of each case (default 1)")
    cmd.add_argument(
        "--baseline",
        type=Path,
        metavar="FILE",
        help="an earlier `eval --json` report; a case below its pass rate there is a regression",
    )
    cmd.add_argument("--json", action="store_true", help="print the report as JSON (a baseline for later evals)")
    mode = cmd.add_mutually_exclusive_group()
    mode.add_argument(
        "--offline", dest="mode", action="store_const", const="offline", help="answer with the offline provider"
    )
    mode.add_argument(
        "--record",
        dest="mode",
        action="store_const",
        const="record",
        help="answer as configured and keep every answer in the answers folder",
    )
    mode.add_argument(
        "--replay",
        dest="mode",
        action="store_const",
        const="replay",
        help="answer only with recorded answers: no network, no model",
    )
    cmd.add_argument(
        "--answers",
        type=Path,
        metavar="DIR",
        help="folder of recorded answers, <agent>.jsonl (default: evals/answers/ of the definitions folder)",
    )
    cmd.set_defaults(command=evaluate, mode="live")


def evaluate(args: argparse.Namespace) -> int:
    from agentflows.evals.api import run_evals

    if bool(args.agent) == bool(args.all):
        raise InputError("name one agent, or give --all for every agent with eval cases")
    report = run_evals(
        None if args.all else [args.agent],
        repeat=args.repeat,
        mode=args.mode,
        baseline=args.baseline,
        answers=args.answers,
        definitions=args.definitions,
        on_case=_progress,
    )
    if args.json:
        print(report.model_dump_json(indent=2))
    else:
        for line in report_lines(report):
            print(line)
    return 0 if report.passed else 1


def _progress(case: CaseResult) -> None:
    print(f"  {case.key}: {case.passed_runs}/{case.runs} runs passed", file=sys.stderr)

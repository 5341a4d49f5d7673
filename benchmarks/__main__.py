"""`python -m benchmarks`: measure agentflows against the ideal and write benchmarks/RESULTS.md.

python -m benchmarks                       every scenario at 0.2 s and 1 s model latency, and the small real
                                           model (~12 min on 2 cores, plus ~15 min for the real model)
python -m benchmarks --scenario realmodel  only the real model: each agent and the router on SmolLM2-135M
python -m benchmarks --quick               one small pass (smoke test)
python -m benchmarks --profile router      also write benchmarks/profiles/router.txt (pyinstrument)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks.harness import Options, run
from benchmarks.report import kept_notes, markdown


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--latency", type=float, action="append", help="model latency in seconds (repeatable; default 0.2 and 1)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="repetitions per scenario (default 3)")
    parser.add_argument(
        "--contents", type=int, default=1000, help="contents in the persistence scenario (default 1000)"
    )
    parser.add_argument(
        "--passages", type=int, default=1000, help="knowledge passages in the knowledge scenario (default 1000)"
    )
    parser.add_argument(
        "--limit", type=int, default=8, help="model concurrency limit in the 20-request scenario (default 8)"
    )
    parser.add_argument(
        "--scenario",
        action="append",
        choices=[
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
            "workers",
            "realmodel",
        ],
        help="only this scenario (repeatable); graph: lesson → quiz, lesson → ebook through the router; "
        "peers: the e-book pipeline on plain Prefect, pydantic-ai and crewAI (benchmarks/peers.py); "
        "fanout: a 12-chapter e-book; workers: 100 runs over 2 process workers (not in the default set: ~30 min); "
        "realmodel: each agent and the router on SmolLM2-135M",
    )
    parser.add_argument(
        "--profile",
        action="append",
        default=[],
        metavar="SCENARIO",
        help=(
            "also run SCENARIO once under pyinstrument (unmeasured) into benchmarks/profiles/SCENARIO.txt; "
            "the last latency wins"
        ),
    )
    parser.add_argument("--output", type=Path, default=Options().output, help="where to write the table")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke pass: one repetition, 0.05 s latency, 50 contents, 100 passages; agent, peers, persistence and "
        "knowledge scenarios only",
    )
    args = parser.parse_args(argv)
    options = Options(
        latencies=tuple(args.latency or ((0.05,) if args.quick else (0.2, 1.0))),
        repeats=1 if args.quick else args.repeats,
        contents=min(args.contents, 50) if args.quick else args.contents,
        concurrency_limit=args.limit,
        scenarios=tuple(
            args.scenario or (("agent", "peers", "persistence", "knowledge") if args.quick else Options().scenarios)
        ),
        passages=min(args.passages, 100) if args.quick else args.passages,
        profile=tuple(args.profile),
        output=args.output,
        quick=args.quick,
    )
    results = run(options)
    previous = options.output.read_text() if options.output.exists() else ""
    table = markdown(results, kept_notes(options.output), previous)
    options.output.write_text(table)
    print(table)
    print(f"written to {options.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

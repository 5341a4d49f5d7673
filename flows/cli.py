"""The `agentflows` command line.

    agentflows list                          the agents and what they make
    agentflows validate [PATH ...]           check definitions; exit 1 on any problem
    agentflows run AGENT -p k=v … [--refresh] [--review] [--json]
    agentflows route "REQUEST" [--type AGENT …] [--after AGENT=UPSTREAM …] [--review AGENT …] [--json]
    agentflows review | approve | revise | reject RUN_ID     an editor's decision on a run paused for review
    agentflows rerun CONTENT_ID --from generate|build [--plan FILE] [--param k=v]   rework a stored content
    agentflows show CONTENT_ID [--json]      a stored content, its files, lineage and knowledge used
    agentflows knowledge search AGENT "Q"    the knowledge passages a step would retrieve; `index` rebuilds
    agentflows eval AGENT|--all [--repeat N] [--baseline FILE] [--json]   eval cases; exit 1 on a regression
    agentflows contents [--type T]           the newest stored contents
    agentflows db upgrade                    migrate the content database to the newest schema
    agentflows storage sweep [--older-than]  remove objects that failed saves left behind
    agentflows view [--host H] [--port P]    a web viewer of every stored content (default 127.0.0.1:4300)
    agentflows up | down                     a local Prefect server, deployments, worker and viewer, for the UI
    agentflows serve                         serve every agent and the router from this process
    agentflows blocks register               put the Block types in the Prefect UI catalogue

Every failure prints one line, `error: …`, and exits 1 (a definition error: one line
per problem); Ctrl-C exits 130 with one line saying how many model calls were made
(`agentflows.console`). With `--json`, a failure also prints a JSON error object on
stdout: what failed, the flow run, what the run spent, and the answers the failed
step got (`agentflows.reporting.error_object`). `--debug` shows Prefect's console
logging and the traceback of a failure. `run` and `route` start a temporary Prefect
server when no Prefect API is configured (`agentflows.local_prefect`);
a run waiting for review always says where to review, with or without `--progress`.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agentflows.catalog import check_paths, definitions_root, load_agents
from agentflows.cli_store import add_store_commands
from agentflows.console import add_progress_option, printed, report, sigterm_interrupts
from agentflows.errors import DefinitionError
from agentflows.eval_cli import add_eval_command
from agentflows.inputs import parse_params, validate_inputs
from agentflows.knowledge_cli import add_knowledge_commands
from agentflows.local_prefect import prefect_for_cli
from agentflows.reporting import print_json_error
from agentflows.review_cli import add_review_commands, print_result
from agentflows.routing import check_request
from agentflows.stack_cli import add_stack_commands
from agentflows.tasks.errors import AgentflowsError
from agentflows.tasks.ledger import run_ledger
from agentflows.tasks.runtime import current_runtime
from agentflows.tasks.settings import DEFINITIONS_VARIABLE


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `agentflows` command."""
    args = parser().parse_args(argv)
    terminated = threading.Event()
    with run_ledger() as ledger:
        try:
            with sigterm_interrupts(terminated):
                return int(args.command(args) or 0)
        except DefinitionError as exc:
            print_json_error(args, exc, ledger)
            for problem in exc.problems:
                print(problem, file=sys.stderr)
            return 1
        except SystemExit:
            raise
        except BaseException as exc:  # every failure, Ctrl-C and SIGTERM: one line (agentflows.console)
            if isinstance(exc, AgentflowsError):
                print_json_error(args, exc, ledger)
            return report(exc, debug=args.debug, terminated=terminated.is_set(), calls=ledger.usage.calls)


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show Prefect's console logging, and the traceback of a failure",
    )
    top = argparse.ArgumentParser(
        prog="agentflows", description="Run YAML-defined content agents as Prefect flows.", parents=[common]
    )
    top.set_defaults(debug=False)
    top.add_argument(
        "--definitions",
        metavar="DIR",
        help=f"definitions folder (default: ${DEFINITIONS_VARIABLE} or the shipped agent_definitions/)",
    )
    sub = top.add_subparsers(required=True, metavar="COMMAND", parser_class=_with_parents(common))

    cmd = sub.add_parser("list", help="list the agents")
    cmd.add_argument("--json", action="store_true", help="print JSON")
    cmd.set_defaults(command=list_agents)

    cmd = sub.add_parser("validate", help="check definition files and folders; exit 1 on any problem")
    cmd.add_argument(
        "paths", nargs="*", type=Path, metavar="PATH", help="files or folders (default: the definitions folder)"
    )
    cmd.set_defaults(command=validate)

    cmd = sub.add_parser("run", help="run one agent and print where its output was written")
    cmd.add_argument("agent", help="agent name (see `agentflows list`)")
    cmd.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an input; repeat for several (lists: comma-separated)",
    )
    cmd.add_argument("--refresh", action="store_true", help="ignore cached step results and call the model again")
    cmd.add_argument(
        "--review",
        action=argparse.BooleanOptionalAction,
        help="pause after planning until an editor approves the plan (default: the agent's review.default)",
    )
    cmd.add_argument(
        "--json",
        action="store_true",
        help="print the result as JSON (ids, content type, location, model calls, cache hits, reviews)",
    )
    add_progress_option(cmd)
    cmd.set_defaults(command=run)

    cmd = sub.add_parser("route", help="turn one free-text request into several kinds of content")
    cmd.add_argument("request", help='what to make, e.g. "a lesson on tides for 8th grade with a quiz"')
    cmd.add_argument(
        "--type", dest="content_types", action="append", metavar="AGENT", help="run this agent; repeat for several"
    )
    cmd.add_argument(
        "--after",
        action="append",
        metavar="AGENT=UPSTREAM",
        help="run AGENT after UPSTREAM (both chosen), besides the agents' own `uses` (quiz and ebook run after "
        "lesson_plan, with its result; the rest at once; a failed agent's dependents are skipped); repeatable",
    )
    cmd.add_argument("--audience", help="who the content is for")
    cmd.add_argument("--language", help="language to write in")
    cmd.add_argument("--level", help='level of the audience, e.g. "8th grade"')
    cmd.add_argument("--review", action="append", metavar="AGENT", help="pause this branch for review; repeatable")
    cmd.add_argument("--refresh", action="store_true", help="ignore cached step results and call the model again")
    cmd.add_argument("--json", action="store_true", help="print the manifest as JSON")
    add_progress_option(cmd)
    cmd.set_defaults(command=route)

    add_store_commands(sub)
    add_knowledge_commands(sub)
    add_review_commands(sub)
    add_eval_command(sub)
    add_stack_commands(sub)
    return top


def _with_parents(common: argparse.ArgumentParser) -> type[argparse.ArgumentParser]:
    """Subcommand parsers that take the common options too (`agentflows run quiz --debug`)."""

    class Subcommand(argparse.ArgumentParser):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["parents"] = [*kwargs.get("parents", ()), common]
            super().__init__(*args, **kwargs)

    return Subcommand


def list_agents(args: argparse.Namespace) -> int:
    catalog = load_agents(args.definitions)
    rows = [
        {
            "name": a.name,
            "content_type": a.definition.content_type.value,
            "version": a.flow_version,
            "inputs": list(a.definition.inputs),
            "uses": list(a.definition.uses),
            "description": a.definition.description,
        }
        for a in catalog.values()
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        print(f"{row['name']:<16} {row['content_type']:<12} {row['description']}")
        print(f"{'':<16} inputs: {', '.join(row['inputs']) or 'none'}")
        if row["uses"]:
            print(f"{'':<16} builds on: {', '.join(row['uses'])} (when a request asks for both)")
    return 0


def validate(args: argparse.Namespace) -> int:
    paths = args.paths or [Path(args.definitions) if args.definitions else definitions_root()]
    problems = check_paths(paths)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s) found", file=sys.stderr)
        return 1
    print(f"ok: {', '.join(str(p) for p in paths)}")
    return 0


def run(args: argparse.Namespace) -> int:
    agent = load_agents(args.definitions)[args.agent]
    inputs = validate_inputs(agent.definition, parse_params(args.param, agent.definition.inputs))
    _check_store()
    with prefect_for_cli(debug=args.debug), printed(args.progress):
        from agentflows.api import run_agent

        result = run_agent(args.agent, refresh=args.refresh, review=args.review, definitions=args.definitions, **inputs)
    print_result(result, args.json)
    return 0


def route(args: argparse.Namespace) -> int:
    check_request(args.request, args.content_types, load_agents(args.definitions))
    _check_store()
    with prefect_for_cli(debug=args.debug), printed(args.progress):
        from agentflows.router import route as route_request

        manifest = route_request(
            args.request,
            content_types=args.content_types,
            audience=args.audience,
            language=args.language,
            level=args.level,
            after=args.after,
            review=args.review,
            refresh=args.refresh,
            definitions=args.definitions,
        )
    if args.json:
        print(manifest.model_dump_json(indent=2))
    else:
        print(f"{manifest.status}: {len(manifest.components)} components, routed by {manifest.route}")
        for c in manifest.components:
            outcome = c.location if c.status == "completed" else f"{c.status.upper()} {c.error}"
            after = f"  (after {', '.join(c.depends_on)})" if c.depends_on else ""
            print(f"  {c.agent:<14} {c.seconds:6.1f} s  {c.name}{after}\n  {'':<14}          {outcome}")
        for problem in manifest.problems:
            print(f"inconsistent: {problem}", file=sys.stderr)
        print(f"manifest {manifest.content_id}: {manifest.location}")
    failed, skipped = manifest.failed(), manifest.skipped()
    if failed or skipped:
        what = f"{len(failed)} of {len(manifest.components)} components failed" + (
            f", {len(skipped)} skipped" if skipped else ""
        )
        print(f"error: {what} (listed above)", file=sys.stderr)
    elif manifest.problems:
        print(
            f"error: the components are inconsistent ({len(manifest.problems)} problems, listed above)", file=sys.stderr
        )
    return 1 if failed or skipped or manifest.problems else 0


def _check_store() -> None:
    """The content store's URLs, checked before Prefect starts (a saved store Block is checked in the run)."""
    settings = current_runtime().settings
    if settings.store_block is None:
        settings.store.check()


if __name__ == "__main__":
    sys.exit(main())

"""The `agentflows` command line.

    agentflows list                          the agents and what they make
    agentflows validate [PATH ...]           check definitions; exit 1 on any problem
    agentflows run AGENT -p k=v … [--refresh] [--review] [--json]
    agentflows route "REQUEST" [--type AGENT …] [--review AGENT …] [--json]   several agents from one request
    agentflows review | approve | revise | reject RUN_ID     an editor's decision on a run paused for review
    agentflows rerun CONTENT_ID --from generate|build [--plan FILE] [--param k=v]   rework a stored content
    agentflows show CONTENT_ID [--json]      a stored content, its files, lineage and knowledge used
    agentflows knowledge search AGENT "Q"    the knowledge passages a step would retrieve; `index` rebuilds
    agentflows contents [--type T]           the newest stored contents
    agentflows db upgrade                    migrate the content database to the newest schema
    agentflows storage sweep [--older-than]  remove objects that failed saves left behind
    agentflows view [--host H] [--port P]    a web viewer of every stored content (default 127.0.0.1:4300)
    agentflows up | down                     a local Prefect server, deployments, worker and viewer, for the UI
    agentflows serve                         serve every agent and the router from this process
    agentflows blocks register               put the Block types in the Prefect UI catalogue

Errors agentflows raises on purpose print as one line per problem and exit 1; only a bug shows a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agentflows.catalog import check_paths, definitions_root, load_agents
from agentflows.errors import DefinitionError, InputError
from agentflows.inputs import parse_params
from agentflows.knowledge_cli import add_knowledge_commands, knowledge_lines
from agentflows.progress import quiet_prefect
from agentflows.review_cli import add_review_commands, print_result, review_lines
from agentflows.tasks.artifacts import ContentType
from agentflows.tasks.errors import AgentflowsError
from agentflows.tasks.manifest import REWORK_NAME, ROUTER_NAME
from agentflows.tasks.settings import DEFINITIONS_VARIABLE, VIEWER_TOKEN_VARIABLE


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `agentflows` command."""
    args = parser().parse_args(argv)
    try:
        return int(args.command(args) or 0)
    except DefinitionError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    except AgentflowsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="agentflows", description="Run YAML-defined content agents as Prefect flows.")
    top.add_argument(
        "--definitions",
        metavar="DIR",
        help=f"definitions folder (default: ${DEFINITIONS_VARIABLE} or the shipped agent_definitions/)",
    )
    sub = top.add_subparsers(required=True, metavar="COMMAND")

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
    cmd.set_defaults(command=run)

    cmd = sub.add_parser("route", help="turn one free-text request into several kinds of content")
    cmd.add_argument("request", help='what to make, e.g. "a lesson on tides for 8th grade with a quiz"')
    cmd.add_argument(
        "--type", dest="content_types", action="append", metavar="AGENT", help="run this agent; repeat for several"
    )
    cmd.add_argument("--audience", help="who the content is for")
    cmd.add_argument("--language", help="language to write in")
    cmd.add_argument("--level", help='level of the audience, e.g. "8th grade"')
    cmd.add_argument("--review", action="append", metavar="AGENT", help="pause this branch for review; repeatable")
    cmd.add_argument("--refresh", action="store_true", help="ignore cached step results and call the model again")
    cmd.add_argument("--json", action="store_true", help="print the manifest as JSON")
    cmd.set_defaults(command=route)

    cmd = sub.add_parser("show", help="show a stored content, its files and its lineage")
    cmd.add_argument("content_id", metavar="CONTENT_ID", help="id (or unique prefix) printed by `run`")
    cmd.add_argument("--json", action="store_true", help="print JSON")
    cmd.set_defaults(command=show)

    cmd = sub.add_parser("contents", help="list stored contents, newest first")
    cmd.add_argument(
        "--type", dest="content_type", choices=[t.value for t in ContentType], help="only this content type"
    )
    cmd.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    cmd.set_defaults(command=contents)

    cmd = sub.add_parser("db", help="the content database's schema")
    db = cmd.add_subparsers(required=True, metavar="ACTION")
    action = db.add_parser("upgrade", help="migrate the configured database to the newest schema")
    action.set_defaults(command=db_upgrade)
    action = db.add_parser("current", help="print the schema revision of the configured database")
    action.set_defaults(command=db_current)

    cmd = sub.add_parser("storage", help="the object storage of contents")
    storage = cmd.add_subparsers(required=True, metavar="ACTION")
    action = storage.add_parser("sweep", help="remove stored objects no content refers to (left by failed saves)")
    action.add_argument(
        "--older-than",
        default="1h",
        metavar="AGE",
        help="only objects older than this: seconds or 30m, 12h, 7d (default 1h)",
    )
    action.add_argument("--dry-run", action="store_true", help="list what would be removed, remove nothing")
    action.set_defaults(command=storage_sweep)
    add_knowledge_commands(sub)
    add_review_commands(sub)
    _add_stack_commands(sub)
    return top


def _add_stack_commands(sub: Any) -> None:
    """`view`, `up`, `down`, `serve` and `blocks register`: seeing content and running agentflows from the UI."""
    cmd = sub.add_parser(
        "view",
        help="serve a web viewer of the stored contents",
        description="Serve a read-only web viewer of the configured content store: every content, its page, "
        f"its files and lineage, and the same as JSON under /api. Listening beyond loopback needs "
        f"{VIEWER_TOKEN_VARIABLE}; Ctrl-C stops it.",
    )
    cmd.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    cmd.add_argument("--port", type=int, default=4300, help="port to listen on (default 4300)")
    cmd.set_defaults(command=view)
    cmd = sub.add_parser("up", help="start a local Prefect server, deploy every agent, start a worker and the viewer")
    cmd.add_argument("--host", default="127.0.0.1", help="address the server listens on (default 127.0.0.1)")
    cmd.add_argument("--port", type=int, default=4200, help="port of the server and its UI (default 4200)")
    cmd.add_argument("--viewer-port", type=int, default=4300, help="port of the content viewer (default 4300)")
    cmd.add_argument("--no-worker", dest="worker", action="store_false", help="deploy, but start no worker")
    cmd.set_defaults(command=stack_up)
    cmd = sub.add_parser("down", help="stop what `agentflows up` started")
    cmd.set_defaults(command=stack_down)
    cmd = sub.add_parser("serve", help="serve every agent and the router from this process (needs PREFECT_API_URL)")
    cmd.add_argument("--limit", type=int, help="most flow runs at once")
    cmd.set_defaults(command=serve_flows)
    cmd = sub.add_parser("blocks", help="agentflows' Prefect Block types")
    blocks = cmd.add_subparsers(required=True, metavar="ACTION")
    action = blocks.add_parser("register", help="register the Block types so they appear in the UI catalogue")
    action.set_defaults(command=blocks_register)


def list_agents(args: argparse.Namespace) -> int:
    catalog = load_agents(args.definitions)
    rows = [
        {
            "name": a.name,
            "content_type": a.definition.content_type.value,
            "version": a.flow_version,
            "inputs": list(a.definition.inputs),
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
    quiet_prefect()
    from agentflows.api import run_agent
    from agentflows.progress import listening

    agent = load_agents(args.definitions)[args.agent]
    inputs = parse_params(args.param, agent.definition.inputs)
    with listening(lambda event: print(f"  {event}", file=sys.stderr)):
        result = run_agent(args.agent, refresh=args.refresh, review=args.review, definitions=args.definitions, **inputs)
    print_result(result, args.json)
    return 0


def route(args: argparse.Namespace) -> int:
    quiet_prefect()
    from agentflows.progress import listening
    from agentflows.router import route as route_request

    with listening(lambda event: print(f"  {event}", file=sys.stderr)):
        manifest = route_request(
            args.request,
            content_types=args.content_types,
            audience=args.audience,
            language=args.language,
            level=args.level,
            review=args.review,
            refresh=args.refresh,
            definitions=args.definitions,
        )
    if args.json:
        print(manifest.model_dump_json(indent=2))
    else:
        print(f"{manifest.status}: {len(manifest.components)} components, routed by {manifest.route}")
        for c in manifest.components:
            outcome = c.location if c.status == "completed" else f"FAILED {c.error}"
            print(f"  {c.agent:<14} {c.seconds:6.1f} s  {c.name}\n  {'':<14}          {outcome}")
        print(f"manifest {manifest.content_id}: {manifest.location}")
    return 0 if manifest.status == "completed" else 1


def show(args: argparse.Namespace) -> int:
    from agentflows.tasks.runtime import open_store

    content = open_store().get(args.content_id)
    if args.json:
        print(content.model_dump_json(indent=2))
        return 0
    print(f"{content.title}  [{content.content_type.value}]  id {content.id}")
    print(
        f"agent {content.agent} {content.agent_version}, "
        f"created {content.created_at:%Y-%m-%d %H:%M:%S}, {content.size:,} bytes"
    )
    print(f"open: {content.location}")
    for path, uri in sorted(content.files.items()):
        print(f"  {path:<32} {uri}")
    if content.lineage:
        print(f"lineage (generation {content.generation_id}):")
    for step in content.lineage:
        usage = step["usage"]
        model = f"{step['provider']}/{step['model']}" if step["model"] else "no model"
        warnings = f"  WARNING {'; '.join(step['warnings'])}" if step["warnings"] else ""
        print(
            f"  {step['label']:<32} {model:<36} calls {usage['calls']}  "
            f"tokens {usage['prompt_tokens']}+{usage['completion_tokens']}  cost {usage['cost']:.4f}  "
            f"checksum {step['checksum'][:12]} ← {(step['parent_checksum'] or 'request')[:12]}  "
            f"templates {len(step['template_hashes'])}{warnings}"
        )
    for line in knowledge_lines(content.lineage):
        print(line)
    reviews = review_lines(content.reviews)
    for line in ["reviews:", *reviews] if reviews else []:
        print(line)
    return 0


def contents(args: argparse.Namespace) -> int:
    from agentflows.tasks.runtime import open_store

    for content in open_store().list(args.content_type, args.limit):
        print(f"{content.id}  {content.content_type.value:<12} {content.agent:<14} {content.title}")
    return 0


def db_upgrade(args: argparse.Namespace) -> int:
    from agentflows.tasks.runtime import current_runtime
    from agentflows.tasks.storage import upgrade_database
    from agentflows.tasks.storage.migrate import head_revision

    config = current_runtime().store_settings()
    before = upgrade_database(config)
    print(f"{config.describe_database()}: schema {before or 'none'} -> {head_revision()}")
    return 0


def db_current(args: argparse.Namespace) -> int:
    from agentflows.tasks.runtime import current_runtime
    from agentflows.tasks.storage import database_revision
    from agentflows.tasks.storage.migrate import head_revision

    config = current_runtime().store_settings()
    revision = database_revision(config)
    state = "up to date" if revision == head_revision() else f"newest is {head_revision()}; run `agentflows db upgrade`"
    print(f"{config.describe_database()}: schema {revision or 'none'} ({state})")
    return 0


def storage_sweep(args: argparse.Namespace) -> int:
    from agentflows.definition import parse_duration
    from agentflows.tasks.runtime import open_store

    try:
        age = parse_duration(args.older_than, allow_zero=True)
    except ValueError as exc:
        raise InputError(f"--older-than: {exc}") from None
    report = open_store().sweep(age, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for key in report.removed:
        print(f"{verb} {key}")
    print(
        f"{verb} {len(report.removed)} orphan objects; kept {report.referenced} in use, {report.kept_recent} too recent"
    )
    return 0


def stack_up(args: argparse.Namespace) -> int:
    from agentflows.deployments.stack import up

    up(host=args.host, port=args.port, worker=args.worker, viewer_port=args.viewer_port)
    return 0


def view(args: argparse.Namespace) -> int:
    from agentflows.viewer.server import serve

    serve(args.host, args.port)
    return 0


def stack_down(args: argparse.Namespace) -> int:
    from agentflows.deployments.stack import down

    down()
    return 0


def serve_flows(args: argparse.Namespace) -> int:
    from agentflows.deployments.serve import serve_all

    serve_all([*load_agents(), ROUTER_NAME, REWORK_NAME], limit=args.limit)
    return 0


def blocks_register(args: argparse.Namespace) -> int:
    from agentflows.deployments.blocks import register_blocks

    for slug in register_blocks():
        print(f"registered {slug}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

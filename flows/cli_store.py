"""The CLI's commands on stored content: `show`, `contents`, `db upgrade|current`, `storage sweep`."""

from __future__ import annotations

import argparse
from typing import Any

from agentflows.errors import InputError
from agentflows.knowledge_cli import knowledge_lines
from agentflows.reporting import answers_summary
from agentflows.review_cli import review_lines
from agentflows.tasks.artifacts import ContentType


def add_store_commands(sub: Any) -> None:
    """Add the stored-content commands to the subcommands `sub`."""
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
    for agent, content_id in content.builds_on.items():
        print(f"builds on {agent} {content_id} (agentflows show {content_id})")
    if content.reworked_from:
        print(f"reworked from {content.reworked_from} (agentflows show {content.reworked_from})")
    for path, uri in sorted(content.files.items()):
        print(f"  {path:<32} {uri}")
    if content.lineage:
        print(f"lineage (generation {content.generation_id}):")
    for step in (s for s in content.lineage if s["step"] != "uses"):
        usage = step["usage"]
        model = f"{step['provider']}/{step['model']}" if step["model"] else "no model"
        warnings = f"  WARNING {'; '.join(step['warnings'])}" if step["warnings"] else ""
        answers = " (from the cache)" if step["cached"] else answers_summary(step["attempts"])
        print(
            f"  {step['label']:<32} {model:<36} calls {usage['calls']}{answers}  "
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

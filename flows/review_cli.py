"""`agentflows review | approve | reject | revise | rerun`: an editor in the loop, from any terminal.

    agentflows review                                   the runs waiting for a review (id, agent, plan, deadline, page)
    agentflows review RUN_ID > plan.yaml                a waiting run's plan, as a plan file to edit
    agentflows review CONTENT_ID > plan.yaml            the plan a stored content was written from (for rerun)
    agentflows approve RUN_ID [--notes …] [--plan FILE] the run writes its drafts from the plan (or from FILE)
    agentflows revise RUN_ID --notes … [--plan FILE]    the run plans again, following the notes
    agentflows reject RUN_ID [--notes …]                the run ends Cancelled with the notes as reason; nothing stored
    agentflows rerun CONTENT_ID --from generate|build [--plan FILE] [--param k=v]   a new content from a stored one

The decisions reach the run through the Prefect API of PREFECT_API_URL, so they
work from any machine that reaches it (without one, through a temporary server
on the same Prefect home as the waiting run: `agentflows.local_prefect`). `show` prints a content's reviews
(`review_lines`).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from collections.abc import Iterable
from typing import Any

from agentflows.catalog import load_agents
from agentflows.console import add_progress_option, printed
from agentflows.errors import InputError
from agentflows.inputs import parse_params
from agentflows.local_prefect import prefect_for_cli
from agentflows.tasks.artifacts import AgentResult
from agentflows.tasks.errors import ContentNotFound

CONTENT_ID_LENGTH = 20


DONE = {"approve": "approved", "revise": "revised", "reject": "rejected"}


def add_review_commands(sub: Any) -> None:
    """Add `review`, `approve`, `revise`, `reject` and `rerun` to the top-level subparsers `sub`."""
    cmd = sub.add_parser(
        "review", help="list the runs waiting for a review, or print the plan of one (or of a content) as a plan file"
    )
    cmd.add_argument(
        "run_id",
        nargs="?",
        metavar="RUN_ID|CONTENT_ID",
        help="a waiting run, or a stored content: print its plan as a plan file (YAML) to edit",
    )
    cmd.add_argument("--json", action="store_true", help="print JSON")
    cmd.set_defaults(command=review)
    for name, verb in (("approve", "write the drafts from its plan"), ("revise", "have it plan again")):
        cmd = sub.add_parser(name, help=f"decide on a run waiting for review: {verb}")
        cmd.add_argument("run_id", metavar="RUN_ID", help="the flow run id `run --review` printed (or 8+ characters)")
        cmd.add_argument("--notes", default="", required=name == "revise", help="your note, kept in the lineage")
        cmd.add_argument("--plan", metavar="FILE", help="the plan to use instead (YAML or JSON; see `review RUN_ID`)")
        _reviewer(cmd)
        cmd.set_defaults(command=decide, decision=name)
    cmd = sub.add_parser("reject", help="decide on a run waiting for review: end it, storing nothing")
    cmd.add_argument("run_id", metavar="RUN_ID", help="the flow run id `run --review` printed (or 8+ characters)")
    cmd.add_argument("--notes", default="", help="why: the run ends Cancelled with it as the reason")
    _reviewer(cmd)
    cmd.set_defaults(command=decide, decision="reject", plan=None)
    cmd = sub.add_parser("rerun", help="rework a stored content from one of its steps, with changes")
    cmd.add_argument("content_id", metavar="CONTENT_ID", help="id (or unique prefix) of the stored content")
    cmd.add_argument("--from", dest="from_step", choices=["generate", "build"], required=True, help="the step to rerun")
    cmd.add_argument(
        "--plan",
        metavar="FILE",
        help="an edited plan (YAML or JSON; `review CONTENT_ID` prints it): only the changed items are written again",
    )
    cmd.add_argument(
        "-p", "--param", action="append", default=[], metavar="NAME=VALUE", help="an input to change; repeatable"
    )
    cmd.add_argument("--notes", default="", help="why the content is reworked, kept in the lineage")
    cmd.add_argument("--json", action="store_true", help="print the result as JSON")
    _reviewer(cmd, "who asks for the rework")
    add_progress_option(cmd)
    cmd.set_defaults(command=rerun)


def _reviewer(cmd: argparse.ArgumentParser, who: str = "who decides") -> None:
    cmd.add_argument("--reviewer", default=None, metavar="NAME", help=f"{who} (default: your user name)")


def review(args: argparse.Namespace) -> int:
    from agentflows.plan_files import plan_file_text

    if args.run_id and _is_content_id(args.run_id):
        return _stored_plan(args)
    # Prefect is imported once `prefect_for_cli` has set it up (the API, or a temporary server of this home).
    if args.run_id:
        with prefect_for_cli(debug=args.debug):
            from agentflows.reviews import pending_review_async

            pending = asyncio.run(pending_review_async(args.run_id))
        if args.json:
            print(json.dumps(_row(pending) | {"plan": pending.plan.view()}, indent=2, default=str))
            return 0
        print(f"{pending.agent} round {pending.round}: {pending.url or pending.run_id}", file=sys.stderr)
        print(plan_file_text(pending.plan, pending.run_id), end="")
        return 0
    with prefect_for_cli(debug=args.debug):
        from agentflows.reviews import pending_reviews_async

        rows = [_row(p) for p in asyncio.run(pending_reviews_async())]
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    if not rows:
        print("no run is waiting for a review")
    for row in rows:
        until = f"{row['deadline']:%Y-%m-%d %H:%M} UTC" if row["deadline"] else "no deadline"
        print(f"{row['run_id']}  {row['agent']:<14} round {row['round']}  {row['title']!r} ({row['items']} items)")
        print(f"{'':<36}  until {until}  {row['url'] or ''}")
    return 0


def _is_content_id(text: str) -> bool:
    """Whether `text` names a stored content rather than a flow run: a content id has no dashes, and a run id
    prefix that names no stored content is taken for a run's."""
    from agentflows.tasks.runtime import open_store

    if "-" in text or len(text) > CONTENT_ID_LENGTH:
        return False
    try:
        open_store().get(text)
    except ContentNotFound:
        return False
    return True


def _stored_plan(args: argparse.Namespace) -> int:
    """`review CONTENT_ID`: the plan a stored content was written from, as a plan file for `rerun --plan`."""
    from agentflows.plan_files import plan_file_text
    from agentflows.tasks.review import PlanContent
    from agentflows.tasks.runtime import open_store
    from agentflows.tasks.storage.kept import built_from

    found = built_from(open_store(), args.run_id)
    if found is None:
        raise InputError(f"content {args.run_id!r} was stored without its plan; it cannot be reworked")
    content = PlanContent.of(found.plan)
    if args.json:
        print(json.dumps({"content_id": found.content.id, "agent": found.content.agent, "plan": content.view()}))
        return 0
    print(plan_file_text(content, content_id=found.content.id), end="")
    return 0


def _row(pending: Any) -> dict[str, Any]:
    return {
        "run_id": pending.run_id,
        "agent": pending.agent,
        "round": pending.round,
        "title": pending.plan.title,
        "items": len(pending.plan.items),
        "decisions": pending.decisions,
        "deadline": pending.deadline,
        "suspended": pending.suspended,
        "url": pending.url,
    }


def decide(args: argparse.Namespace) -> int:
    from agentflows.plan_files import read_plan_file

    reviewer = args.reviewer if args.reviewer is not None else _user()
    plan = read_plan_file(args.plan) if args.plan else None
    with prefect_for_cli(debug=args.debug):
        from agentflows.reviews import approve_async, reject_async, revise_async

        if args.decision == "approve":
            pending = asyncio.run(approve_async(args.run_id, notes=args.notes, plan=plan, reviewer=reviewer))
        elif args.decision == "revise":
            pending = asyncio.run(revise_async(args.run_id, notes=args.notes, plan=plan, reviewer=reviewer))
        else:
            pending = asyncio.run(reject_async(args.run_id, notes=args.notes, reviewer=reviewer))
    goes_on = {
        "approve": "it writes its drafts from the plan" + (f" in {args.plan}" if args.plan else ""),
        "revise": "it plans again with your notes",
        "reject": "it ends Cancelled and stores nothing",
    }[args.decision]
    where = "; it starts again on its worker" if pending.suspended and args.decision != "reject" else ""
    print(f"{DONE[args.decision]} flow run {pending.run_id} ({pending.agent}, round {pending.round}): {goes_on}{where}")
    return 0


def rerun(args: argparse.Namespace) -> int:
    from agentflows.plan_files import read_plan_file
    from agentflows.tasks.runtime import open_store

    stored = open_store().get(args.content_id)
    definition = load_agents(args.definitions)[stored.agent].definition
    params = parse_params(args.param, definition.inputs)
    unknown = [name for name in params if name not in definition.inputs]
    if unknown:
        raise InputError(f"--param {unknown[0]!r}: agent {stored.agent!r} has no such input")
    plan = read_plan_file(args.plan) if args.plan else None
    reviewer = args.reviewer if args.reviewer is not None else _user()
    with prefect_for_cli(debug=args.debug), printed(args.progress):
        from agentflows.rework import rework

        result = rework(
            stored.id,
            from_step=args.from_step,
            plan=plan,
            params=params,
            notes=args.notes,
            reviewer=reviewer,
            definitions=args.definitions,
        )
    print_result(result, args.json)
    return 0


def print_result(result: AgentResult, as_json: bool) -> None:
    """What `run` and `rerun` print: the summary as JSON, or a few lines ending with where it was written."""
    if as_json:
        print(json.dumps(result.summary(), indent=2, default=str))
        return
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for line in review_lines(r.model_dump(mode="json") for r in result.reviews):
        print(line.strip())
    note = " (offline provider: no language model was called)" if result.offline else ""
    print(f"{result.title!r}: {result.model_calls} model calls, {result.cache_hits} cached steps{note}")
    print(f"content id {result.content_id}")
    print(f"wrote {result.location}")


def review_lines(reviews: Iterable[dict[str, Any]]) -> list[str]:
    """One line per decision an editor made about a content (and per rework), for `show` and `run`."""
    lines = []
    for r in reviews:
        who = r.get("reviewer") or ("the timeout" if r.get("automatic") else "an editor")
        if r["decision"] == "rework":
            what = f"reworked from {r['reworked_from']} (from {r['from_step']}) by {who}"
        else:
            what = f"review round {r['round']}: {r['decision']} by {who}"
        notes = f": {' '.join(r['notes'].split())}" if r.get("notes") else ""
        edits = f" ({len(r['edits'])} edits: {'; '.join(r['edits'][:3])}{'; …' if len(r['edits']) > 3 else ''})"
        lines.append(f"  {what} at {str(r['decided_at'])[:19]}{notes}{edits if r.get('edits') else ''}")
    return lines


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in the environment or the password database
        return ""

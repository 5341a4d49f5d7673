"""`agentflows knowledge …`: what an agent would retrieve, and rebuilding the index; the passages `show` lists.

    agentflows knowledge search AGENT "QUERY" [--top-k N] [--json]   the passages a step would be given
    agentflows knowledge index [AGENT …]                               split and index the sources again

Both sync the agent's sources into the index of the configured content database
first (a search sees the files as they are now). With an embeddings model on the
agent's provider, search is hybrid, as in a run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Iterable
from typing import Any

from agentflows.catalog import load_agents
from agentflows.errors import InputError
from agentflows.knowledge import knowledge_setup
from agentflows.loader import LoadedAgent
from agentflows.tasks.knowledge.passages import HEADING_SEPARATOR
from agentflows.tasks.knowledge.setup import KnowledgeSetup

PREVIEW_CHARS = 240


def add_knowledge_commands(sub: Any) -> None:
    """Add `knowledge search` and `knowledge index` to the top-level subparsers `sub`."""
    cmd = sub.add_parser("knowledge", help="an agent's knowledge files: search them, rebuild their index")
    knowledge = cmd.add_subparsers(required=True, metavar="ACTION")
    action = knowledge.add_parser("search", help="show the passages a step would retrieve for QUERY")
    action.add_argument("agent", help="agent name (see `agentflows list`)")
    action.add_argument("query", help='what to search for, e.g. "spring tides"')
    action.add_argument("--top-k", type=int, help="how many passages (default: the agent's knowledge.top_k)")
    action.add_argument("--json", action="store_true", help="print JSON")
    action.set_defaults(command=search)
    action = knowledge.add_parser("index", help="split and index the agents' knowledge files again")
    action.add_argument("agents", nargs="*", metavar="AGENT", help="agents to index (default: all with knowledge)")
    action.set_defaults(command=index)


def search(args: argparse.Namespace) -> int:
    agent = load_agents(args.definitions)[args.agent]
    setup = _setup(agent)
    top_k = args.top_k or setup.top_k
    if top_k < 1:
        raise InputError(f"--top-k {top_k} is not a positive number of passages")
    mode, hits = asyncio.run(_search(agent, setup, args.query, top_k))
    rows = [
        {
            "source": h.passage.source,
            "line": h.line,
            "heading": h.passage.heading,
            "hash": h.passage.hash,
            "score": round(h.score, 6),
            "text": h.passage.text,
        }
        for h in hits
    ]
    if args.json:
        print(json.dumps({"agent": agent.name, "query": args.query, "mode": mode, "passages": rows}, indent=2))
        return 0
    print(f"{agent.name}: {len(rows)} passages for {args.query!r} ({mode} search)")
    for number, row in enumerate(rows, start=1):
        heading = f"  {row['heading']}" if row["heading"] else ""
        print(f"{number}. {row['source']}:{row['line']}{heading}  score {row['score']:.4g}  hash {row['hash'][:12]}")
        text = " ".join(row["text"].split())
        print(f"   {text[:PREVIEW_CHARS]}{'…' if len(text) > PREVIEW_CHARS else ''}")
    return 0


async def _search(agent: LoadedAgent, setup: KnowledgeSetup, query: str, top_k: int) -> tuple[str, list[Any]]:
    base = await _knowledge_base(agent)
    scope = await base.open(setup, {})
    return base.mode, (await base.search(scope, [query], top_k))[0]


def index(args: argparse.Namespace) -> int:
    catalog = load_agents(args.definitions)
    names = args.agents or [name for name, agent in catalog.items() if agent.definition.knowledge is not None]
    if not names:
        print("no agent declares knowledge; add `knowledge: {sources: [...]}` to a definition")
        return 0
    for name in names:
        agent = catalog[name]
        report, embedded = asyncio.run(_rebuild(agent, _setup(agent)))
        vectors = f", {embedded} passages embedded" if embedded else ""
        print(
            f"{name}: {report.documents} files, {report.passages} passages indexed"
            f"{vectors}, {report.removed} gone files dropped ({report.seconds:.2f} s)"
        )
    return 0


async def _rebuild(agent: LoadedAgent, setup: KnowledgeSetup) -> tuple[Any, int]:
    base = await _knowledge_base(agent)
    scope = await base.open(setup, {}, rebuild=True)
    return scope.report, scope.embedded


async def _knowledge_base(agent: LoadedAgent) -> Any:
    """The knowledge base a run of `agent` would use (hybrid when its provider has an embeddings model)."""
    from agentflows.pipeline import resolved_settings  # Prefect and the database only when searching
    from agentflows.tasks.knowledge.retrieval import KnowledgeBase

    d = agent.definition
    return await KnowledgeBase.for_settings(await resolved_settings(d.model_settings(d.steps.decide)))


def _setup(agent: LoadedAgent) -> KnowledgeSetup:
    setup = knowledge_setup(agent.definition, agent.root)
    if setup is None:
        raise InputError(
            f"agent {agent.name!r} has no knowledge; add `knowledge: {{sources: [...]}}` to {agent.file.name}"
        )
    return setup


def knowledge_lines(lineage: Iterable[dict[str, Any]]) -> list[str]:
    """What `show` prints about the knowledge a content's steps were given: each passage once, with its steps."""
    used: dict[tuple[str, str, str], list[str]] = {}
    for step in lineage:
        for ref in step.get("knowledge") or []:
            used.setdefault((ref["source"], ref["heading"], ref["hash"]), []).append(step["label"])
    if not used:
        return []
    lines = [f"knowledge used ({len(used)} passages):"]
    for (source, heading, digest), labels in used.items():
        where = f"{source}{HEADING_SEPARATOR}{heading}" if heading else source
        lines.append(f"  {where}  {digest[:12]}  ({', '.join(labels)})")
    return lines

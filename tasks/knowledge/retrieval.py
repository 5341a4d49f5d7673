"""Retrieval for a run: keep the agent's sources indexed, then find the passages for each step's query.

    KnowledgeSetup        what the compiler makes of a definition's `knowledge:` (sources, top_k, queries)
    KnowledgeBase.open    read the sources (and a run's own, from its input), sync them into the index,
                          embed new passages when the provider has an embeddings model; the scope to search
    KnowledgeBase.search  the best passages of the scope for several queries at once: keyword ranking
                          (FTS5 BM25 / PostgreSQL ts_rank_cd), fused with vector ranking when there is one
    RunKnowledge          one run's retrieval: `for_decide` (inputs and request) and `for_items` (each plan item)

Retrieval runs in the flow, before the step tasks, so what a step retrieved is
one of its task's arguments and so part of its cache key (`Retrieved`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import anyio

from agentflows.tasks.artifacts import Plan
from agentflows.tasks.knowledge.index import Hit, KnowledgeIndex, SyncReport
from agentflows.tasks.knowledge.ranking import fuse, query_terms
from agentflows.tasks.knowledge.retrieved import NOTHING, Retrieved
from agentflows.tasks.knowledge.setup import KnowledgeSetup
from agentflows.tasks.knowledge.sources import definition_documents, run_documents
from agentflows.tasks.knowledge.vectors import Embedder, embed_missing, embedder_of, vector_ranking
from agentflows.tasks.llm.settings import ModelSettings
from agentflows.tasks.prompts import render
from agentflows.tasks.runtime import current_runtime
from agentflows.tasks.specs import RunContext

CANDIDATES = 50
"""Passages each ranking contributes before hybrid fusion picks the best `top_k`."""


@dataclass(frozen=True)
class Scope:
    """The indexed documents one run (or one search) looks in, and how they were synced."""

    documents: tuple[int, ...]
    report: SyncReport
    embedded: int = 0
    """Passages embedded while opening (new or changed text)."""


class KnowledgeBase:
    """The knowledge index of the content database, with the provider's embeddings when it has them."""

    def __init__(self, index: KnowledgeIndex, embedder: Embedder | None = None) -> None:
        self.index = index
        self.embedder = embedder

    @classmethod
    async def for_settings(cls, settings: ModelSettings) -> KnowledgeBase:
        """The runtime's knowledge base; hybrid when the provider serving `settings` has an embeddings model."""
        runtime = current_runtime()
        provider = await runtime.provider(settings)
        engine = await anyio.to_thread.run_sync(lambda: runtime.store().records.engine)
        return cls(KnowledgeIndex.for_engine(engine), embedder_of(provider))

    @property
    def mode(self) -> str:
        """`keyword`, or `hybrid (<embeddings model>)`."""
        return f"hybrid ({self.embedder.embeddings_model})" if self.embedder else "keyword"

    async def open(self, setup: KnowledgeSetup, inputs: Mapping[str, Any], *, rebuild: bool = False) -> Scope:
        """Sync the setup's sources and the run's own into the index; the scope to search."""
        runtime = current_runtime()
        locations = setup.run_locations(inputs)

        def read_and_sync() -> tuple[SyncReport, tuple[int, ...]]:
            documents, prefixes = definition_documents(setup.root, setup.sources)
            if locations:
                s3 = runtime.store_settings().model_copy(update={"storage_url": "s3://"}).storage_options()
                extra, extra_prefixes = run_documents(locations, runtime.settings.knowledge_roots, s3)
                documents, prefixes = documents + extra, prefixes + extra_prefixes
            return self.index.sync(documents, prefixes, setup.max_chars, rebuild=rebuild)

        report, documents = await anyio.to_thread.run_sync(read_and_sync)
        embedded = await embed_missing(self.index, documents, self.embedder) if self.embedder else 0
        return Scope(documents, report, embedded)

    async def search(self, scope: Scope, queries: Sequence[str], top_k: int) -> list[list[Hit]]:
        """The best `top_k` passages of `scope` for each query (none for a query without words)."""
        terms = [query_terms(q) for q in queries]
        pool = max(top_k, CANDIDATES) if self.embedder else top_k

        def keyword() -> list[list[tuple[int, float]]]:
            return [self.index.keyword(t, scope.documents, pool) for t in terms]

        rankings = await anyio.to_thread.run_sync(keyword)
        if self.embedder is not None:
            rankings = await self._hybrid(scope, queries, terms, rankings, top_k)
        ids = {pid for ranking in rankings for pid, _ in ranking[:top_k]}
        found = await anyio.to_thread.run_sync(self.index.passages, sorted(ids))
        return [[Hit(*found[pid], score) for pid, score in ranking[:top_k] if pid in found] for ranking in rankings]

    async def _hybrid(
        self,
        scope: Scope,
        queries: Sequence[str],
        terms: list[list[str]],
        keyword: list[list[tuple[int, float]]],
        top_k: int,
    ) -> list[list[tuple[int, float]]]:
        """Keyword and vector rankings fused by reciprocal rank (a query without words retrieves nothing)."""
        assert self.embedder is not None
        asked = [i for i, t in enumerate(terms) if t]
        if not asked:
            return keyword
        vectors = await self.embedder.embed([queries[i] for i in asked])
        model = str(self.embedder.embeddings_model)
        nearest = await anyio.to_thread.run_sync(
            vector_ranking, self.index, scope.documents, model, vectors, max(top_k, CANDIDATES)
        )
        fused = list(keyword)
        for i, close in zip(asked, nearest, strict=True):
            fused[i] = fuse([[pid for pid, _ in keyword[i]], [pid for pid, _ in close]], top_k)
        return fused


class RunKnowledge:
    """One run's retrieval: the scope opened once, then a query per step."""

    def __init__(self, setup: KnowledgeSetup, base: KnowledgeBase, scope: Scope) -> None:
        self.setup = setup
        self.base = base
        self.scope = scope

    @classmethod
    async def open(cls, setup: KnowledgeSetup, inputs: Mapping[str, Any], settings: ModelSettings) -> RunKnowledge:
        base = await KnowledgeBase.for_settings(settings)
        return cls(setup, base, await base.open(setup, inputs))

    async def for_decide(self, agent: dict[str, str], inputs: Mapping[str, Any], context: RunContext) -> Retrieved:
        """What `decide` retrieves: the passages for its query (by default, the subject and the request)."""
        query = self.query("decide", {"agent": agent, "inputs": inputs, "context": context.model_dump()})
        return (await self.retrieved([query]))[0]

    async def for_items(
        self, agent: dict[str, str], inputs: Mapping[str, Any], context: RunContext, plan: Plan
    ) -> dict[str, Retrieved]:
        """What each `generate` item retrieves, by item key: the passages for its own query."""
        base = {"agent": agent, "inputs": inputs, "context": context.model_dump(), "plan": plan.view()}
        queries = [self.query("generate", {**base, "item": item.view()}) for item in plan.items]
        found = await self.retrieved(queries)
        return {item.key: retrieved for item, retrieved in zip(plan.items, found, strict=True)}

    def query(self, step: str, variables: Mapping[str, Any]) -> str:
        """The query of `step`, rendered from its template; empty when the step does not retrieve."""
        template = self.setup.queries.get(step, "")
        return " ".join(render({"query": template}, "query", variables).split()) if template else ""

    async def retrieved(self, queries: Sequence[str]) -> list[Retrieved]:
        hits = await self.base.search(self.scope, queries, self.setup.top_k)
        return [Retrieved(passages=tuple(h.passage for h in found)) if found else NOTHING for found in hits]

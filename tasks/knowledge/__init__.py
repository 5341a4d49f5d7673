"""Knowledge: Markdown and text files an agent draws on, retrieved into its prompts, named in lineage.

    passages.py    splitting a file into passages: by heading, with a size cap; content and passage hashes
    sources.py     which files a source holds (definitions folder; a run's folder or S3 prefix); checks
    tables.py      the index tables in the content database
    index.py       KnowledgeIndex: sync (changed files only), keyword search on SQLite FTS5 / PostgreSQL
    ranking.py     query terms, full-text query strings, reciprocal rank fusion, cosine similarity
    vectors.py     embeddings from the provider's /v1/embeddings, kept per passage hash; in-process ranking
    setup.py       KnowledgeSetup: what the compiler makes of a definition's `knowledge:` (pure data)
    retrieval.py   KnowledgeBase (open a scope, search it), RunKnowledge (a run's queries)
    retrieved.py   Retrieved: what a step was given (part of its cache key); the `knowledge` template variable

Flow of one run: `RunKnowledge.open` reads the agent's sources and syncs them into the
index (only files whose content hash changed are split again), then `decide` and each
`generate` item retrieve the best passages for their own query, in the flow, before
their task runs; the task gets them as an argument (so they are part of its cache key),
its prompt sees them as `knowledge`, and its provenance lists them (file, heading, hash).

Names are imported on first use, so defining flows does not import SQLAlchemy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agentflows.tasks.knowledge.retrieval import KnowledgeBase, RunKnowledge
    from agentflows.tasks.knowledge.retrieved import NOTHING, KnowledgeView, Passage, Retrieved
    from agentflows.tasks.knowledge.setup import KnowledgeSetup

_EXPORTS = {
    "KnowledgeBase": "agentflows.tasks.knowledge.retrieval",
    "KnowledgeSetup": "agentflows.tasks.knowledge.setup",
    "RunKnowledge": "agentflows.tasks.knowledge.retrieval",
    "NOTHING": "agentflows.tasks.knowledge.retrieved",
    "KnowledgeView": "agentflows.tasks.knowledge.retrieved",
    "Passage": "agentflows.tasks.knowledge.retrieved",
    "Retrieved": "agentflows.tasks.knowledge.retrieved",
}
__all__ = ["NOTHING", "KnowledgeBase", "KnowledgeSetup", "KnowledgeView", "Passage", "Retrieved", "RunKnowledge"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'agentflows.tasks.knowledge' has no attribute {name!r}")

"""Vectors for hybrid ranking: passage embeddings from the agent's provider, ranked in process.

When the provider that serves an agent's model steps has an embeddings model
(`AGENTFLOWS_LLM_EMBEDDINGS_MODEL`, or the same field of a saved provider Block),
every indexed passage gets a vector, once per passage text and model (kept in
`knowledge_embeddings`, so re-indexing unchanged text costs no call), and each
query is embedded too. Similarity is cosine, computed in this process with numpy
over the vectors of the passages in scope, on SQLite and PostgreSQL alike (this
project's PostgreSQL has no pgvector; a few thousand passages rank in milliseconds).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from agentflows.tasks.knowledge.index import KnowledgeIndex
from agentflows.tasks.knowledge.ranking import cosine_top


@runtime_checkable
class Embedder(Protocol):
    """A provider that can embed texts (the OpenAI-compatible client does, with an embeddings model)."""

    embeddings_model: str | None

    async def embed(self, texts: list[str]) -> list[list[float]]:
        """One vector per text, in order."""
        ...


def embedder_of(provider: Any) -> Embedder | None:
    """`provider` when it can embed texts (it has an embeddings model), else None."""
    if isinstance(provider, Embedder) and provider.embeddings_model:
        return provider
    return None


async def embed_missing(index: KnowledgeIndex, scope: Sequence[int], embedder: Embedder) -> int:
    """Embed the passages of `scope` that have no vector under the embedder's model yet; how many were."""
    import anyio
    import numpy as np

    model = str(embedder.embeddings_model)
    missing = await anyio.to_thread.run_sync(index.missing_embeddings, scope, model)
    if not missing:
        return 0
    vectors = await embedder.embed([text for _, text in missing])
    packed = {
        digest: np.asarray(v, dtype=np.float32).tobytes() for (digest, _), v in zip(missing, vectors, strict=True)
    }
    await anyio.to_thread.run_sync(index.store_embeddings, model, packed, len(vectors[0]))
    return len(missing)


def vector_ranking(
    index: KnowledgeIndex, scope: Sequence[int], model: str, queries: Sequence[Sequence[float]], limit: int
) -> list[list[tuple[int, float]]]:
    """For each query vector, the `limit` passages of `scope` most similar to it, best first."""
    import numpy as np

    rows = index.vectors(scope, model)
    width = len(queries[0]) if queries else 0
    rows = [(pid, blob) for pid, blob in rows if len(blob) == width * 4]  # another model size: not comparable
    ids = [pid for pid, _ in rows]
    matrix = np.frombuffer(b"".join(blob for _, blob in rows), dtype=np.float32).reshape(len(rows), width)
    return [cosine_top(matrix, ids, query, limit) for query in queries]

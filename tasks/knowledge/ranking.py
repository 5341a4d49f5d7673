"""Pure ranking helpers: query terms, full-text query strings, rank fusion, cosine similarity.

Queries are natural language (a topic, a plan item's title and summary), so the
full-text query is an OR of the query's words, not an AND: a passage matching
some of them ranks, and BM25 (SQLite) or `ts_rank_cd` (PostgreSQL) puts the
passages matching the rarer words first. Hybrid ranking fuses the keyword ranking
and the vector ranking by reciprocal rank (`fuse`), which needs no calibration
between their scores.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

MAX_TERMS = 40
RRF_K = 60
"""Reciprocal rank fusion constant: a passage's fused score is Σ 1 / (RRF_K + rank)."""
_STOPWORD_TEXT = (
    "a about after all also an and any are as at be been but by can do does for from had has have how i "
    "if in into is it its may more most no not of on one or our out so some such than that the their them "
    "then there these they this to up us was we were what when where which who why will with without you "
    "your"
)
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
"""Common English words left out of queries (BM25 would weigh them little anyway)."""
_WORD = re.compile(r"[^\W_]+")


def query_terms(query: str) -> list[str]:
    """The distinct words of `query` worth searching for, in order (no stop words, no single letters)."""
    terms: list[str] = []
    for word in _WORD.findall(query.lower()):
        if len(word) > 1 and word not in STOPWORDS and word not in terms:
            terms.append(word)
    return terms[:MAX_TERMS]


def fts5_query(terms: Sequence[str]) -> str:
    """An FTS5 MATCH expression: any of `terms`, each quoted (so none is read as an operator)."""
    return " OR ".join('"' + term.replace('"', "") + '"' for term in terms)


def tsquery(terms: Sequence[str]) -> str:
    """A PostgreSQL `to_tsquery` expression: any of `terms` (words only, so no operator can slip in)."""
    return " | ".join(terms)


def fuse(rankings: Sequence[Sequence[int]], limit: int) -> list[tuple[int, float]]:
    """Reciprocal rank fusion of several rankings of ids: the best `limit` ids with their fused scores."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (RRF_K + rank)
    ordered = sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))
    return ordered[:limit]


def cosine_top(matrix: np.ndarray, ids: Sequence[int], query: Sequence[float], limit: int) -> list[tuple[int, float]]:
    """The `limit` ids whose rows of `matrix` are most similar (cosine) to `query`, best first."""
    import numpy as np

    if not len(ids):
        return []
    vector = np.asarray(query, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1) * (np.linalg.norm(vector) or 1.0)
    similarity = (matrix @ vector) / np.where(norms == 0, 1.0, norms)
    best = np.argsort(-similarity, kind="stable")[:limit]
    return [(ids[i], float(similarity[i])) for i in best]

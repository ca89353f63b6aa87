"""Semantic search: find messages that mean the same as a query, with the run's own encoder.

Owns the ranking only: the query is embedded by the encoder the run was analysed with (the same
vector space as the run's stored message embeddings), and messages are ranked by cosine similarity.
Keyword search lives in :mod:`pipelines.metrics` with the other filters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipelines.embed import Encoder


@dataclass(frozen=True)
class SemanticSettings:
    """How many results semantic search returns, and how similar they must be."""

    # With all-MiniLM-L6-v2 a short query and an unrelated review score about 0.1 (the median on the sample),
    # a review about the same thing 0.3-0.6: 0.25 keeps "about the same thing" (top ~10%) and drops the noise.
    min_similarity: float = 0.25
    # A reader never pages past the first few hundred: more only costs time.
    limit: int = 500


def embed_query(query: str, encoder: Encoder) -> np.ndarray:
    """The query's unit vector in the encoder's space."""
    return np.asarray(encoder.encode([query.strip()])[0], dtype=np.float32)


def rank_by_similarity(vectors: np.ndarray, query_vector: np.ndarray, rows: np.ndarray | None = None,
                       settings: SemanticSettings = SemanticSettings()) -> pd.Series:
    """Cosine similarity of the most similar messages to the query, most similar first.

    Args:
        vectors: unit-length message embeddings, one row per message (float16 or float32).
        query_vector: the query's unit vector (:func:`embed_query`).
        rows: positions in ``vectors`` to search (the messages that pass the filters); all when ``None``.
        settings: similarity floor and result limit.

    Returns:
        Similarity per message position, at least ``settings.min_similarity``, at most ``settings.limit`` of
        them, sorted descending (ties by position, so the order is stable).
    """
    rows = np.arange(len(vectors)) if rows is None else np.asarray(rows, dtype=np.int64)
    if len(rows) == 0:
        return pd.Series(dtype="float32", name="similarity")
    # Chunked so a 100k-message float16 map never becomes one large float32 copy.
    sims = np.empty(len(rows), dtype=np.float32)
    q = query_vector.astype(np.float32)
    for start in range(0, len(rows), 20_000):
        part = rows[start:start + 20_000]
        sims[start:start + len(part)] = np.asarray(vectors[part], dtype=np.float32) @ q
    keep = np.flatnonzero(sims >= settings.min_similarity)
    if len(keep) > settings.limit:
        keep = keep[np.argpartition(-sims[keep], settings.limit - 1)[:settings.limit]]
    order = keep[np.lexsort((rows[keep], -sims[keep]))]
    return pd.Series(sims[order], index=rows[order], name="similarity")

"""Semantic search: ranking by cosine similarity within the filtered messages, through the real encoder too."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.search import SemanticSettings, embed_query, rank_by_similarity


def _unit(rows: list[list[float]]) -> np.ndarray:
    v = np.asarray(rows, dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_ranks_most_similar_first_with_a_floor_and_a_limit():
    vectors = _unit([[1, 0], [0.6, 0.8], [0, 1], [0.9, 0.1], [-1, 0]]).astype(np.float16)
    q = np.array([1, 0], dtype=np.float32)
    ranked = rank_by_similarity(vectors, q, settings=SemanticSettings(min_similarity=0.5, limit=10))
    assert ranked.index.tolist() == [0, 3, 1]  # 2 and 4 are below the floor
    assert ranked.iloc[0] == pytest.approx(1.0, abs=1e-3)
    assert rank_by_similarity(vectors, q, settings=SemanticSettings(min_similarity=-1, limit=2)).index.tolist() == [0, 3]


def test_searches_only_the_given_rows_and_keeps_their_positions():
    vectors = _unit([[1, 0], [1, 0.01], [0, 1], [1, 0.02]])
    ranked = rank_by_similarity(vectors, np.array([1, 0], dtype=np.float32), rows=np.array([2, 3]),
                                settings=SemanticSettings(min_similarity=0.0))
    assert ranked.index.tolist() == [3, 2]
    assert rank_by_similarity(vectors, np.array([1, 0], dtype=np.float32), rows=np.array([], dtype=int)).empty


def test_equal_similarities_keep_message_order():
    vectors = _unit([[1, 0]] * 4)
    assert rank_by_similarity(vectors, np.array([1, 0], dtype=np.float32)).index.tolist() == [0, 1, 2, 3]


@pytest.mark.slow
def test_real_encoder_finds_paraphrases_without_shared_words(encoder):
    messages = ["The parcel arrived two weeks late.", "Delivery took forever, I waited ages for my order.",
                "This coffee tastes bitter and burnt.", "Great price, cheaper than the supermarket.",
                "My dog refuses to eat this food."]
    vectors = encoder.encode(messages)
    ranked = rank_by_similarity(vectors, embed_query("shipping was very slow", encoder),
                                settings=SemanticSettings(min_similarity=0.2))
    assert set(ranked.index[:2]) == {0, 1}
    assert 2 not in ranked.index[:2] and 4 not in ranked.index[:2]

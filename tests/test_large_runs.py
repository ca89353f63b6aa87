"""Large runs: topics found on a stratified sample, the other messages assigned in chunks (real model, real data)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from pipelines.settings import Settings
from pipelines.topics import OUTLIER, cluster, fit_sample, fit_topics


def test_sample_is_seeded_and_keeps_each_stratum_in_proportion():
    strata = np.array(["2025-01"] * 600 + ["2025-02"] * 300 + ["2025-03"] * 100, dtype=object)
    strata[5] = None  # a message without a date is its own stratum, not an error
    rows = fit_sample(1000, 200, seed=3, strata=strata)
    assert len(set(rows.tolist())) == len(rows) and 195 <= len(rows) <= 205
    counts = pd.Series(strata[rows]).value_counts()
    assert abs(counts["2025-01"] - 120) <= 1 and abs(counts["2025-02"] - 60) <= 1 and abs(counts["2025-03"] - 20) <= 1
    assert np.array_equal(rows, fit_sample(1000, 200, seed=3, strata=strata))
    assert np.array_equal(np.sort(rows), rows)  # file order: the fit reads them as it would read the file
    assert np.array_equal(fit_sample(50, 200, seed=3), np.arange(50))
    plain = fit_sample(1000, 200, seed=3)
    assert len(plain) == 200 and len(set(plain.tolist())) == 200


def test_a_small_file_whose_groups_are_below_the_topic_size_still_gets_topics(tmp_path):
    from hdbscan import HDBSCAN

    # Ten tight groups of three, far apart: HDBSCAN at the default minimum size (10 for 30 messages) finds none.
    rng = np.random.default_rng(0)
    points = np.vstack([c + rng.normal(size=(3, 5)) for c in rng.normal(size=(10, 5)) * 100]).astype(np.float32)
    settings = Settings(store_dir=tmp_path)
    assert settings.effective_min_topic_size(30) == 10
    assert (HDBSCAN(min_cluster_size=10, min_samples=2).fit_predict(points) == OUTLIER).all()
    labels = cluster(points, settings)
    assert (labels != OUTLIER).sum() >= 20 and len(set(labels[labels != OUTLIER].tolist())) >= 2
    for group in range(10):  # a found topic never splits a group
        assert len(set(labels[group * 3 : group * 3 + 3].tolist())) == 1


@pytest.fixture(scope="module")
def reviews(sample_frame, encoder):
    frame = sample_frame.iloc[::3].reset_index(drop=True)
    texts = frame["text"].astype(str).tolist()
    return texts, encoder.encode(texts), pd.to_datetime(frame["date"]).dt.strftime("%Y-%m").to_numpy()


@pytest.mark.slow
def test_large_run_fits_on_a_sample_and_assigns_the_rest(reviews, tmp_path):
    texts, vectors, months = reviews
    settings = replace(Settings(store_dir=tmp_path), fit_sample_size=600, assign_chunk_size=250)
    result = fit_topics(texts, vectors, settings, strata=months)
    n = len(texts)
    rows = fit_sample(n, 600, settings.seed, months)
    alone = fit_topics([texts[i] for i in rows], vectors[rows], replace(settings, fit_sample_size=n))
    # The sample's topics are exactly those of a fit on the sample alone ...
    assert np.array_equal(result.assignments[rows], alone.assignments)
    assert result.outlier_share_before == alone.outlier_share_before
    # ... and every other message is in its nearest topic, or left out within the outlier bound.
    rest = np.setdiff1d(np.arange(n), rows)
    ids = np.array(sorted(set(alone.assignments.tolist()) - {OUTLIER}))
    centroids = np.stack([vectors[rows][alone.assignments == t].mean(axis=0) for t in ids])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    nearest = ids[np.argmax(vectors[rest] @ centroids.T, axis=1)]
    assigned = result.assignments[rest] != OUTLIER
    assert np.array_equal(result.assignments[rest][assigned], nearest[assigned])
    assert result.outlier_share <= settings.max_outlier_share + 0.01
    # Topic sizes, shares and representatives cover all messages, not just the sample.
    assert result.topics["size"].sum() == int((result.assignments != OUTLIER).sum())
    reps = [r for rs in result.topics["representative_rows"] for r in rs]
    assert all(0 <= r < n for r in reps)
    assert np.isfinite(result.coords).all() and result.coords.shape == (n, 2)
    # Same input, same topics.
    again = fit_topics(texts, vectors, settings, strata=months)
    assert np.array_equal(again.assignments, result.assignments)


@pytest.mark.slow
def test_a_whole_analysis_above_the_sample_size(sample_frame, encoder, tmp_path):
    from pipelines.analyse import analyse_file
    from pipelines.settings import ColumnMapping
    from pipelines.store import load_run

    path = tmp_path / "reviews.csv"
    sample_frame.iloc[::4].to_csv(path, index=False)
    settings = replace(Settings(store_dir=tmp_path / "store"), fit_sample_size=500, expectations=False)
    summary = analyse_file(path, ColumnMapping(metadata=("rating",)), settings, encoder=encoder)
    run = load_run(tmp_path / "store")
    assert summary.messages > 1000 and summary.topics >= 3
    assert (run.messages["topic"] != OUTLIER).mean() >= 0.9
    assert run.topics["size"].sum() == int((run.messages["topic"] != OUTLIER).sum())
    assert run.manifest["settings"]["fit_sample_size"] == 500


@pytest.mark.slow
def test_repeated_texts_are_fitted_once_and_share_their_topic(reviews, tmp_path):
    texts, vectors, months = reviews
    copies = list(range(0, len(texts), 2))  # every other review appears twice, the copy at the end
    texts2 = texts + [texts[i] for i in copies]
    vectors2 = np.vstack([vectors, vectors[copies]])
    settings = replace(Settings(store_dir=tmp_path), fit_sample_size=len(texts))
    result = fit_topics(texts2, vectors2, settings, strata=np.concatenate([months, months[copies]]),
                        keys=np.array(texts2, dtype=object))
    # Fewer distinct texts than the sample size: the fit sees each text once, i.e. the first copies only,
    # so the original reviews get exactly the topics of a fit on them alone.
    alone = fit_topics(texts, vectors, settings)
    assert np.array_equal(result.assignments[: len(texts)], alone.assignments)
    second = result.assignments[len(texts):]
    assert np.array_equal(second, result.assignments[copies])  # a copy goes where its fitted text went


def test_exact_neighbours_are_those_of_a_brute_force_search(reviews):
    """The neighbours UMAP gets from 4,096 messages on: each message itself first, then its nearest by cosine,
    the same in any block size and on every call (real review vectors, exact copies among them)."""
    from pipelines.topics import nearest_neighbours

    _, vectors, _ = reviews
    vectors = np.vstack([vectors, vectors[:50]])  # 50 messages twice: equal similarities
    indices, distances = nearest_neighbours(vectors, 15, block=128)
    n = len(vectors)
    assert indices.shape == distances.shape == (n, 15)
    assert np.array_equal(indices[:, 0], np.arange(n)) and (distances[:, 0] == 0).all()
    assert (np.diff(distances, axis=1) >= 0).all()
    similar = vectors @ vectors.T
    np.fill_diagonal(similar, np.inf)
    brute = np.argsort(-similar, axis=1, kind="stable")[:, :15]
    same = np.mean([set(a) == set(b) for a, b in zip(indices.tolist(), brute.tolist(), strict=True)])
    assert same >= 0.98, same
    # Where the sets differ, only by rounding: every neighbour found is as near as the search's k-th nearest.
    found = np.take_along_axis(similar, indices[:, 1:], axis=1)
    kth = np.take_along_axis(similar, brute[:, -1:], axis=1)
    assert (found >= kth - 1e-5).all()
    assert (indices[:50, 1] == np.arange(n - 50, n)).all()  # a message's copy is its nearest other
    again = nearest_neighbours(vectors, 15, block=1000)
    assert np.array_equal(again[0], indices) and np.allclose(again[1], distances, atol=1e-6)


@pytest.mark.slow
def test_umap_reads_exact_neighbours_between_its_own_exact_limit_and_the_setting(reviews, tmp_path, monkeypatch):
    """Above UMAP's own exact limit (4,096; lowered here to fit the test data) the fit gets exact neighbours,
    up to ``exact_neighbors_max``; the topics are readable, bounded in outliers and the same on every run."""
    import pipelines.topics as topics

    texts, vectors, months = reviews
    calls = []

    def spy(v, k, *args, **kwargs):
        calls.append((len(v), k))
        return real(v, k, *args, **kwargs)

    real = topics.nearest_neighbours
    monkeypatch.setattr(topics, "UMAP_EXACT_BELOW", 500)
    monkeypatch.setattr(topics, "nearest_neighbours", spy)
    settings = Settings(store_dir=tmp_path)
    result = fit_topics(texts, vectors, settings, strata=months)
    assert calls == [(len(texts), 15)]
    assert len(result.topics) >= 8 and result.outlier_share <= settings.max_outlier_share + 0.01
    assert np.array_equal(fit_topics(texts, vectors, settings, strata=months).assignments, result.assignments)
    fit_topics(texts, vectors, replace(settings, exact_neighbors_max=len(texts) - 1), strata=months)
    assert len(calls) == 2  # above the setting, UMAP's own NN-descent


def test_keywords_leave_out_redaction_marks_even_inside_words():
    from pipelines.topics import _vectorizer

    # As CFPB narratives read after their own redaction: XXXX where a name, a date or an account number was.
    texts = ["The EDXXXX servicer sent a XXXXdate letter on XX/XX/2021 about my XXXX loan",
             "My loan servicer never sent the letter; account XXXXXXXX was closed",
             "I ordered the XXL shirt and the loan letter came late"]
    words = set(_vectorizer(len(texts)).fit(texts).get_feature_names_out())
    assert {"servicer", "letter", "loan", "date", "xxl"} <= words
    assert not [w for w in words if "xxx" in w or w in ("xx", "edxxxx")]

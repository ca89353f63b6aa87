"""Discover issue clusters (topics) with BERTopic on precomputed embeddings.

Owns: the BERTopic configuration (seeded UMAP, HDBSCAN, a vectorizer that ignores stop words and
redaction marks), outlier reduction to a bounded share, readable labels, representative messages
and 2-D map coordinates. Pure: takes texts and vectors, returns tables.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

from pipelines.errors import NotEnoughMessagesError
from pipelines.executor import Executor, LocalExecutor
from pipelines.redact import PLACEHOLDERS
from pipelines.settings import Settings

OUTLIER = -1
# Words that carry no issue in feedback text: English stop words, HTML leftovers, redaction marks
# (the CFPB writes XXXX for removed personal data) and filler.
FEEDBACK_STOP_WORDS = sorted(ENGLISH_STOP_WORDS | {
    "br", "href", "www", "http", "https", "com", "amp", "quot", "nbsp", "just", "like", "really", "ve",
    "don", "didn", "doesn", "isn", "wasn", "won", "ll", "im", "dont", "got", "get", "did", "does", "let",
    "xx", "xxxx", "xxxxxxxx", "said", "told", "also", "would", "could", "one", "even", "still",
    # contractions written without their apostrophe ("didnt"); "ill", "id", "well" and "shed" are words
    "didnt", "doesnt", "isnt", "wasnt", "arent", "werent", "cant", "wont", "couldnt", "wouldnt", "shouldnt",
    "havent", "hasnt", "hadnt", "ive", "youre", "theyre", "thats", "whats", "theres", "y'all",
})
# Words of letters only (no numbers, amounts or ids), in any script; a hyphen or apostrophe inside a word keeps
# it whole ("k-cups", "gluten-free", "o'clock") where splitting would leave a misleading part ("cups", "clock").
_TOKEN = r"(?u)\b[^\W\d_]+(?:['-][^\W\d_]+)+\b|\b[^\W\d_]{2,}\b"
# The CFPB's XXXX also sits inside words ("EDXXXX", "XXXXdate" where a name or digits were removed): runs of three
# or more capital X anywhere, and x-only words; "XL" and "XXL" (sizes) stay.
_REDACTION = re.compile(r"X{3,}|\b[xX]{2}\b|\b[xX]{4,}\b|XX(?=/)")  # XX(?=/): a date glued on ("onXX/XX/XXXX")
# Our own redaction placeholders ("[email]", "[phone]", ...): many messages share them whatever their issue.
_PLACEHOLDER = re.compile("|".join(re.escape(p) for p in PLACEHOLDERS.values()), re.IGNORECASE)
# Contractions carry no issue: dropped whole ("don't", "can't", "we've", "i'm"). A trailing 's is cut, so "it's",
# "that's" become stop words and "amazon's" counts as "amazon".
_CONTRACTION = re.compile(r"(?u)[^\W\d_]*(?:n't|'(?:re|ve|ll|d|m))\b")  # also "n't" split off ("do n't")
_APOSTROPHE_S = re.compile(r"'s\b")

StageProgress = Callable[[str], None]


def preprocess_for_keywords(text: str) -> str:
    """Drop redaction marks and placeholders and contractions, lower-case, before counting words.

    Letters outside ASCII stay ("Überweisung" is counted as "überweisung").

    Example:
        >>> preprocess_for_keywords("EDXXXX sent XXXXdate letters, XX/XX/2021; the XXL shirt")
        'ed  sent  date letters,  / /2021; the xxl shirt'
        >>> preprocess_for_keywords("Don't mail [email]: Müller's Überweisung")
        '  mail  : müller überweisung'
    """
    text = _PLACEHOLDER.sub(" ", _REDACTION.sub(" ", text)).lower().replace("\u2019", "'")
    return _APOSTROPHE_S.sub("", _CONTRACTION.sub(" ", text))


@dataclass
class TopicResult:
    """Topics of one run.

    Attributes:
        assignments: topic per message (``-1`` = outlier), aligned with the input texts.
        topics: one row per topic: ``topic``, ``label``, ``keywords`` (list), ``size``, ``share``,
            ``representative_rows`` (indices into the input, most typical first), ``centroid``.
        keywords: ``topic``, ``rank``, ``word``, ``weight``: the c-TF-IDF keywords.
        coords: 2-D map position of each message.
        outlier_share_before: unassigned share straight from HDBSCAN, before reduction.
    """

    assignments: np.ndarray
    topics: pd.DataFrame
    keywords: pd.DataFrame
    coords: np.ndarray
    outlier_share_before: float

    @property
    def outlier_share(self) -> float:
        """Share of messages left without a topic."""
        return float(np.mean(self.assignments == OUTLIER)) if len(self.assignments) else 0.0


def make_label(words: Sequence[str], n: int) -> str:
    """'refund · delay · weeks': the first ``n`` keywords, skipping ones that repeat a chosen word."""
    chosen: list[str] = []
    for w in words:
        parts = set(w.split())
        if any(parts & set(c.split()) or w.rstrip("s") == c.rstrip("s") for c in chosen):
            continue
        chosen.append(w)
        if len(chosen) == n:
            break
    return " · ".join(chosen) if chosen else "(no keywords)"


def reduce_outliers(
    assignments: np.ndarray, embeddings: np.ndarray, max_share: float, min_similarity: float
) -> np.ndarray:
    """Move outliers to their nearest topic centroid.

    Every outlier at least ``min_similarity`` (cosine) from a centroid joins it; then, while more
    than ``max_share`` of all messages are outliers, the most similar of the rest join too.
    """
    out = assignments.copy()
    topics = sorted(t for t in set(out.tolist()) if t != OUTLIER)
    outliers = np.flatnonzero(out == OUTLIER)
    if not topics or not len(outliers):
        return out
    centroids = topic_centroids(out, embeddings, topics)
    best, best_sim = nearest_centroid(embeddings[outliers], centroids)
    join = joins_topic(best_sim, min_similarity, int(np.floor(max_share * len(out))))
    out[outliers[join]] = np.asarray(topics)[best[join]]
    return out


def nearest_centroid(vectors: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of each vector's most similar centroid (cosine) and that similarity."""
    sims = np.asarray(vectors, dtype=np.float32) @ np.asarray(centroids, dtype=np.float32).T
    best = sims.argmax(axis=1)
    return best, sims[np.arange(len(best)), best]


def joins_topic(best_sim: np.ndarray, min_similarity: float, allowed_left: int) -> np.ndarray:
    """Which messages join their nearest topic: all at least ``min_similarity`` from it, then the most
    similar of the rest until at most ``allowed_left`` stay without a topic."""
    join = best_sim >= min_similarity
    left = int((~join).sum())
    if left > allowed_left:
        rest = np.flatnonzero(~join)
        join[rest[np.argsort(-best_sim[rest], kind="stable")][: left - allowed_left]] = True
    return join


def topic_centroids(assignments: np.ndarray, embeddings: np.ndarray, topics: Sequence[int]) -> np.ndarray:
    """L2-normalised mean embedding of each topic, in the order of ``topics``."""
    cents = np.stack([embeddings[assignments == t].mean(axis=0) for t in topics]).astype(np.float32)
    cents /= np.linalg.norm(cents, axis=1, keepdims=True) + 1e-12
    return cents


def fit_topics(
    texts: Sequence[str], embeddings: np.ndarray, settings: Settings, progress: StageProgress | None = None,
    strata: np.ndarray | None = None, executor: Executor | None = None, keys: np.ndarray | None = None,
) -> TopicResult:
    """Fit BERTopic on precomputed embeddings; the same input and seed give the same topics.

    Above ``settings.fit_sample_size`` messages the topics are found on a sample (stratified by
    ``strata``, e.g. the month of each message, so every period is represented; one copy of each
    text when ``keys``, e.g. text hashes, say which messages repeat another) and the other
    messages join their nearest topic in chunks, as new messages do in an extended run: memory
    and time of the fit stay bounded however large the run. With an ``executor``, the fit runs as
    one task (on one worker) and the assignment in chunks across its workers.

    Raises:
        NotEnoughMessagesError: fewer than ``settings.min_messages`` messages.
    """
    n = len(texts)
    if n < settings.min_messages:
        raise NotEnoughMessagesError(
            f"Not enough messages to find topics: {n} after cleaning, at least {settings.min_messages} are needed.",
            fix="Add more feedback to the file (a few hundred messages give useful topics).",
        )
    executor = executor or LocalExecutor()
    remote = executor.name != "local"
    if n <= settings.fit_sample_size:
        return executor.run(_fit_all, texts, embeddings, settings, None if remote else progress)
    # Copies of one text add no information to the fit and make false dense spots: fit on distinct texts.
    candidates = np.arange(n) if keys is None else np.sort(pd.Series(keys).drop_duplicates().index.to_numpy())
    rows = candidates[fit_sample(len(candidates), settings.fit_sample_size, settings.seed,
                                 None if strata is None else np.asarray(strata, dtype=object)[candidates])]
    if progress:
        progress(f"finding topics on a sample of {len(rows):,} of {n:,} messages")
    sample = executor.run(_fit_all, [texts[i] for i in rows], embeddings[rows], settings, None if remote else progress)
    rest = np.setdiff1d(np.arange(n), rows, assume_unique=True)
    copies = copied_from = np.empty(0, dtype=np.int64)
    if keys is not None:  # a copy of a fitted text goes where that text went (set below), not through the search
        fitted = pd.Series(rows, index=pd.Index(np.asarray(keys, dtype=object)[rows]))
        source = fitted.index.get_indexer(np.asarray(keys, dtype=object)[rest])
        copies, copied_from = rest[source >= 0], fitted.to_numpy()[source[source >= 0]]
        rest = rest[source < 0]
    if progress:
        progress(f"assigning the other {len(rest):,} messages to their nearest topic")
    assignments = np.full(n, OUTLIER, dtype=np.int64)
    assignments[rows] = sample.assignments
    coords = np.empty((n, 2), dtype=np.float32)
    coords[rows] = sample.coords
    topic_ids = np.array(sorted(t for t in set(sample.assignments.tolist()) if t != OUTLIER), dtype=np.int64)
    centroids = (topic_centroids(sample.assignments, embeddings[rows], topic_ids) if len(topic_ids)
                 else np.empty((0, embeddings.shape[1]), dtype=np.float32))
    anchors = np.sort(np.random.default_rng(settings.seed).permutation(rows)[:MAP_ANCHORS])  # a spread of known positions
    chunks = [rest[start:start + settings.assign_chunk_size] for start in range(0, len(rest), settings.assign_chunk_size)]
    # One chunk of similarities at a time, here or on the workers; made as they are needed, so that (run
    # here) no more than one chunk's copy of the vectors exists besides the embeddings themselves.
    anchor_vectors, anchor_coords = embeddings[anchors], coords[anchors]
    tasks = (_AssignTask(embeddings[c], centroids, topic_ids, anchor_vectors, anchor_coords,
                         settings.outlier_min_similarity, settings.max_outlier_share) for c in chunks)
    for chunk, (chunk_topics, chunk_coords) in zip(chunks, executor.map(_assign_chunk, tasks), strict=True):
        assignments[chunk] = chunk_topics
        coords[chunk] = chunk_coords
    assignments[copies] = assignments[copied_from]
    coords[copies] = coords[copied_from]
    topics, keywords = _topic_tables(sample.model, assignments, embeddings, settings)
    return TopicResult(assignments, topics, keywords, coords, sample.outlier_share_before)


@dataclass
class _AssignTask:
    vectors: np.ndarray
    centroids: np.ndarray
    topic_ids: np.ndarray
    anchor_vectors: np.ndarray
    anchor_coords: np.ndarray
    min_similarity: float
    max_outlier_share: float


def _assign_chunk(task: _AssignTask) -> tuple[np.ndarray, np.ndarray]:
    """Nearest topic (or none, within the outlier bound) and map position of each message of a chunk."""
    from pipelines.incremental import place_on_map

    topics = np.full(len(task.vectors), OUTLIER, dtype=np.int64)
    if len(task.topic_ids):
        best, best_sim = nearest_centroid(task.vectors, task.centroids)
        join = joins_topic(best_sim, task.min_similarity, int(np.floor(task.max_outlier_share * len(task.vectors))))
        topics[join] = task.topic_ids[best[join]]
    return topics, place_on_map(task.vectors, task.anchor_vectors, task.anchor_coords)


MAP_ANCHORS = 5_000
"""Messages of the sample whose map positions place the others: enough for a faithful map, few enough to be quick."""


def fit_sample(n: int, size: int, seed: int, strata: np.ndarray | None = None) -> np.ndarray:
    """``size`` row numbers out of ``n`` (all when ``n <= size``), seeded, in each stratum in proportion
    to its size, in ascending order (so the fit reads them in file order)."""
    if n <= size:
        return np.arange(n, dtype=np.int64)
    if strata is None:
        return np.sort(np.random.default_rng(seed).permutation(n)[:size]).astype(np.int64)
    groups = pd.Series(np.arange(n)).groupby(pd.Series(strata).fillna("(none)").astype(str).to_numpy(), sort=True)
    return np.sort(groups.sample(frac=size / n, random_state=seed).to_numpy()).astype(np.int64)


@dataclass
class _Fit(TopicResult):
    model: object = None


def _fit_all(texts: Sequence[str], embeddings: np.ndarray, settings: Settings,
             progress: StageProgress | None = None) -> _Fit:
    from bertopic import BERTopic
    from bertopic.cluster import BaseCluster
    from bertopic.dimensionality import BaseDimensionalityReduction
    from bertopic.vectorizers import ClassTfidfTransformer

    n = len(texts)
    random.seed(settings.seed)
    np.random.seed(settings.seed)
    if progress:
        progress("reducing dimensions")
    reduced = reduce_dimensions(embeddings, settings)
    if progress:
        progress("clustering")
    found = cluster(reduced, settings)
    before = float(np.mean(found == OUTLIER))
    if progress:
        progress("reducing outliers and naming topics")
    assignments = reduce_outliers(found, embeddings, settings.max_outlier_share, settings.outlier_min_similarity)
    # BERTopic's own pipeline with the reduction and clustering above plugged in (its documented
    # "manual" mode): it ranks topics by size and builds the c-TF-IDF keywords. language="multilingual":
    # with "english" (the default) BERTopic 0.17 deletes every character but [A-Za-z0-9 ] before our
    # vectorizer sees the text ("Überweisung" became "berweisung"); besides, the language only picks an
    # embedding model, and none is picked here: the embeddings are passed in.
    model = BERTopic(language="multilingual", umap_model=BaseDimensionalityReduction(), hdbscan_model=BaseCluster(),
                     vectorizer_model=_vectorizer(n), ctfidf_model=ClassTfidfTransformer(reduce_frequent_words=True),
                     top_n_words=settings.keywords_per_topic, calculate_probabilities=False, verbose=False)
    if (assignments != OUTLIER).any():
        try:
            ranked, _ = model.fit_transform(list(texts), embeddings=reduced, y=assignments)
        except ValueError as err:  # scikit-learn's vectorizer: not one word left to name a topic with
            if "empty vocabulary" not in str(err):
                raise
            raise NotEnoughMessagesError(
                f"No words to name topics with: the {n:,} messages hold only very common words, numbers "
                "or symbols.", fix="Check that --text names the column that holds the messages.") from None
        assignments = np.asarray(ranked, dtype=np.int64)
    coords = _map_coords(reduced, settings.seed)
    topics, keywords = _topic_tables(model, assignments, embeddings, settings)
    return _Fit(assignments, topics, keywords, coords, before, model)


UMAP_EXACT_BELOW = 4096
"""UMAP finds the neighbours of fewer messages than this exactly itself, and of more by NN-descent."""


def reduce_dimensions(embeddings: np.ndarray, settings: Settings) -> np.ndarray:
    """Seeded UMAP to a few dimensions, where density-based clustering works well.

    From 4,096 messages (where UMAP itself would switch to approximate NN-descent) up to
    ``settings.exact_neighbors_max``, the neighbours are found exactly here (:func:`nearest_neighbours`):
    NN-descent's numba code compiles afresh in every process (~30 s on 2 cores, most of a sample run's
    topic stage, and it cannot be cached), while the exact search takes 1-2 s at 5,000 messages and
    ~20 s at 50,000.
    """
    from umap import UMAP

    n = embeddings.shape[0]
    k = min(settings.umap_neighbors, n - 1)
    known = {}
    if UMAP_EXACT_BELOW <= n <= settings.exact_neighbors_max:
        known["precomputed_knn"] = nearest_neighbours(embeddings, k)
    model = UMAP(n_neighbors=k, n_components=settings.umap_components, min_dist=0.0, metric="cosine",
                 random_state=settings.seed, low_memory=True, n_jobs=1, **known)
    return model.fit_transform(embeddings).astype(np.float32)


def nearest_neighbours(vectors: np.ndarray, k: int, block: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Each vector's ``k`` nearest by cosine, itself first, as UMAP's ``precomputed_knn`` takes them.

    Exact: the cosine similarities of a block of rows to all rows (one matrix product), their top ``k``;
    memory stays at ``block`` rows of similarities. Equal similarities are ordered by row number.

    Returns:
        (indices int64, cosine distances float32), each ``(n, k)``, nearest first.
    """
    import torch

    x = np.asarray(vectors, dtype=np.float32)
    x = torch.from_numpy(x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12))
    n = x.shape[0]
    indices = np.empty((n, k), dtype=np.int64)
    distances = np.empty((n, k), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, n, block):
            similar = x[start : start + block] @ x.T
            rows = torch.arange(similar.shape[0])
            similar[rows, rows + start] = float("inf")  # each row its own nearest, also among exact copies
            values, found = torch.topk(similar, k, dim=1)
            values, found = values.numpy(), found.numpy()
            order = np.lexsort((found, -values))  # by similarity, then row number: the same order every time
            indices[start : start + block] = np.take_along_axis(found, order, axis=1)
            distances[start : start + block] = np.clip(1 - np.take_along_axis(values, order, axis=1), 0, 2)
    return indices, distances


def cluster(reduced: np.ndarray, settings: Settings) -> np.ndarray:
    """HDBSCAN clusters (``-1`` = outlier).

    HDBSCAN's "excess of mass" selection sometimes folds nearly everything into one or two giant
    clusters (seen on CFPB complaints: 2 topics for 5,000 messages). When the largest cluster holds
    more than ``settings.max_topic_share`` of the messages, the finer "leaf" selection is used.
    On a small file (tens of messages) it may find no cluster at all, depending on float noise in
    the vectors; the minimum topic size is then halved until it finds some (down to 2).
    """
    from hdbscan import HDBSCAN

    n = reduced.shape[0]
    min_size = min(settings.effective_min_topic_size(n), max(2, n // 3))
    while True:
        labels = None
        for method in ("eom", "leaf"):
            labels = HDBSCAN(min_cluster_size=min_size, min_samples=min(settings.cluster_min_samples, min_size),
                             metric="euclidean", cluster_selection_method=method).fit_predict(reduced)
            sizes = np.bincount(labels[labels != OUTLIER]) if (labels != OUTLIER).any() else np.array([n])
            if sizes.max() / n <= settings.max_topic_share:
                break
        if (labels != OUTLIER).any() or min_size <= 2:
            return labels.astype(np.int64)
        min_size = max(2, min_size // 2)


def _vectorizer(n: int) -> CountVectorizer:
    return CountVectorizer(stop_words=FEEDBACK_STOP_WORDS, token_pattern=_TOKEN, ngram_range=(1, 2),
                           min_df=2 if n >= 100 else 1, preprocessor=preprocess_for_keywords)


def _map_coords(vectors: np.ndarray, seed: int) -> np.ndarray:
    """Project to 2-D with PCA: cheap, deterministic, and keeps UMAP's cluster layout readable."""
    from sklearn.decomposition import PCA

    if vectors.shape[0] < 3:
        return np.zeros((vectors.shape[0], 2), dtype=np.float32)
    return PCA(n_components=2, random_state=seed).fit_transform(vectors).astype(np.float32)


def _topic_tables(model, assignments: np.ndarray, embeddings: np.ndarray, settings: Settings) -> tuple[pd.DataFrame, pd.DataFrame]:
    topic_ids = sorted(t for t in set(assignments.tolist()) if t != OUTLIER)
    n = len(assignments)
    rows, kw_rows = [], []
    centroids = topic_centroids(assignments, embeddings, topic_ids) if topic_ids else np.empty((0, embeddings.shape[1]))
    for k, t in enumerate(topic_ids):
        words = [(w, float(s)) for w, s in (model.get_topic(t) or []) if w]
        members = np.flatnonzero(assignments == t)
        sims = embeddings[members] @ centroids[k]
        reps = members[np.argsort(-sims, kind="stable")[: settings.representatives_per_topic]]
        rows.append({
            "topic": int(t),
            "label": make_label([w for w, _ in words], settings.label_keywords),
            "keywords": [w for w, _ in words],
            "size": int(len(members)),
            "share": len(members) / n,
            "representative_rows": reps.astype(np.int64).tolist(),
            "centroid": centroids[k].tolist(),
        })
        kw_rows += [{"topic": int(t), "rank": r + 1, "word": w, "weight": s} for r, (w, s) in enumerate(words)]
    topics = pd.DataFrame(rows, columns=["topic", "label", "keywords", "size", "share", "representative_rows", "centroid"])
    topics = topics.sort_values(["size", "topic"], ascending=[False, True]).reset_index(drop=True)
    keywords = pd.DataFrame(kw_rows, columns=["topic", "rank", "word", "weight"])
    return topics, keywords

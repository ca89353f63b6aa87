"""Incremental runs: new messages join the existing topics without a re-fit.

When a file is analysed again with more messages (the usual weekly export that grows), re-fitting
the topic model would renumber and reshape every topic. Instead, when the previous run covers the
file's earlier messages, their topics, map positions, sentiment and expectation tags are kept as
they are; only the new messages are embedded (the cache does that), scored, and assigned to the
nearest existing topic centroid. A re-fit happens on request (``--refit``) or when the data no
longer fits: too many new messages, or too many that are far from every topic.

Pure functions; :func:`pipelines.analyse.analyse_file` does the I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipelines.settings import Settings
from pipelines.topics import OUTLIER, joins_topic, nearest_centroid

# Settings that shape topics: a run made with other values cannot be extended, only re-fitted.
TOPIC_SETTINGS = ("encoder", "seed", "min_topic_size", "cluster_min_samples", "max_topic_share", "umap_components",
                  "umap_neighbors", "max_outlier_share", "outlier_min_similarity", "keywords_per_topic",
                  "label_keywords", "representatives_per_topic", "sentiment", "neutral_band", "expectations",
                  "taxonomy")
MAP_NEIGHBOURS = 10


@dataclass(frozen=True)
class UpdatePlan:
    """Whether a run extends the previous one, and which rows are old and new."""

    incremental: bool
    reason: str
    known: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    """Rows of the new messages that the previous run holds."""
    previous_rows: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    """Their rows in the previous run (aligned with ``known``)."""
    new: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    """Rows of the messages the previous run does not hold (or holds with another text)."""

    def describe(self) -> dict:
        """For the run manifest."""
        return {"mode": "incremental" if self.incremental else "refit", "reason": self.reason,
                "kept": int(len(self.known)), "new": int(len(self.new))}


def plan_update(messages: pd.DataFrame, settings: Settings, previous_messages: pd.DataFrame | None,
                previous_manifest: dict | None, previous_has_embeddings: bool, refit: str = "auto") -> UpdatePlan:
    """Decide between extending the previous run and re-fitting, and say why.

    Args:
        messages: the cleaned messages of this analysis (``message_id`` identifies a message across runs; one
            whose ``text_hash`` differs from the earlier run's, an edited message, counts as new).
        settings: this analysis's settings.
        previous_messages, previous_manifest: the store's latest run (``None`` when there is none).
        previous_has_embeddings: whether that run kept its embeddings (needed to place new messages on the map).
        refit: ``auto`` (extend when possible), ``always`` or ``never`` (extend whenever the run allows it).
    """
    if refit == "always":
        return UpdatePlan(False, "a re-fit was requested")
    if previous_messages is None or previous_manifest is None:
        return UpdatePlan(False, "there is no earlier run to extend")
    if not previous_has_embeddings or previous_messages.empty:
        return UpdatePlan(False, "the earlier run has no stored embeddings")
    before = previous_manifest.get("settings", {})
    now = settings.to_dict()
    changed = [k for k in TOPIC_SETTINGS if k in before and before.get(k) != now.get(k)]
    if before.get("redact_pii", False) != now.get("redact_pii", False):  # else old topics keep unredacted keywords
        changed.append("redact_pii")
    if changed:
        return UpdatePlan(False, f"settings changed since the earlier run ({', '.join(changed)})")
    old_index = pd.Index(previous_messages["message_id"].astype(str))
    if old_index.has_duplicates:
        return UpdatePlan(False, "the earlier run has repeated message ids")
    where = old_index.get_indexer(messages["message_id"].astype(str))
    if "text_hash" in messages and "text_hash" in previous_messages:
        # A message whose text changed since (an edited review) is read again, as a new one.
        old_hashes = previous_messages["text_hash"].astype(str).to_numpy()
        same = old_hashes[np.maximum(where, 0)] == messages["text_hash"].astype(str).to_numpy()
        where = np.where(same, where, -1)
    known = np.flatnonzero(where >= 0)
    kept_share = len(known) / len(old_index)
    if kept_share < settings.extend_min_kept_share and refit != "never":
        same_texts = previous_messages["text_hash"].isin(set(messages["text_hash"])).mean() \
            if "text_hash" in messages and "text_hash" in previous_messages else 0.0
        add = ("to add a file's messages to the earlier ones, use --add, or tick \"Add these messages to the latest "
               "run's\" in the upload form")
        part = len(messages) and len(known) >= 0.9 * len(messages)
        why = (f"{same_texts:.0%} of its texts are in this file under other ids: was another id column used?"
               if same_texts >= settings.extend_min_kept_share else
               f"the file is a part of that data, so its topics are found afresh for that part alone; {add}"
               if part else f"different data, not more of the same; {add}")
        return UpdatePlan(False, f"only {kept_share:.0%} of the earlier run's messages are in this file ({why})")
    new = np.flatnonzero(where < 0)
    if len(new) > settings.extend_max_new_share * len(old_index) and refit != "never":
        return UpdatePlan(False, f"{len(new):,} new messages are more than {settings.extend_max_new_share:.0%} "
                                 "of the earlier run: topics are found afresh")
    return UpdatePlan(True, f"{len(new):,} new messages joined the earlier run's topics",
                      known, where[known].astype(np.int64), new)


def assign_to_topics(vectors: np.ndarray, centroids: np.ndarray, topic_ids: np.ndarray,
                     min_similarity: float, max_outlier_share: float) -> tuple[np.ndarray, np.ndarray]:
    """Nearest topic for each vector, as the fit's outlier reduction does it.

    Messages at least ``min_similarity`` (cosine) from a centroid join it; of the rest, the most
    similar join too until at most ``max_outlier_share`` of them are left without a topic.

    Returns:
        Topic per vector (``-1`` = none) and the similarity to the nearest centroid.
    """
    if len(vectors) == 0 or len(topic_ids) == 0:
        return np.full(len(vectors), OUTLIER, dtype=np.int64), np.zeros(len(vectors), dtype=np.float32)
    best, best_sim = nearest_centroid(vectors, centroids)
    join = joins_topic(best_sim, min_similarity, int(np.floor(max_outlier_share * len(vectors))))
    out = np.where(join, np.asarray(topic_ids, dtype=np.int64)[best], OUTLIER)
    return out.astype(np.int64), best_sim.astype(np.float32)


def place_on_map(vectors: np.ndarray, known_vectors: np.ndarray, known_coords: np.ndarray,
                 neighbours: int = MAP_NEIGHBOURS, topics: np.ndarray | None = None,
                 known_topics: np.ndarray | None = None) -> np.ndarray:
    """Map positions for new messages: the mean position of their most similar known messages.

    With ``topics`` (of the new messages) and ``known_topics``, only known messages of the same topic
    are looked at: a new message's dot lands in its own topic's cloud, and each message is compared
    with a few thousand others rather than every message of a large run. A topic without known
    messages looks among all of them.
    """
    if len(vectors) == 0:
        return np.empty((0, 2), dtype=np.float32)
    if topics is None or known_topics is None:
        return _mean_of_nearest(vectors, known_vectors, known_coords, neighbours)
    out = np.empty((len(vectors), 2), dtype=np.float32)
    for topic in np.unique(topics):
        rows = np.flatnonzero(topics == topic)
        among = np.flatnonzero(known_topics == topic)
        if len(among) == 0:
            out[rows] = _mean_of_nearest(vectors[rows], known_vectors, known_coords, neighbours)
        else:
            out[rows] = _mean_of_nearest(vectors[rows], known_vectors[among], known_coords[among], neighbours)
    return out


def _mean_of_nearest(vectors: np.ndarray, known_vectors: np.ndarray, known_coords: np.ndarray,
                     neighbours: int) -> np.ndarray:
    k = min(neighbours, len(known_vectors))
    out = np.empty((len(vectors), 2), dtype=np.float32)
    known = np.asarray(known_vectors, dtype=np.float32)
    for start in range(0, len(vectors), 2048):  # bounded memory: one block of similarities at a time
        block = np.asarray(vectors[start:start + 2048], dtype=np.float32) @ known.T
        nearest = np.argpartition(-block, k - 1, axis=1)[:, :k]
        out[start:start + len(block)] = known_coords[nearest].mean(axis=1)
    return out


def check_added_columns(run_columns: dict, text: str, date: str | None, id_: str | None, metadata: Sequence[str],
                        file_name: str, run_id: str) -> list[str]:
    """Whether a file's columns fit the run it is added to (``--add``), before anything slow is done.

    ``run_columns`` is the run's manifest ``columns`` (its text, date, id and metadata columns); the rest are the
    file's, as read. Returns notes on what differs (another text column, metadata the file lacks or adds).

    Raises:
        InputError: the run's messages have ids and the file's have none: a message the run already holds would
            then be added again under an id made from its text, and counted twice.
    """
    from pipelines.errors import InputError

    def quoted(names: Sequence[str]) -> str:
        return ", ".join(f'"{n}"' for n in names)

    if run_columns.get("id") and not id_:
        raise InputError(
            f'{file_name}: the messages of run {run_id} have ids (column "{run_columns["id"]}"), and this file has no id '
            "column: a message the run already holds would be added again as a new one and counted twice.",
            fix=f'Map the column of this file that holds the same ids as "{run_columns["id"]}" with --id, or analyse '
                "the file on its own, without --add.")
    notes = []
    if run_columns.get("text") and run_columns["text"] != text:
        notes.append(f'{file_name}: the message text is read from column "{text}"; run {run_id}\'s came from '
                     f'"{run_columns["text"]}". Check that both hold the messages.')
    if run_columns.get("date") and not date:
        notes.append(f"{file_name} has no date column, so its messages are undated: they count in totals, not in "
                     f"trends (run {run_id}'s dates came from \"{run_columns['date']}\").")
    earlier = list(run_columns.get("metadata") or [])
    missing = [c for c in earlier if c not in metadata]
    extra = [c for c in metadata if c not in earlier]
    if missing:
        notes.append(f"{file_name} has no {'column' if len(missing) == 1 else 'columns'} {quoted(missing)}, which the "
                     "run's messages have: its messages have none there.")
    if extra and earlier:
        notes.append(f"{file_name} adds {quoted(extra)}, which the run's earlier messages do not have: "
                     "a filter on it shows only this file's messages.")
    return notes


def add_to_earlier(earlier: pd.DataFrame, new: pd.DataFrame, metadata: list[str]) -> tuple[pd.DataFrame, int]:
    """The earlier run's messages and then a file's (``--add``: a weekly export holds only its own week).

    Args:
        earlier: the latest run's messages; their cleaned columns are kept (id, text, hash, date, source row and
            ``metadata``), and what the run added (topics, scores) is kept or worked out again by :func:`plan_update`.
        new: the cleaned messages of the file being added.
        metadata: the earlier run's metadata columns; the file's own follow them.

    Returns:
        The messages, and how many earlier ones the file replaced: a message whose id is in both is the file's
        (a newer version, as within one file; with the same text it keeps its topic and scores).
    """
    columns = [c for c in ("message_id", "text", "text_hash", "date", "source_row", *metadata) if c in earlier]
    replaced = earlier["message_id"].astype(str).isin(set(new["message_id"].astype(str)))
    out = pd.concat([earlier.loc[~replaced.to_numpy(), columns], new], ignore_index=True)
    return out[[*columns, *(c for c in new.columns if c not in columns)]], int(replaced.sum())

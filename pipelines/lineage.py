"""Topic lineage: stable topic keys that carry analysts' work from one run to the next.

BERTopic numbers topics by size, so "topic 3" means something else after every fit. Each topic
therefore gets a key of our own. When a new run is made, its topics are matched one-to-one to the
previous run's by two signals: how many of a new topic's messages the old topic held (message
overlap, on message ids present in both runs) and how close their centroids are (cosine of mean
embeddings). Matched topics inherit the old key, and with it every label, merge, move and pin
recorded against that key; the others get fresh keys and are flagged ``new``; old keys left
without a partner are reported ``gone``. Pure functions over arrays and frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipelines.metrics import count_of
from pipelines.topics import OUTLIER, topic_centroids


@dataclass(frozen=True)
class LineageSettings:
    """When two topics of consecutive runs count as the same topic."""

    # Weight of message overlap against centroid similarity in the match score (the rest).
    overlap_weight: float = 0.5
    # A pair scoring below this is not a match: the new topic is "new", the old one "gone".
    # 0.55 is met by a topic that kept most of its messages, or by one with a near-identical centroid
    # (cosine ≥ 0.9 with a little overlap); unrelated topics of one run score about 0.3-0.45.
    min_score: float = 0.55
    # ... and the new topic must hold at least this share of the old topic's messages (those in both runs):
    # when a re-fit splits a topic, no part inherits its label and edits silently; the analyst is told.
    min_kept_share: float = 0.5


@dataclass
class TopicMatch:
    """The keys of a new run's topics and how they were found."""

    keys: dict[int, str]
    """New topic id → key (inherited or fresh)."""
    status: dict[int, str]
    """New topic id → ``matched`` or ``new``."""
    confidence: dict[int, float]
    """New topic id → match score 0..1 (0 for new topics)."""
    gone: list[str] = field(default_factory=list)
    """Keys of the previous run with no partner in the new one."""
    previous_run: str | None = None

    def summary(self) -> dict:
        """For the run manifest."""
        matched = [t for t, s in self.status.items() if s == "matched"]
        return {"previous_run": self.previous_run, "matched": len(matched),
                "new": len(self.status) - len(matched), "gone": self.gone,
                "mean_confidence": round(float(np.mean([self.confidence[t] for t in matched])), 3) if matched else None}


def fresh_key(run_id: str, topic: int) -> str:
    """The key a topic gets when it has no ancestor: unique across runs, readable in the audit log."""
    return f"{run_id}.{topic}"


def keys_of(topics: pd.DataFrame, run_id: str) -> dict[int, str]:
    """A run's topic keys (runs made before keys existed get their fresh keys)."""
    if "key" in topics:
        return {int(t): str(k) for t, k in zip(topics["topic"], topics["key"], strict=True)}
    return {int(t): fresh_key(run_id, int(t)) for t in topics["topic"]}


def match_topics(new_ids: np.ndarray, new_assignments: np.ndarray, new_embeddings: np.ndarray, new_run_id: str,
                 old_ids: np.ndarray | None = None, old_assignments: np.ndarray | None = None,
                 old_embeddings: np.ndarray | None = None, old_keys: dict[int, str] | None = None,
                 previous_run: str | None = None, settings: LineageSettings = LineageSettings()) -> TopicMatch:
    """Give every topic of a new run a key, inheriting the previous run's keys where topics match.

    Args:
        new_ids, old_ids: message ids of each run (the same message has the same id in both runs).
        new_assignments, old_assignments: topic per message (``-1`` = no topic).
        new_embeddings, old_embeddings: unit message embeddings (``old_embeddings`` may be ``None``:
            matching then uses message overlap only).
        new_run_id: the new run's id (for fresh keys).
        old_keys: the previous run's topic id → key.
        previous_run: the previous run's id (recorded).
        settings: match thresholds.

    Returns:
        Keys, status and confidence per new topic, and the previous keys that are gone.
    """
    new_topics = sorted(int(t) for t in np.unique(new_assignments) if t != OUTLIER)
    if old_assignments is None or not old_keys:
        return TopicMatch({t: fresh_key(new_run_id, t) for t in new_topics}, dict.fromkeys(new_topics, "new"),
                          dict.fromkeys(new_topics, 0.0), [], previous_run)
    old_topics = sorted(t for t in old_keys if t != OUTLIER)
    score, kept = _overlap(new_ids, new_assignments, new_topics, old_ids, old_assignments, old_topics)
    if old_embeddings is not None and len(new_topics) and len(old_topics):
        cos = topic_centroids(new_assignments, new_embeddings, new_topics) @ \
            topic_centroids(old_assignments, np.asarray(old_embeddings, dtype=np.float32), old_topics).T
        score = settings.overlap_weight * score + (1 - settings.overlap_weight) * np.clip(cos, 0, 1)
    keys, status, confidence = {}, {}, {}
    taken: set[int] = set()
    if score.size:
        from scipy.optimize import linear_sum_assignment

        rows, cols = linear_sum_assignment(-score)
        for r, c in zip(rows, cols, strict=True):
            if score[r, c] >= settings.min_score and (np.isnan(kept[r, c]) or kept[r, c] >= settings.min_kept_share):
                t, o = new_topics[r], old_topics[c]
                keys[t], status[t], confidence[t] = old_keys[o], "matched", round(float(score[r, c]), 3)
                taken.add(o)
    for t in new_topics:
        if t not in keys:
            keys[t], status[t], confidence[t] = fresh_key(new_run_id, t), "new", 0.0
    gone = [old_keys[o] for o in old_topics if o not in taken]
    return TopicMatch(keys, status, confidence, gone, previous_run)


def _overlap(new_ids: np.ndarray, new_assignments: np.ndarray, new_topics: list[int], old_ids: np.ndarray,
             old_assignments: np.ndarray, old_topics: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """For each (new, old) pair of topics, over the messages both runs hold: the share they have in common
    (Jaccard), and the share of the old topic's messages in the new one (NaN: the old topic has none of them)."""
    old = pd.Series(np.asarray(old_assignments), index=pd.Index(np.asarray(old_ids).astype(str)))
    old = old[~old.index.duplicated()]
    new = pd.Series(np.asarray(new_assignments), index=pd.Index(np.asarray(new_ids).astype(str)))
    new = new[~new.index.duplicated()]
    both = new.index.intersection(old.index)
    out = np.zeros((len(new_topics), len(old_topics)))
    kept = np.full_like(out, np.nan)
    if len(both) == 0 or not new_topics or not old_topics:
        return out, kept
    pairs = pd.crosstab(new[both].to_numpy(), old[both].to_numpy())
    new_sizes, old_sizes = new[both].value_counts(), old[both].value_counts()
    for j, o in enumerate(old_topics):
        if old_sizes.get(o, 0):
            kept[:, j] = 0.0
    for i, t in enumerate(new_topics):
        if t not in pairs.index:
            continue
        for j, o in enumerate(old_topics):
            if o in pairs.columns:
                inter = pairs.at[t, o]
                out[i, j] = inter / (new_sizes.get(t, 0) + old_sizes.get(o, 0) - inter) if inter else 0.0
                kept[i, j] = inter / old_sizes.get(o, 0) if old_sizes.get(o, 0) else np.nan
    return out, kept


def changes_in_words(manifest: dict) -> str | None:
    """What a re-fit did to the earlier run's topics, e.g. 'Compared with run 20261206-1200-ab12: 27 topics carried
    on (with their names and edits), 6 new, 4 gone'; ``None`` for a first run or one that extended the earlier run
    (its topics are the earlier ones)."""
    lineage, update = manifest.get("lineage") or {}, manifest.get("update") or {}
    if not lineage.get("previous_run") or update.get("mode") != "refit":
        return None
    return (f"Compared with run {lineage['previous_run']}: {count_of(int(lineage.get('matched', 0)), 'topic')} carried "
            f"on (with their names and edits), {int(lineage.get('new', 0)):,} new, {len(lineage.get('gone') or []):,} gone")


def new_since_last_run(topics: pd.DataFrame, manifest: dict, run_id: str) -> set[int]:
    """The topics a re-fit found that the earlier run had no partner for (empty for a first or extended run).

    ``topics`` may be curated: a split part is new too, but the analyst's own, not the data's, so only the run's
    fresh keys count.
    """
    if changes_in_words(manifest) is None or "key_status" not in topics or "key" not in topics:
        return set()
    fresh = (topics["key_status"] == "new") & topics["key"].astype(str).str.startswith(f"{run_id}.")
    return {int(t) for t in topics.loc[fresh, "topic"]}

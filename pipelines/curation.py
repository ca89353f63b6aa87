"""Analyst curation: rename, merge, split, move, ignore and pin, kept as an append-only event log.

Owns the curation log (SQLite in the store, one per store, shared by every run) and how its events
turn a run's machine-found topics into the company's own categories:

- Every edit is one event (who, when, what, before and after) appended in a transaction; nothing is
  ever updated or deleted, an undo is itself an event. The current state is a pure fold over the
  events (:func:`derive_state`), so a crash mid-edit leaves either the whole event or none.
- Events name topics by their stable keys (:mod:`pipelines.lineage`) and messages by their ids, so
  they apply to every later run whose topics inherited those keys. Edits whose topics are gone from
  a run are listed as unresolved (:attr:`CuratedRun.unresolved`), never silently dropped.
- :func:`apply_curation` is the one place curated labels and memberships are computed; the
  dashboard and snapshots both read runs through :func:`load_curated_run`.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.charts import count_of
from pipelines.errors import FeedbackLensError
from pipelines.lineage import keys_of
from pipelines.metrics import NO_TOPIC_LABEL, on_the_clock
from pipelines.sqlite_files import connect_wal
from pipelines.store import Run, load_run, load_run_array, message_preview
from pipelines.topics import OUTLIER

KINDS = ("rename", "merge", "split", "move", "ignore", "pin", "undo")
MAX_LABEL = 80
MAX_DESCRIPTION = 500
SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    user TEXT NOT NULL,
    run_id TEXT,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    before TEXT,
    after TEXT
);
"""


class CurationError(FeedbackLensError):
    """An edit that cannot be applied (empty name, merging a topic with itself, ...); nothing was changed."""


@dataclass(frozen=True)
class Event:
    """One edit in the log."""

    id: int
    at: float
    user: str
    run_id: str | None
    kind: str
    payload: dict
    before: dict | None = None
    after: dict | None = None


def log_path(store: Path) -> Path:
    """The store's curation log."""
    return Path(store) / "curation.db"


class CurationLog:
    """The append-only event log (SQLite in WAL mode: many readers, one writer at a time, waiting not failing)."""

    def __init__(self, store: Path, busy_timeout_ms: int = 15_000) -> None:
        self.path = log_path(store)
        self.busy_timeout_ms = busy_timeout_ms

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = connect_wal(self.path, self.busy_timeout_ms / 1000)
        try:
            con.execute("PRAGMA synchronous=FULL")
            con.executescript(SCHEMA)
            yield con
        finally:
            con.close()

    def append(self, kind: str, payload: dict, user: str, run_id: str | None = None,
               before: dict | None = None, after: dict | None = None) -> Event:
        """Add one event in its own transaction and return it."""
        if kind not in KINDS:
            raise ValueError(f"unknown event kind {kind!r}")
        at = time.time()
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                cur = con.execute(
                    "INSERT INTO events (at, user, run_id, kind, payload, before, after) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (at, user, run_id, kind, json.dumps(payload, sort_keys=True),
                     json.dumps(before, sort_keys=True) if before is not None else None,
                     json.dumps(after, sort_keys=True) if after is not None else None))
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return Event(int(cur.lastrowid), at, user, run_id, kind, payload, before, after)

    def events(self) -> list[Event]:
        """Every event, oldest first."""
        if not self.path.exists():
            return []
        with self._connect() as con:
            rows = con.execute("SELECT id, at, user, run_id, kind, payload, before, after FROM events ORDER BY id").fetchall()
        return [Event(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), json.loads(r[6]) if r[6] else None,
                      json.loads(r[7]) if r[7] else None) for r in rows]

    def version(self) -> int:
        """The newest event's id (0 when empty): a cheap cache key for everything derived from the log."""
        if not self.path.exists():
            return 0
        with self._connect() as con:
            return int(con.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0])


# ------------------------------------------------------------------------------------------------- state


@dataclass
class CurationState:
    """What the log adds up to (events that were undone do not count)."""

    labels: dict[str, str] = field(default_factory=dict)
    descriptions: dict[str, str] = field(default_factory=dict)
    merged_into: dict[str, str] = field(default_factory=dict)
    """Key → the key it was merged into."""
    message_topic: dict[str, str] = field(default_factory=dict)
    """Message id → key, from moves and splits (the latest edit wins)."""
    merge_members: dict[str, str] = field(default_factory=dict)
    """Message id → the key it was merged into, for the messages the merged topics held (they stay
    together in later runs, like moved messages)."""
    split_parts: dict[str, list[str]] = field(default_factory=dict)
    """Parent key → the keys of its parts, in order."""
    part_info: dict[str, dict] = field(default_factory=dict)
    """Split part key → ``{"parent", "keywords"}``."""
    ignored: set[str] = field(default_factory=set)
    pins: dict[str, list[str]] = field(default_factory=dict)
    undone: set[int] = field(default_factory=set)
    applied: list[Event] = field(default_factory=list)

    def resolve(self, key: str) -> str:
        """The key a topic ends up under after merges (merge chains are followed, cycles stop)."""
        seen = set()
        while key in self.merged_into and key not in seen:
            seen.add(key)
            key = self.merged_into[key]
        return key


def derive_state(events: Sequence[Event]) -> CurationState:
    """Fold the log into the current state (pure)."""
    undone: set[int] = set()
    for e in reversed(events):  # a later undo of an undo re-applies the edit
        if e.kind == "undo" and e.id not in undone:
            undone.add(int(e.payload["event"]))
    state = CurationState(undone=undone)
    for e in events:
        if e.kind == "undo" or e.id in undone:
            continue
        p = e.payload
        if e.kind == "rename":
            state.labels[p["key"]] = p["label"]
            state.descriptions[p["key"]] = p.get("description") or ""
        elif e.kind == "merge":
            if p.get("label"):  # the name analysts saw when merging stays, whatever later fits call the topic
                state.labels.setdefault(p["into"], p["label"])
            for key in p["keys"]:
                if key != p["into"]:
                    state.merged_into[key] = p["into"]
            for mid in p.get("message_ids", []):
                state.merge_members[str(mid)] = p["into"]
        elif e.kind == "split":
            state.split_parts[p["key"]] = [part["key"] for part in p["parts"]]
            for part in p["parts"]:
                state.labels[part["key"]] = part["label"]
                state.part_info[part["key"]] = {"parent": p["key"], "keywords": part.get("keywords", [])}
                for mid in part["message_ids"]:
                    state.message_topic[str(mid)] = part["key"]
        elif e.kind == "move":
            for mid in p["message_ids"]:
                state.message_topic[str(mid)] = p["to"]
        elif e.kind == "ignore":
            (state.ignored.add if p.get("ignored", True) else state.ignored.discard)(p["key"])
        elif e.kind == "pin":
            pins = state.pins.setdefault(p["key"], [])
            if p.get("pinned", True) and p["message_id"] not in pins:
                pins.append(p["message_id"])
            elif not p.get("pinned", True) and p["message_id"] in pins:
                pins.remove(p["message_id"])
        state.applied.append(e)
    return state


# --------------------------------------------------------------------------------------- applying to a run


@dataclass
class CuratedRun:
    """A run as analysts shaped it: the run with curated topics, and the edits that no longer apply."""

    run: Run
    unresolved: list[tuple[Event, str]]
    """Edits whose topics are not in this run, with the reason."""
    version: int


def apply_curation(run: Run, state: CurationState, version: int = 0) -> CuratedRun:
    """The run with curated labels and memberships (pure; the input run is not changed).

    ``messages["topic"]`` and ``topics["topic"]`` stay integers: topics keep the run's own number, a
    merged topic takes the number of the topic it went into, split parts get new numbers after the
    run's last, and ignored topics' messages have no topic (``-1``). ``topics`` gains ``key``,
    ``description``, ``curated`` and ``ignored``.
    """
    keys = keys_of(run.topics, run.id)
    if not state.applied:  # nothing curated (the common case): no copy of the messages
        topics = run.topics.assign(key=[keys[int(t)] for t in run.topics["topic"]], description="", curated=False,
                                   pinned=[[] for _ in range(len(run.topics))], ignored=False)
        return CuratedRun(replace(run, topics=topics), [], version)
    key_to_id = {k: t for t, k in keys.items()}
    next_id = max([*keys, OUTLIER]) + 1
    messages = run.messages.copy()
    topic_key = messages["topic"].map(lambda t: keys.get(int(t))).astype(object)
    ids = messages["message_id"].astype(str)
    moved = ids.map(state.message_topic)
    # Split parts get numbers after the run's own, in the order they were made.
    for parent, parts in state.split_parts.items():
        for part in parts:
            if part not in key_to_id and (parent in key_to_id or (moved == part).any()):
                key_to_id[part], next_id = next_id, next_id + 1
    if state.merge_members:  # a merge is the analyst's word on those messages: a new fit does not undo it
        merged = ids.map(state.merge_members)
        follow = merged.map(lambda k: isinstance(k, str) and state.resolve(k) in key_to_id).astype(bool)
        topic_key = topic_key.where(~follow, merged)
    valid_target = moved.map(lambda k: isinstance(k, str) and k in key_to_id).astype(bool)
    topic_key = topic_key.where(~valid_target, moved)
    topic_key = _follow_splits(run, topic_key, state, key_to_id)
    final_key = topic_key.map(lambda k: state.resolve(k) if isinstance(k, str) else None)
    final_key = final_key.map(lambda k: None if k is None or k in state.ignored else k)
    messages["topic"] = final_key.map(lambda k: key_to_id.get(k, OUTLIER) if k else OUTLIER).astype("int64")

    topics = _curated_topics(run, messages, keys, key_to_id, state)
    unresolved = _unresolved(state, key_to_id, set(ids))
    curated = replace(run, messages=messages, topics=topics)
    return CuratedRun(curated, unresolved, version)


def _follow_splits(run: Run, topic_key: pd.Series, state: CurationState, key_to_id: dict[str, int]) -> pd.Series:
    """Messages still under a split topic (new in a later run) join the part whose centre is nearest."""
    left = topic_key.isin(list(state.split_parts)).to_numpy()
    if not left.any():
        return topic_key
    vectors = load_run_array(run, "embeddings")
    if vectors is None:
        return topic_key
    out = topic_key.copy()
    for parent, parts in state.split_parts.items():
        rows = np.flatnonzero((topic_key == parent).to_numpy())
        present = [p for p in parts if p in key_to_id and (topic_key == p).any()]
        if not len(rows) or not present:
            continue
        centres = np.stack([np.asarray(vectors[np.flatnonzero((topic_key == p).to_numpy())], dtype=np.float32).mean(0)
                            for p in present])
        nearest = (np.asarray(vectors[rows], dtype=np.float32) @ centres.T).argmax(axis=1)
        out.iloc[rows] = [present[i] for i in nearest]
    return out


def _curated_topics(run: Run, messages: pd.DataFrame, keys: dict[int, str], key_to_id: dict[str, int],
                    state: CurationState) -> pd.DataFrame:
    base = run.topics.set_index("topic")
    id_to_key = {t: k for k, t in key_to_id.items()}
    sizes = messages["topic"].value_counts()
    sentiment = messages.groupby("topic")["sentiment"].mean() if "sentiment" in messages else pd.Series(dtype=float)
    n = max(len(messages), 1)
    merged_from: dict[str, list[str]] = {}
    for k in keys.values():
        merged_from.setdefault(state.resolve(k), []).append(k)
    rows = []
    for t in sorted(int(t) for t in sizes.index if t != OUTLIER):
        key = id_to_key[t]
        if t in base.index and keys.get(t) == key:
            own = base.loc[t]
            label, keywords = str(own["label"]), list(own["keywords"])
            reps = list(own["representative_ids"]) if "representative_ids" in own else []
            status, confidence = own.get("key_status", "new"), own.get("key_confidence", 0.0)
        else:  # a split part
            info = state.part_info.get(key, {})
            label, keywords, reps = key, list(info.get("keywords", [])), []
            status, confidence = "new", 0.0
        for other in merged_from.get(key, []):  # keywords of topics merged in, after its own
            if other != key and other in key_to_id and key_to_id[other] in base.index:
                keywords += [w for w in base.loc[key_to_id[other], "keywords"] if w not in keywords]
                reps += list(base.loc[key_to_id[other], "representative_ids"])
        members = set(messages.loc[messages["topic"] == t, "message_id"].astype(str))
        pins = [m for m in state.pins.get(key, []) if m in members]
        reps = pins + [r for r in reps if r in members and r not in pins]
        if not reps:
            reps = sorted(members)[:5]
        rows.append({"topic": t, "key": key, "label": state.labels.get(key, label),
                     "description": state.descriptions.get(key, ""), "keywords": keywords[:20],
                     "size": int(sizes[t]), "share": int(sizes[t]) / n, "representative_ids": reps[:10],
                     "mean_sentiment": float(sentiment.get(t, np.nan)),
                     "curated": key in state.labels or key in state.part_info or len(merged_from.get(key, [])) > 1,
                     "pinned": pins, "ignored": False, "key_status": status, "key_confidence": confidence})
    for key in sorted(state.ignored):
        if key in key_to_id and key_to_id[key] in base.index:
            t = key_to_id[key]
            rows.append({"topic": t, "key": key, "label": state.labels.get(key, str(base.loc[t, "label"])),
                         "description": state.descriptions.get(key, ""), "keywords": list(base.loc[t, "keywords"]),
                         "size": 0, "share": 0.0, "representative_ids": [], "mean_sentiment": np.nan,
                         "curated": True, "pinned": [], "ignored": True,
                         "key_status": base.loc[t].get("key_status", "new"), "key_confidence": 0.0})
    table = pd.DataFrame(rows)
    if table.empty:
        return run.topics.iloc[0:0].assign(key=[], description=[], curated=[], pinned=[], ignored=[])
    return table.sort_values(["ignored", "size", "topic"], ascending=[True, False, True]).reset_index(drop=True)


def _unresolved(state: CurationState, key_to_id: dict[str, int], message_ids: set[str]) -> list[tuple[Event, str]]:
    out = []
    for e in state.applied:
        p = e.payload
        if e.kind in ("rename", "ignore", "pin") and p["key"] not in key_to_id:
            out.append((e, "its topic is not in this run"))
        elif e.kind == "merge" and not any(k in key_to_id for k in p["keys"]):
            out.append((e, "none of the merged topics is in this run"))
        elif e.kind == "split" and p["key"] not in key_to_id and not any(
                m in message_ids for part in p["parts"] for m in part["message_ids"]):
            out.append((e, "the split topic and its messages are not in this run"))
        elif e.kind == "move" and not any(str(m) in message_ids for m in p["message_ids"]):
            out.append((e, "none of the moved messages is in this run"))
        elif e.kind == "move" and p["to"] not in key_to_id:  # e.g. a part of a split since undone
            out.append((e, "the topic it moves messages to is not in this run"))
    return out


def load_curated_run(store: Path, run_id: str | None = None, texts: bool = True) -> CuratedRun:
    """A run (the latest by default) with the store's curation applied: what every page and snapshot shows.

    ``texts=False`` leaves the messages' texts on disk (see :func:`pipelines.store.load_run`). Dates are clock
    times of the run's time zone (:func:`pipelines.metrics.on_the_clock`), so the figures count its days.
    """
    run = load_run(store, run_id, texts=texts)
    if "date" in run.messages and run.time_zone != "UTC":
        run = replace(run, messages=run.messages.assign(date=on_the_clock(run.messages["date"], run.time_zone)))
    log = CurationLog(store)
    events = log.events()
    return apply_curation(run, derive_state(events), events[-1].id if events else 0)


@dataclass(frozen=True)
class TopicTrail:
    """Where the messages of a topic that left the run are in this run: what a renamed topic became after a re-fit
    spread or renumbered it, so that its name can be given again where its messages went."""

    messages: int
    """The topic's messages (as they were when the edit was made) that this run holds."""
    parts: list[tuple[str, str, int]]
    """``(key, label, messages)`` of this run's topics holding them, most first."""
    without_topic: int
    """Of them, the messages that have no topic in this run."""


def where_topic_went(earlier: Run, key: str, current: Run) -> TopicTrail | None:
    """The topics of ``current`` (curated) that hold the messages ``earlier`` (curated, the run an edit was made on)
    had in topic ``key``; ``None`` when ``key`` is not a topic of ``earlier``."""
    keys = dict(zip(earlier.topics["key"], earlier.topics["topic"], strict=True)) if "key" in earlier.topics else {}
    if key not in keys:
        return None
    members = earlier.messages.loc[earlier.messages["topic"] == keys[key], "message_id"].astype(str)
    now = current.messages.loc[current.messages["message_id"].astype(str).isin(set(members)), "topic"]
    counts = now.value_counts()
    names = current.topics.set_index("topic")
    parts = [(str(names.at[t, "key"]), str(names.at[t, "label"]), int(n)) for t, n in counts.items()
             if t != OUTLIER and t in names.index]
    parts.sort(key=lambda p: (-p[2], p[1]))
    return TopicTrail(int(len(now)), parts, int(counts.get(OUTLIER, 0)))


def trail_in_words(trail: TopicTrail, shown: int = 3) -> str:
    """'Its 48 messages are now in “card · debit” (30), “fees · overdraft” (12) and 1 other topic (2); 4 have no
    topic.'"""
    named = [f"“{label}” ({n:,})" for _, label, n in trail.parts[:shown]]
    rest = trail.parts[shown:]
    if rest:
        named.append(f"{count_of(len(rest), 'other topic')} ({sum(n for *_, n in rest):,})")
    where = (", ".join(named[:-1]) + " and " + named[-1]) if len(named) > 1 else "".join(named)
    its = "Its message is" if trail.messages == 1 else f"Its {trail.messages:,} messages are"
    if not named:
        return f"{its} in this run without a topic."
    lost = f"; {trail.without_topic:,} {'has' if trail.without_topic == 1 else 'have'} no topic" \
        if trail.without_topic else ""
    return f"{its} now in {where}{lost}."


def trails_of_unresolved(store: Path, curated: CuratedRun) -> dict[int, TopicTrail]:
    """For each unresolved rename of ``curated`` (its topic left the run), where that topic's messages are now, by
    event id. An edit whose run is no longer in the store (or unreadable) has none."""
    events = [e for e, _ in curated.unresolved if e.kind == "rename" and e.run_id]
    if not events:
        return {}
    state = derive_state(CurationLog(store).events())
    earlier: dict[str, Run | None] = {}
    trails = {}
    for e in events:
        if e.run_id not in earlier:
            try:
                earlier[e.run_id] = apply_curation(load_run(store, e.run_id, texts=False), state).run
            except FeedbackLensError:  # the run was removed from the store: nothing to follow
                earlier[e.run_id] = None
        run = earlier[e.run_id]
        trail = where_topic_went(run, e.payload["key"], curated.run) if run is not None else None
        if trail is not None and trail.messages:
            trails[e.id] = trail
    return trails


# -------------------------------------------------------------------------------------------------- audit


def describe_edit(e: Event, names: dict[str, str]) -> str:
    """An edit in words, as the audit trail writes it ('Renamed "debt · collection" to "Debt collection"'); topics
    by their ``names`` now, else by the names the edit recorded when it was made."""
    p = e.payload

    def name(key: str) -> str:
        # A topic never renamed has its name only in its run, which the event recorded when it was made.
        recorded = (e.after or {}).get("label") if e.kind == "move" else (e.before or {}).get("label")
        return f'"{names.get(key) or recorded or key}"'

    if e.kind == "rename":
        was = (e.before or {}).get("label")
        return f'Renamed {f"{chr(34)}{was}{chr(34)}" if was else name(p["key"])} to "{p["label"]}"' + (
            f' ({p["description"]})' if p.get("description") else "")
    if e.kind == "merge":
        before = (e.before or {}).get("topics", {})
        parts = ", ".join(f'"{before.get(k, names.get(k, k))}"' for k in p["keys"] if k != p["into"])
        return f'Merged {parts} into "{before.get(p["into"], names.get(p["into"], p["into"]))}"'
    if e.kind == "split":
        was = (e.before or {}).get("label", names.get(p["key"], p["key"]))
        return f'Split "{was}" into ' + ", ".join(f'"{part["label"]}" ({len(part["message_ids"])})'
                                                  for part in p["parts"])
    if e.kind == "move":
        ids = p["message_ids"]
        sources = (e.before or {}).get("labels")  # recorded since 7 Dec 2026; older moves name only their target
        origin = f" from {', '.join(f'{chr(34)}{s}{chr(34)}' for s in sources)}" if sources else ""
        return (f"Moved {count_of(len(ids), 'message')}{origin} to {name(p['to'])}: " + ", ".join(ids[:5])
                + (" …" if len(ids) > 5 else ""))
    if e.kind == "ignore":
        return f"Marked {name(p['key'])} as noise" if p.get("ignored", True) else f"Brought back {name(p['key'])}"
    if e.kind == "pin":
        opening = (e.after or {}).get("opening")  # recorded since 7 Dec 2026
        which = f'"{opening}" (message {p["message_id"]})' if opening else f"message {p['message_id']}"
        return f"{'Pinned' if p.get('pinned', True) else 'Unpinned'} {which} in {name(p['key'])}"
    return f"Undid edit #{p['event']} ({p.get('kind', '')})"


def _undo_effect(e: Event, by_id: dict[int, Event], undos_in_force: dict[int, int]) -> tuple[Event, bool] | None:
    """What undoing ``e`` (in force) would change: the edit that is reverted or re-applied, and which;
    None when it would change nothing.

    Undoing an edit reverts it. Undoing an undo brings its target back, which for an edit re-applies
    it and for an undo reverts that undo's edit again, and so on down the chain. A step changes
    nothing when another undo in force already has the same effect (two undos of one edit: undoing
    just one of them leaves the edit undone)."""
    node, stops = e, True  # ``stops``: whether ``node`` is about to stop being in force
    while node.kind == "undo":
        target = by_id.get(int(node.payload["event"]))
        if target is None:
            return None
        others = undos_in_force.get(target.id, 0) - (1 if stops else 0)
        if others:  # another undo in force keeps the target undone either way
            return None
        node, stops = target, not stops
    return node, not stops


def undo_effects(events: Sequence[Event], state: CurationState) -> dict[int, tuple[Event, bool]]:
    """The events that can usefully be undone now (the Audit page's choices), each with the edit that
    undoing it would revert (``False``) or re-apply (``True``); see :func:`_undo_effect`.

    Undone events are never among them: undoing their undo brings them back."""
    by_id = {e.id: e for e in events}
    undos_in_force: dict[int, int] = {}
    for e in events:
        if e.kind == "undo" and e.id not in state.undone:
            target = int(e.payload["event"])
            undos_in_force[target] = undos_in_force.get(target, 0) + 1
    effects = {e.id: _undo_effect(e, by_id, undos_in_force) for e in events if e.id not in state.undone}
    return {i: effect for i, effect in effects.items() if effect is not None}


def _undo_label(e: Event, effect: tuple[Event, bool], details: dict[int, str], width: int = 120) -> str:
    """How the Undo choice list names undoing ``e``: what it reverts, or for an undo, what it brings back."""
    edit, reapplied = effect
    if e.kind != "undo":
        text = details[e.id]
    else:
        target = int(e.payload["event"])
        if edit.id == target:
            what = "re-applies"
        else:
            what = f"re-applies #{edit.id}" if reapplied else f"undoes #{edit.id} again"
        text = f"Undo of #{target} ({what}: {details[edit.id]})"
    label = f"#{e.id} · {text}"
    return label if len(label) <= width else label[: width - 1] + "…"


def _undo_done(e: Event, effect: tuple[Event, bool], details: dict[int, str]) -> str:
    """What the page says once ``e`` is undone: 'Undone: Renamed …', or for an undo, 'Re-applied: Moved …'."""
    edit, reapplied = effect
    if e.kind != "undo":
        return f"Undone: {details[e.id]}"
    return f"{'Re-applied' if edit.id == int(e.payload['event']) or reapplied else 'Undone again'}: {details[edit.id]}"


def audit_table(store: Path, topic_names: dict[str, str] | None = None) -> pd.DataFrame:
    """The log as people read it, newest first.

    Columns: ``#``, ``when``, ``user``, ``edit``, ``details``, ``state`` (``applied``: an edit in force;
    ``undo``: an undo in force; ``undone``: an edit or undo that a later undo reverted), ``run``, and two
    columns for the page rather than for reading: ``id_`` (the event id), ``undo_`` (the label
    offering to undo the event, e.g. ``#5 · Undo of #4 (re-applies: Moved 2 messages …)``; empty when
    undoing it would change nothing, see :func:`undo_effects`), and ``done_``: what the page says once it is
    undone (``Re-applied: Moved 2 messages …``).

    ``topic_names`` (topic key -> name, e.g. the shown run's) names topics that edits made before
    names were recorded with them only know by key."""
    events = CurationLog(store).events()
    columns = ["#", "when", "user", "edit", "details", "state", "run", "id_", "undo_", "done_"]
    if not events:
        return pd.DataFrame(columns=columns)
    state = derive_state(events)
    names: dict[str, str] = dict(topic_names or {})
    for e in events:  # the names topics had at the time, else their latest
        if e.kind == "merge":
            names.update((e.before or {}).get("topics", {}))
    names.update(state.labels)
    details: dict[int, str] = {}
    for e in events:  # oldest first: an undo names the edit it reverted
        details[e.id] = describe_edit(e, names)
        target = int(e.payload["event"]) if e.kind == "undo" else None
        if target in details:
            details[e.id] = f"Undid edit #{target}: {details[target]}"
    effects = undo_effects(events, state)
    rows = [{"#": f"#{e.id}", "when": pd.Timestamp(e.at, unit="s", tz="UTC"), "user": e.user, "edit": e.kind,
             "details": details[e.id], "state": "undone" if e.id in state.undone else
             ("undo" if e.kind == "undo" else "applied"), "run": e.run_id or "", "id_": e.id,
             "undo_": _undo_label(e, effects[e.id], details) if e.id in effects else "",
             "done_": _undo_done(e, effects[e.id], details) if e.id in effects else ""}
            for e in reversed(events)]
    return pd.DataFrame(rows, columns=columns)


# ------------------------------------------------------------------------------------------------ editing


def _name_key(name: str) -> str:
    return " ".join(str(name).split()).casefold()


def _check_names_free(curated: CuratedRun, names: Sequence[str], leaving: set[str]) -> None:
    """Refuse topic names that another topic has (or that repeat among ``names``): two topics of one name are drawn
    as one bar, and neither can be told apart in a picker. Topics in ``leaving`` (the one renamed or split) and
    topics marked as noise do not count."""
    topics = curated.run.topics
    taken = {_name_key(label): label for label, key, ignored in zip(topics["label"], topics["key"], topics["ignored"],
                                                                    strict=True) if key not in leaving and not ignored}
    seen: dict[str, str] = {}
    for name in names:
        k = _name_key(name)
        if k in taken:
            raise CurationError(f'Another topic is already called "{taken[k]}".',
                                fix="Choose another name; if the two are one issue, merge them instead.")
        if k in seen:  # as typed: "Tea" and "tea" are one name to a reader, but say both
            called = f'"{seen[k]}"' if seen[k] == name else f'"{seen[k]}" and "{name}", one name to a reader'
            raise CurationError(f"Two parts are called {called}.", fix="Give each part its own name.")
        seen[k] = name


class Curator:
    """Checks and records edits to one run's topics; every method appends one event or raises CurationError."""

    def __init__(self, store: Path, run_id: str | None = None) -> None:
        self.store = Path(store)
        self.log = CurationLog(store)
        self.run_id = run_id

    def _current(self) -> CuratedRun:
        return load_curated_run(self.store, self.run_id)

    def _topic(self, curated: CuratedRun, key: str) -> pd.Series:
        topics = curated.run.topics
        found = topics[(topics["key"] == key) & ~topics["ignored"]]
        if found.empty:
            raise CurationError(f'The topic "{key}" is not in this run (it was merged, ignored or removed).',
                                fix="Reload the page and pick a topic from the list.")
        return found.iloc[0]

    def rename(self, key: str, label: str, description: str = "", user: str = "local",
               seen_label: str | None = None) -> Event:
        """Give a topic a name (1-80 characters) and an optional description (up to 500).

        ``seen_label``: the name the analyst saw when they began typing. When someone renamed the topic since, the
        edit is refused with who did it, so that two analysts never overwrite each other unawares (the page then
        takes the new name as seen, and saving again replaces it)."""
        label, description = " ".join(str(label).split()), str(description or "").strip()
        if not label:
            raise CurationError("A topic name cannot be empty.", fix="Type a short name, e.g. Late deliveries.")
        if len(label) > MAX_LABEL:
            raise CurationError(f"The topic name is {len(label)} characters long; at most {MAX_LABEL} are allowed.",
                                fix="Shorten the name and put the details in the description.")
        if len(description) > MAX_DESCRIPTION:
            raise CurationError(f"The description is {len(description)} characters long; at most "
                                f"{MAX_DESCRIPTION} are allowed.", fix="Shorten the description.")
        curated = self._current()
        topic = self._topic(curated, key)
        if seen_label is not None and " ".join(str(seen_label).split()) != topic["label"]:
            renames = [e for e in self.log.events() if e.kind == "rename" and e.payload.get("key") == key]
            who = f"{renames[-1].user} renamed it" if renames else "it was renamed"
            raise CurationError(f'While you were typing, {who} to "{topic["label"]}". Your name "{label}" was not '
                                "saved.", fix="Save again to replace their name with yours, or leave it.")
        if label == topic["label"] and description == (topic["description"] or ""):
            raise CurationError(f'Nothing to change: the topic is already called "{label}", with this description.',
                                fix="Type another name or description.")
        _check_names_free(curated, [label], {key})
        return self.log.append("rename", {"key": key, "label": label, "description": description}, user, self.run_id,
                               before={"label": topic["label"], "description": topic["description"]},
                               after={"label": label, "description": description})

    def merge(self, keys: Sequence[str], into: str, user: str = "local") -> Event:
        """Merge topics into one (``into`` keeps its name unless renamed)."""
        others = [k for k in dict.fromkeys(keys) if k != into]
        if not others:
            raise CurationError("Pick at least one other topic to merge into this one; a topic cannot be merged with "
                                "itself.", fix="Choose two or more different topics.")
        curated = self._current()
        target = self._topic(curated, into)
        sizes = {k: int(self._topic(curated, k)["size"]) for k in others}
        numbers = [int(self._topic(curated, k)["topic"]) for k in others]
        members = curated.run.messages.loc[curated.run.messages["topic"].isin(numbers), "message_id"].astype(str)
        return self.log.append("merge", {"keys": [into, *others], "into": into, "label": str(target["label"]),
                                         "message_ids": sorted(members)},
                               user, self.run_id,
                               before={"topics": {k: curated.run.topics.set_index("key").at[k, "label"] for k in [into, *others]}},
                               after={"label": target["label"], "size": int(target["size"]) + sum(sizes.values())})

    def move(self, message_ids: Sequence[str], to: str, user: str = "local") -> Event:
        """Move messages to another topic."""
        ids = [str(m) for m in dict.fromkeys(message_ids)]
        if not ids:
            raise CurationError("No messages selected to move.", fix="Tick the messages to move first.")
        curated = self._current()
        target = self._topic(curated, to)
        messages = curated.run.messages.set_index(curated.run.messages["message_id"].astype(str))
        missing = [m for m in ids if m not in messages.index]
        if missing:
            raise CurationError(f"{len(missing)} of the selected messages are not in this run.",
                                fix="Reload the page and select the messages again.")
        before = {m: int(messages.at[m, "topic"]) for m in ids}
        labels = dict(zip(curated.run.topics["topic"].astype(int), curated.run.topics["label"].astype(str), strict=True))
        sources = sorted({labels.get(t, NO_TOPIC_LABEL) for t in before.values()})
        return self.log.append("move", {"message_ids": ids, "to": to}, user, self.run_id,
                               before={"topics": before, "labels": sources},
                               after={"topic": int(target["topic"]), "label": str(target["label"])})

    def ignore(self, key: str, ignored: bool = True, user: str = "local") -> Event:
        """Mark a topic as noise (its messages count as without a topic) or bring it back."""
        curated = self._current()
        topics = curated.run.topics
        if key not in set(topics["key"]):
            raise CurationError(f'The topic "{key}" is not in this run.', fix="Reload the page.")
        topic = topics.set_index("key").loc[key]
        return self.log.append("ignore", {"key": key, "ignored": ignored}, user, self.run_id,
                               before={"ignored": bool(topic["ignored"]), "label": str(topic["label"])},
                               after={"ignored": ignored})

    def pin(self, key: str, message_id: str, pinned: bool = True, user: str = "local") -> Event:
        """Pin a message as a representative example of its topic (shown first), or unpin it."""
        curated = self._current()
        topic = self._topic(curated, key)
        messages = curated.run.messages
        row = messages[(messages["message_id"].astype(str) == str(message_id)).to_numpy()]
        if pinned and not (row["topic"] == topic["topic"]).any():
            raise CurationError("Only a message of the topic can be pinned to it.", fix="Move the message first.")
        # Its opening words, so that the audit trail says which message a reader would recognise, not only its id.
        opening = message_preview(row["text"].iloc[0], 60) if len(row) and "text" in row else None
        return self.log.append("pin", {"key": key, "message_id": str(message_id), "pinned": pinned}, user, self.run_id,
                               before={"label": str(topic["label"])}, after={"opening": opening} if opening else None)

    def split(self, key: str, proposal: SplitProposal, labels: Sequence[str] | None = None,
              user: str = "local") -> Event:
        """Apply a split previewed with :func:`propose_split` (the topic becomes its parts)."""
        curated = self._current()
        topic = self._topic(curated, key)
        names = list(labels or proposal.labels)
        if len(names) != proposal.k or any(not " ".join(n.split()) or len(n) > MAX_LABEL for n in names):
            raise CurationError(f"Give each of the {proposal.k} parts a name of 1 to {MAX_LABEL} characters.",
                                fix="Fill in every part's name.")
        _check_names_free(curated, [" ".join(n.split()) for n in names], {key})
        stamp = f"{int(time.time() * 1000):x}"
        parts = [{"key": f"{key}/{stamp}.{i + 1}", "label": " ".join(names[i].split()), "keywords": proposal.keywords[i],
                  "message_ids": proposal.message_ids[i]} for i in range(proposal.k)]
        return self.log.append("split", {"key": key, "parts": parts}, user, self.run_id,
                               before={"label": topic["label"], "size": int(topic["size"])},
                               after={"parts": [{"label": p["label"], "size": len(p["message_ids"])} for p in parts]})

    def undo(self, event_id: int, user: str = "local") -> Event:
        """Revert one edit (or re-apply an undone one by undoing its undo)."""
        events = {e.id: e for e in self.log.events()}
        if event_id not in events:
            raise CurationError(f"There is no edit #{event_id}.", fix="Pick an edit from the audit list.")
        target = events[event_id]
        state = derive_state(list(events.values()))
        if event_id in state.undone:
            raise CurationError(f"Edit #{event_id} is already undone.", fix="Undo the undo to re-apply it.")
        payload = {"event": event_id, "kind": target.kind}
        self._check_reapplies(list(events.values()), payload)
        return self.log.append("undo", payload, user, self.run_id,
                               before={"kind": target.kind, "payload": target.payload})

    def _check_reapplies(self, events: list[Event], payload: dict) -> None:
        """Refuse an undo that would bring back an edit this run cannot apply (a move to a split part whose split was
        undone since): it would read "Re-applied" and change nothing."""
        run = load_run(self.store, self.run_id, texts=False)
        planned = Event(max(e.id for e in events) + 1, time.time(), "", self.run_id, "undo", payload)
        before = {e.id for e, _ in apply_curation(run, derive_state(events)).unresolved}
        for edit, reason in apply_curation(run, derive_state([*events, planned])).unresolved:
            if edit.id not in before:
                raise CurationError(f"Edit #{edit.id} cannot be applied again now: {reason}.",
                                    fix="Bring that topic back first (undo the edit that removed it), then try again.")


# -------------------------------------------------------------------------------------------------- split


@dataclass(frozen=True)
class SplitProposal:
    """A topic re-clustered into ``k`` parts, for a preview before it is applied."""

    k: int
    message_ids: list[list[str]]
    keywords: list[list[str]]
    labels: list[str]
    examples: list[list[str]]

    SMALL_PART = 5
    """A part of fewer messages is hardly a topic: its keywords come from a message or two."""

    def warning(self) -> str | None:
        """What to say before the split is applied when some parts are too small to be topics, else None."""
        small = [len(ids) for ids in self.message_ids if len(ids) < self.SMALL_PART]
        if not small:
            return None
        fewer = self.k - len(small)
        return (f"{count_of(len(small), 'part')} of this split {'has' if len(small) == 1 else 'have'} fewer than "
                f"{self.SMALL_PART} messages ({', '.join(map(str, sorted(small, reverse=True)))}): too few to be a "
                "topic, with names taken from a message or two. "
                + (f"Try {fewer} parts, or move those messages by hand." if fewer >= 2 else
                   "Move those messages by hand instead."))


def propose_split(run: Run, topic: int, k: int, seed: int = 42, texts: Sequence[str] | None = None) -> SplitProposal:
    """Re-cluster one topic's messages into ``k`` parts (k-means on their embeddings; keywords by c-TF-IDF).

    ``texts``: the topic's messages' texts in run order, for a run loaded without its texts
    (``load_run(..., texts=False)``); read from ``run.messages`` when None.

    Raises:
        CurationError: ``k`` is below 2, or the topic has fewer than 2 messages per part.
    """
    members = np.flatnonzero(run.messages["topic"].to_numpy() == topic)
    if k < 2:
        raise CurationError("A split needs at least 2 parts.", fix="Choose 2 or more parts.")
    if len(members) < 2 * k:
        raise CurationError(f"This topic has {len(members)} messages: too few to split into {k} parts "
                            f"(each part needs at least 2).", fix=f"Choose at most {max(len(members) // 2, 1)} parts, "
                            "or move messages by hand.")
    from sklearn.cluster import KMeans
    from sklearn.feature_extraction.text import CountVectorizer

    vectors = load_run_array(run, "embeddings")
    if vectors is None:
        raise CurationError("This run was analysed before embeddings were kept, so its topics cannot be split.",
                            fix="Analyse the file again, then split.")
    x = np.asarray(vectors[members], dtype=np.float32)
    labels = KMeans(n_clusters=k, random_state=seed, n_init=10).fit_predict(x)
    # Order parts by size, largest first, so the preview reads naturally.
    order = [int(c) for c in pd.Series(labels).value_counts().sort_index().sort_values(ascending=False, kind="stable").index]
    texts = run.messages["text"].to_numpy()[members] if texts is None else np.asarray(texts, dtype=object)
    docs = [" ".join(texts[labels == c]) for c in order]
    counts = CountVectorizer(stop_words="english", min_df=1).fit(docs)
    tf = counts.transform(docs).toarray().astype(float)
    tf /= tf.sum(axis=1, keepdims=True) + 1e-12
    idf = np.log(1 + tf.sum(axis=0).mean() / (tf.sum(axis=0) + 1e-12))
    words = counts.get_feature_names_out()
    keywords = [[str(words[j]) for j in np.argsort(-(row * idf))[:8]] for row in tf]
    ids = run.messages["message_id"].astype(str).to_numpy()[members]
    centre = [x[labels == c].mean(axis=0) for c in order]
    examples = []
    for c, mean in zip(order, centre, strict=True):
        idx = np.flatnonzero(labels == c)
        best = idx[np.argsort(-(x[idx] @ mean))[:3]]
        examples.append([str(texts[i]) for i in best])
    return SplitProposal(k, [sorted(ids[labels == c].tolist()) for c in order], keywords,
                         [" · ".join(kw[:3]) for kw in keywords], examples)

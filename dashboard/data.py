"""Cached, read-only access to the run store for the dashboard.

Owns which run a session shows and every cached read and computation the pages use: a run is
loaded once and shared read-only by all sessions (``st.cache_resource`` keyed by store and run id),
so are its filtered messages, and figures the pages show are computed by :mod:`pipelines.metrics`
once per run id and filter (``st.cache_data``). Pages never open files or compute
over the whole run themselves. Nothing here draws; nothing here writes to the store.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import streamlit as st

from pipelines import charts, expectations, metrics, snapshot
from pipelines.charts import MAP_POINTS
from pipelines.curation import (
    CuratedRun,
    CurationLog,
    SplitProposal,
    TopicTrail,
    load_curated_run,
    propose_split,
    trails_of_unresolved,
)
from pipelines.embed import SentenceTransformerEncoder
from pipelines.message_texts import MessageTexts
from pipelines.metrics import Granularity, MessageFilter, Window
from pipelines.search import embed_query, rank_by_similarity
from pipelines.settings import Settings
from pipelines.store import Run, latest_run_id, list_runs, load_run, load_run_array, load_run_table

RUN_KEY = "run_id"
"""Session-state key of the run chosen on the Data page (absent: the latest run)."""


@dataclass(frozen=True)
class RunRef:
    """Which run, in which store, with which curation: the cache key of everything derived from a run.

    ``curation`` is the curation log's version: an analyst's edit changes it, so every figure is
    recomputed with the curated topics on the next rerun of every session.
    """

    store: str
    id: str
    curation: int = 0


@dataclass(frozen=True)
class RunInfo:
    """The small facts about a run that every page and the sidebar need."""

    ref: RunRef
    manifest: dict
    topics: pd.DataFrame
    labels: dict[int, str]
    topic_sizes: dict[int, int]
    metadata: dict[str, list[str]]
    first_day: date | None
    last_day: date | None
    messages: int
    time_zone: str = "UTC"
    """The zone whose days the figures count and whose clock the times are on (:attr:`pipelines.store.Run.time_zone`)."""
    tags: dict[str, str] = field(default_factory=dict)
    """The separators of the filterable metadata columns that hold tags (:func:`pipelines.metrics.tag_separators`)."""
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    """The numeric metadata columns filtered by a range, with their lowest and highest number
    (:func:`pipelines.metrics.numeric_ranges`)."""

    @property
    def has_dates(self) -> bool:
        """Whether any message has a date (trends need them)."""
        return self.last_day is not None


def store_dir() -> str:
    """The store folder: ``$FEEDBACK_LENS_STORE`` or ``./store`` (read on every rerun, so tests can point it)."""
    return str(Settings().store_dir)


@st.cache_data(ttl=10, show_spinner=False)
def runs(store: str) -> list[dict]:
    """Manifests of the complete runs, newest first (re-read every 10 s so new runs appear)."""
    return list_runs(Path(store))


def latest_id(store: str) -> str | None:
    """The run ``latest`` points to: what a session shows unless another run is chosen."""
    return latest_run_id(Path(store))


def current_ref() -> RunRef:
    """The run this session shows: the one chosen on the Data page if it still exists, else the latest.

    Raises:
        StoreError: there is no run yet (its message says how to create one).
    """
    store = store_dir()
    chosen = st.session_state.get(RUN_KEY)
    version = CurationLog(Path(store)).version()
    if chosen and any(m["id"] == chosen for m in runs(store)):
        return RunRef(store, chosen, version)
    latest = latest_run_id(Path(store))
    if latest is None:
        latest = load_run(Path(store)).id  # raises the StoreError that says how to create a run
    return RunRef(store, latest, version)


def _run(ref: RunRef) -> Run:
    """The run as curated by the analysts (what every page shows)."""
    return _curated(ref).run


@st.cache_resource(max_entries=3, show_spinner="Loading the run…")
def _curated(ref: RunRef) -> CuratedRun:
    # A resource, not data: one read-only copy shared by all sessions. st.cache_data would pickle the
    # run once and unpickle all of it on every call (about 3 s at 100k messages, several calls a page).
    # Without the texts (a gigabyte at a million complaints): the pages fetch the rows they show (with_texts()).
    curated = load_curated_run(Path(ref.store), ref.id, texts=False)
    # Ids and metadata as Python strings: filtering and sorting then copy pointers, not the strings (10x faster).
    messages = curated.run.messages
    strings = [c for c in messages.columns if pd.api.types.is_string_dtype(messages[c].dtype)
               and not isinstance(messages[c].dtype, pd.CategoricalDtype)]
    curated.run.messages = messages.astype(dict.fromkeys(strings, object))
    _settle_memory()
    return curated


def _settle_memory() -> None:
    # What the server holds for long (modules, the runs) is moved out of the collector's way: otherwise every
    # full collection walks it, and one lands in a filter change every few reruns (70 ms at a million messages,
    # building a map's JSON makes enough objects to trigger one). Unfreezing first lets an evicted run's
    # cycles be collected before the survivors are frozen again.
    gc.unfreeze()
    gc.collect()
    gc.freeze()


@st.cache_resource(max_entries=3, show_spinner=False)
def _texts(ref: RunRef) -> MessageTexts:
    return MessageTexts(_run(ref).path / "messages.parquet")


def with_texts(ref: RunRef, rows: pd.DataFrame, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """``rows`` (messages of the run, as the functions here return them) with their text columns (or just
    ``columns``), read from disk for just these rows: call it on the page of messages being shown."""
    return _texts(ref).attach(rows, columns)


def unresolved_edits(ref: RunRef) -> list:
    """Analysts' edits that no longer apply to this run (their topics are gone), with the reason."""
    return _curated(ref).unresolved


@st.cache_data(max_entries=4, show_spinner="Following the topics that left this run…")
def unresolved_trails(ref: RunRef) -> dict[int, TopicTrail]:
    """For each unresolved rename, by event id: where its topic's messages are in this run."""
    return trails_of_unresolved(Path(ref.store), _curated(ref))


def load(ref: RunRef) -> Run:
    """The whole run (cached) without its messages' texts (:func:`with_texts` adds them to the rows shown).

    Raises ``StoreError`` when it cannot be read."""
    return _run(ref)


@st.cache_data(max_entries=8, show_spinner=False)
def info(ref: RunRef) -> RunInfo:
    """Labels, sizes, filterable metadata and date span of a run."""
    run = _run(ref)
    messages = run.messages
    dates = messages["date"].dropna() if "date" in messages else pd.Series(dtype="datetime64[ns, UTC]")
    sizes = messages["topic"].value_counts()
    named = run.manifest.get("columns", {})
    columns = named.get("metadata", [])
    tags = metrics.tag_separators(messages, columns, named.get("tags"))
    options = metrics.metadata_options(messages, columns, tags=tags)
    return RunInfo(
        ref=ref,
        manifest=run.manifest,
        topics=run.topics,
        labels=metrics.topic_labels(run.topics),
        topic_sizes={int(t): int(n) for t, n in sizes.items()},
        metadata=options,
        first_day=None if dates.empty else dates.min().date(),
        last_day=None if dates.empty else dates.max().date(),
        messages=len(messages),
        time_zone=run.time_zone,
        tags={c: s for c, s in tags.items() if c in options},
        ranges=metrics.numeric_ranges(messages, columns),
    )


# Filtered frames are resources too (shared, never pickled; read-only: derive with ``assign``, never set
# a column). Without a filter they are the run's own frames, no copy; each filtered one holds its rows.


@st.cache_resource(max_entries=3, show_spinner=False)
def _filter_columns(ref: RunRef) -> pd.DataFrame:
    # What filters read, metadata as categories: a filter then reads each distinct value once, not each message.
    # Text columns come as categories straight from the run's file (Parquet keeps them dictionary-encoded; a tenth
    # of the time of finding the categories of the loaded strings); analysts' edits change topics, not these.
    messages = _run(ref).messages
    labels = [c for c in ("sentiment_label", *info(ref).metadata) if c in messages]
    text = [c for c in labels if messages[c].dtype == object]
    read = pq.read_table(_run(ref).path / "messages.parquet", columns=text, read_dictionary=text).to_pandas() if text else None
    columns = {c: messages[c] for c in ("date", "topic") if c in messages}
    for c in labels:
        columns[c] = (read[c].set_axis(messages.index) if c in text
                      else messages[c].astype("category"))
    columns |= {c: messages[c] for c in info(ref).ranges}  # numbers, compared as numbers
    return pd.DataFrame(columns, index=messages.index)


@st.cache_resource(max_entries=32, show_spinner=False)
def _mask(ref: RunRef, f: MessageFilter) -> np.ndarray:
    # Which of the run's messages pass the filter, found once per filter for every per-message view.
    return metrics.filter_mask(_filter_columns(ref), f)


@st.cache_resource(max_entries=4, show_spinner=False)
def _messages(ref: RunRef, f: MessageFilter) -> pd.DataFrame:
    return _run(ref).messages[_mask(ref, f)]


def messages(ref: RunRef, f: MessageFilter) -> pd.DataFrame:
    """The messages that pass the filter, without their texts (:func:`with_texts`; read-only: shared by all sessions)."""
    return _run(ref).messages if f.is_empty else _messages(ref, f)


@st.cache_resource(max_entries=3, show_spinner=False)
def _cube(ref: RunRef) -> pd.DataFrame:
    # Volume and sentiment figures read this (messages per day, topic, tone and filterable metadata value),
    # shared and read-only: at a million messages it is about a tenth as long, so filters and sums are fast.
    # The run stores it; analysts' edits that move messages between topics change it, and then it is counted
    # again from the curated messages (0.5 s at a million).
    run = _run(ref)
    metadata = list(info(ref).metadata)
    stored = load_run_table(run, "cube")
    tags = info(ref).tags

    def as_filtered(column: str) -> set[str]:  # what the filter lists: the tags of a column of tags
        values = stored[column].astype(str).unique()
        return set(metrics.distinct_tags(values, tags[column]) if column in tags else values)

    written_alike = stored is not None and all(  # values as filters write them now (a run's "4.0" reads "4")
        as_filtered(c) <= {*info(ref).metadata[c], metrics.BLANK} for c in metadata if c in stored)
    same_days = run.manifest.get("cube_time_zone", "UTC") == run.time_zone  # older runs counted UTC days
    if written_alike and same_days and list(stored.columns) == [*metrics.CUBE_KEYS, *metadata, *metrics.CUBE_VALUES]:
        as_stored = pq.read_table(run.path / "messages.parquet", columns=["topic"]).column("topic").to_numpy()
        if np.array_equal(as_stored, run.messages["topic"].to_numpy()):
            return stored
    return metrics.message_cube(run.messages, metadata)


@st.cache_resource(max_entries=32, show_spinner=False)
def _figure_cube(ref: RunRef, f: MessageFilter) -> pd.DataFrame:
    if f.ranges:  # the cube does not count by columns of many numbers: count the messages in the range instead
        return metrics.message_cube(_messages(ref, f), list(info(ref).metadata))
    return metrics.filter_messages(_cube(ref), f)


def figure_cube(ref: RunRef, f: MessageFilter) -> pd.DataFrame:
    """The :func:`~pipelines.metrics.message_cube` rows of the filtered messages (read-only): what the volume
    and sentiment figures are computed from; :func:`~pipelines.metrics.message_count` counts its messages."""
    return _cube(ref) if f.is_empty else _figure_cube(ref, f)


@st.cache_resource(max_entries=3, show_spinner=False)
def _map_order(ref: RunRef) -> np.ndarray:
    # A fixed random order of the run's rows: a filter's map shows its first MAP_POINTS rows in this order,
    # a uniform sample found without copying the filtered messages, and the same dots stay as filters change.
    return np.random.default_rng(0).permutation(len(_run(ref).messages))


@st.cache_resource(max_entries=2, show_spinner=False)
def _preview_column(ref: RunRef):
    # Every message's stored preview (the start of its text), read once per run with its first map: a filter's
    # map then takes its points' hover texts from memory instead of reading them from disk each time (the
    # costliest part of a filter change at a million messages). About 170 MB there, as one Arrow array.
    return _texts(ref).column("preview")


@st.cache_resource(max_entries=3, show_spinner=False)
def _previews(ref: RunRef) -> dict:
    return {}  # runs stored before previews: row -> hover text, read from disk (reset beyond PREVIEW_CACHE rows)


PREVIEW_CACHE = 200_000
PREVIEW_PREFETCH = 3 * MAP_POINTS
"""For runs stored before previews, texts read with the run's first map: its next rows in map order, which a
filter keeping a third or more of the messages shows."""


def _hover_texts(ref: RunRef, rows: np.ndarray, order: np.ndarray) -> list[str]:
    texts = _texts(ref)
    if "preview" in texts.columns:
        # A stored preview is its text's hover already (charts.hover_safe) but for the HTML escaping.
        return charts.escape_html(_preview_column(ref).take(rows)).to_pylist()
    cache = _previews(ref)
    wanted = rows if cache else np.union1d(rows, order[:PREVIEW_PREFETCH])  # wide filters then fetch nothing new
    missing = [r for r in wanted.tolist() if r not in cache]
    if missing:
        if len(cache) + len(missing) > PREVIEW_CACHE:
            cache.clear()
        fetched = texts.fetch(missing, ["text"])["text"]
        cache.update(zip(missing, map(charts.hover_safe, fetched), strict=True))
    return [cache[r] for r in rows.tolist()]


@st.cache_resource(max_entries=4, show_spinner=False)
def map_points(ref: RunRef, f: MessageFilter, max_points: int = MAP_POINTS) -> pd.DataFrame:
    """``x, y, topic, hover`` (the start of the text, ready for a hover box) of at most ``max_points``
    filtered messages, a seeded uniform sample, for the map (read-only)."""
    order = _map_order(ref)
    messages = _run(ref).messages
    keep = order if f.is_empty else order[_mask(ref, f)[order]]
    rows = np.sort(keep[:max_points])
    points = messages[["x", "y", "topic"]].take(rows)
    return points.assign(hover=pd.Series(_hover_texts(ref, rows, order), index=points.index, dtype=object))


@st.cache_resource(max_entries=8, show_spinner=False)
def topic_map(ref: RunRef, f: MessageFilter, labels: tuple[tuple[int, str], ...]):
    """The Topics page's map figure, shared read-only by every session showing the same run and filter.

    Building it (20,000 hover texts, one trace per topic) is the costliest part of a Topics rerun; with
    many people on the dashboard, building it once per filter keeps the server free for the rest.
    """
    return charts.topic_map_chart(map_points(ref, f), dict(labels))


def _history(ref: RunRef, f: MessageFilter) -> pd.DataFrame:
    # Comparisons look back from the end of the date filter, so they keep the history before its start.
    return figure_cube(ref, replace(f, start=None))


def period(info: RunInfo, f: MessageFilter, days: int) -> snapshot.Period | None:
    """The period the page's figures are for, and what it is compared with; None when the run has no dates.

    With a date filter from a chosen day, its days, read as a snapshot reads them: a calendar month is
    compared with the month before (as October's snapshot is), any other span with as many days before.
    Otherwise the last ``days`` days up to the end of the date filter (or the last message).
    """
    end = f.end or info.last_day
    if end is None:
        return None
    if f.start is not None:
        return snapshot.period_of_days(f.start, end)
    return snapshot.range_period(end - timedelta(days=days - 1), end)


@st.cache_data(max_entries=32, show_spinner=False)
def totals(ref: RunRef, f: MessageFilter) -> tuple[float, float | None, float | None, float]:
    """Messages, share negative, mean sentiment and active topics of the filtered messages, all dates together."""
    return metrics.totals(figure_cube(ref, f))


@st.cache_data(max_entries=8, show_spinner=False)
def _history_start(ref: RunRef) -> pd.Timestamp | None:
    """The run's first message (:func:`pipelines.metrics.history_start`), found once per run for every comparison."""
    return metrics.history_start(_run(ref).messages)


@st.cache_data(max_entries=32, show_spinner=False)
def headline(ref: RunRef, f: MessageFilter, current: Window, previous: Window) -> metrics.Headline:
    """Headline figures of the filtered messages in two windows (no change against days before the run's data)."""
    return metrics.headline(_history(ref, f), current, previous,
                            history_start=_history_start(ref))


@st.cache_data(max_entries=32, show_spinner=False)
def topic_table(ref: RunRef, f: MessageFilter, compare: tuple[Window, Window] | None = None,
                trend: Granularity | None = None, include_no_topic: bool = False) -> pd.DataFrame:
    """Per-topic volume and sentiment of the filtered messages; with ``compare``, the change between two
    windows (counted on the history before the filter's start too, like every comparison)."""
    topics = _run(ref).topics
    table = metrics.topic_table(figure_cube(ref, f), topics, include_no_topic=include_no_topic, trend=trend)
    if compare is not None:
        change = metrics.topic_table(_history(ref, f), topics, *compare, include_no_topic=include_no_topic,
                                     history_start=_history_start(ref))
        table = table.merge(change[["topic", "current", "previous", "change", "change_pct"]], on="topic", how="left")
    return table


@st.cache_data(max_entries=32, show_spinner=False)
def movers(ref: RunRef, f: MessageFilter, current: Window, previous: Window) -> metrics.Movers:
    """Topics that rose and fell most between the windows (none against days before the run's first message)."""
    return metrics.biggest_movers(_history(ref, f), _run(ref).topics, current, previous,
                                  history_start=_history_start(ref))


@st.cache_data(max_entries=32, show_spinner=False)
def emerging(ref: RunRef, f: MessageFilter, window: Window, months: bool = False) -> metrics.EmergingIssues:
    """Emerging issues in the window, against each topic's (and filterable metadata value's) own history since the
    run's first message; with ``months``, the window is a calendar month, compared with the months before."""
    return metrics.emerging_issues(_history(ref, f), _run(ref).topics, window, months=months,
                                   history_start=_history_start(ref),
                                   columns=list(info(ref).metadata), tag_columns=info(ref).tags)


@st.cache_data(max_entries=32, show_spinner=False)
def volume(ref: RunRef, f: MessageFilter, granularity: Granularity, by: str = "topic") -> pd.DataFrame:
    """Messages per period and topic (or metadata value; each of its tags, for a column of tags)."""
    return metrics.volume_over_time(figure_cube(ref, f), granularity, by, info(ref).tags.get(by))


@st.cache_data(max_entries=32, show_spinner=False)
def sentiment(ref: RunRef, f: MessageFilter, granularity: Granularity, by_topic: bool = False,
              rolling: int = 1) -> pd.DataFrame:
    """Sentiment and volume per period (and topic)."""
    return metrics.sentiment_over_time(figure_cube(ref, f), granularity, by_topic, rolling)


@st.cache_data(max_entries=32, show_spinner=False)
def drivers(ref: RunRef, f: MessageFilter, current: Window, previous: Window) -> pd.DataFrame:
    """Topics that moved the mean sentiment between the windows."""
    return metrics.sentiment_drivers(_history(ref, f), _run(ref).topics, current, previous)


@dataclass(frozen=True)
class MessageList:
    """Messages in the order a list shows them, taken a page at a time (a million rows are never copied).

    ``rows`` is a shared, read-only frame (messages without their texts) and ``order`` the positions in
    it, first shown first.
    """

    rows: pd.DataFrame
    order: np.ndarray

    def __len__(self) -> int:
        return len(self.order)

    @property
    def empty(self) -> bool:
        """Whether no message is listed."""
        return len(self.order) == 0

    @property
    def columns(self) -> pd.Index:
        """The listed messages' columns."""
        return self.rows.columns

    def page(self, first: int, size: int) -> pd.DataFrame:
        """The ``size`` messages from position ``first`` of the list, in order."""
        return self.rows.take(self.order[first:first + size])

    def all(self) -> pd.DataFrame:
        """Every listed message, in order (a copy: for downloads)."""
        return self.rows.take(self.order)


_ORDER_BY = {"newest": ("date", False), "oldest": ("date", True), "negative": ("sentiment", True),
             "positive": ("sentiment", False)}


@st.cache_resource(max_entries=8, show_spinner=False)
def search(ref: RunRef, f: MessageFilter, query: str, order: str) -> MessageList:
    """Filtered messages matching the keyword search, sorted (``newest``, ``oldest``, ``negative``, ``positive``;
    missing dates last, ties in run order; or ``file``: run order).

    Read-only: shared by all sessions (a resource, so turning pages does not unpickle the whole result).
    """
    rows = _run(ref).messages  # positions into the whole run: a million rows are never copied
    ordered = _run_order(ref, order)
    keep = None if f.is_empty else _mask(ref, f)
    if metrics.search_terms(query):  # read on disk: the texts are not in memory
        matched = np.zeros(len(rows), dtype=bool)
        matched[_texts(ref).matching(query)] = True
        keep = matched if keep is None else keep & matched
    # The run's order, kept to the rows wanted: a filter costs one pass over the run, not a sort of its rows.
    return MessageList(rows, ordered if keep is None else ordered[keep[ordered]])


@st.cache_resource(max_entries=8, show_spinner=False)
def _run_order(ref: RunRef, order: str) -> np.ndarray:
    # Every message of the run in one list order (read-only, shared): missing values last, then the key,
    # then run order (a stable lexsort).
    rows = _run(ref).messages
    if order == "file":  # the order the messages came in (a run without dates has no newest)
        return np.arange(len(rows))
    column, ascending = _ORDER_BY[order]
    key = rows[column]
    if isinstance(key.dtype, pd.DatetimeTZDtype):
        key = key.dt.tz_localize(None)
    values = (key.to_numpy(dtype="float64", na_value=np.nan) if column == "sentiment"
              else key.to_numpy().astype("int64"))
    missing = key.isna().to_numpy()
    everything = np.arange(len(rows))
    ordered = everything[np.lexsort((everything, values if ascending else -values, missing))]
    ordered.flags.writeable = False
    return ordered


@st.cache_resource(max_entries=3, show_spinner=False)
def _embeddings(ref: RunRef):
    # A resource, not data: the memory-mapped array is shared by all sessions, never copied or pickled.
    return load_run_array(_run(ref), "embeddings")


def split_proposal(ref: RunRef, topic: int, k: int) -> SplitProposal:
    """:func:`pipelines.curation.propose_split` of one topic, its messages' texts read for it.

    Raises:
        CurationError: the topic cannot be split so (the message says why).
    """
    run = _run(ref)
    members = np.flatnonzero(run.messages["topic"].to_numpy() == topic)
    return propose_split(run, topic, k, texts=_texts(ref).fetch(members, ["text"])["text"].tolist())


def has_embeddings(ref: RunRef) -> bool:
    """Whether the run stored its message embeddings (runs analysed before semantic search did not)."""
    return _embeddings(ref) is not None


@st.cache_resource(max_entries=2, show_spinner="Loading the language model (first search only)…")
def _query_encoder(name: str) -> SentenceTransformerEncoder:
    return SentenceTransformerEncoder(name)


@st.cache_resource(max_entries=16, show_spinner="Finding messages with a similar meaning…")
def semantic_search(ref: RunRef, f: MessageFilter, query: str) -> MessageList:
    """Filtered messages closest in meaning to ``query``, most similar first, with a ``similarity`` column
    (read-only: shared by all sessions).

    Raises:
        FeedbackLensError: the run's encoder is not available on this machine (the message says what to do).
    """
    rows = messages(ref, f)
    encoder = _query_encoder(_run(ref).manifest.get("encoder", {}).get("name") or Settings().encoder)
    ranked = rank_by_similarity(_embeddings(ref), embed_query(query, encoder), rows.index.to_numpy())
    found = rows.loc[ranked.index].assign(similarity=ranked.to_numpy())
    return MessageList(found, np.arange(len(found)))


# ---------------------------------------------------------------------------------------- expectation gaps


@dataclass(frozen=True)
class Gaps:
    """Expectation-gap metrics of the filtered messages (see :mod:`pipelines.expectations`)."""

    table: pd.DataFrame
    """:func:`~pipelines.expectations.area_gap_table` of the areas mentioned at least once."""
    ipa: pd.DataFrame
    """:func:`~pipelines.expectations.ipa_table` of those areas (those with enough mentions)."""
    outcome: str
    """What importance and performance are measured on: ``"sentiment"`` or the rating column used."""
    mentioned: int
    """Messages that mention at least one area."""
    statements: int
    """Messages that state an expectation."""
    unmet: int
    """Of those, the ones whose expectation was not met."""


@st.cache_data(max_entries=8, show_spinner=False)
def expectation_areas(ref: RunRef) -> dict[str, str] | None:
    """Area key → name in taxonomy order; ``None`` when the run has no expectation tags (analysed before them)."""
    run = _run(ref)
    return expectations.area_names(run.messages, run.manifest)


@st.cache_resource(max_entries=3, show_spinner=False)
def _gap_index(ref: RunRef) -> expectations.GapIndex:
    # The run's messages reduced to what the gap metrics count (read-only), built once: any filter's gap tables
    # are then a few bincounts over its rows (at a million messages, a filter keeping most of them in a tenth
    # of the time the frame functions take over a copy of its rows).
    run = _run(ref)
    return expectations.gap_index(run.messages, list(expectation_areas(ref) or {}),
                                  run.manifest.get("columns", {}).get("metadata", []))


def _rows(ref: RunRef, f: MessageFilter) -> np.ndarray | None:
    """The filter's mask over the run's messages; ``None`` for all of them."""
    return None if f.is_empty else _mask(ref, f)


@st.cache_data(max_entries=32, show_spinner=False)
def gaps(ref: RunRef, f: MessageFilter) -> Gaps:
    """Gap metrics per area and the Importance–Performance table of the filtered messages."""
    index, rows = _gap_index(ref), _rows(ref, f)
    rating = expectations.indexed_rating_column(index, rows, _run(ref).manifest.get("columns", {}).get("metadata", []))
    table = expectations.indexed_gap_table(index, rows, rating)
    table = table[table["mentions"] > 0].reset_index(drop=True)
    mentioned, stated, unmet = expectations.indexed_totals(index, rows)
    return Gaps(table, expectations.ipa_table(table), rating or "sentiment", mentioned, stated, unmet)


@st.cache_data(max_entries=32, show_spinner=False)
def gap_trend(ref: RunRef, f: MessageFilter, freq: str = "M") -> pd.DataFrame:
    """Gap metrics per area and month (or ``freq``) of the filtered messages."""
    return expectations.indexed_gap_trend(_gap_index(ref), _rows(ref, f), freq)


@st.cache_data(max_entries=32, show_spinner=False)
def gap_sources(ref: RunRef, f: MessageFilter) -> pd.DataFrame:
    """Expectation statements per area and source of the filtered messages."""
    return expectations.indexed_source_table(_gap_index(ref), _rows(ref, f))


@st.cache_data(max_entries=32, show_spinner=False)
def gap_topics(ref: RunRef, f: MessageFilter, area: str) -> pd.DataFrame:
    """The topics behind one area's gap: messages about the area and unmet expectations per topic, most unmet first.

    Columns ``topic``, ``label``, ``mentions``, ``unmet``, ``share`` (of the area's mentions).
    """
    index, rows = _gap_index(ref), _rows(ref, f)
    counts = expectations.indexed_topic_areas(index, rows)[area]
    unmet = expectations.indexed_topic_areas(index, rows, unmet_only=True)[area]
    labels = metrics.topic_labels(_run(ref).topics)
    table = pd.DataFrame({"topic": counts.index.astype(int), "mentions": counts.to_numpy()})
    table["unmet"] = table["topic"].map(unmet).fillna(0).astype(int)
    table["label"] = [labels.get(t, f"Topic {t}") for t in table["topic"]]
    table["share"] = table["mentions"] / max(int(table["mentions"].sum()), 1)
    table = table[table["mentions"] > 0].sort_values(["unmet", "mentions"], ascending=False, kind="stable")
    return table[["topic", "label", "mentions", "unmet", "share"]].reset_index(drop=True)


@dataclass(frozen=True)
class Statements:
    """The filtered messages that state an expectation about one area, as positions in the run (see :func:`rows_at`)."""

    rows: np.ndarray
    """Positions in the run's messages: unmet first, most negative first."""
    unmet: np.ndarray
    """Per position: the expectation was not met."""

    def __len__(self) -> int:
        return len(self.rows)


@st.cache_resource(max_entries=16, show_spinner=False)
def statements(ref: RunRef, f: MessageFilter, area: str) -> Statements:
    """The filtered messages that state an expectation about ``area``: unmet first, most negative first
    (positions only: a page takes the few it shows with :func:`rows_at`; read-only: shared by all sessions)."""
    index = _gap_index(ref)  # the run's per-message areas, statements and sentiment, held once
    on = index.patterns[index.pattern, index.keys.index(area)] & index.stated
    found = np.flatnonzero(on if f.is_empty else on & _mask(ref, f))
    unmet = index.flag[found] == 1
    order = np.lexsort((index.sentiment[found], ~unmet))  # unmet first, then by sentiment; stable
    return Statements(found[order], unmet[order])


def typical_messages(ref: RunRef, topic: int, n: int = 3) -> tuple[pd.DataFrame, set[str]]:
    """A topic's typical messages (those analysts pinned first, then the closest to its centre), with their texts,
    and the ids of the pinned ones."""
    run = _run(ref)
    row = run.topics[run.topics["topic"] == topic]
    if row.empty:
        return run.messages.iloc[0:0], set()
    def listed(column: str) -> list[str]:  # lists as curation writes them, arrays as Parquet reads them back
        value = row.iloc[0].get(column)
        return [] if value is None else [str(m) for m in value]

    wanted, pinned = listed("representative_ids")[:n], set(listed("pinned"))
    positions = pd.Index(run.messages["message_id"].astype(str)).get_indexer(wanted)  # one pass, in wanted's order
    return rows_at(ref, positions[positions >= 0].astype(np.int64)), pinned


def rows_at(ref: RunRef, positions: np.ndarray) -> pd.DataFrame:
    """The run's messages at these positions, with their texts (for the few rows a page shows)."""
    return with_texts(ref, _run(ref).messages.take(positions))

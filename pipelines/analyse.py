"""Wiring only: run the stages from a feedback file to a published run, timing each.

The CLI, the dashboard's upload and the benchmarks all call :func:`analyse_file`.
"""

from __future__ import annotations

import gc
import importlib.metadata as md
import math
import platform
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.clean import BASE_COLUMNS, clean_messages
from pipelines.embed import EmbeddingCache, Encoder, cache_name, embed_with_cache, make_encoder, release_freed_memory
from pipelines.errors import FeedbackLensError, InputError, NotEnoughMessagesError, StoreError
from pipelines.executor import (
    Executor,
    PartitionedEncoder,
    make_executor,
    open_partitioned,
    redact_partitioned,
    score_partitioned,
)
from pipelines.incremental import (
    UpdatePlan,
    add_to_earlier,
    assign_to_topics,
    check_added_columns,
    place_on_map,
    plan_update,
)
from pipelines.ingest import check_file, read_feedback_file, resolve_columns
from pipelines.language import language_note
from pipelines.lineage import TopicMatch, changes_in_words, keys_of, match_topics
from pipelines.metrics import (
    count_of,
    day_span,
    last_day,
    message_cube,
    metadata_options,
    on_the_clock,
    tag_separators,
    zone_words,
)
from pipelines.progress import Reporter, SilentReporter
from pipelines.redact import PLACEHOLDERS, PatternRedactor, redact_messages
from pipelines.redaction_cache import RedactionCache
from pipelines.sentiment import SentimentScorer, make_scorer, sentiment_labels
from pipelines.settings import ColumnMapping, Settings
from pipelines.store import (
    Run,
    cache_dir,
    file_sha256,
    input_files,
    load_run,
    load_run_array,
    message_preview,
    new_run_id,
    publish_run,
    redaction_cache_dir,
)
from pipelines.topics import OUTLIER, TopicResult, fit_topics, topic_centroids

VERSIONED = ("feedback-lens", "pandas", "numpy", "torch", "sentence-transformers", "transformers", "bertopic",
             "umap-learn", "hdbscan", "scikit-learn", "pyarrow")


@dataclass
class AnalysisSummary:
    """What a run did, for the one-screen summary and ``run.json``."""

    run_id: str
    run_path: Path
    input_path: Path
    columns: str
    rows_read: int
    messages: int
    skipped: dict[str, int]
    truncated: int
    missing_dates: int
    topics: int
    outlier_share: float
    outlier_share_before: float
    """Before outlier reduction, in a fit made by this run; NaN when the run kept the earlier run's topics."""
    newly_embedded: int
    timings: dict[str, float]
    notes: list[str] = field(default_factory=list)
    dates: str = ""
    """The days the messages span, on the clock of the run's time zone: '1 Sep – 30 Oct 2026 (Los Angeles time)'."""

    def format(self) -> str:
        """A one-screen, human summary."""
        skipped = sum(self.skipped.values())
        lines = [
            f"Analysed {self.input_path.name}",
            f"  Columns used      {self.columns}",
            f"  Messages read     {self.rows_read:,}",
            f"  Messages analysed {self.messages:,}",
            f"  Skipped           {skipped:,}" + ("" if not skipped else
                                                   " (" + "; ".join(f"{n:,} {r}" for r, n in self.skipped.items()) + ")"),
        ]
        if self.truncated:
            lines.append(f"  Cut to max length {self.truncated:,}")
        if self.dates:
            lines.append(f"  Dates             {self.dates}")
        if self.missing_dates:
            lines.append(f"  Without a date    {self.missing_dates:,}")
        lines += [
            f"  Topics found      {self.topics:,}",
            f"  Outliers          {self.outlier_share:.1%} of messages without a topic"
            + ("" if math.isnan(self.outlier_share_before) else
               f" (was {self.outlier_share_before:.1%} before outlier reduction)"),
            f"  Newly embedded    {self.newly_embedded:,}"
            + (f" ({self.messages - self.newly_embedded:,} came from the cache)" if self.newly_embedded < self.messages else ""),
            "  Time per stage    " + ", ".join(f"{k} {v:.1f}s" for k, v in self.timings.items()),
            f"  Run written to    {self.run_path}",
        ]
        lines += [f"  Note: {n}" for n in self.notes]
        return "\n".join(lines)


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return out


class _CountingEncoder:
    """The run's encoder, reporting each finished batch to a progress stage."""

    def __init__(self, inner: Encoder, advance) -> None:
        self.inner, self.advance = inner, advance
        self.name, self.dimension = inner.name, inner.dimension
        self.cache_name = cache_name(inner)
        if callable(getattr(inner, "encode_spans", None)):  # expectation tagging reads sentences in context with it
            self.span_method = inner.span_method
            self.encode_spans = lambda texts, spans, progress=None: inner.encode_spans(texts, spans, progress=self.advance)

    def encode(self, texts, progress=None) -> np.ndarray:
        return self.inner.encode(texts, progress=self.advance)


def _dates_in_words(messages: pd.DataFrame, zone: str) -> str:
    """The days the dated messages span, as the pages count them (the days of ``zone``); "" when none has a date."""
    last = last_day(clock := messages.assign(date=on_the_clock(messages["date"], zone)))
    if last is None:
        return ""
    return f"{day_span(clock['date'].min().date(), last)} ({zone_words(zone)})"


def _update_note(plan: UpdatePlan) -> str:
    """One line on how the topics were made, for the summary and the Data page."""
    if plan.incremental:
        return f"Topics kept from the earlier run: {plan.reason} (re-fit with --refit)."
    return f"Topics found afresh: {plan.reason}."


def _latest(store: Path) -> Run | None:
    try:
        return load_run(store)
    except StoreError:  # the first run of this store
        return None


def _extend(previous: Run, previous_vectors: np.ndarray, messages: pd.DataFrame, embeddings: np.ndarray,
            plan: UpdatePlan, settings: Settings) -> tuple[TopicResult | None, PoorFit]:
    """The previous run's topics with the new messages assigned to them (``None`` when too many fit badly: more than
    ``extend_max_poor_fit_share``, or than the earlier messages do plus ``extend_poor_fit_margin``)."""
    old_topics = previous.messages["topic"].to_numpy()
    topic_ids = np.array(sorted(int(t) for t in previous.topics["topic"]), dtype=np.int64)
    old_vectors = np.asarray(previous_vectors, dtype=np.float32)
    centroids = topic_centroids(old_topics, old_vectors, topic_ids) if len(topic_ids) else np.empty((0, 1))
    fresh, similarity = assign_to_topics(embeddings[plan.new], centroids, topic_ids, settings.outlier_min_similarity,
                                         settings.max_outlier_share)
    fit = PoorFit(float(np.mean(similarity < settings.outlier_min_similarity)) if len(plan.new) else 0.0,
                  _usual_poor_fit(old_vectors, old_topics, topic_ids, centroids, settings) if len(topic_ids) else 1.0)
    if fit.new > max(settings.extend_max_poor_fit_share, fit.usual + settings.extend_poor_fit_margin) \
            and settings.refit != "never":
        return None, fit
    n = len(messages)
    assignments = np.empty(n, dtype=np.int64)
    assignments[plan.known] = old_topics[plan.previous_rows]
    assignments[plan.new] = fresh
    coords = np.empty((n, 2), dtype=np.float32)
    old_coords = previous.messages[["x", "y"]].to_numpy(dtype=np.float32)
    coords[plan.known] = old_coords[plan.previous_rows]
    coords[plan.new] = place_on_map(embeddings[plan.new], old_vectors, old_coords, topics=fresh, known_topics=old_topics)
    row_of = dict(zip(messages["message_id"].astype(str), range(n), strict=True))
    topics = previous.topics.copy()
    sizes = pd.Series(assignments).value_counts()
    topics["size"] = [int(sizes.get(int(t), 0)) for t in topics["topic"]]
    topics["share"] = topics["size"] / max(n, 1)
    topics["representative_rows"] = [[row_of[str(i)] for i in ids if str(i) in row_of]
                                     for ids in topics.pop("representative_ids")]
    topics = topics.drop(columns=[c for c in ("key", "key_status", "key_confidence", "mean_sentiment") if c in topics])
    before = float(previous.manifest.get("counts", {}).get("outlier_share_before", 0.0))
    return TopicResult(assignments, topics, previous.keywords.copy(), coords, before), fit


@dataclass(frozen=True)
class PoorFit:
    """How many messages are far from every topic of the earlier run: the new ones, and usually (its own)."""

    new: float
    usual: float

    def words(self) -> str:
        """'48% of the new messages fit no existing topic well (of the earlier ones, 33%)'."""
        return f"{self.new:.0%} of the new messages fit no existing topic well (of the earlier ones, {self.usual:.0%})"


def _usual_poor_fit(vectors: np.ndarray, topics: np.ndarray, topic_ids: np.ndarray, centroids: np.ndarray,
                    settings: Settings, sample: int = 5_000) -> float:
    """The share of the earlier run's own messages (a seeded sample of at most ``sample``) far from every topic, each
    measured as a new message would be: against its own topic's centroid without itself. In-sample, a message pulls
    its centroid towards it, and half as many look far as new messages of the same kind do."""
    position = {int(t): i for i, t in enumerate(topic_ids)}
    column = np.array([position.get(int(t), -1) for t in topics], dtype=np.int64)
    member = column >= 0
    sums = np.zeros((len(topic_ids), vectors.shape[1]), dtype=np.float64)
    np.add.at(sums, column[member], vectors[member])
    sizes = np.bincount(column[member], minlength=len(topic_ids))
    rows = np.sort(np.random.default_rng(settings.seed).choice(len(vectors), min(sample, len(vectors)), replace=False))
    v = vectors[rows].astype(np.float64)
    similarity = v @ centroids.T.astype(np.float64)
    own = column[rows]
    mine = own >= 0
    without = sums[own[mine]] - v[mine]  # the topic's other members (the norm is taken below)
    alone = sizes[own[mine]] <= 1
    loo = (without * v[mine]).sum(axis=1) / np.maximum(np.linalg.norm(without, axis=1), 1e-12)
    similarity[np.flatnonzero(mine), own[mine]] = np.where(alone, -1.0, loo)
    return float(np.mean(similarity.max(axis=1) < settings.outlier_min_similarity))


def _match_previous(previous: Run | None, ids: np.ndarray, assignments: np.ndarray, embeddings: np.ndarray,
                    run_id: str, extended: bool = False) -> TopicMatch:
    """Keys for the new topics, inherited from the latest run's where topics match (see :mod:`pipelines.lineage`).

    An ``extended`` run keeps the latest run's topics themselves: each keeps its key, nothing to match.
    """
    if previous is not None and extended:
        keys = keys_of(previous.topics, previous.id)
        return TopicMatch(keys, dict.fromkeys(keys, "matched"), dict.fromkeys(keys, 1.0), [], previous.id)
    if previous is None:
        return match_topics(ids, assignments, embeddings, run_id)
    return match_topics(ids, assignments, embeddings, run_id,
                        previous.messages["message_id"].to_numpy(), previous.messages["topic"].to_numpy(),
                        load_run_array(previous, "embeddings"), keys_of(previous.topics, previous.id), previous.id)


def analyse_file(
    path: str | Path,
    mapping: ColumnMapping | None = None,
    settings: Settings | None = None,
    reporter: Reporter | None = None,
    encoder: Encoder | None = None,
    scorer: SentimentScorer | None = None,
    note: str | None = None,
    executor: Executor | None = None,
    add: bool = False,
    batch: dict | None = None,
) -> AnalysisSummary:
    """Analyse one feedback file and publish a new run.

    Args:
        path: the feedback file.
        mapping: which columns hold text, date, id and metadata (detected when not given).
        settings: run settings; defaults are sensible for most data.
        reporter: progress display (silent by default).
        encoder: embedding model; the packaged MiniLM by default.
        scorer: sentiment scorer; ``settings.sentiment`` by default.
        note: a remark about the data shown with the run (e.g. "dates are synthetic").
        executor: where the heavy stages run; ``settings.executor`` by default.
        add: add the file's messages to the latest run's (a weekly export holding only its week) instead of
            analysing the file on its own; a message whose id the run holds is replaced by the file's.
        batch: set by :func:`analyse_files`: ``{"id", "file", "of"}``, this file's place among the files analysed
            together, kept in the manifest so that the runs made on the way can be told from the last
            (:func:`pipelines.store.runs_on_the_way`).

    Raises:
        FeedbackLensError: anything the user can fix, with the place and the fix.
    """
    settings = settings or Settings()
    own_executor = executor is None
    executor = executor or make_executor(settings)
    # What the process held before the run (modules, the loaded model: 700,000 objects) is kept out of the
    # collector's way while it runs, so each full collection walks only the run's own objects (0.3 s each, and a
    # re-run of a large file triggers a few). Left alone when the process froze them itself (the dashboard).
    freeze = gc.get_freeze_count() == 0
    if freeze:
        gc.freeze()
    try:
        return _analyse(Path(path), mapping or ColumnMapping(), settings, reporter or SilentReporter(), encoder, scorer,
                        note, executor, add, batch)
    finally:
        if freeze:
            gc.unfreeze()
        if own_executor:
            executor.close()


def analyse_files(
    files: Sequence[str | Path],
    mapping: ColumnMapping | None = None,
    settings: Settings | None = None,
    reporter: Reporter | None = None,
    note: str | None = None,
    add: bool = False,
    starting: Callable[[int, Path, bool], None] | None = None,
    finished: Callable[[AnalysisSummary], None] | None = None,
    executor: Executor | None = None,
) -> list[AnalysisSummary]:
    """Analyse several exports of one source as one run: the first as :func:`analyse_file` does (or added, with
    ``add``), each later one added to the run before it.

    Every file is read and cleaned first (with Dask, in parts on the workers), so that a mistake in the third file
    (a date that cannot be read, no text column) stops the work before the first is published, not after: the
    latest run never holds part of the files. Reading and cleaning are quick beside embedding, so each file is read
    twice rather than half-analysed.

    Args:
        starting: called with each file's position, path and whether it is added, before it is analysed.
        finished: called with each file's summary.
        executor: where the heavy stages run, one for all the files; ``settings.executor`` by default.

    Raises:
        FeedbackLensError: the file that failed is named; after the first file, the fix says which files the latest
            run already holds and how to go on.
    """
    files = [Path(f) for f in dict.fromkeys(files)]  # a file named twice (a glob and a name) is analysed once
    settings, reporter, mapping = settings or Settings(), reporter or SilentReporter(), mapping or ColumnMapping()
    if len(files) > 1:  # a missing file or a README.txt among them is named before any file is analysed
        for file in files:
            check_file(file)
    own_executor = executor is None
    executor = executor or make_executor(settings)
    try:
        if len(files) > 1:
            _check_all_files(files, mapping, settings, reporter, executor)
        summaries = []
        # The runs published for all but the last file are steps on the way: the runs list shows the last only.
        batch = {"id": secrets.token_hex(6), "of": len(files)} if len(files) > 1 else None
        for i, file in enumerate(files):
            if starting is not None:
                starting(i, file, add or i > 0)
            try:
                summary = analyse_file(file, mapping, settings, reporter, note=note, executor=executor,
                                       add=add or i > 0, batch=batch and {**batch, "file": i + 1})
            except NotEnoughMessagesError as err:
                # analyse_file counts messages, not files: the user still needs to know which file was too small.
                if not err.message.startswith(f"{file.name}:"):
                    err = NotEnoughMessagesError(f"{file.name}: {err.message[:1].lower()}{err.message[1:]}",
                                                 fix=err.fix)
                raise _with_files_done(err, files[:i]) from None
            except FeedbackLensError as err:
                raise _with_files_done(err, files[:i]) from None
            summaries.append(summary)
            if finished is not None:
                finished(summary)
        return summaries
    finally:
        if own_executor:
            executor.close()


def _check_all_files(files: list[Path], mapping: ColumnMapping, settings: Settings, reporter: Reporter,
                     executor: Executor) -> None:
    with reporter.stage(f"Checking {len(files)} files before analysing them", total=len(files), unit="file") as stage:
        for file in files:
            try:
                if executor.name == "local":
                    table = read_feedback_file(file, settings.sheet)
                    clean_messages(table, resolve_columns(table, mapping), settings)
                else:  # on the workers, in parts, as the analysis will read it (this machine may not see the file)
                    open_partitioned(file, mapping, settings, executor).clean(settings, executor)
            except NotEnoughMessagesError:
                pass  # a small file among others is fine: its messages are added to the rest
            except FeedbackLensError as err:
                every = "both files are" if len(files) == 2 else f"all {len(files)} files are"
                raise err.with_fix(f"{err.fix or ''} Nothing was analysed: {every} checked before the first one is."
                                   .strip()) from None
            stage.advance(1)


def _with_files_done(err: FeedbackLensError, done: list[Path]) -> FeedbackLensError:
    """A later file's error says that the files before it are in the latest run, and how to go on."""
    if done:
        names = ", ".join(f.name for f in done)
        return err.with_fix(f"{err.fix or ''} The latest run already holds {names}; once this file is fixed, add it "
                            "and the files after it with --add.".strip())
    return err


def _analyse(path: Path, mapping: ColumnMapping, settings: Settings, reporter: Reporter, encoder: Encoder | None,
             scorer: SentimentScorer | None, note: str | None, executor: Executor, add: bool = False,
             batch: dict | None = None) -> AnalysisSummary:
    local = executor.name == "local"
    timings: dict[str, float] = {}
    started = time.time()

    taxonomy = None
    if settings.expectations:  # read the areas file first: a mistake in it should stop the run at once
        from pipelines.expectations import AREAS_PATH, load_taxonomy

        taxonomy = load_taxonomy(settings.taxonomy or AREAS_PATH)

    t = time.perf_counter()
    with reporter.stage("Reading file", None) as st:
        st.describe(path.name)
        if local:
            table = read_feedback_file(path, settings.sheet)
            columns = resolve_columns(table, mapping)
        else:  # a worker cuts the file; each part is read and cleaned on the worker that gets it
            table = open_partitioned(path, mapping, settings, executor)
    timings["read"] = time.perf_counter() - t

    t = time.perf_counter()
    if local:
        with reporter.stage("Cleaning", None) as st:
            messages, report = clean_messages(table, columns, settings)
        input_format, input_notes = table.format, table.notes
    else:
        with reporter.stage("Reading and cleaning on the workers", table.total, unit=table.unit) as st:
            messages, report, input_notes = table.clean(settings, executor, st.advance)
        input_format, columns = table.format, table.columns
    del table  # the raw rows: a large file's second copy of every text
    release_freed_memory()
    timings["clean"] = time.perf_counter() - t
    # Only the mapped metadata: columns that later stages add are not filters.
    metadata_columns = [c for c in messages.columns if c not in BASE_COLUMNS]
    language = language_note(messages["text"], settings.encoder)
    if language:
        report.notes.append(language)

    previous = _latest(settings.store_dir)
    if add and previous is None:
        raise InputError(f"--add: there is no earlier run in {settings.store_dir} to add {path.name} to.",
                         fix="Analyse the first file without --add; later files can then be added to it.")
    if add:  # a file whose columns do not fit the run: refused (no ids) or said, before anything slow
        report.notes.extend(check_added_columns(previous.manifest.get("columns") or {}, columns.text, columns.date,
                                                columns.id, metadata_columns, path.name, previous.id))
    if len(messages) + (len(previous.messages) if add else 0) < settings.min_messages:  # before the slow stages
        skipped = ", ".join(f"{n:,} {why}" for why, n in report.skipped.items() if n)
        raise NotEnoughMessagesError(
            f"Not enough messages to find topics: {len(messages)} after cleaning"
            + (f" ({skipped} left out of {report.rows_read:,} rows)" if skipped else "")
            + f", at least {settings.min_messages} are needed.",
            fix="Add more feedback to the file (a few hundred messages give useful topics).",
        )

    def add_earlier() -> None:
        nonlocal messages, metadata_columns, input_notes
        earlier = [c for c in previous.manifest.get("columns", {}).get("metadata", []) if c in previous.messages]
        file_messages = len(messages)
        messages, replaced = add_to_earlier(previous.messages, messages, earlier)
        metadata_columns = [*earlier, *(c for c in metadata_columns if c not in earlier)]
        input_notes = [*input_notes, f"Added {count_of(file_messages, 'message')} from {path.name} to the "
                       f"{len(previous.messages):,} of run {previous.id}"
                       + (f"; {replaced:,} of them replaced earlier versions (same id)." if replaced else ".")]

    named_tags = columns.tags
    if named_tags is None and add and previous is not None:
        named_tags = previous.manifest.get("columns", {}).get("tags")
    # The earlier messages were redacted when they were analysed, unless that run kept personal data: then they are
    # redacted now with the file's, or a run asked to redact would show them.
    earlier_redacted = bool((previous.manifest.get("settings") or {}).get("redact_pii")) if add else True
    if add and settings.redact_pii and not earlier_redacted:
        add_earlier()
    redacted = None
    if settings.redact_pii:  # before anything is embedded, stored or shown; text_hash is re-made from the result
        t = time.perf_counter()
        with reporter.stage("Redacting personal data", len(messages)) as st:
            memo = RedactionCache(redaction_cache_dir(settings.store_dir), PatternRedactor().name)
            messages, redacted = (redact_messages(messages, metadata_columns, progress=st.advance, memo=memo) if local else
                                  redact_partitioned(messages, metadata_columns, executor, settings.partition_size,
                                                     st.advance))
        if any(redacted.values()):
            report.notes.append("Personal data redacted: " + ", ".join(
                f"{n:,} {PLACEHOLDERS[k]}" for k, n in redacted.items() if n) + " (--no-redact keeps it).")
        release_freed_memory()
        timings["redact"] = time.perf_counter() - t
    if add and not (settings.redact_pii and not earlier_redacted):
        add_earlier()

    t = time.perf_counter()
    texts = messages["text"].tolist()
    hashes = messages["text_hash"].tolist()
    # Extend the latest run, or find topics afresh? Decided before embedding: an extended run embeds only its
    # new messages, the others keep the vectors the latest run stored.
    previous_vectors = load_run_array(previous, "embeddings") if previous is not None else None
    plan = plan_update(messages, settings, previous.messages if previous is not None else None,
                       previous.manifest if previous is not None else None, previous_vectors is not None,
                       settings.refit)
    timings["plan"] = time.perf_counter() - t

    t = time.perf_counter()
    with reporter.stage("Loading model", None) as st:
        st.describe(settings.encoder)
        encoder = encoder or (make_encoder(settings) if local else
                              PartitionedEncoder(settings, executor, settings.partition_size))
    cache = EmbeddingCache(cache_dir(settings.store_dir), cache_name(encoder))
    # With expectation tagging ahead, new messages' sentences are read in the same transformer pass.
    sentences = None
    if taxonomy is not None:
        from pipelines.expectations import sentence_spans as sentences
    if plan.incremental and previous_vectors.shape[1] != encoder.dimension:
        plan = UpdatePlan(False, "the earlier run's vectors were made by another encoder")
    rows = plan.new if plan.incremental else np.arange(len(texts))
    with reporter.stage("Embedding", len(rows)) as st:
        if plan.incremental:
            embeddings = np.empty((len(texts), encoder.dimension), dtype=np.float32)
            embeddings[plan.known] = previous_vectors[plan.previous_rows]
            embeddings[rows], newly = embed_with_cache([texts[i] for i in rows], [hashes[i] for i in rows], encoder,
                                                       cache, st.advance, sentences=sentences)
        else:
            embeddings, newly = embed_with_cache(texts, hashes, encoder, cache, st.advance, sentences=sentences)
    timings["embed"] = time.perf_counter() - t

    t = time.perf_counter()
    result = None
    if plan.incremental:
        with reporter.stage("Assigning new messages", None):
            result, fit = _extend(previous, previous_vectors, messages, embeddings, plan, settings)
        if result is None:
            plan = UpdatePlan(False, f"{fit.words()}: topics are found afresh")
            # A fit reads every message's own vector, not the latest run's stored (float16) copies.
            embeddings, _ = embed_with_cache(texts, hashes, encoder, cache, sentences=sentences)
    if result is None:
        with reporter.stage("Finding topics", None) as st:
            # A large run's topics are found on a sample with every month in proportion.
            months = messages["date"].dt.strftime("%Y-%m").to_numpy() if messages["date"].notna().any() else None
            result = fit_topics(texts, embeddings, settings, progress=st.describe, strata=months, executor=executor,
                                keys=messages["text_hash"].to_numpy())
    release_freed_memory()
    timings["topics"] = time.perf_counter() - t
    # Only new messages are scored and tagged; the others keep what the earlier run found.
    todo = plan.new if plan.incremental else np.arange(len(texts))
    todo_texts = [texts[i] for i in todo]

    t = time.perf_counter()
    with reporter.stage("Scoring sentiment", None):
        on_workers = not local and scorer is None
        scorer = scorer or make_scorer(settings.sentiment)
        # A head trained on another encoder's vectors cannot read ours: it then embeds the texts itself.
        same_space = getattr(scorer, "encoder_name", encoder.name) == encoder.name
        scores = np.empty(len(texts), dtype=np.float64)
        if plan.incremental:
            scores[plan.known] = previous.messages["sentiment"].to_numpy(dtype=np.float64)[plan.previous_rows]
        if len(todo):
            every = len(todo) == len(texts)  # todo is sorted and distinct: then it is every row, in order
            vectors = (embeddings if every else embeddings[todo]) if same_space else None  # no second copy
            raw = (score_partitioned(settings.sentiment, todo_texts, vectors, executor, settings.partition_size)
                   if on_workers else scorer.score(todo_texts, vectors))
            scores[todo] = np.clip(np.asarray(raw, dtype=np.float64), -1, 1)
    timings["sentiment"] = time.perf_counter() - t

    if taxonomy is not None:
        from pipelines.expectations import TAG_COLUMNS, tag_expectations

        t = time.perf_counter()
        # Counts what the encoder reads here: long messages' later sentences and the areas' examples, not messages.
        with reporter.stage("Tagging expectations", None, unit="texts read") as st:
            tags = (tag_expectations(todo_texts, embeddings[todo], _CountingEncoder(encoder, st.advance), taxonomy,
                                     sentiment=scores[todo], cache=cache) if len(todo)
                    else pd.DataFrame(index=pd.RangeIndex(0), columns=list(TAG_COLUMNS)))
        if plan.incremental and set(tags.columns) <= set(previous.messages.columns):
            kept = previous.messages[list(tags.columns)].iloc[plan.previous_rows].set_axis(plan.known)
            tags = pd.concat([kept, tags.set_axis(todo)]).sort_index()
        for column in tags.columns:
            messages[column] = tags[column].to_numpy()
        timings["expectations"] = time.perf_counter() - t

    t = time.perf_counter()
    if plan.incremental and "preview" in previous.messages:  # the hover previews of kept messages are made already
        preview = np.empty(len(messages), dtype=object)
        preview[plan.known] = previous.messages["preview"].to_numpy(dtype=object)[plan.previous_rows]
        preview[plan.new] = [message_preview(texts[i]) for i in plan.new]
        messages["preview"] = preview
    messages["topic"] = result.assignments.astype("int64")
    messages["sentiment"] = scores
    messages["sentiment_label"] = sentiment_labels(scores, settings.neutral_band)
    messages["x"], messages["y"] = result.coords[:, 0], result.coords[:, 1]
    topics = result.topics.copy()
    ids = messages["message_id"].to_numpy()
    topics["representative_ids"] = [[str(ids[i]) for i in rows] for rows in topics.pop("representative_rows")]
    topics["mean_sentiment"] = [float(scores[result.assignments == t].mean()) for t in topics["topic"]]
    run_id = new_run_id(started)
    with reporter.stage("Matching topics", None):
        match = _match_previous(previous, messages["message_id"].to_numpy(), result.assignments,
                                embeddings, run_id, extended=plan.incremental)
    topics["key"] = [match.keys[int(t)] for t in topics["topic"]]
    topics["key_status"] = [match.status[int(t)] for t in topics["topic"]]
    topics["key_confidence"] = [match.confidence[int(t)] for t in topics["topic"]]
    dates = messages["date"].dropna()
    manifest = {
        "created_at": pd.Timestamp(started, unit="s", tz="UTC").isoformat(),
        "input": {"path": str(path.resolve()), "name": path.name, "format": input_format,
                  "sha256": file_sha256(path), "size_bytes": path.stat().st_size},
        # Added messages join the run's data, so its note (e.g. "dates are synthetic") still holds unless replaced.
        "note": note if note is not None or not add or previous is None else previous.manifest.get("note"),
        "columns": {"text": columns.text, "date": columns.date, "id": columns.id,
                    "metadata": metadata_columns,
                    # The columns named as tags (None: found by their values); an added file that names none keeps
                    # the run's.
                    "tags": None if named_tags is None else list(named_tags),
                    "detected": list(columns.detected)},
        "settings": settings.to_dict(),
        "encoder": {"name": encoder.name, "dimension": encoder.dimension,
                    "backend": getattr(encoder, "backend", "custom")},
        "sentiment_scorer": getattr(scorer, "name", type(scorer).__name__),
        "expectation_areas": [{"key": a.key, "name": a.name} for a in taxonomy.areas] if taxonomy else [],
        "versions": _versions(),
        "counts": {"rows_read": report.rows_read, "messages": len(messages), "skipped": report.skipped,
                   "truncated": report.truncated, "missing_dates": report.missing_dates,
                   "topics": len(topics), "outliers": int((result.assignments == OUTLIER).sum()),
                   "outlier_share": result.outlier_share, "outlier_share_before": result.outlier_share_before,
                   "newly_embedded": newly, "redacted": redacted},
        "date_range": {"min": dates.min().isoformat() if len(dates) else None,
                       "max": dates.max().isoformat() if len(dates) else None},
        "notes": input_notes + report.notes + [_update_note(plan)],
        # The zone whose days the stored cube counts: a run made before the cube followed the run's zone counted
        # UTC days, and the dashboard must count such a cube again rather than show UTC days as local ones.
        "cube_time_zone": settings.assume_timezone,
        "lineage": match.summary(),
        "update": {**plan.describe(), "based_on": previous.id if plan.incremental else None, "added": add},
        # Every file the run holds, first to last: a run that files were added to is not only its last file.
        "files": [*input_files(previous.manifest), path.name] if add and previous is not None else [path.name],
    }
    if batch:
        manifest["batch"] = dict(batch)
    changes = changes_in_words(manifest)
    if changes:  # what a re-fit did to the topics analysts named, said where they will read it
        manifest["notes"].append(changes + ".")
    with reporter.stage("Publishing run", None):
        timings["publish"] = 0.0
        manifest["timings"] = {**timings}
        run_path = publish_run(settings.store_dir, run_id,
                               {"messages": messages, "topics": topics, "keywords": result.keywords,
                                # What the volume and sentiment figures read: a dashboard opening a large run
                                # reads it instead of counting every message again (0.5 s at a million).
                                # It counts the days of the run's time zone, as the pages do (load_curated_run).
                                "cube": message_cube(messages.assign(date=on_the_clock(messages["date"],
                                                                                       settings.assume_timezone)),
                                                     list(metadata_options(messages, metadata_columns,
                                                                           tags=tag_separators(messages, metadata_columns,
                                                                                               named_tags))))},
                               manifest,
                               # float16 halves the disk and memory; cosine rankings do not change at that precision
                               arrays={"embeddings": embeddings.astype(np.float16)})
    timings["publish"] = time.perf_counter() - t

    return AnalysisSummary(
        run_id=run_id, run_path=run_path, input_path=path, columns=columns.describe(),
        rows_read=report.rows_read, messages=len(messages), skipped=report.skipped, truncated=report.truncated,
        missing_dates=report.missing_dates, topics=len(topics), outlier_share=result.outlier_share,
        # A run that kept its topics did no outlier reduction: the first fit's figure would repeat forever.
        outlier_share_before=float("nan") if plan.incremental else result.outlier_share_before,
        newly_embedded=newly, timings=timings,
        notes=manifest["notes"], dates=_dates_in_words(messages, settings.assume_timezone),
    )

"""Where the heavy per-message work runs: in this process (``local``, the default) or on a Dask cluster.

Owns: the small :class:`Executor` interface (map a function over partitions, run one task), the
local and Dask executors, and the partitioned stages that use them: cleaning record by record
(:func:`clean_partitioned`; de-duplication then runs over all of them here), an encoder whose batches
run on the workers (:class:`PartitionedEncoder`; it also embeds the sentences for expectation
tagging), personal-data redaction and sentiment scoring. Reading runs on the workers too: one cuts a CSV,
TSV, JSON (a list of records, bare or as an object's only member), JSON Lines or Parquet file into parts at
record boundaries and each part is read and cleaned where it lands (:func:`open_partitioned`); Excel files
(a sheet is one compressed stream), JSON whose list has other members beside it, and files the workers cannot
see, are read whole by the analysing process (or one worker, when only the
workers see the file). The expectation cue rules stay
in the analysing process; the topic fit runs
on one worker, on a sample for large runs, and the other messages are assigned to topics in
partitions (``pipelines.topics``).

Workers need Feedback Lens installed (the same version) and the encoder on their disk; they
load the encoder once per worker process and keep it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np
import pandas as pd

from pipelines.embed import Progress, make_encoder
from pipelines.errors import FeedbackLensError, InputError

if TYPE_CHECKING:
    from pipelines.clean import CleanReport
    from pipelines.ingest import RawTable, ReadPlan, ResolvedColumns
    from pipelines.settings import ColumnMapping, Settings

T = TypeVar("T")
R = TypeVar("R")

EXECUTORS = ("local", "dask")


class Executor(Protocol):
    """Runs functions over partitions, here or elsewhere. Functions and items must be picklable."""

    name: str

    def map(self, fn: Callable[[T], R], items: Iterable[T], done: Callable[[int], None] | None = None) -> list[R]:
        """``[fn(item) for item in items]``, in order; ``done(i)`` as item ``i`` finishes (in any order)."""
        ...

    def run(self, fn: Callable[..., R], *args: Any) -> R:
        """``fn(*args)`` as one task (on one worker)."""
        ...

    def close(self) -> None:
        """Let go of what the executor holds (connections)."""
        ...


class LocalExecutor:
    """Everything in this process, one item after another."""

    name = "local"

    def map(self, fn, items, done=None):
        out = []
        for i, item in enumerate(items):
            out.append(fn(item))
            if done:
                done(i)
        return out

    def run(self, fn, *args):
        return fn(*args)

    def close(self) -> None:
        pass


class DaskExecutor:
    """Tasks on a Dask cluster (``dask.distributed``).

    Args:
        address: the scheduler, e.g. ``tcp://10.0.0.5:8786``; ignored when ``client`` is given.
        client: an existing ``distributed.Client`` (tests pass one of a ``LocalCluster``).
    """

    name = "dask"

    def __init__(self, address: str | None = None, client: Any = None) -> None:
        try:
            from distributed import Client
        except ImportError:
            raise FeedbackLensError("The dask executor needs the distributed package, which is not installed.",
                                    fix="Run `pip install dask distributed`, or use the local executor.") from None
        self._own = client is None
        if client is None:
            if not address:
                raise FeedbackLensError("The dask executor needs the address of a Dask scheduler.",
                                        fix="Pass --dask-scheduler tcp://HOST:8786 (or set FEEDBACK_LENS_DASK).")
            try:
                client = Client(address, timeout="15s", set_as_default=False)
            except (OSError, TimeoutError) as err:
                raise FeedbackLensError(f"Could not reach the Dask scheduler at {address} ({err}).",
                                        fix="Check that the scheduler runs and that this machine can reach its "
                                        "address and port, or use the local executor.") from None
        self.client = client

    def map(self, fn, items, done=None):
        from distributed import as_completed

        futures = self.client.map(fn, list(items), pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        for future in as_completed(futures, loop=self.client.loop):
            if future.status == "error":
                future.result()  # raises the task's own error here
            if done:
                done(index[future.key])
        return self.client.gather(futures)

    def run(self, fn, *args):
        return self.client.submit(fn, *args, pure=False).result()

    def close(self) -> None:
        if self._own:
            self.client.close()


def make_executor(settings) -> Executor:
    """The executor ``settings`` ask for."""
    if settings.executor == "local":
        return LocalExecutor()
    if settings.executor == "dask":
        return DaskExecutor(settings.dask_scheduler)
    raise FeedbackLensError(f'Unknown executor "{settings.executor}".', fix="Use local or dask.")


def partitions(n: int, size: int) -> list[tuple[int, int]]:
    """``(start, end)`` of consecutive partitions of at most ``size`` rows."""
    return [(start, min(start + size, n)) for start in range(0, n, max(1, size))]


@dataclass(frozen=True)
class EncoderSpec:
    """What a worker needs to load the run's encoder: the settings that shape it."""

    settings: Any  # pipelines.settings.Settings (frozen, picklable)


@functools.lru_cache(maxsize=2)
def _worker_encoder(spec: EncoderSpec):
    return make_encoder(spec.settings)


def _describe(spec: EncoderSpec) -> dict:
    enc = _worker_encoder(spec)
    return {"name": enc.name, "cache_name": getattr(enc, "cache_name", enc.name), "dimension": enc.dimension,
            "span_method": getattr(enc, "span_method", None), "backend": getattr(enc, "backend", "custom"),
            "batch_size": enc.batch_size, "batch_rows": getattr(enc, "batch_rows", enc.batch_size),
            "max_length": getattr(enc, "max_length", 256)}


def _encode_part(task: tuple[EncoderSpec, list[str]]) -> np.ndarray:
    spec, texts = task
    return _worker_encoder(spec).encode(texts)


def _with_spans_part(task: tuple[EncoderSpec, list[str], list[list[tuple[int, int]]]]) -> tuple[np.ndarray, np.ndarray]:
    spec, texts, spans = task
    return _worker_encoder(spec).encode_with_spans(texts, spans)


class PartitionedEncoder:
    """The run's encoder with its work split into partitions that the executor's workers embed.

    Quacks like the encoder it stands for (name, cache name, dimension, span method), so the
    cache, the trained heads and expectation tagging treat its vectors as that encoder's. Texts
    are sorted by length and cut into partitions at the encoder's own batch boundaries, so every
    batch holds the texts it would hold in one process: the vectors are the same as the local
    executor's, not merely close.
    """

    def __init__(self, settings, executor: Executor, partition_size: int) -> None:
        self._spec = EncoderSpec(settings)
        self._executor = executor
        about = executor.run(_describe, self._spec)
        self.name, self.cache_name, self.dimension = about["name"], about["cache_name"], about["dimension"]
        self.backend = f"{about['backend']} on {executor.name} workers"
        self._batch_rows = about["batch_rows"]
        self._rows_per_part = max(1, partition_size // self._batch_rows) * self._batch_rows
        if about["span_method"]:
            self.span_method = about["span_method"]

    def encode(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """Vectors of ``texts``, one partition per task; ``progress`` as partitions finish."""
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        order = np.argsort([len(t) for t in texts], kind="stable")
        parts = [order[s:e] for s, e in partitions(len(order), self._rows_per_part)]
        done = (lambda i: progress(len(parts[i]))) if progress else None
        vectors = self._executor.map(_encode_part, [(self._spec, [texts[i] for i in p]) for p in parts], done)
        for rows, v in zip(parts, vectors, strict=True):
            out[rows] = v
        return out

    def encode_with_spans(self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]],
                          progress: Progress | None = None, unit: str = "messages") -> tuple[np.ndarray, np.ndarray]:
        """Message and span vectors from one pass per message (the encoder's ``encode_with_spans``) on the workers.

        Partitions are cut as :meth:`encode` cuts them, at the encoder's own group boundaries of the
        length-sorted texts, so each worker makes the groups one process would make: the same vectors.
        """
        order = np.argsort([len(t) for t in texts], kind="stable")
        parts = [order[s:e] for s, e in partitions(len(order), self._rows_per_part)]
        first = np.cumsum([0, *(len(sp) for sp in spans)])
        messages = np.empty((len(texts), self.dimension), dtype=np.float32)
        out = np.empty((int(first[-1]), self.dimension), dtype=np.float32)
        count = (lambda p: len(p)) if unit == "messages" else (lambda p: int(sum(len(spans[i]) for i in p)))
        done = (lambda i: progress(count(parts[i]))) if progress else None
        tasks = [(self._spec, [texts[i] for i in p], [list(spans[i]) for i in p]) for p in parts]
        for rows, (m, v) in zip(parts, self._executor.map(_with_spans_part, tasks, done), strict=True):
            messages[rows] = m
            out[np.concatenate([np.arange(first[i], first[i + 1]) for i in rows])] = v
        return messages, out

    def encode_spans(self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]],
                     progress: Progress | None = None) -> np.ndarray:
        """Span vectors in context, made on the workers as :meth:`encode_with_spans` makes them."""
        return self.encode_with_spans(texts, spans, progress, unit="spans")[1]


def _clean_part(task: tuple[pd.DataFrame, Any, Any]) -> pd.DataFrame:
    from pipelines.clean import clean_records

    records, columns, settings = task
    return clean_records(records, columns, settings)


def clean_partitioned(table, columns, settings, executor: Executor, partition_size: int,
                      progress: Progress | None = None) -> tuple[pd.DataFrame, Any]:
    """:func:`pipelines.clean.clean_messages` with the per-record work (normalising, dates, hashes) done partition
    by partition on the executor's workers; what needs every record (duplicates, ids, metadata types) runs here.
    The same messages and report as ``clean_messages``."""
    from pipelines.clean import finish_cleaning

    raw = table.frame
    parts = partitions(len(raw), partition_size)
    done = (lambda i: progress(parts[i][1] - parts[i][0])) if progress else None
    records = executor.map(_clean_part, [(raw.iloc[s:e], columns, settings) for s, e in parts], done)
    return finish_cleaning(table, pd.concat(records, ignore_index=True), columns, settings)


def _read_clean_part(task: tuple[Any, list[str] | None, Any, Any]) -> tuple[pd.DataFrame | None, int, list[str]] | None:
    from pipelines.clean import clean_records
    from pipelines.ingest import read_part

    part, file_columns, columns, settings = task
    table = read_part(part, file_columns)
    if table is None:
        return None
    if table.frame.empty:  # blank lines only
        return None, 0, table.notes
    return clean_records(table.frame, columns, settings), len(table.frame), table.notes


def _read_whole(path: Path, executor: Executor, sheet: str | None = None):
    """The whole file as :func:`pipelines.ingest.read_feedback_file` reads it: here when this machine sees the file,
    else on a worker."""
    from pipelines.ingest import read_feedback_file

    if path.exists() or executor.name == "local":
        return read_feedback_file(path, sheet)
    return executor.run(read_feedback_file, path, sheet)


@dataclass
class PartitionedInput:
    """A feedback file whose records are read and cleaned on the executor's workers: part by part where the file
    can be cut (``plan``; CSV, TSV, JSON lists, JSON Lines, Parquet), else read whole (``table``) and cleaned in
    partitions.

    Made by :func:`open_partitioned`; :meth:`clean` gives what ``clean_messages`` gives for the whole file.
    """

    path: Path
    mapping: ColumnMapping
    columns: ResolvedColumns
    format: str
    plan: ReadPlan | None = None
    file_columns: list[str] | None = None
    table: RawTable | None = None

    @property
    def total(self) -> int:
        """How many steps :meth:`clean` reports: parts, or records of a file read whole."""
        return len(self.plan.parts) if self.plan is not None else len(self.table.frame)

    @property
    def unit(self) -> str:
        return "parts" if self.plan is not None else "msg"

    def clean(self, settings: Settings, executor: Executor,
              progress: Progress | None = None) -> tuple[pd.DataFrame, CleanReport, list[str]]:
        """``(messages, report, notes on the file)``, the same as reading the whole file and ``clean_messages``.

        Raises:
            InputError: what reading the whole file or cleaning it would raise.
        """
        from pipelines.clean import finish_cleaning
        from pipelines.ingest import resolve_columns

        if self.plan is not None:
            tasks = [(part, self.file_columns, self.columns, settings) for part in self.plan.parts]
            results = executor.map(_read_clean_part, tasks, (lambda i: progress(1)) if progress else None)
            if all(r is not None for r in results) and sum(r[1] for r in results) > 0:
                notes = list(dict.fromkeys(n for r in results for n in r[2]))
                order = {f'"{c}"': i for i, c in enumerate(self.file_columns or [])}
                notes.sort(key=lambda n: next((i for c, i in order.items() if c in n), len(order)))
                table = self.plan.columns_table(self.file_columns)
                table.notes = notes
                messages, report = finish_cleaning(table, pd.concat([r[0] for r in results if r[1]], ignore_index=True),
                                                   self.columns, settings)
                return messages, report, notes
            # A part that cannot be read on its own (a malformed record, not UTF-8, a cut inside quotes): the whole
            # file is read instead, which names the problem exactly as a local run would.
            self.table = _read_whole(self.path, executor, settings.sheet)
            self.columns = resolve_columns(self.table, self.mapping)
        messages, report = clean_partitioned(self.table, self.columns, settings, executor, settings.partition_size,
                                             progress if self.plan is None else None)
        return messages, report, self.table.notes


def open_partitioned(path: Path, mapping: ColumnMapping, settings: Settings, executor: Executor) -> PartitionedInput:
    """Plan reading ``path`` on the workers: one of them looks at the file's start and cuts it into parts of
    ``settings.read_part_bytes`` (this process need not see the file). Files that cannot be cut, or that the
    workers cannot see, are read whole, here when this machine sees them. JSON and JSON Lines parts are read
    twice: first for the field names (the file's columns are every name any record uses) and, for JSON, the
    number of records (a record is named by its place in the list), then to clean them.

    Raises:
        InputError: the columns asked for are not in the file, or the file cannot be read (as reading it whole would).
    """
    from pipelines.ingest import number_json_parts, part_fields, plan_parts, resolve_columns

    where = path.resolve() if path.exists() else path
    plan = executor.run(plan_parts, str(where), settings.read_part_bytes, settings.partition_size)
    if plan is not None:
        file_columns = plan.columns
        if file_columns is None:  # JSON, JSON Lines: the columns are every field any record uses
            found = executor.map(part_fields, plan.parts)
            file_columns = (None if any(f is None for f in found) else
                            list(dict.fromkeys(c for f in found for c in f[0])))
            if file_columns is not None and plan.format == "json":  # a record is named by its place in the list
                plan.parts = number_json_parts(plan.parts, [f[1] for f in found])
        if file_columns is not None:
            try:
                columns = resolve_columns(plan.columns_table(file_columns), mapping)
                if columns.date is None and mapping.date is None:
                    # No column is named as a date: the first rows say whether one holds dates, as they do when
                    # the file is read whole ("Eingangsdatum", "Opened").
                    columns = resolve_columns(_date_sample(plan, file_columns, executor), mapping)
            except InputError:
                pass  # the whole read below gives this error, or an earlier one in the file, as a local run would
            else:
                return PartitionedInput(path, mapping, columns, plan.format, plan=plan, file_columns=file_columns)
    table = _read_whole(path, executor, settings.sheet)
    return PartitionedInput(path, mapping, resolve_columns(table, mapping), table.format, table=table)


def _date_sample(plan: ReadPlan, file_columns: list[str], executor: Executor, max_parts: int = 8) -> RawTable:
    """The file's first rows, read part by part (on a worker) until each column holds the values that telling a
    column of dates looks at (:func:`pipelines.clean.looks_like_dates`: its first 400 given values) or
    ``max_parts`` parts are read. A part that cannot be read on its own ends the sample: cleaning then reads the
    whole file and maps its columns again, as a local run does."""
    frames, given = [], 0
    for part in plan.parts[:max_parts]:
        table = executor.run(_read_part, part, file_columns)
        if table is None:
            break
        frames.append(table.frame)
        given = given + table.frame[file_columns].notna().sum()
        if (given >= 400).all():
            break
    sample = plan.columns_table(file_columns)
    if frames:
        sample.frame = pd.concat(frames, ignore_index=True)
    return sample


def _read_part(part: Any, file_columns: list[str]) -> RawTable | None:
    from pipelines.ingest import read_part

    return read_part(part, file_columns)


def _redact_part(task: tuple[pd.DataFrame, list[str]]) -> tuple[pd.DataFrame, dict[str, int]]:
    from pipelines.redact import redact_messages

    part, metadata_columns = task
    return redact_messages(part, metadata_columns)


def redact_partitioned(messages: pd.DataFrame, metadata_columns: Sequence[str], executor: Executor,
                       partition_size: int, progress: Progress | None = None) -> tuple[pd.DataFrame, dict[str, int]]:
    """Personal data redacted partition by partition on the executor's workers (rows keep their order)."""
    parts = partitions(len(messages), partition_size)
    done = (lambda i: progress(parts[i][1] - parts[i][0])) if progress else None
    results = executor.map(_redact_part, [(messages.iloc[s:e], list(metadata_columns)) for s, e in parts], done)
    counts: dict[str, int] = {}
    for _, found in results:
        for kind, n in found.items():
            counts[kind] = counts.get(kind, 0) + n
    return pd.concat([part for part, _ in results]), counts


@functools.lru_cache(maxsize=2)
def _worker_scorer(name: str):
    from pipelines.sentiment import make_scorer

    return make_scorer(name)


def _score_part(task: tuple[str, list[str], np.ndarray | None]) -> np.ndarray:
    name, texts, vectors = task
    return np.asarray(_worker_scorer(name).score(texts, vectors), dtype=np.float64)


def score_partitioned(scorer: str, texts: Sequence[str], embeddings: np.ndarray | None, executor: Executor,
                      partition_size: int) -> np.ndarray:
    """Sentiment of ``texts`` by the scorer called ``scorer``, partition by partition on the workers."""
    parts = partitions(len(texts), partition_size)
    tasks = [(scorer, list(texts[s:e]), None if embeddings is None else embeddings[s:e]) for s, e in parts]
    results = executor.map(_score_part, tasks)
    return np.concatenate(results) if results else np.empty(0, dtype=np.float64)

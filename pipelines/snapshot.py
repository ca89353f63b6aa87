"""Snapshots for meetings: a frozen, self-contained picture of one period of a run.

Owns what a snapshot contains and where it goes: resolving a period (``last-week``, ``2026-03``,
``2026-W09``, ``FROM..TO``) against the run's last message, reading ``--filter column=value``, computing
the content once as a list of :class:`Section` (numbers from :mod:`pipelines.metrics` and
:mod:`pipelines.expectations`, figures from :mod:`pipelines.charts`, the same functions the dashboard
pages call), what changed since the previous snapshot, and publishing the files atomically into
``<out>/<name>/`` with an ``index.json`` (``out`` is ``<store>/snapshots`` unless another folder is chosen:
:func:`snapshot_folder`). The file formats (HTML, XLSX, CSV, PNG, PPTX) live in :mod:`pipelines.snapshot_files`,
which only loops over the sections. Nothing here draws on a screen.

Example:
    >>> result = make_snapshot("store", None, "last-month", ["channel=email"])
    >>> result.path  # /srv/feedback-lens/store/snapshots/2026-03--channel-email-1a2b3c
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from pipelines import charts, expectations, metrics
from pipelines.charts import (
    MIN_BASE_FOR_PERCENT,
    change_rounds_to_zero,
    count_of,
    format_change,
    format_count,
    format_date,
    format_sentiment,
    format_share,
    format_shares,
    format_topic_change,
    negative_shares_written,
    nothing_before,
    signed,
    unmet_words,
)
from pipelines.curation import load_curated_run
from pipelines.errors import FeedbackLensError, InputError, write_failure
from pipelines.metrics import NO_TOPIC, Granularity, MessageFilter, Window, day_span
from pipelines.settings import SnapshotSettings
from pipelines.store import Run, exchange_folders, file_sha256, files_in_words, pid_alive, run_time_zone, write_atomic

FORMAT_VERSION = 1
MANIFEST = "snapshot.json"
INDEX = "index.json"
PERIOD_FORMS = ("last-week", "last-month", "last-quarter", "YYYY-MM (a month, e.g. 2026-03)",
                "YYYY-Www (an ISO week, e.g. 2026-W09)", "YYYY-Qn (a quarter, e.g. 2026-Q1)",
                "FROM..TO (days, e.g. 2026-03-01..2026-03-15)")
_QUARTER = re.compile(r"(\d{4})-[Qq](\d)")
RELATIVE_PERIODS = ("last-week", "last-month", "last-quarter")
"""Periods counted back from the run's last message day."""
_EXAMPLE_COLUMNS = ("Issue", "Date", "Sentiment", "Quote", "Message", "Message id")
_MONTH = re.compile(r"(\d{4})-(\d{1,2})")
_WEEK = re.compile(r"(\d{4})-[Ww](\d{1,2})")
_RANGE = re.compile(r"(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})")


class SnapshotError(FeedbackLensError):
    """A snapshot cannot be made or written (bad period or filter, no Chromium, unwritable folder)."""


# ---------------------------------------------------------------------------------------------- periods


@dataclass(frozen=True)
class Period:
    """A span of whole UTC days that a snapshot covers, and the span it is compared with.

    Attributes:
        name: canonical name, also the snapshot's folder: ``2026-03``, ``2026-W09`` or ``2026-03-01..2026-03-15``.
        kind: ``"month"``, ``"week"`` or ``"range"``.
        first, last: first and last day included.
        previous_first, previous_last: the period before (the previous month or week; for a range, as many days).
    """

    name: str
    kind: str
    first: date
    last: date
    previous_first: date
    previous_last: date

    @property
    def window(self) -> Window:
        """The period as a :class:`~pipelines.metrics.Window`."""
        return _window(self.first, self.last)

    @property
    def previous_window(self) -> Window:
        """The period before, as a window."""
        return _window(self.previous_first, self.previous_last)

    @property
    def days(self) -> int:
        """Length in days."""
        return (self.last - self.first).days + 1

    @property
    def label(self) -> str:
        """'March 2026', 'Week 9, 2026 (23 Feb – 1 Mar 2026)', 'Q1 2026 (Jan – Mar 2026)' or '1–15 Mar 2026' (days as
        :func:`day_span`)."""
        if self.kind == "month":
            return f"{self.first:%B %Y}"
        if self.kind == "quarter":
            return _quarter_words(self.first)
        if self.kind == "week":
            return f"Week {self.first.isocalendar().week}, {self.first.isocalendar().year} ({self.window.label})"
        return self.window.label

    @property
    def in_words(self) -> str:
        """The period inside a sentence or a title, with at most one pair of brackets: 'March 2026',
        'week 9, 2026 (23 Feb – 1 Mar 2026)' or '1–15 Mar 2026'."""
        if self.kind == "month":
            return f"{self.first:%B %Y}"
        if self.kind == "quarter":
            return _quarter_words(self.first)
        span = day_span(self.first, self.last)
        if self.kind == "week":
            return f"week {self.first.isocalendar().week}, {self.first.isocalendar().year} ({span})"
        return span

    @property
    def previous_label(self) -> str:
        """The period before, in words ('February 2026', 'week 8 (16–22 Feb 2026)', '14–28 Feb 2026')."""
        if self.kind == "month":
            return f"{self.previous_first:%B %Y}"
        if self.kind == "quarter":
            return _quarter_words(self.previous_first)
        if self.kind == "week":
            return f"week {self.previous_first.isocalendar().week} ({self.previous_window.label})"
        return self.previous_window.label

    @property
    def within(self) -> str:
        """The period after a verb: 'in March 2026', 'in 1–15 Mar 2026', 'on 15 Oct 2026' (one day)."""
        return f"{'on' if self.kind == 'range' and self.days == 1 else 'in'} {self.label}"

    @property
    def versus(self) -> str:
        """What the period is compared with, after "vs": 'September 2026', 'week 8 (16–22 Feb 2026)', 'the 30 days
        before', 'the day before'."""
        if self.kind != "range":
            return self.previous_label
        return "the day before" if self.days == 1 else f"the {metrics.count_of(self.days, 'day')} before"

    @property
    def versus_in_full(self) -> str:
        """:attr:`versus` with a range's days too: 'the 30 days before (2 Sep – 1 Oct 2026)'."""
        return f"{self.versus} ({self.previous_window.label})" if self.kind == "range" else self.previous_label

    def to_dict(self) -> dict:
        """JSON form for the manifest and the index."""
        return {"name": self.name, "kind": self.kind, "label": self.label, "first": self.first.isoformat(),
                "last": self.last.isoformat(), "previous_first": self.previous_first.isoformat(),
                "previous_last": self.previous_last.isoformat(), "previous_label": self.previous_label}


def _window(first: date, last: date) -> Window:
    return Window(pd.Timestamp(first, tz="UTC"), pd.Timestamp(last, tz="UTC") + pd.Timedelta(days=1))


def month_period(year: int, month: int) -> Period:
    """The calendar month, compared with the month before."""
    first = date(year, month, 1)
    last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    previous_last = first - timedelta(days=1)
    return Period(f"{year:04d}-{month:02d}", "month", first, last, previous_last.replace(day=1), previous_last)


def _quarter_words(first: date) -> str:
    """'Q3 2026 (Jul – Sep 2026)' for the quarter starting on ``first``."""
    last_month = date(first.year, first.month + 2, 1)
    return f"Q{(first.month - 1) // 3 + 1} {first.year} ({first:%b} – {last_month:%b %Y})"


def quarter_period(year: int, quarter: int) -> Period:
    """The calendar quarter (Q1 = January to March), compared with the quarter before."""
    first = date(year, 3 * quarter - 2, 1)
    last = month_period(year, 3 * quarter).last
    previous_last = first - timedelta(days=1)
    previous_first = month_period(previous_last.year, previous_last.month - 2).first
    return Period(f"{year:04d}-Q{quarter}", "quarter", first, last, previous_first, previous_last)


def week_period(year: int, week: int) -> Period:
    """The ISO week (Monday to Sunday), compared with the week before."""
    first = date.fromisocalendar(year, week, 1)
    return Period(f"{year:04d}-W{week:02d}", "week", first, first + timedelta(days=6), first - timedelta(days=7),
                  first - timedelta(days=1))


def range_period(first: date, last: date) -> Period:
    """Any span of days, compared with as many days before it."""
    days = (last - first).days + 1
    return Period(f"{first.isoformat()}..{last.isoformat()}", "range", first, last, first - timedelta(days=days),
                  first - timedelta(days=1))


def period_of_days(first: date, last: date) -> Period:
    """The period the days ``first`` to ``last`` make: a calendar month, quarter or ISO week when they are exactly
    one, compared with the one before (as a snapshot of it is), else a range compared with as many days before.

    The dashboard reads a date filter this way, so that its figures for October are a snapshot's for October.

    Example:
        >>> period_of_days(date(2026, 10, 1), date(2026, 10, 31)).previous_label
        'September 2026'
        >>> period_of_days(date(2026, 10, 2), date(2026, 10, 31)).versus_in_full
        'the 30 days before (2 Sep – 1 Oct 2026)'
    """
    if first.day == 1 and last == month_period(first.year, first.month).last:
        return month_period(first.year, first.month)
    if first.day == 1 and first.month % 3 == 1 and last == quarter_period(first.year, first.month // 3 + 1).last:
        return quarter_period(first.year, first.month // 3 + 1)
    if first.isoweekday() == 1 and (last - first).days == 6:
        iso = first.isocalendar()
        return week_period(iso.year, iso.week)
    return range_period(first, last)


def parse_period(text: str, last_day: date | None) -> Period:
    """Read a period the way people write it; relative forms count back from the run's last message day.

    ``last-week`` is the last complete ISO week (Monday–Sunday) up to ``last_day``; ``last-month`` the
    last complete calendar month. Relative forms resolve to the same name as the explicit form
    (``last-month`` run in April is ``2026-03``), so a scheduled snapshot and a hand-made one of the same
    period share one folder.

    Raises:
        InputError: the text is none of the accepted forms, names an impossible date, or is relative while
            the run has no dates. The message names the value and the accepted forms.
    """
    raw = text
    text = text.strip()
    forms = "Use one of: " + "; ".join(PERIOD_FORMS) + "."
    if text.lower() in RELATIVE_PERIODS:
        if last_day is None:
            raise InputError(f'--period "{raw}": this run has no dates, so there is no last week, month or quarter.',
                             fix="Analyse a file with a date column (--date COLUMN) to make snapshots.")
        if text.lower() == "last-quarter":  # the last complete quarter up to the run's last message day
            quarter, year = (last_day.month - 1) // 3 + 1, last_day.year
            ends_it = (last_day + timedelta(days=1)).month != last_day.month and last_day.month % 3 == 0
            if not ends_it:  # the quarter of the last message is not over: the one before it
                quarter, year = (quarter - 1, year) if quarter > 1 else (4, year - 1)
            return quarter_period(year, quarter)
        if text.lower() == "last-week":
            end = last_day if last_day.isoweekday() == 7 else last_day - timedelta(days=last_day.isoweekday())
            iso = end.isocalendar()
            return week_period(iso.year, iso.week)
        month_end = last_day if (last_day + timedelta(days=1)).day == 1 else last_day.replace(day=1) - timedelta(days=1)
        return month_period(month_end.year, month_end.month)
    def day(value: str) -> date:
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise InputError(f'--period "{raw}": {value} is not a day of the calendar.', fix=forms) from None

    if m := _MONTH.fullmatch(text):
        year, month = int(m.group(1)), int(m.group(2))
        if not 1 <= month <= 12:
            raise InputError(f'--period "{raw}": there is no month {month}; months go from 01 to 12.', fix=forms)
        return month_period(year, month)
    if m := _WEEK.fullmatch(text):
        year, week = int(m.group(1)), int(m.group(2))
        weeks = date(year, 12, 28).isocalendar().week  # the 28th of December is always in the year's last week
        if not 1 <= week <= weeks:
            raise InputError(f'--period "{raw}": {year} has weeks W01 to W{weeks}.', fix=forms)
        return week_period(year, week)
    if m := _QUARTER.fullmatch(text):
        quarter = int(m.group(2))
        if not 1 <= quarter <= 4:
            raise InputError(f'--period "{raw}": there is no quarter {quarter}; quarters go from Q1 to Q4.', fix=forms)
        return quarter_period(int(m.group(1)), quarter)
    if m := _RANGE.fullmatch(text):
        first, last = day(m.group(1)), day(m.group(2))
        if first > last:
            raise InputError(f'--period "{raw}": the first day is after the last day.',
                             fix=f"Write the earlier day first: {last}..{first}.")
        return range_period(first, last)
    raise InputError(f'--period "{raw}" is not a period this command understands.', fix=forms)


# ---------------------------------------------------------------------------------------------- filters


def _metadata_columns(run: Run) -> list[str]:
    return [c for c in run.manifest.get("columns", {}).get("metadata", []) or [] if c in run.messages]


def _tag_columns(run: Run) -> dict[str, str]:
    """The run's columns of tags, with their separators: those named as tags, or found by their values."""
    return metrics.tag_separators(run.messages, _metadata_columns(run), run.manifest.get("columns", {}).get("tags"))


def _one_casefold_match(given: str, names: Sequence[str]) -> str:
    """``given`` itself when it is one of ``names``, else the one name equal to it but for case, else ``given``."""
    if given in names:
        return given
    alike = [n for n in names if n.casefold() == given.casefold()]
    return alike[0] if len(alike) == 1 else given


def parse_filters(specs: Sequence[str], run: Run) -> MessageFilter:
    """``column=value`` pairs as a filter: ``topic`` (id or label), ``sentiment``, or a metadata column.

    The same column given twice keeps messages with either value; different columns must all match. Columns
    and values may differ in case from the run's ("product=mortgage" for Product = Mortgage) where that is
    not ambiguous.

    Raises:
        InputError: a pair without ``=``, an unknown column, or a value the run does not have (the
            message lists the columns or values there are).
    """
    labels = metrics.topic_labels(run.topics)
    columns = _metadata_columns(run)
    tags = _tag_columns(run)
    numeric = metrics.numeric_ranges(run.messages, columns)
    ranges: dict[str, tuple[float, float]] = {}
    topics: list[int] = []
    sentiments: list[str] = []
    meta: dict[str, list[str]] = {}
    for spec in specs:
        column, sep, value = spec.partition("=")
        column, value = column.strip(), value.strip()
        if not sep or not column:
            raise InputError(f'--filter "{spec}" is not column=value.', fix="Write e.g. --filter channel=email.")
        column = _one_casefold_match(column, ["topic", "sentiment", *columns])
        if column == "topic":
            by_label = {label.casefold(): t for t, label in labels.items()}
            if value.lstrip("-").isdigit() and int(value) in labels:
                topics.append(int(value))
            elif value.casefold() in by_label:
                topics.append(by_label[value.casefold()])
            else:
                raise InputError(f'--filter "{spec}": this run has no topic "{value}".',
                                 fix="Give a topic id or its exact label (the dashboard's Topics page lists them).")
        elif column == "sentiment":
            if value.lower() not in metrics.SENTIMENT_LABELS:
                allowed = ", ".join(metrics.SENTIMENT_LABELS)
                raise InputError(f'--filter "{spec}": sentiment is one of {allowed}.',
                                 fix=f"Write e.g. --filter sentiment={metrics.SENTIMENT_LABELS[0]} (one of {allowed}).")
            sentiments.append(value.lower())
        elif column in numeric:
            ranges[column] = _range_of(spec, column, value, numeric[column])
        elif column in columns:
            values = metrics.metadata_as_text(run.messages[column]).unique()
            if column in tags:  # a column of tags is filtered by tag ("tags=urgent" keeps "billing, urgent")
                values = metrics.distinct_tags(values, tags[column])
            value = _one_casefold_match(value, [str(v) for v in values])
            if value not in values:
                shown = sorted(map(str, values))[:20]
                more = f" (and {len(values) - 20} more)" if len(values) > 20 else ""
                # Quoted: values such as "Credit reporting, credit repair services" hold commas themselves.
                raise InputError(f'--filter "{spec}": no message has {column} = "{value}".',
                                 fix=f"Values of {column}: {', '.join(json.dumps(v, ensure_ascii=False) for v in shown)}{more}.")
            meta.setdefault(column, []).append(value)
        else:
            known = ", ".join(["topic", "sentiment", *columns])
            raise InputError(f'--filter "{spec}": "{column}" is not a column of this run.', fix=f"Filter on one of: {known}.")
    return MessageFilter(topics=tuple(sorted(set(topics))),
                         sentiments=tuple(s for s in metrics.SENTIMENT_LABELS if s in sentiments),
                         metadata=tuple((c, tuple(sorted(set(v)))) for c, v in sorted(meta.items())),
                         tags=tuple((c, tags[c]) for c in sorted(meta) if c in tags),
                         ranges=tuple((c, *r) for c, r in sorted(ranges.items())))


def _range_of(spec: str, column: str, value: str, bounds: tuple[float, float]) -> tuple[float, float]:
    """``LOW..HIGH`` of a ``--filter`` on a numeric column of many values; a bound left out is the run's."""
    given = metrics.parse_range(value)
    picked = None if given is None else (bounds[0] if given[0] is None else given[0],
                                         bounds[1] if given[1] is None else given[1])
    example = f"{bounds[0]:.10g}..{bounds[1]:.10g}"
    if picked is None or picked[0] > picked[1]:
        raise InputError(f'--filter "{spec}": {column} is filtered by a range of numbers.',
                         fix=f"Write --filter {column}=LOW..HIGH, e.g. {column}={example} (this run's lowest and "
                             f"highest), or leave a bound out ({column}=100..).")
    return picked


def filter_dict(f: MessageFilter) -> dict:
    """A filter (without dates) as sorted JSON, the same for the same filter however it was given."""
    out = {"topics": sorted(int(t) for t in f.topics), "sentiments": sorted(f.sentiments),
           "metadata": {c: sorted(v) for c, v in sorted(f.metadata) if v}}
    if f.ranges:  # only when given, so that the names and hashes of snapshots without one stay as they were
        out["ranges"] = {c: [low, high] for c, low, high in sorted(f.ranges)}
    return out


def filter_words(f: MessageFilter, labels: Mapping[int, str], longest: int | None = None) -> list[str]:
    """The filters in words, e.g. ['topic “coffee · beans”', 'negative', 'channel: email'], to be joined with "; ":
    a topic's name is quoted, since its keywords are joined with "·" ("topic: tea · green · black · negative" read
    as if "negative" were a fourth keyword). ``longest``: names are shortened to that many characters."""
    parts = []
    if f.topics:
        names = [labels.get(t, str(t)) for t in sorted(f.topics)]
        names = [charts.short_label(n, longest) if longest else n for n in names]
        parts.append(("topic " if len(names) == 1 else "topics ") + ", ".join(f"“{n}”" for n in names))
    if f.sentiments:
        parts.append(" or ".join(f.sentiments))
    parts += [f"{metrics.column_words(column)}: {', '.join(metrics.metadata_value_text(v) for v in values)}"
              for column, values in sorted(f.metadata) if values]
    parts += [f"{metrics.column_words(column)}: {low:,.10g}–{high:,.10g}" for column, low, high in sorted(f.ranges)]
    return parts


def snapshot_name(period: Period, f: MessageFilter, run_id: str | None = None) -> str:
    """The folder name: the period's name, plus a readable tag and a short hash when filtered, plus
    ``--run-<run id>`` when ``run_id`` is given (a snapshot kept beside an earlier one from another run:
    see :func:`choose_name`)."""
    d = filter_dict(f)
    name = period.name
    if d["topics"] or d["sentiments"] or d["metadata"] or d.get("ranges"):
        words = [f"topic-{t}" for t in d["topics"]] + d["sentiments"]
        words += [f"{c}-{'-'.join(v)}" for c, v in d["metadata"].items()]
        words += [f"{c}-{low:g}-to-{high:g}" for c, (low, high) in d.get("ranges", {}).items()]
        tag = re.sub(r"[^a-z0-9]+", "-", "-".join(words).lower()).strip("-")[:40].strip("-")
        digest = hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:6]
        name = f"{period.name}--{tag}-{digest}" if tag else f"{period.name}--{digest}"
    if run_id is not None:
        name += "--run-" + (re.sub(r"[^A-Za-z0-9]+", "-", run_id).strip("-") or "unknown")
    return name


# ---------------------------------------------------------------------------------------------- content


@dataclass
class Quote:
    """One example message for an issue."""

    date: pd.Timestamp | None
    sentiment: float
    text: str
    message_id: str
    metadata: dict[str, str] = field(default_factory=dict)
    """Metadata values of the message (e.g. ``{"rating": "1"}``), blank ones left out."""


@dataclass
class Card:
    """A headline figure: its value, change and previous value as shown, and whether the change is good news."""

    label: str
    value: str
    change: str
    previous: str
    tone: str = ""
    """``"good"``, ``"bad"`` or ``""`` (neither: more messages is not good or bad in itself)."""


@dataclass
class Section:
    """One part of a snapshot, shown the same way by every output (HTML, XLSX/CSV, PNG, slides).

    Attributes:
        key: stable id, also the CSV and PNG file name stem.
        title: heading (and slide title).
        text: short plain-text paragraphs under the heading.
        figures: charts of the section, ``(file stem, Figure)``; each becomes a PNG and a slide.
        table: the section's numbers for the spreadsheet and CSV (column names as people read them).
        sheet: the spreadsheet sheet (and CSV file) holding ``table``; ``None`` for none.
        formats: number format per column of ``table`` (Excel codes); a list gives one per row.
        meta: ``(label, value)`` rows written above the table on its sheet.
        cards: headline figures.
        display: the table as shown in the report and on a slide (strings), when it should be shown.
        quotes: ``(issue, reason, quotes)`` blocks.
        slide_table: put ``display`` on a slide (sections without figures).
        group_by: a column of ``display`` that splits it into titled groups in the report.
        empty: when the section has nothing to show (no message, no issue, nothing to compare with), the one line
            that says so; such a section has no figures, and the report and the slides both show this line
            (``text`` then holds only notes).
    """

    key: str
    title: str
    text: list[str] = field(default_factory=list)
    figures: list[tuple[str, go.Figure]] = field(default_factory=list)
    table: pd.DataFrame | None = None
    sheet: str | None = None
    formats: dict[str, str | list[str | None]] = field(default_factory=dict)
    meta: list[tuple[str, object]] = field(default_factory=list)
    cards: list[Card] = field(default_factory=list)
    display: pd.DataFrame | None = None
    quotes: list[tuple[str, str, list[Quote]]] = field(default_factory=list)
    slide_table: bool = False
    group_by: str | None = None
    empty: str | None = None


@dataclass
class Snapshot:
    """Everything a snapshot shows, computed once; the writers only format it."""

    name: str
    period: Period
    run_id: str
    run_manifest: dict
    filter: MessageFilter
    filter_words: list[str]
    settings: SnapshotSettings
    counts: dict
    summary: dict
    """Per-topic and per-area figures kept in ``snapshot.json`` so that the next snapshot can say what changed."""
    previous_name: str | None
    sections: list[Section]

    @property
    def time_zone(self) -> str:
        """The zone whose days the snapshot counts: its run's (:attr:`pipelines.store.Run.time_zone`)."""
        return run_time_zone(self.run_manifest)

    @property
    def title(self) -> str:
        """'Feedback snapshot: March 2026'."""
        return f"Feedback snapshot: {self.period.label}"

    @property
    def subtitle(self) -> str:
        """Period, comparison, run and filters in one line."""
        run = files_in_words(self.run_manifest)
        parts = [day_span(self.period.first, self.period.last),
                 f"compared with {self.period.previous_label}", f"run {self.run_id}" + (f" ({run})" if run else "")]
        parts.append("filtered to " + "; ".join(self.filter_words) if self.filter_words else "all messages")
        return " · ".join(parts)


COUNT, SHARE, SENTIMENT = "#,##0", "0.0%", "+0.00;-0.00;0.00"
PERCENT = '0.0"%"'
"""A percentage already multiplied by 100 (25.3 shows 25.3%), as in the summary's tidy table."""
CHANGE_COUNT, CHANGE_PTS = "+#,##0;-#,##0;0", '+0.0" pts";-0.0" pts";0.0" pts"'
# A change in percent as a fraction (0.27), which the spreadsheet and CSVs write as a percentage (27).
CHANGE_SHARE, CHANGE_PERCENT = "+0%;-0%;0%", '+0"%";-0"%";0"%"'
DAY, MONTH, DATETIME, RATIO = "yyyy-mm-dd", "mmm yyyy", "yyyy-mm-dd hh:mm", '0.0"×"'


def _f(x: object) -> float | None:
    """A plain float, or None for missing/NaN (JSON and spreadsheets have no NaN)."""
    if x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return None if not np.isfinite(v) else round(v, 6)


def _int(x: object) -> int | None:
    v = _f(x)
    return None if v is None else int(round(v))


def _trend_span(period: Period, n: int) -> tuple[date, Granularity]:
    """Where the trend charts start, and their time step: ``n`` periods ending with this one."""
    if period.kind in ("month", "quarter"):  # a quarter by months too: a year of quarters is only four points
        first = period.last.replace(day=1)
        for _ in range(n - 1):
            first = (first - timedelta(days=1)).replace(day=1)
        return first, "month"
    if period.kind == "week":
        return period.first - timedelta(days=7 * (n - 1)), "week"
    first = period.first - timedelta(days=period.days * (n - 1))
    step = metrics.default_granularity(first, period.last)
    # Whole months and weeks from the start: a chart starting mid-April drew April's half as a fall.
    if step == "month":
        first = first.replace(day=1)
    elif step == "week":
        first -= timedelta(days=first.weekday())
    return first, step


def _trend_words(period: Period, start: date, step: Granularity, n: int, data_first: date | None = None) -> str:
    """What the trend charts span: 'the 12 months up to the end of October 2026', or for a range (its steps are
    not whole periods of its own) 'from 1 Apr to 15 Oct 2026, by month', from the run's first day if later."""
    if period.kind in ("month", "quarter", "week"):
        return f"the {count_of(n, step)} up to the end of {period.in_words}"
    start = max(start, data_first) if data_first is not None and data_first <= period.last else start
    return f"from {format_date(start)} to {format_date(period.last)}, by {step}"


_SENTENCE_ENDS = re.compile(r"[.!?][\"')\]]*(?= )")


def _clip(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters (plus " …"): at its last sentence end when that keeps half of it,
    else at a word. A sentence cut in the middle can say the opposite of its end ("We will never use …" of
    "We will never use another kind!")."""
    flat = " ".join(str(text).split())
    if len(flat) <= limit:
        return flat
    ends = [m.end() for m in _SENTENCE_ENDS.finditer(flat, 0, limit)]
    if ends and ends[-1] >= limit // 2:
        return flat[:ends[-1]] + " …"
    cut = flat[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:") + " …"


def _period_dates(periods: pd.Series) -> pd.Series:
    """Period starts as naive dates for spreadsheets (Excel has no time zones)."""
    p = pd.to_datetime(periods)
    return (p.dt.tz_convert("UTC").dt.tz_localize(None) if p.dt.tz is not None else p).dt.normalize()


def build_snapshot(run: Run, period: Period, f: MessageFilter | None = None,
                   settings: SnapshotSettings | None = None, previous: dict | None = None,
                   name: str | None = None) -> Snapshot:
    """Compute a snapshot's content: every number, table and figure, in the order the report shows them.

    Args:
        run: the loaded run.
        period: the period to show (see :func:`parse_period`).
        f: topic, sentiment and metadata filters (dates come from the period; any in ``f`` are ignored).
        settings: sizes and counts (defaults when None).
        previous: the ``snapshot.json`` of the previous snapshot, for "what changed"; ``None`` for none.
        name: the folder name (:func:`choose_name`); :func:`snapshot_name` of the period and filters when None.

    Pure: reads nothing from disk and writes nothing; the same inputs give the same content.
    """
    settings = settings or SnapshotSettings()
    f = replace(f or MessageFilter(), start=None, end=None)
    labels = metrics.topic_labels(run.topics)
    history = metrics.filter_messages(run.messages, f)
    current, before = period.window, period.previous_window
    dates = history["date"] if "date" in history else pd.Series(pd.NaT, index=history.index)
    rows = history[current.contains(dates)]
    rows_before = history[before.contains(dates)]
    names = expectations.area_names(run.messages, run.manifest)
    words = filter_words(f, labels)

    period_table = metrics.topic_table(rows, run.topics)
    first = metrics.history_start(run.messages)  # no change is measured against days before it
    change = metrics.topic_table(history, run.topics, current, before, history_start=first)
    period_table = period_table.merge(change[["topic", "previous", "change", "change_pct"]], on="topic", how="left")
    nothing = _no_messages(bool(words))
    sections = [
        _headline(history, period, current, before, run, first),
        _top_topics(period_table, period, settings, nothing, int((rows["topic"] == NO_TOPIC).sum()) if len(rows) else 0),
        _movers(history, run, period, current, before, settings, first),
        _emerging(history, run, period, current, first),
        *_trends(history, rows, labels, period_table, period, settings, nothing),
    ]
    gaps = _gaps(rows, run, names, period, nothing) if names is not None else None
    if gaps is not None:
        sections.append(gaps[0])
    issues = sections[3].table
    sections.append(_examples(rows, period_table, issues, labels, run, settings, nothing))
    seen = set(history.loc[(dates < current.start).to_numpy(), "topic"].astype(int))
    summary = _summary(rows, period_table, run, gaps[1] if gaps is not None else None, names, seen)
    sections.insert(1, changes_section(previous, summary, period, settings))
    counts = {"messages_in_period": len(rows), "messages_previous_period": len(rows_before),
              **({"messages_matching_filters": len(history)} if words else {}), "messages_in_run": len(run.messages),
              "topics_in_period": int(period_table.shape[0])}
    return Snapshot(name=name or snapshot_name(period, f), period=period, run_id=run.id, run_manifest=run.manifest, filter=f,
                    filter_words=words, settings=settings, counts=counts, summary=summary,
                    previous_name=(previous or {}).get("name"), sections=sections)


SUMMARY_UNITS = {"count": "messages or topics", "percent": "0 to 100, its change in percentage points",
                 "score": "mean sentiment, −1 to +1"}
"""The units of the Summary sheet (and ``csv/summary.csv``): every number of a row is in its ``Unit``."""


def _no_messages(filtered: bool) -> str:
    """The empty state of a section without messages, as a template for ``str.format`` with where:
    'No message in {} matches the filters.' ('No message in {}.' without filters)."""
    return "No message in {}" + (" matches the filters." if filtered else ".")


def _headline(history: pd.DataFrame, period: Period, current: Window, before: Window, run: Run,
              first: pd.Timestamp | None) -> Section:
    zone, data_last = run.time_zone, metrics.last_day(run.messages)
    h = metrics.headline(history, current, before, history_start=first)
    # (label, change, kind for format_change, card format, unit, value format, change format, good direction)
    figures = (("Messages", h.messages, "count", format_count, "count", COUNT, CHANGE_COUNT, 0),
               ("Share negative", h.share_negative, "share", lambda x: format_share(x, 1), "percent", PERCENT,
                CHANGE_PTS, -1),
               ("Mean sentiment", h.mean_sentiment, "sentiment", format_sentiment, "score", SENTIMENT, SENTIMENT, 1),
               ("Active topics", h.active_topics, "count", format_count, "count", COUNT, CHANGE_COUNT, 0))
    cards, records, value_formats, change_formats = [], [], [], []
    for label, c, kind, fmt, unit, value_format, change_format, good in figures:
        flat = c.delta is None or change_rounds_to_zero(c, kind)  # "0.0 pts" is neither good nor bad news
        tone = "" if not good or flat else "good" if c.delta * good > 0 else "bad"
        cards.append(Card(label, fmt(c.current), format_change(c, kind) or "–", fmt(c.previous), tone))
        # One unit per row, numbers only: a share as a percentage (25.3), so that its change (+4.1) is in points.
        scale = 100 if unit == "percent" else 1
        number = _int if unit == "count" else _f
        records.append({"Figure": label,
                        "This period": number(None if c.current is None else c.current * scale),
                        "Previous period": number(None if c.previous is None else c.previous * scale),
                        "Change": number(None if c.delta is None else c.delta * scale), "Unit": unit})
        value_formats.append(value_format)
        change_formats.append(change_format)
    table = pd.DataFrame(records, dtype=object)  # counts stay whole numbers in the CSV ("12", not "12.0")
    text = [f"{count_of(int(h.messages.current or 0), 'message')} {period.within}, against "
            f"{format_count(h.messages.previous)} in {period.previous_label}." if h.messages.previous is not None else
            f"{count_of(int(h.messages.current or 0), 'message')} {period.within}. {nothing_before(first.date())}"]
    if first is not None and period.first < first.date() <= period.last:  # "Q4 2025" of a run that starts in November
        missing = count_of((first.date() - period.first).days, "day")
        text.append(f"The run has no data for this period's first {missing} (before {format_date(first.date())}).")
    if data_last is not None and period.last > data_last:
        text.append(f"The run's messages end on {format_date(data_last)}: this period is not complete yet.")
    return Section("headline", "Headline figures", text=text, cards=cards, table=table, sheet="Summary",
                   formats={"This period": value_formats, "Previous period": value_formats, "Change": change_formats},
                   meta=[("Period", period.label), ("From", period.first), ("To", period.last),
                         ("Compared with", period.previous_label), ("Days counted in", metrics.zone_words(zone)),
                         ("Units", "; ".join(f"{unit}: {words}" for unit, words in SUMMARY_UNITS.items()))])


def _top_topics(table: pd.DataFrame, period: Period, settings: SnapshotSettings, nothing: str,
                unassigned: int = 0) -> Section:
    out = pd.DataFrame({
        "Topic": table["label"], "Messages": table["messages"], "Share of messages": table["share"],
        "Mean sentiment": table["mean_sentiment"], "Share negative": table["share_negative"],
        f"Messages in {period.previous_label}": table["previous"], "Change": table["change"],
        # As the report writes it: "+4", not "+400%", on fewer than 10 messages before.
        "Change %": table["change_pct"].where(table["previous"] >= MIN_BASE_FOR_PERCENT), "Keywords": table["keywords"],
        "Topic id": table["topic"],
    })
    formats = {"Messages": COUNT, "Share of messages": SHARE, "Mean sentiment": SENTIMENT, "Share negative": SHARE,
               f"Messages in {period.previous_label}": COUNT, "Change": CHANGE_COUNT, "Change %": CHANGE_SHARE}
    top = table.head(settings.top_topics)
    display = pd.DataFrame({
        "Topic": top["label"], "Messages": [format_count(v) for v in top["messages"]],
        "Share": [format_share(v) for v in top["share"]],
        "Negative": negative_shares_written(top),  # as the sentiment-by-topic bars write it
        "Sentiment": [format_sentiment(v) for v in top["mean_sentiment"]],
        # Written as on the dashboard's movers chart: '+3 (none before)' for a topic without messages before.
        f"vs {period.previous_label}": [format_topic_change(c, p)
                                        for c, p in zip(top["change"], top["change_pct"], strict=True)]})
    if not len(table):
        return Section("top_topics", "Top topics", table=out, sheet="Topics", formats=formats, display=display,
                       empty=nothing.format(period.in_words))
    fig = charts.top_topics_chart(table, n=settings.top_topics, title=f"Top topics, {period.label}")
    text = [f"{count_of(len(table), 'topic')} had messages {period.within}."]
    if unassigned:  # otherwise the topics' shares add up to less than 100% without a word why
        text[0] += (f" {count_of(unassigned, 'message')} ({format_share(unassigned / (unassigned + table['messages'].sum()))}) "
                    f"{'has' if unassigned == 1 else 'have'} no clear topic and {'is' if unassigned == 1 else 'are'} "
                    "not among them.")
    return Section("top_topics", "Top topics", text=text, figures=[("top_topics", fig)], table=out, sheet="Topics",
                   formats=formats, display=display)


def _movers(history: pd.DataFrame, run: Run, period: Period, current: Window, before: Window,
            settings: SnapshotSettings, first: pd.Timestamp | None) -> Section:
    movers = metrics.biggest_movers(history, run.topics, current, before, n=settings.movers, history_start=first)
    rule = "topics with fewer than 3 messages in both periods are left out"
    if metrics.before_history(before, first):
        return Section("movers", "Biggest movers", empty=nothing_before(first.date()))
    if movers.rising.empty and movers.falling.empty:
        return Section("movers", "Biggest movers", text=[f"Compared with {period.previous_label}; {rule}."],
                       empty=f"No topic's number of messages changed enough to show in {period.in_words}.")
    fig = charts.movers_chart(movers, title=f"Biggest movers: {period.label} vs {period.previous_label}")
    text = [f"Topics whose number of messages changed most against the period before ({rule})."]
    return Section("movers", "Biggest movers", text=text, figures=[("movers", fig)])


def _emerging(history: pd.DataFrame, run: Run, period: Period, current: Window, first: pd.Timestamp | None) -> Section:
    tags = _tag_columns(run)
    columns = list(metrics.metadata_options(run.messages, _metadata_columns(run), tags=tags))
    # A month is compared with the months before it (not with periods of its number of days), as people count.
    found = metrics.emerging_issues(history, run.topics, current, history_start=first,
                                    months=period.kind == "month", columns=columns,
                                    tag_columns=tags)
    # A surge spread over many topics (one product's complaints) passes no topic's test, but its column's.
    rising = [f'Also far above its usual volume: {r.column} "{metrics.metadata_value_text(r.value)}": {r.reason}'
              for r in found.values.itertuples()]
    issues = found.issues
    table = pd.DataFrame({"Topic": issues["label"], "Messages": issues["count"], "Usual": issues["baseline"],
                          "Times usual": issues["ratio"].replace(np.inf, np.nan), "Why": issues["reason"],
                          "Topic id": issues["topic"]}) if len(issues) else None
    if found.note:
        return Section("emerging_issues", "Emerging issues", empty=found.note)
    if table is None and not rising:
        return Section("emerging_issues", "Emerging issues",
                       text=[f"Each topic is compared with its own last {found.baseline_in_words}."],
                       empty=f"No emerging issue in {period.in_words}: no topic is far above its usual volume.")
    if table is None:
        return Section("emerging_issues", "Emerging issues",
                       text=[f"No topic is far above its usual volume in {period.in_words} (each is compared with its "
                             f"own last {found.baseline_in_words}).", *rising])
    text = [f"Topics far above their own usual volume, compared with their last {found.baseline_in_words}.", *rising]
    return Section("emerging_issues", "Emerging issues", text=text, table=table, sheet="Emerging issues",
                   formats={"Messages": COUNT, "Usual": "0.0", "Times usual": RATIO},
                   display=table[["Topic", "Messages", "Why"]], slide_table=True)


def _trends(history: pd.DataFrame, rows: pd.DataFrame, labels: dict[int, str], period_table: pd.DataFrame,
            period: Period, settings: SnapshotSettings, nothing: str) -> list[Section]:
    start, step = _trend_span(period, settings.trend_periods)
    span = history[_window(start, period.last).contains(history["date"])] if "date" in history else history.iloc[:0]
    word = {"day": "day", "week": "week", "month": "month"}[step]
    volume = metrics.volume_over_time(span, step)
    top = [int(t) for t in period_table["topic"].head(settings.trend_topics)]
    drawn = volume[volume["topic"].isin(top)] if len(volume) else volume
    fig = charts.topic_volume_chart(drawn, labels, step,
                                    title=f"Messages per topic, by {word}: the largest topics of {period.in_words}")
    wide = pd.DataFrame()
    if len(volume):
        shown = [int(t) for t in period_table["topic"].head(settings.top_topics)]
        grid = volume.pivot_table(index="period", columns="topic", values="count", aggfunc="sum", fill_value=0)
        wide = pd.DataFrame({"Period": _period_dates(pd.Series(grid.index)).to_numpy(),
                             "All messages": grid.sum(axis=1).to_numpy()})
        for t in shown:
            wide[labels.get(t, f"Topic {t}")] = grid[t].to_numpy() if t in grid else 0
    trend_formats = {c: COUNT for c in wide.columns if c != "Period"} | {"Period": MONTH if step == "month" else DAY}
    oldest = metrics.history_start(history)
    spanned = _trend_words(period, start, step, settings.trend_periods, None if oldest is None else oldest.date())
    trends = Section("trends", "Trends", text=[f"{spanned[:1].upper()}{spanned[1:]}; the last {word} may be partial."],
                     figures=[("trends", fig)], table=wide, sheet="Trends", formats=trend_formats)
    if drawn.empty:  # the largest topics of the period: none without messages in it (nor a caption of a chart)
        trends = replace(trends, figures=[], text=[], empty=nothing.format(period.in_words))

    series = metrics.sentiment_over_time(span, step)
    sfig = charts.sentiment_chart(series, step, title=f"Sentiment and volume, by {word}")
    stable = pd.DataFrame({"Period": _period_dates(series["period"]) if len(series) else [],
                           "Messages": series["messages"], "Mean sentiment": series["mean_sentiment"],
                           "Share negative": series["share_negative"], "Share positive": series["share_positive"]})
    counts = metrics.sentiment_counts(rows) if len(rows) else {}
    total = sum(counts.values())
    text = ["Mean sentiment from −1 (very negative) to +1 (very positive), with the number of messages it stands on."]
    if total:  # shares of one whole, shown together: rounded to add up to 100%
        shares = format_shares(list(counts.values()))
        text.append(f"In {period.label}: " + ", ".join(f"{share} {k}" for share, k in zip(shares, counts, strict=True))
                    + ".")
    figures = [("sentiment", sfig)]
    if len(period_table) and (period_table["messages"] >= charts.TOPIC_SENTIMENT_MIN_MESSAGES).any():  # no empty chart
        figures.append(("sentiment_by_topic", charts.topic_sentiment_chart(
            period_table, title=f"Sentiment by topic, {period.label}")))
    sentiment = Section("sentiment", "Sentiment over time", text=text, figures=figures, table=stable,
                        sheet="Sentiment", formats={"Period": MONTH if step == "month" else DAY, "Messages": COUNT,
                                                    "Mean sentiment": SENTIMENT, "Share negative": SHARE,
                                                    "Share positive": SHARE})
    if span.empty:
        sentiment = replace(sentiment, figures=[], text=text[:1], empty=nothing.format(spanned))
    elif rows.empty:  # the weeks before are drawn: say why this one is not on the chart
        sentiment.text.append(nothing.format(period.in_words) + f" The chart shows {spanned} for what came before.")
    return [trends, sentiment]


MIN_MENTIONS_TO_RANK, NOT_RANKED = expectations.MIN_MENTIONS_TO_RANK, expectations.NOT_RANKED


def _gaps(rows: pd.DataFrame, run: Run, names: dict[str, str], period: Period,
          nothing: str) -> tuple[Section, pd.DataFrame]:
    keys = list(names)
    rating = expectations.rating_column(rows, _metadata_columns(run))
    table = expectations.area_gap_table(rows, keys, rating_col=rating) if len(rows) else pd.DataFrame(
        columns=["area", "mentions", "share", "statements", "unmet", "met", "unmet_rate", "mean_sentiment",
                 "importance", "performance"])
    table = table[table["mentions"] > 0].reset_index(drop=True)
    ipa = expectations.ipa_table(table) if len(table) else table.assign(quadrant=pd.Series(dtype=str))
    outcome = rating or "sentiment"
    figs = [("ipa", charts.ipa_chart(ipa, names, outcome)), ("gaps", charts.area_gap_bars(table, names))]
    # Quadrants and "fix first" only where the chart names them: with fewer than 3 areas the placement is forced
    # (see charts.ipa_quadrants), and a lone area at 100% unmet would otherwise read "keep it up".
    quadrants = charts.ipa_quadrants(ipa)
    # Ranked on enough messages only (ipa_table): "fix first" on 5 mentions (one unhappy customer) is no finding.
    quadrant = {a: q for a, q in zip(ipa["area"], ipa["quadrant"], strict=True) if quadrants or q == NOT_RANKED}
    ranked = int((ipa["quadrant"] != NOT_RANKED).sum()) if len(ipa) else 0
    out = pd.DataFrame({
        "Expectation area": [names.get(a, a) for a in table["area"]], "Messages": table["mentions"],
        "Share of messages": table["share"], "Expectation statements": table["statements"], "Unmet": table["unmet"],
        # A share of 1 or 3 statements ("100%") reads as a finding: below the base the counts say it.
        "Unmet rate": table["unmet_rate"].where(table["statements"] >= MIN_BASE_FOR_PERCENT),
        "Mean sentiment": table["mean_sentiment"],
        "Importance": table["importance"], "Performance": table["performance"],
        # An area too little mentioned is not in the chart's table at all: 'not ranked' all the same, as the note says.
        "Quadrant": [quadrant.get(a) or (NOT_RANKED if m < MIN_MENTIONS_TO_RANK else "")
                     for a, m in zip(table["area"], table["mentions"], strict=True)], "Area key": table["area"]})
    fix = [names.get(a, a) for a in ipa["area"] if quadrant.get(a) == "fix first"]
    if not ranked:
        verdict = "No expectation area stands out as 'fix first'."
    elif not quadrants:
        verdict = (f"{count_of(ranked, 'area')} with enough messages to place: too few to compare (quadrants need "
                   f"at least {charts.MIN_QUADRANT_AREAS}), so no area is singled out as 'fix first'.")
    else:
        verdict = f"Fix first: {', '.join(fix)}." if fix else "No expectation area stands out as 'fix first'."
    small_print = (f"Areas mentioned in fewer than {count_of(MIN_MENTIONS_TO_RANK, 'message')} are '{NOT_RANKED}', "
                   f"never named 'fix first'; an unmet share on fewer than {count_of(MIN_BASE_FOR_PERCENT, 'statement')} is given "
                   "as counts.")
    text = [verdict,
            f"Importance is how much mentioning an area moves the {outcome}; performance is the mean "
            f"{charts.outcome_words(outcome)} of the messages about it.", small_print]
    display = pd.DataFrame({"Expectation area": out["Expectation area"], "Messages": [format_count(v) for v in
                                                                                     table["mentions"]],
                            "Unmet expectations": [unmet_words(u, n) for u, n in
                                                   zip(table["unmet"], table["statements"], strict=True)],
                            "Quadrant": out["Quadrant"]})
    section = Section("expectation_gaps", "Expectation gaps", text=text, figures=figs, table=out,
                      sheet="Expectation gaps", display=display, slide_table=True,
                      meta=[("Unmet rate", f"blank where fewer than {count_of(MIN_BASE_FOR_PERCENT, 'statement')}: "
                                           "read Unmet of Expectation statements"),
                            ("Quadrant", f"'{NOT_RANKED}' for areas with fewer than "
                                         f"{count_of(MIN_MENTIONS_TO_RANK, 'message')}")],
                      formats={"Messages": COUNT, "Share of messages": SHARE, "Expectation statements": COUNT,
                               "Unmet": COUNT, "Unmet rate": SHARE, "Mean sentiment": SENTIMENT,
                               "Importance": "0.00", "Performance": SENTIMENT})
    if not len(table):  # with no message at all, the section says that, as the others do
        section = replace(section, text=[], figures=[], empty=nothing.format(period.in_words) if rows.empty else
                          "No message in this period mentions an expectation area.")
    return section, table


# A topic with one negative message is no issue to put before a meeting.
MIN_NEGATIVE_TO_QUOTE = 2


def top_issues(period_table: pd.DataFrame, emerging: pd.DataFrame | None, n: int) -> list[int]:
    """The issues to quote: emerging issues first, then the topics with the most negative messages (at least
    :data:`MIN_NEGATIVE_TO_QUOTE`)."""
    found = [int(t) for t in emerging["Topic id"]] if emerging is not None else []
    table = period_table[period_table["topic"] != NO_TOPIC]
    negative = (table["messages"] * table["share_negative"]).round().astype(int)
    ranked = table.assign(_neg=negative).sort_values(["_neg", "messages", "topic"], ascending=[False, False, True])
    ranked = ranked[ranked["_neg"] >= MIN_NEGATIVE_TO_QUOTE]
    found += [int(t) for t in ranked["topic"] if int(t) not in found]
    return found[:n]


# Only the formatting markup review exports carry (links, bold, line breaks): anything else that looks like a
# tag, "<script>" included, is shown as the customer wrote it, as plain text like every message.
_HTML_TAG = re.compile(r"</?(a|b|i|u|em|strong|span|font|p|br)\b[^<>]*>", re.IGNORECASE)


def quote_text(text: str, limit: int) -> str:
    """A message as a quote: the formatting tags some exports carry (``<a href=…>``) removed, cut at a word."""
    # A line or paragraph break becomes a space, so that "tea.<br>I" does not read "tea.I".
    plain = _HTML_TAG.sub(lambda tag: " " if tag.group(1).lower() in ("br", "p") else "", str(text))
    return _clip(re.sub(r" {2,}", " ", plain), limit)


def _metadata_cell(value: object) -> object:
    """A metadata value for the Examples sheet and CSV: as :func:`pipelines.metrics.metadata_value_text` writes it
    (a rating of 1.0 reads "1", as on the dashboard), a whole number kept a number so that a spreadsheet sorts it;
    None when missing."""
    if value is None or pd.api.types.is_scalar(value) and pd.isna(value):
        return None
    text = metrics.metadata_value_text(value)
    if isinstance(value, (float, np.floating)) and re.fullmatch(r"-?\d+", text):
        return int(text)
    return value


def _examples(rows: pd.DataFrame, period_table: pd.DataFrame, emerging: pd.DataFrame | None,
              labels: dict[int, str], run: Run, settings: SnapshotSettings, nothing: str) -> Section:
    blocks, records = [], []
    columns = _metadata_columns(run)
    shown = {c: c if c not in _EXAMPLE_COLUMNS else f"{c} (metadata)" for c in columns}
    why = dict(zip(emerging["Topic id"], emerging["Why"], strict=True)) if emerging is not None else {}
    for topic in top_issues(period_table, emerging, settings.top_issues):
        found = rows[rows["topic"] == topic]
        if topic not in why:
            # Quoted for its negative messages: a glowing review under that heading would contradict it.
            found = found[found["sentiment_label"] == "negative"]
        long = found["text"].astype(str).str.len() > settings.quote_chars
        picked = found.assign(_long=long).sort_values(["_long", "sentiment", "message_id"]).head(settings.quotes_per_issue)
        info = period_table[period_table["topic"] == topic].iloc[0]
        tone = f"{format_share(info['share_negative'])} negative, mean sentiment {format_sentiment(info['mean_sentiment'])}."
        # An emerging issue's tone too: a topic can emerge with praise, and then its quotes are praise.
        reason = (f"Emerging issue: {why[topic]} {tone}" if topic in why
                  else f"{count_of(int(info['messages']), 'message')}, {tone}")
        quotes = []
        for r in picked.to_dict("records"):
            when = r.get("date")
            when = None if when is None or pd.isna(when) else pd.Timestamp(when)
            # Written as the dashboard writes them (metrics' one rule): a rating of 1.0 reads "1".
            meta = {metrics.column_words(c): metrics.metadata_value_text(r[c]) for c in columns
                    if not pd.isna(r.get(c)) and str(r[c]).strip()}
            quote = Quote(when, float(r["sentiment"]), quote_text(r["text"], settings.quote_chars), str(r["message_id"]),
                          meta)
            quotes.append(quote)
            record = {"Issue": labels.get(topic, str(topic)),
                      "Date": None if when is None else when.tz_convert("UTC").tz_localize(None),
                      "Sentiment": quote.sentiment, "Quote": quote.text, "Message": str(r["text"])}
            record |= {shown[c]: _metadata_cell(r.get(c)) for c in columns}
            record["Message id"] = quote.message_id
            records.append(record)
        blocks.append((labels.get(topic, str(topic)), reason, quotes))
    # Object columns: a rating of 1 stays "1" beside 4.5 in the CSV, not "1.0".
    table = pd.DataFrame(records, columns=[*_EXAMPLE_COLUMNS[:5], *shown.values(), "Message id"], dtype=object)
    text = ["The messages of the emerging issues, the most negative first (a topic can also emerge with praise: "
            "then its quotes are praise), and the negative messages of the topics with the most of them (at least "
            f"{MIN_NEGATIVE_TO_QUOTE}). Long quotes are cut at a sentence end or a word, and shown without the links "
            "and formatting tags some exports carry; the Examples sheet has each whole message as written."]
    empty = None
    if not blocks:
        empty = nothing.format("this period") if rows.empty else (
            f"No issue to quote: no emerging issue, and no topic with {MIN_NEGATIVE_TO_QUOTE} or more negative messages.")
    return Section("examples", "Example quotes per top issue", text=[] if empty else text, table=table,
                   sheet="Examples", quotes=blocks, formats={"Date": DATETIME, "Sentiment": SENTIMENT}, empty=empty)


# ------------------------------------------------------------------------------------------ what changed


def _summary(rows: pd.DataFrame, period_table: pd.DataFrame, run: Run, gaps: pd.DataFrame | None,
             names: dict[str, str] | None, seen: set[int] = frozenset()) -> dict:
    """The figures the next snapshot compares with (per topic by label and keywords: ids differ between runs).

    ``seen``: topics with messages before the period, so that one missing from the last snapshot is told apart
    from a topic the data never had ("seen_before")."""
    keywords = {int(t): [str(k) for k in list(kw)[:10]] for t, kw in zip(run.topics["topic"], run.topics["keywords"],
                                                                         strict=True)}
    n = len(rows)
    topics = [{"label": str(r.label), "keywords": keywords.get(int(r.topic), []), "messages": int(r.messages),
               "share": _f(r.share), "mean_sentiment": _f(r.mean_sentiment), "seen_before": int(r.topic) in seen}
              for r in period_table.itertuples() if int(r.topic) != NO_TOPIC]
    areas = [] if gaps is None else [
        {"area": str(r.area), "name": (names or {}).get(r.area, r.area), "mentions": int(r.mentions),
         "statements": int(r.statements), "unmet_rate": _f(r.unmet_rate), "mean_sentiment": _f(r.mean_sentiment)} for r in gaps.itertuples()]
    negative = float((rows["sentiment_label"] == "negative").mean()) if n else None
    return {"messages": n, "share_negative": _f(negative), "mean_sentiment": _f(rows["sentiment"].mean()) if n else None,
            "topics": topics, "areas": areas}


def match_topics(before: list[dict], now: list[dict], min_overlap: float = 0.3) -> dict[int, int]:
    """Pair topics of two snapshots (index in ``now`` → index in ``before``): same label first, then the most
    shared keywords (Jaccard at least ``min_overlap``), since a re-analysed run numbers its topics anew."""
    pairs: dict[int, int] = {}
    taken: set[int] = set()
    by_label = {}
    for j, t in enumerate(before):
        by_label.setdefault(t["label"], j)
    for i, t in enumerate(now):
        j = by_label.get(t["label"])
        if j is not None and j not in taken:
            pairs[i] = j
            taken.add(j)
    scores = []
    for i, t in enumerate(now):
        if i in pairs:
            continue
        a = set(t.get("keywords") or [])
        for j, u in enumerate(before):
            b = set(u.get("keywords") or [])
            if j not in taken and a and b:
                score = len(a & b) / len(a | b)
                if score >= min_overlap:
                    scores.append((-score, i, j))
    for _, i, j in sorted(scores):
        if i not in pairs and j not in taken:
            pairs[i] = j
            taken.add(j)
    return pairs


@dataclass
class Changes:
    """What changed between two snapshots' summaries; each table is empty when nothing qualifies."""

    new: pd.DataFrame
    vanished: pd.DataFrame
    rises: pd.DataFrame
    falls: pd.DataFrame
    sentiment: pd.DataFrame
    gaps: pd.DataFrame
    overall: dict
    returned: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["topic", "messages_now", "share_now"]))
    """Topics missing from the earlier snapshot that had messages before it (a quiet month is not a new topic)."""


def compare(before: dict, now: dict, min_messages: int = 5, n: int = 5, days: tuple[int, int] = (1, 1)) -> Changes:
    """New and vanished topics, biggest rises and falls (in share of messages), sentiment shifts, gap changes.

    Shares are compared rather than counts so that a month of 31 days and one of 28 compare fairly. A rise is a
    topic whose share and whose messages a day (over the periods' ``days``, before and now) both went up, a fall
    one whose both went down: a topic that gained share only because all messages fell, or lost share while its own
    messages grew, would read as the opposite of the counts next to it.
    Topics with fewer than ``min_messages`` in both snapshots are left out of rises and falls, and sentiment shifts
    need :data:`~pipelines.metrics.MIN_BASE_FOR_PERCENT` messages in each.
    """
    pairs = match_topics(before["topics"], now["topics"])
    rows = []
    for i, t in enumerate(now["topics"]):
        if i in pairs:
            b = before["topics"][pairs[i]]
            rows.append({"topic": t["label"], "before_label": b["label"], "messages_before": b["messages"],
                         "messages_now": t["messages"], "share_before": b["share"] or 0.0, "share_now": t["share"] or 0.0,
                         "sentiment_before": b["mean_sentiment"], "sentiment_now": t["mean_sentiment"]})
    matched = pd.DataFrame(rows, columns=["topic", "before_label", "messages_before", "messages_now", "share_before",
                                          "share_now", "sentiment_before", "sentiment_now"])
    matched["share_change"] = matched["share_now"] - matched["share_before"]
    big = matched[(matched["messages_now"] >= min_messages) | (matched["messages_before"] >= min_messages)]
    rate_change = big["messages_now"] / days[1] - big["messages_before"] / days[0]
    rises = big[(big["share_change"] > 0) & (rate_change > 0)]
    falls = big[(big["share_change"] < 0) & (rate_change < 0)]
    rises = rises.sort_values(["share_change", "topic"], ascending=[False, True]).head(n)
    falls = falls.sort_values(["share_change", "topic"], ascending=[True, True]).head(n)
    # A mean of a handful of messages swings by itself (+0.83 → +0.22 on 7 and 5): shifts need as many as percentages.
    steady = max(min_messages, MIN_BASE_FOR_PERCENT)
    both = matched[(matched["messages_now"] >= steady) & (matched["messages_before"] >= steady)]
    both = both.assign(sentiment_change=both["sentiment_now"].astype(float) - both["sentiment_before"].astype(float))
    shifts = both[both["sentiment_change"].abs() >= 0.05]
    shifts = shifts.reindex(shifts["sentiment_change"].abs().sort_values(ascending=False, kind="stable").index).head(n)
    seen_before = set(pairs.values())
    unpaired = [t for i, t in enumerate(now["topics"]) if i not in pairs and t["messages"] >= min_messages]
    new, returned = (pd.DataFrame([{"topic": t["label"], "messages_now": t["messages"], "share_now": t["share"]}
                                   for t in unpaired if bool(t.get("seen_before")) is back],
                                  columns=["topic", "messages_now", "share_now"]).head(n * 2) for back in (False, True))
    vanished = pd.DataFrame([{"topic": t["label"], "messages_before": t["messages"], "share_before": t["share"]}
                             for j, t in enumerate(before["topics"]) if j not in seen_before
                             and t["messages"] >= min_messages],
                            columns=["topic", "messages_before", "share_before"]).head(n * 2)
    areas_before = {a["area"]: a for a in before.get("areas", [])}
    gap_rows = []
    for a in now.get("areas", []):
        b = areas_before.get(a["area"])
        # A change of an unmet share is no news on a few statements (100% → 0% on one each); older snapshots
        # kept no statements, and are compared as before.
        small = min(a.get("statements", MIN_BASE_FOR_PERCENT), (b or {}).get("statements", MIN_BASE_FOR_PERCENT))
        if b and a["unmet_rate"] is not None and b["unmet_rate"] is not None and small >= MIN_BASE_FOR_PERCENT:
            gap_rows.append({"area": a["name"], "unmet_before": b["unmet_rate"], "unmet_now": a["unmet_rate"],
                             "unmet_change": a["unmet_rate"] - b["unmet_rate"], "sentiment_before": b["mean_sentiment"],
                             "sentiment_now": a["mean_sentiment"]})
    gaps = pd.DataFrame(gap_rows, columns=["area", "unmet_before", "unmet_now", "unmet_change", "sentiment_before",
                                           "sentiment_now"])
    gaps = gaps[gaps["unmet_change"].abs() >= 0.005]
    gaps = gaps.reindex(gaps["unmet_change"].abs().sort_values(ascending=False, kind="stable").index).head(n)
    overall = {k: (before.get(k), now.get(k)) for k in ("messages", "share_negative", "mean_sentiment")}
    return Changes(new.reset_index(drop=True), vanished.reset_index(drop=True), rises.reset_index(drop=True),
                   falls.reset_index(drop=True), shifts.reset_index(drop=True), gaps.reset_index(drop=True), overall,
                   returned.reset_index(drop=True))


def changes_section(previous: dict | None, summary: dict, period: Period, settings: SnapshotSettings) -> Section:
    """The "What changed since the last snapshot" section (a note when there is no earlier snapshot)."""
    title = "What changed since the last snapshot"
    if previous is None:
        return Section("changes", title, text=["A snapshot is compared with the latest earlier snapshot of the same "
                                               "kind (same period length and filters) in its folder."],
                       empty="Nothing to compare with: there is no earlier snapshot of this kind.")
    label = previous.get("period", {}).get("label", previous.get("name", "the last snapshot"))
    first, last = (previous.get("period") or {}).get("first"), (previous.get("period") or {}).get("last")
    before_days = _days(previous["period"]) if first and last else period.days
    c = compare(previous["summary"], summary, settings.min_change_messages, settings.movers, (before_days, period.days))
    records: list[dict] = []

    def add(kind: str, item: str, before: object, now: object, change: object, fmt: str, change_fmt: str) -> None:
        # As the Summary sheet writes its figures: one unit per row, a share as a percentage (37.5) so that its
        # difference is in points, counts as whole numbers.
        unit = {COUNT: "count", SHARE: "percent", SENTIMENT: "score"}[fmt]
        number = _int if unit == "count" else _f
        scale = 100 if unit == "percent" else 1
        before, now = (None if v is None else number(v * scale) for v in (before, now))
        records.append({"Change": kind, "What": item, "Before": before, "Now": now, "Difference": number(change),
                        "Unit": unit, "_fmt": PERCENT if unit == "percent" else fmt, "_change_fmt": change_fmt})

    (m0, m1), (n0, n1), (s0, s1) = (c.overall[k] for k in ("messages", "share_negative", "mean_sentiment"))
    add("Overall", "Messages", m0, m1, None if m0 is None or m1 is None else m1 - m0, COUNT, CHANGE_COUNT)
    add("Overall", "Share negative", n0, n1, None if n0 is None or n1 is None else (n1 - n0) * 100, SHARE, CHANGE_PTS)
    add("Overall", "Mean sentiment", s0, s1, None if s0 is None or s1 is None else s1 - s0, SENTIMENT, SENTIMENT)
    for r in c.new.itertuples():
        add("New topic", r.topic, None, r.share_now, None, SHARE, CHANGE_PTS)
    for r in c.returned.itertuples():
        add("Back again", r.topic, None, r.share_now, None, SHARE, CHANGE_PTS)
    for r in c.vanished.itertuples():
        add("Vanished topic", r.topic, r.share_before, None, None, SHARE, CHANGE_PTS)
    for kind, table in (("Rise", c.rises), ("Fall", c.falls)):
        for r in table.itertuples():
            add(kind, r.topic, r.share_before, r.share_now, r.share_change * 100, SHARE, CHANGE_PTS)
    for r in c.sentiment.itertuples():
        add("Sentiment shift", r.topic, r.sentiment_before, r.sentiment_now, r.sentiment_change, SENTIMENT, SENTIMENT)
    for r in c.gaps.itertuples():
        add("Gap change", f"Unmet: {r.area}", r.unmet_before, r.unmet_now, r.unmet_change * 100, SHARE, CHANGE_PTS)
    table = pd.DataFrame(records, dtype=object)  # whole numbers stay whole beside the scores (783, not 783.0)
    fmts = table.pop("_fmt").tolist()
    change_fmts = table.pop("_change_fmt").tolist()
    display = pd.DataFrame({
        "Change": table["Change"], "What": table["What"],
        "Before": [_show(v, f) for v, f in zip(table["Before"], fmts, strict=True)],
        "Now": [_show(v, f) for v, f in zip(table["Now"], fmts, strict=True)],
        "Difference": [_show(v, f) for v, f in zip(table["Difference"], change_fmts, strict=True)]})
    lines = [f"Compared with the snapshot of {label} ({previous.get('name')}, run {previous.get('run', {}).get('id')})."]
    gap = (period.first - date.fromisoformat(last)).days - 1 if last else 0
    if gap > 0:  # a month skipped: the headline figures compare with the period just before, this does not
        lines.append(f"That is not the period just before this one: {count_of(gap, 'day')} lie between them, "
                     "with no snapshot of their own.")
    if not (c.rises.empty and c.falls.empty):
        lines.append("Rises and falls are in share of all messages, counting only topics whose number of messages a "
                     "day moved the same way.")
    if c.new.empty and c.vanished.empty and c.returned.empty:
        lines.append("No topic appeared or vanished.")
    else:
        back = (f", {count_of(len(c.returned), 'topic')} back again after a snapshot without "
                f"{'it' if len(c.returned) == 1 else 'them'}") if len(c.returned) else ""
        lines.append(f"{count_of(len(c.new), 'new topic')}{back} and {count_of(len(c.vanished), 'vanished topic')} "
                     f"with at least {count_of(settings.min_change_messages, 'message')}.")
    return Section("changes", title, text=lines, table=table, sheet="Changes", display=display, slide_table=True,
                   group_by="Change",
                   formats={"Before": fmts, "Now": fmts, "Difference": change_fmts})


def _show(value: object, fmt: str) -> str:
    """A number as the report shows it, following its spreadsheet format."""
    v = _f(value)
    if v is None:
        return "–"
    if fmt == SHARE:
        return format_share(v, 1)
    if fmt == PERCENT:
        return f"{v:.1f}%"
    if fmt == CHANGE_PTS:
        return f"{signed(v, '+.1f')} pts"
    if fmt == SENTIMENT:
        return format_sentiment(v)
    if fmt == CHANGE_COUNT:
        return signed(v, "+,.0f")
    return format_count(v)


# ---------------------------------------------------------------------------------------------- on disk


@dataclass
class SnapshotResult:
    """A written snapshot."""

    name: str
    path: Path
    manifest: dict
    seconds: float
    kept: list[dict] = field(default_factory=list)
    """Manifests of the other snapshots of the same period and filters, made from other runs: they stay
    where they are (see :func:`choose_name`)."""


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _latest(m: dict) -> tuple[str, str, str]:
    """Orders snapshots by period end, then when made, then run (ids are time-ordered): the largest is the latest."""
    return m["period"]["last"], m.get("created") or "", (m.get("run") or {}).get("id") or ""


def list_snapshots(out: str | Path) -> list[dict]:
    """Manifests of the complete snapshots in ``out``, newest period first, then the most recently made (the
    newer run when made in the same second), then by name."""
    out = Path(out)
    if not out.is_dir():
        return []
    found = []
    for folder in out.iterdir():
        if folder.name.startswith(".") or not folder.is_dir():
            continue
        manifest = _read_json(folder / MANIFEST)
        if manifest and manifest.get("format_version") == FORMAT_VERSION and manifest.get("name") == folder.name:
            found.append(manifest)
    found.sort(key=lambda m: m["name"])
    found.sort(key=_latest, reverse=True)
    return found


def choose_name(out: str | Path, period: Period, f: MessageFilter, run_id: str) -> tuple[str, list[dict]]:
    """The folder for a snapshot of ``period`` with filters ``f`` from run ``run_id``, and the snapshots of the
    same period and filters from other runs, which it leaves alone.

    A published snapshot is never replaced by one from another run, so a report already sent keeps its
    folder, its link and its ``index.json`` entry. The first snapshot of a period takes the plain name
    (:func:`snapshot_name`, e.g. ``2025-11``); re-making it from the same run replaces it (a retried
    scheduled job does not pile up copies). One from another run, once that name is taken, is written
    beside it as ``<name>--run-<run id>`` (e.g. ``2025-11--run-20251203-060000-3f9a``), which re-making
    from that run replaces in turn. The listing puts the most recently made of a period first."""
    base = snapshot_name(period, f)
    wanted = filter_dict(f)
    same = [m for m in list_snapshots(out) if m["period"]["name"] == period.name
            and m["period"]["kind"] == period.kind and m.get("filters") == wanted]
    holder = _read_json(Path(out) / base / MANIFEST)
    mine = holder is None or holder.get("name") != base or (holder.get("run") or {}).get("id") == run_id
    name = base if mine else snapshot_name(period, f, run_id)
    return name, [m for m in same if m["name"] != name and m["run"]["id"] != run_id]


def _days(period: dict) -> int:
    """The number of days of a snapshot manifest's period."""
    return (date.fromisoformat(period["last"]) - date.fromisoformat(period["first"])).days + 1


def previous_snapshot(out: str | Path, period: Period, f: MessageFilter, name: str) -> dict | None:
    """The snapshot "what changed" compares with: same filters and kind of period (a range of as many days), the
    latest that ends before
    this one ends (so re-making a snapshot compares with the same one as before). Of a period made from several
    runs (:func:`choose_name`), the most recently made; never another snapshot of this same period."""
    wanted = filter_dict(f)
    candidates = [m for m in list_snapshots(out) if m["name"] != name and m.get("filters") == wanted
                  and m["period"]["kind"] == period.kind and m["period"]["last"] < period.last.isoformat()
                  and (period.kind != "range" or _days(m["period"]) == period.days)]  # 15 days vs a quarter: no
    if not candidates:
        return None
    return max(candidates, key=_latest)


def _index_entry(m: dict) -> dict:
    return {"name": m["name"], "period": m["period"], "run_id": m["run"]["id"], "filters": m["filters"],
            "filter_words": m["filter_words"], "created": m["created"], "counts": m["counts"],
            "files": [f["path"] for f in m["files"]]}


def write_index(out: Path) -> dict:
    """Rewrite ``out/index.json`` from the snapshot folders (so it can never disagree with them)."""
    index = {"format_version": FORMAT_VERSION, "snapshots": [_index_entry(m) for m in list_snapshots(out)]}
    write_atomic(out / INDEX, (json.dumps(index, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    return index


def _remove_abandoned(out: Path) -> None:
    """Remove what writers that died left behind; a replaced snapshot whose replacement never arrived is put back."""
    for tmp in list(out.glob(".tmp-*")) + list(out.glob(".old-*")):
        name, _, pid = tmp.name.rpartition("-")
        if not pid.isdigit() or int(pid) == os.getpid() or pid_alive(int(pid)):
            continue
        final = out / name.removeprefix(".old-")
        if tmp.name.startswith(".old-") and not final.exists():
            os.rename(tmp, final)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def manifest_for(snapshot: Snapshot, files: list[dict], created: str) -> dict:
    """The ``snapshot.json`` of a snapshot."""
    run = snapshot.run_manifest
    return {
        "format_version": FORMAT_VERSION,
        "name": snapshot.name,
        "created": created,
        "period": snapshot.period.to_dict(),
        "run": {"id": snapshot.run_id, "input": run.get("input", {}), "created_at": run.get("created_at"),
                "settings": run.get("settings", {}), "date_range": run.get("date_range", {})},
        "settings": snapshot.settings.to_dict(),
        "filters": filter_dict(snapshot.filter),
        "filter_words": snapshot.filter_words,
        "counts": snapshot.counts,
        "previous_snapshot": snapshot.previous_name,
        "files": files,
        "summary": snapshot.summary,
    }


def publish(snapshot: Snapshot, out: str | Path) -> tuple[Path, dict]:
    """Write every file into a temporary folder next to the target, then rename it into ``out/<name>/``.

    A snapshot that already exists under that name is replaced when it is from the same run (re-made, not
    duplicated), never when it is from another run (:func:`choose_name` names that one apart). The index is
    rewritten under a lock, so two snapshots made at once both end up in it.

    Raises:
        SnapshotError: the folder cannot be written, the chart images cannot be drawn, or a snapshot of
            another run took the name meanwhile.
    """
    from pipelines import snapshot_files

    out = Path(out)
    tmp = out / f".tmp-{snapshot.name}-{os.getpid()}"
    final = out / snapshot.name
    old = out / f".old-{snapshot.name}-{os.getpid()}"
    try:
        out.mkdir(parents=True, exist_ok=True)
        _remove_abandoned(out)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        names = snapshot_files.write_all(snapshot, tmp)
        files = [{"path": n, "bytes": (tmp / n).stat().st_size, "sha256": file_sha256(tmp / n)} for n in sorted(names)]
        created = pd.Timestamp.now(tz="UTC").floor("s").isoformat()
        manifest = manifest_for(snapshot, files, created)
        write_atomic(tmp / MANIFEST, (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
        with open(out / ".index.lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            holder = _read_json(final / MANIFEST)
            if holder and holder.get("name") == final.name and (holder.get("run") or {}).get("id") != snapshot.run_id:
                raise SnapshotError(f'A snapshot of {snapshot.period.label} from run {holder["run"]["id"]} was just '
                                    f'written to {final}; it is kept and this one was not written.',
                                    fix="Make the snapshot again: it will be written beside that one.")
            if not final.exists():
                os.rename(tmp, final)
            elif exchange_folders(tmp, final):  # readers see the old snapshot or the new one, never neither
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                os.rename(final, old)
                os.rename(tmp, final)
                shutil.rmtree(old, ignore_errors=True)
            write_index(out)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not final.exists():
            os.rename(old, final)
        reason, fix = write_failure(err, "--out")
        raise SnapshotError(f"Could not write the snapshot to {out}: {reason}.", fix=fix) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final, manifest


SNAPSHOTS = "snapshots"
"""The snapshots folder inside the store, when no other is chosen."""


def snapshot_folder(store: str | Path, out: str | Path | None = None, settings: SnapshotSettings | None = None) -> Path:
    """The absolute snapshots folder: ``out`` when given (the CLI's ``--out``), else ``settings.out_dir`` when set
    (``$FEEDBACK_LENS_SNAPSHOTS``), else ``<store>/snapshots``.

    The default follows the store rather than the working folder, so the CLI run from anywhere and the dashboard
    list the same snapshots, and customer quotes never land in whatever folder a command happened to start in
    (a source checkout, say). The CLI and the Snapshots page both call this.
    """
    if out is None:
        out = (settings or SnapshotSettings()).out_dir or Path(store) / SNAPSHOTS
    return Path(out).expanduser().absolute()


def make_snapshot(store: str | Path, out: str | Path | None, period: str, filters: Sequence[str] = (),
                  run_id: str | None = None, settings: SnapshotSettings | None = None,
                  message_filter: MessageFilter | None = None) -> SnapshotResult:
    """Load a run, compute the snapshot of ``period`` and write it into ``out`` (the CLI and the dashboard call this).

    Args:
        store: the run store.
        out: the snapshots folder; None: :func:`snapshot_folder` (``$FEEDBACK_LENS_SNAPSHOTS`` or ``<store>/snapshots``).
        period: ``last-week``, ``last-month``, ``YYYY-MM``, ``YYYY-Www`` or ``FROM..TO``.
        filters: ``column=value`` strings (the CLI's ``--filter``).
        run_id: the run (the latest when None).
        message_filter: a filter already built (the dashboard's); combined with ``filters`` it is an error.

    Raises:
        FeedbackLensError: no such run, a bad period or filter, an unwritable folder, no Chromium.
    """
    started = time.perf_counter()
    settings = settings or SnapshotSettings()
    out = snapshot_folder(store, out, settings)
    run = load_curated_run(Path(store), run_id).run  # curated labels and memberships, as on the pages
    last = metrics.last_day(run.messages)
    resolved = parse_period(period, last)
    first = run.messages["date"].min().date() if last is not None else None
    if last is None or resolved.last < first or resolved.first > last:
        span = f"from {format_date(first)} to {format_date(last)}" if last else "without dates"
        raise InputError(f"--period {period}: run {run.id} has messages {span}; {resolved.label} has none.",
                         fix="Choose a period within the run's dates, or analyse newer data first.")
    if message_filter is not None and filters:
        raise ValueError("give either filters or message_filter, not both")
    f = message_filter if message_filter is not None else parse_filters(filters, run)
    name, kept = choose_name(out, resolved, f, run.id)
    previous = previous_snapshot(out, resolved, f, name)
    snapshot = build_snapshot(run, resolved, f, settings, previous, name)
    path, manifest = publish(snapshot, out)
    return SnapshotResult(snapshot.name, path, manifest, time.perf_counter() - started, kept)


def kept_words(result: SnapshotResult) -> str:
    """The snapshots of the same period kept beside a new one, in words with their folders ("" when none), e.g.
    ``the earlier snapshot of November 2025 from run 20251201-060000-3f9a is kept in /srv/snapshots/2025-11``:
    the CLI's log line and the Snapshots page both say it."""
    if not result.kept:
        return ""
    m = result.manifest
    what = m["period"]["label"] + (f", filtered to {'; '.join(m['filter_words'])}," if m.get("filter_words") else "")
    out = result.path.parent
    if len(result.kept) == 1:
        k = result.kept[0]
        return f"the earlier snapshot of {what} from run {k['run']['id']} is kept in {out / k['name']}"
    folders = ", ".join(f"{out / k['name']} (run {k['run']['id']})" for k in result.kept)
    return f"{len(result.kept)} earlier snapshots of {what} from other runs are kept: {folders}"


DOWNLOADS = {"report.html": ("Report", "text/html"), "snapshot.xlsx": (
    "Spreadsheet", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    "slides.pptx": ("Slides", "application/vnd.openxmlformats-officedocument.presentationml.presentation")}
"""The files offered one by one for download: file → (what people call it, MIME type)."""


def snapshot_file(out: str | Path, name: str, file: str) -> Path:
    """The path of one file of a listed snapshot (``name`` and ``file`` must come from its manifest)."""
    manifest = _read_json(Path(out) / name / MANIFEST)
    if manifest is None or manifest.get("name") != name or file not in {f["path"] for f in manifest["files"]}:
        raise SnapshotError(f'There is no file "{file}" in snapshot "{name}".', fix="Reload the Snapshots page.")
    return Path(out) / name / file


def snapshot_archive(out: str | Path, name: str) -> bytes:
    """Every file of a snapshot (and its manifest) as one ZIP, in manifest order, for a single download."""
    import io
    import zipfile

    manifest = _read_json(Path(out) / name / MANIFEST) or {}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for file in [f["path"] for f in manifest.get("files", [])] + [MANIFEST]:
            z.write(snapshot_file(out, name, file) if file != MANIFEST else Path(out) / name / MANIFEST,
                    f"{name}/{file}")
    return buffer.getvalue()

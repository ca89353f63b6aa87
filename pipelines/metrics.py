"""Numbers about a run: filters, period buckets, headline figures, trends, movers, emerging issues, sentiment.

Owns every figure the dashboard shows (and that snapshots will show), computed one way from the
run's tables (``messages``, ``topics``). Pure functions over DataFrames returning typed results:
no Streamlit, no file access, no formatting beyond the one-line labels and reasons a result carries.

Dates are clock times: what the clocks of the run's time zone showed (UTC unless the run names a zone), carried
as UTC timestamps (:func:`on_the_clock`), so a day, week or month is a whole calendar unit of that zone. A "period"
is a calendar bucket (day, week from Monday, month) used by charts; a :class:`Window` is a run of whole days used
to compare "the last N days" with the N days before.

Example:
    >>> current, previous = comparison_windows(last_day(run.messages), days=30)
    >>> headline(run.messages, current, previous).messages.delta
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Literal

import numpy as np
import pandas as pd
from scipy.special import pdtrc

NO_TOPIC = -1
"""Topic id of messages that fit no topic (``pipelines.topics.OUTLIER``)."""
NO_TOPIC_LABEL = "(no clear topic)"
SENTIMENT_LABELS = ("negative", "neutral", "positive")
Granularity = Literal["day", "week", "month"]
GRANULARITIES: tuple[Granularity, ...] = ("day", "week", "month")
_FREQ = {"day": "D", "week": "7D", "month": "MS"}
BLANK = "(blank)"
"""How a missing metadata value is shown and filtered."""


# --------------------------------------------------------------------------------------------- filters


@dataclass(frozen=True)
class MessageFilter:
    """What the user narrowed the messages to. Empty fields mean "no restriction".

    Attributes:
        start: first day included, or ``None``.
        end: last day included, or ``None``. With either bound set, undated messages are left out.
        topics: topic ids to keep (``-1`` = no clear topic).
        sentiments: sentiment labels to keep ("negative", "neutral", "positive").
        metadata: ``(column, values)`` pairs; a message is kept when its value is one of ``values``.
        tags: ``(column, separator)`` pairs for the metadata columns that hold tags ("billing; urgent", see
            :func:`tag_separators`): there a message is kept when one of its tags is one of ``values``.
        ranges: ``(column, low, high)`` for numeric metadata columns with many values (:func:`numeric_ranges`):
            a message is kept when its number there is from ``low`` to ``high``, both included (one without a
            number is left out).
    """

    start: date | None = None
    end: date | None = None
    topics: tuple[int, ...] = ()
    sentiments: tuple[str, ...] = ()
    metadata: tuple[tuple[str, tuple[str, ...]], ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    ranges: tuple[tuple[str, float, float], ...] = ()

    @property
    def is_empty(self) -> bool:
        """True when nothing is filtered out."""
        return not (self.start or self.end or self.topics or self.sentiments or any(v for _, v in self.metadata)
                    or self.ranges)


def without_each_filter(f: MessageFilter) -> list[tuple[str, MessageFilter]]:
    """Each active filter in words ('the dates', 'the sentiment filter', 'the rating filter') with ``f`` without it:
    when no message passes ``f``, which one filter to remove to see some."""
    out = []
    if f.start or f.end:
        out.append(("the dates", replace(f, start=None, end=None)))
    if f.topics:
        out.append(("the topic filter", replace(f, topics=())))
    if f.sentiments:
        out.append(("the sentiment filter", replace(f, sentiments=())))
    for column, values in f.metadata:
        if values:
            out.append((f"the {column_words(column)} filter",
                        replace(f, metadata=tuple((c, v) for c, v in f.metadata if c != column))))
    for column, *_ in f.ranges:
        out.append((f"the {column_words(column)} filter", replace(f, ranges=tuple(r for r in f.ranges if r[0] != column))))
    return out


def on_the_clock(dates: pd.Series, zone: str) -> pd.Series:
    """Each date (a UTC instant) as the time the clocks of ``zone`` showed then, carried as a UTC timestamp.

    Every figure counts days, weeks and months of UTC timestamps; given clock times, it counts the days of
    ``zone`` (a ticket sent at 11:40 pm in Los Angeles falls on that day, not the next), and with no
    daylight-saving gaps, so every day has 24 hours. Runs are stored in true UTC; the pages and snapshots read
    them through this (:func:`pipelines.curation.load_curated_run`).
    """
    if zone in ("UTC", "Etc/UTC") or not isinstance(dates.dtype, pd.DatetimeTZDtype):
        return dates
    return dates.dt.tz_convert(zone).dt.tz_localize(None).dt.tz_localize("UTC")


def zone_words(zone: str) -> str:
    """A time zone as a sentence names it: 'UTC', 'Los Angeles time', 'UTC+02:00'."""
    if zone in ("UTC", "Etc/UTC", "GMT", "Etc/GMT", "Z"):
        return "UTC"
    if re.fullmatch(r"[+-]\d{2}:?\d{2}", zone):
        return f"UTC{zone}"
    if "/" in zone and not zone.startswith("Etc/"):
        return zone.rsplit("/", 1)[1].replace("_", " ") + " time"
    return zone


def _dates(messages: pd.DataFrame) -> pd.Series:
    if "date" in messages:
        return messages["date"]
    return pd.Series(pd.NaT, index=messages.index, dtype="datetime64[ns, UTC]")


def _utc(day: date | datetime | pd.Timestamp) -> pd.Timestamp:
    ts = pd.Timestamp(day)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def metadata_as_text(values: pd.Series) -> pd.Series:
    """Metadata values as the strings filters, breakdowns and message cards use; missing values become ``(blank)``.

    Whole numbers read without a decimal part (a rating of 4.0 reads "4", 4.5 stays "4.5"), so that a link's
    ``?rating=4`` matches what the page shows.
    """
    if isinstance(values.dtype, pd.CategoricalDtype):  # each category read once, not each message
        names = metadata_as_text(pd.Series(values.cat.categories)).to_numpy(dtype=object)
        return pd.Series(np.append(names, BLANK)[values.cat.codes.to_numpy()], index=values.index, dtype=object)
    if pd.api.types.is_float_dtype(values.dtype):
        numbers = values.astype("float64").to_numpy()
        with np.errstate(invalid="ignore"):
            whole = np.isfinite(numbers) & (numbers == np.round(numbers)) & (np.abs(numbers) < 1e15)
        out = values.astype("string")
        if whole.any():
            out[whole] = numbers[whole].astype(np.int64).astype(str)
    else:
        out = values.astype("string").str.strip()
    return out.mask(out.isna() | (out == ""), BLANK).astype(str)


def metadata_value_text(value: object) -> str:
    """One metadata value as :func:`metadata_as_text` writes it: ``4.0`` reads "4", a missing value ``(blank)``."""
    return str(metadata_as_text(pd.Series([value])).iloc[0])


def filter_messages(messages: pd.DataFrame, f: MessageFilter) -> pd.DataFrame:
    """The messages that pass the filter (a new frame; the input is not changed)."""
    return messages[filter_mask(messages, f)]


def filter_mask(messages: pd.DataFrame, f: MessageFilter) -> np.ndarray:
    """Which rows of ``messages`` (or of a :func:`message_cube`) pass the filter."""
    mask = np.ones(len(messages), dtype=bool)
    if f.start is not None or f.end is not None:
        d = _dates(messages)
        mask &= d.notna().to_numpy()
        if f.start is not None:
            mask &= (d >= _utc(f.start)).fillna(False).to_numpy()
        if f.end is not None:
            mask &= (d < _utc(f.end) + pd.Timedelta(days=1)).fillna(False).to_numpy()
    if f.topics:
        mask &= messages["topic"].isin(f.topics).to_numpy()
    if f.sentiments:
        mask &= messages["sentiment_label"].isin(f.sentiments).to_numpy()
    separators = dict(f.tags)
    for column, values in f.metadata:
        if values and column in messages:
            mask &= _metadata_in(messages[column], values, separators.get(column))
    for column, low, high in f.ranges:
        if column not in messages:
            # A message cube counts messages by value, and columns of many numbers are not in it: its figures
            # would silently ignore the range. Count from the messages instead.
            raise ValueError(f"these rows have no column {column!r} to filter by range")
        numbers = _as_numbers(messages[column]).to_numpy()
        with np.errstate(invalid="ignore"):
            mask &= (numbers >= low) & (numbers <= high)
    return mask


def _metadata_in(column: pd.Series, values: Iterable[str], separator: str | None = None) -> np.ndarray:
    """Which values of a metadata column read (:func:`metadata_as_text`) as one of ``values``; with a tag
    ``separator``, which hold one of ``values`` among their tags."""
    wanted = set(values)

    def allowed(texts: pd.Series) -> np.ndarray:
        if separator is None:
            return texts.isin(wanted).to_numpy()
        return np.array([not wanted.isdisjoint(split_tags(t, separator)) for t in texts], dtype=bool)

    if isinstance(column.dtype, pd.CategoricalDtype):  # each category read once, not each message
        ok = allowed(metadata_as_text(pd.Series(column.cat.categories)))
        codes = column.cat.codes.to_numpy()
        return np.where(codes >= 0, np.append(ok, False)[codes], BLANK in wanted)
    texts = metadata_as_text(column)
    if separator is None:
        return allowed(texts)
    distinct = pd.Series(texts.unique())  # each distinct tag list split once, not each message
    return texts.isin(distinct[allowed(distinct)]).to_numpy()


_MOST_TAG_LISTS = 5_000
"""Distinct values above which a column is not read as tags (ids and free text are not; 50 tags combine into
far fewer lists in real data)."""
TAG_SEPARATORS = (";", "|", ",")
"""What may separate the tags of a metadata value ("billing, urgent"), in the order they are tried."""


def split_tags(text: str, separator: str) -> list[str]:
    """The tags of one metadata value as :func:`metadata_as_text` writes it (``(blank)`` stays itself)."""
    tags = [t.strip() for t in text.split(separator)]
    return [t for t in tags if t] or [BLANK]


def distinct_tags(texts: Iterable[str], separator: str) -> list[str]:
    """The tags of metadata values (as :func:`metadata_as_text` writes them), each once, in order of first use."""
    return list(dict.fromkeys(tag for text in texts for tag in split_tags(text, separator)))


def tag_separator(values: pd.Series, max_tags: int = 50) -> str | None:
    """The separator of a metadata column that holds tags ("billing, urgent", "app;ios"), or None.

    A column holds tags when, split at the separator, at least a tenth of its messages (and 5) have several
    values; it then has 2 to ``max_tags`` distinct tags of at most four words each; and at least half of the
    tags occur in two or more distinct values, alone or combined with others (a rare tag seen in one
    combination only is common in real tag lists). The last tests keep values that merely contain a comma
    whole: a product "Credit reporting, credit repair services, or other personal consumer reports" has a
    part of five words and parts found nowhere else, and places "Austin, TX" give a city per value. A column
    of few combinations whose tags seldom recur ("billing, urgent" but never "urgent" elsewhere) stays listed
    by whole values, which is what a filter of under 50 values does anyway.
    """
    if not (pd.api.types.is_object_dtype(values.dtype) or pd.api.types.is_string_dtype(values.dtype)
            or isinstance(values.dtype, pd.CategoricalDtype)):
        return None
    counts = metadata_as_text(values).value_counts()
    counts = counts[counts.index != BLANK]
    if len(counts) > _MOST_TAG_LISTS:  # ids, free text
        return None
    total = int(counts.sum())
    for separator in TAG_SEPARATORS:
        multi = counts[counts.index.str.contains(separator, regex=False)]
        if int(multi.sum()) < max(5, 0.1 * total):
            continue
        found_in: dict[str, int] = {}
        for text in counts.index:
            for tag in set(split_tags(text, separator)):
                found_in[tag] = found_in.get(tag, 0) + 1
            if len(found_in) > max_tags:
                break
        if not 2 <= len(found_in) <= max_tags or any(len(t) > 40 or len(t.split()) > 4 for t in found_in):
            continue
        if sum(n >= 2 for n in found_in.values()) >= 0.5 * len(found_in):
            return separator
    return None


def tag_separators(messages: pd.DataFrame, columns: Iterable[str], named: Iterable[str] | None = None) -> dict[str, str]:
    """The metadata ``columns`` of ``messages`` that hold tags, with their separators (:func:`tag_separator`).

    ``named``: the columns the user named as tags (``tags:`` in a mapping file, ``--tags``), read as tags whatever
    their values, each split at the separator most of its values hold (a comma when none does); no other column is.
    None: the columns are found by their values.
    """
    columns = [c for c in columns if c in messages]
    if named is not None:
        return {c: _likeliest_separator(messages[c]) for c in named if c in columns}
    found = {c: tag_separator(messages[c]) for c in columns}
    return {c: s for c, s in found.items() if s}


def _likeliest_separator(values: pd.Series) -> str:
    texts = pd.Series(metadata_as_text(values).unique())
    held = {s: int(texts.str.contains(s, regex=False).sum()) for s in TAG_SEPARATORS}
    best = max(TAG_SEPARATORS, key=lambda s: held[s])
    return best if held[best] else ","


def explode_tags(keys: pd.Series, weights: np.ndarray, separator: str) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """Each row once per tag of its value: the tags, their weights, and which row each came from (a breakdown by
    a tag column counts a message "billing, urgent" under both tags)."""
    lists = keys.map(lambda t: split_tags(t, separator))
    lengths = lists.map(len).to_numpy()
    rows = np.repeat(np.arange(len(keys)), lengths)
    tags = pd.Series([t for ts in lists for t in ts], index=keys.index[rows], dtype=object)
    return tags, np.asarray(weights)[rows], rows


def metadata_options(messages: pd.DataFrame, columns: Iterable[str], max_values: int = 50,
                     tags: Mapping[str, str] | None = None) -> dict[str, list[str]]:
    """Filterable metadata columns and their values (sorted), skipping free-text-like columns.

    A column qualifies when it has 2 to ``max_values`` distinct values: a channel, a product, a rating. A column
    of tags offers its tags, however many combinations of them its messages have: ``tags`` gives their
    separators (:func:`tag_separators`); None: each column is tested (:func:`tag_separator`).
    """
    out: dict[str, list[str]] = {}
    for column in columns:
        if column not in messages:
            continue
        values = metadata_as_text(messages[column]).unique()
        separator = tag_separator(messages[column], max_values) if tags is None else tags.get(column)
        if separator:
            values = distinct_tags(values, separator)
        if 2 <= len(values) <= max_values:
            out[column] = sorted(values, key=lambda v: (v == BLANK, v.casefold()))
    return out


def numeric_ranges(messages: pd.DataFrame, columns: Iterable[str], max_values: int = 50) -> dict[str, tuple[float, float]]:
    """The numeric metadata columns with more than ``max_values`` distinct values (an order's amount, a wait in
    minutes), with their lowest and highest number: filtered by a range, where fewer values are listed one by
    one (:func:`metadata_options`). Numbers that identify (a column named like ``order_id``, or whole numbers
    each on one message only) are not: a range of ids means nothing."""
    out: dict[str, tuple[float, float]] = {}
    for column in columns:
        if column not in messages or not pd.api.types.is_numeric_dtype(messages[column].dtype) \
                or pd.api.types.is_bool_dtype(messages[column].dtype) or _ID_NAME.search(str(column)):
            continue
        numbers = _as_numbers(messages[column])
        numbers = numbers[np.isfinite(numbers.to_numpy())]
        distinct = numbers.nunique()
        if distinct > max_values and not (distinct == len(numbers) and (numbers == numbers.round()).all()):
            out[column] = (float(numbers.min()), float(numbers.max()))
    return out


def _as_numbers(values: pd.Series) -> pd.Series:
    """A metadata column as float64 numbers, NaN where a value is missing or not a number."""
    return pd.Series(pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan),
                     index=values.index)


def parse_range(text: str) -> tuple[float | None, float | None] | None:
    """``LOW..HIGH`` (a link's ``?amount=10..250``, a snapshot's ``--filter amount=10..250``) as two numbers, a
    bound left out as None; None when it is no such range or LOW is above HIGH."""
    low, sep, high = text.partition("..")
    try:
        bounds = (float(low) if low.strip() else None, float(high) if high.strip() else None)
    except ValueError:
        return None
    if not sep or (None not in bounds and bounds[0] > bounds[1]):
        return None
    return bounds


_ID_NAME = re.compile(r"(?i:(^|[^a-z])(id|ids|no|nr|number|key)$)|[a-z](Id|ID)$")
"""Names of columns that identify: ``id``, ``order_id``, ``Ticket No``, ``orderId``, ``customerID`` (not ``paid``)."""


COUNT = "n_messages"
"""Column of a :func:`message_cube` row: how many messages it stands for."""


def message_cube(messages: pd.DataFrame, metadata: Iterable[str] = ()) -> pd.DataFrame:
    """The messages counted per day, topic, sentiment label and metadata value: what every volume
    and sentiment figure needs, in a table far shorter than the messages of a large run.

    Each row stands for :data:`COUNT` messages; its ``sentiment`` is their mean and ``date`` their day
    (NaT for undated messages), metadata values are as filters show them (:func:`metadata_as_text`).
    :func:`filter_messages` and the volume and sentiment functions of this module (topic table, movers,
    headline, volume and sentiment over time, emerging issues, drivers, sentiment counts) give the same
    results on the cube as on the messages, because windows, filters and periods are whole days.
    """
    columns = [c for c in metadata if c in messages]
    keys = {"date": _dates(messages).dt.floor("D"), "topic": messages["topic"],
            "sentiment_label": messages["sentiment_label"].astype(str)}
    keys |= {c: metadata_as_text(messages[c]) for c in columns}
    frame = pd.DataFrame({**keys, "_total": messages["sentiment"].astype("float64"), COUNT: 1})
    cube = frame.groupby(list(keys), dropna=False, sort=True, observed=True).agg(
        _total=("_total", "sum"), **{COUNT: (COUNT, "sum")}).reset_index()
    cube["sentiment"] = cube.pop("_total") / cube[COUNT]
    return cube.astype({COUNT: "int64"})


CUBE_KEYS = ("date", "topic", "sentiment_label")
"""The first columns of a :func:`message_cube`; its metadata columns follow, then :data:`CUBE_VALUES`."""
CUBE_VALUES = (COUNT, "sentiment")


def _weights(rows: pd.DataFrame) -> np.ndarray:
    """How many messages each row stands for: 1, or a cube row's :data:`COUNT`."""
    return rows[COUNT].to_numpy() if COUNT in rows else np.ones(len(rows), dtype="int64")


def message_count(rows: pd.DataFrame) -> int:
    """How many messages ``rows`` (messages, or rows of a :func:`message_cube`) stand for."""
    return int(_weights(rows).sum())


def _tally(rows: pd.DataFrame, keys: list) -> pd.DataFrame:
    """Per group of ``keys`` (column names or Series): ``messages``, ``total`` (sentiment), ``neg``, ``pos``."""
    w = _weights(rows)
    label = rows["sentiment_label"]
    parts = pd.DataFrame({"messages": w, "total": rows["sentiment"].to_numpy(dtype="float64") * w,
                          "neg": (label == "negative").to_numpy(dtype=bool) * w,
                          "pos": (label == "positive").to_numpy(dtype=bool) * w}, index=rows.index)
    return parts.groupby([rows[k] if isinstance(k, str) else k for k in keys], observed=True).sum()


_PHRASE = re.compile(r'["\u201c\u201d]([^"\u201c\u201d]*)["\u201c\u201d]?|(\S+)')


def search_terms(query: str) -> list[str]:
    """The terms of a keyword search: its words, and phrases in double quotes (``"took weeks" refund``) as one term
    each, without duplicates (case-insensitive; a phrase's spaces count as one)."""
    seen: dict[str, str] = {}
    for match in _PHRASE.finditer(query):
        term = " ".join((match.group(1) if match.group(1) is not None else match.group(2)).split())
        if term:
            seen.setdefault(term.casefold(), term)
    return list(seen.values())


APOSTROPHES = "'\u2018\u2019"
"""Straight and curly apostrophes: a search for "don't" finds "don’t" (what phones type) and the other way round."""

_WORD = re.compile(r"\w")
# What Python's ``re`` calls a word character (letters, digits, underscore, in any script) written for RE2 (DuckDB),
# whose \w and \b know ASCII only: "café" would otherwise end in a word boundary after "caf".
_RE2_WORD = r"\pL\pN_"
# Python's Unicode whitespace written for RE2, whose \s is ASCII only.
_RE2_SPACE = r"\s\pZ\x{0b}\x{1c}-\x{1f}\x{85}"


def term_pattern(term: str, re2: bool = False) -> str:
    """A regular expression matching ``term`` as whole words, literally (any apostrophe for any, any run of spaces
    between a phrase's words), for Python's ``re`` or, with ``re2``, for RE2 (DuckDB); used case-insensitively.

    "ok" finds "ok" and "OK!" but not "look" or "okay". A term that starts or ends with a mark ("c++", "$5") needs
    no word boundary there.
    """
    space = f"[{_RE2_SPACE}]+" if re2 else r"\s+"
    words = [f"[{APOSTROPHES}]".join(re.escape(p) for p in re.split(f"[{APOSTROPHES}]", w)) for w in term.split()]
    body = space.join(words)
    if re2:  # no look-arounds in RE2: the character around the term is matched (a match is only tested, not shown)
        head, tail = f"(?:^|[^{_RE2_WORD}])", f"(?:[^{_RE2_WORD}]|$)"
    else:
        head, tail = r"(?<!\w)", r"(?!\w)"
    term = " ".join(term.split())
    return ((head if term and _WORD.match(term[0]) else "") + f"(?:{body})"
            + (tail if term and _WORD.match(term[-1]) else ""))


def search_messages(messages: pd.DataFrame, query: str) -> pd.DataFrame:
    """Messages whose text contains every term of ``query`` (:func:`search_terms`) as whole words (literal,
    case-insensitive, any apostrophe)."""
    terms = search_terms(query)
    if not terms:
        return messages
    text = messages["text"].astype(str)
    mask = np.ones(len(messages), dtype=bool)
    for term in terms:
        mask &= text.str.contains(term_pattern(term), case=False, regex=True).to_numpy()
    return messages[mask]


# ------------------------------------------------------------------------------------- periods, windows


def period_start(dates: pd.Series, granularity: Granularity) -> pd.Series:
    """The start of the calendar period (day, week from Monday, month) of each date; NaT stays NaT."""
    day = dates.dt.floor("D")
    if granularity == "day":
        return day
    if granularity == "week":
        return day - pd.to_timedelta(day.dt.dayofweek, unit="D")
    if granularity == "month":
        return day - pd.to_timedelta(day.dt.day - 1, unit="D")
    raise ValueError(f"granularity must be one of {', '.join(GRANULARITIES)}, not {granularity!r}")


def default_granularity(first: date | None, last: date | None) -> Granularity:
    """A readable time step for a span: days up to 3 weeks, weeks up to 4 months, months beyond."""
    if first is None or last is None:
        return "month"
    days = (last - first).days + 1
    return "day" if days <= 21 else "week" if days <= 120 else "month"


def period_range(first: pd.Timestamp, last: pd.Timestamp, granularity: Granularity) -> pd.DatetimeIndex:
    """Every period start from the period of ``first`` to that of ``last``."""
    starts = period_start(pd.Series([_utc(first), _utc(last)]), granularity)
    return pd.date_range(starts.iloc[0], starts.iloc[1], freq=_FREQ[granularity])


def period_label(start: pd.Timestamp, granularity: Granularity) -> str:
    """'3 Mar 2026', 'Week of 2 Mar 2026' or 'Mar 2026'."""
    if granularity == "month":
        return f"{start:%b %Y}"
    day = f"{start.day} {start:%b %Y}"
    return f"Week of {day}" if granularity == "week" else day


def period_end(start: pd.Timestamp, granularity: Granularity) -> pd.Timestamp:
    """The first instant after the period that starts at ``start``."""
    if granularity == "month":
        return start + pd.offsets.MonthBegin(1)
    return start + pd.Timedelta(days=1 if granularity == "day" else 7)


def format_share(x: float | None, digits: int = 0) -> str:
    """'12%' from 0.12, '<1%' for a share too small to show but not nothing (or '–')."""
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "–"
    smallest = 10.0 ** -digits
    if 0 < x * 100 < smallest / 2:  # "4 (0%)" would read as none
        return f"<{smallest:.{digits}f}%"
    return f"{x * 100:.{digits}f}%"


def column_words(column: str) -> str:
    """A data column's name inside a line of text, as the filter line and message cards write it ("company
    response: Closed"): underscores as spaces, letters as written. The sidebar's label is :func:`column_title`."""
    return column.replace("_", " ")


def column_title(column: str) -> str:
    """A data column's name as a label: underscores as spaces, the first letter raised and the rest as written.

    Example:
        >>> column_title("product_line"), column_title("CSAT"), column_title("NPS_score")
        ('Product line', 'CSAT', 'NPS score')
    """
    words = column.replace("_", " ")
    return words[:1].upper() + words[1:]


def count_of(n: int, noun: str, plural: str | None = None) -> str:
    """'1 message', '2 messages', '1,234 topics': a count with its noun in the right number."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def day_span(first: date, last: date) -> str:
    """Days from ``first`` to ``last`` (both included) as people write them: '19–25 Oct 2026',
    '28 Sep – 4 Oct 2026', '29 Dec 2025 – 4 Jan 2026' or '3 Mar 2026'.

    The one way pages and snapshots write a span of days (:attr:`Window.label` uses it).
    """

    def day(d: date) -> str:
        return f"{d.day} {d:%b %Y}"

    if first == last:
        return day(first)
    if (first.year, first.month) == (last.year, last.month):
        return f"{first.day}–{day(last)}"
    head = f"{first.day} {first:%b}" + ("" if first.year == last.year else f" {first.year}")
    return f"{head} – {day(last)}"


def periods_in_words(n: int, days: int, months: bool = False) -> str:
    """``n`` periods as a person counts them: '8 months' (calendar months), '8 weeks' (7 days), '8 days' (1 day),
    else '8 periods of 30 days' (30 days are not a month)."""
    if months:
        return count_of(n, "month")
    if days in (1, 7):
        return count_of(n, "day" if days == 1 else "week")
    return f"{count_of(n, 'period')} of {days} days"


@dataclass(frozen=True)
class Window:
    """A run of whole days: ``start`` included, ``end`` excluded."""

    start: pd.Timestamp
    end: pd.Timestamp

    @property
    def days(self) -> int:
        """Length in days."""
        return int((self.end - self.start) / pd.Timedelta(days=1))

    @property
    def first_day(self) -> date:
        """The first day included."""
        return self.start.date()

    @property
    def last_day(self) -> date:
        """The last day included."""
        return (self.end - pd.Timedelta(days=1)).date()

    @property
    def label(self) -> str:
        """The days of the window as :func:`day_span` writes them: '2–31 Oct 2026', '28 Sep – 4 Oct 2026'."""
        return day_span(self.first_day, self.last_day)

    @property
    def within(self) -> str:
        """The window after a verb: 'in 2–31 Oct 2026', 'on 15 Oct 2026' (one day)."""
        return f"{'on' if self.days == 1 else 'in'} {self.label}"

    def contains(self, dates: pd.Series) -> np.ndarray:
        """Which of ``dates`` fall in the window (NaT never does)."""
        return ((dates >= self.start) & (dates < self.end)).fillna(False).to_numpy(dtype=bool)

    def shifted(self, periods: int) -> Window:
        """The window ``periods`` lengths earlier (negative: later)."""
        step = pd.Timedelta(days=self.days * periods)
        return Window(self.start - step, self.end - step)


def history_start(messages: pd.DataFrame) -> pd.Timestamp | None:
    """When the oldest dated message was written: before it the run knows nothing (no change is measured against
    those days). None when no message has a date."""
    oldest = _dates(messages).min()
    return None if pd.isna(oldest) else oldest


def before_history(window: Window, history_start: pd.Timestamp | date | None) -> bool:
    """True when ``window`` ends on or before the day of ``history_start`` (the run's first message): the run knows
    nothing of those days, so nothing is compared with them."""
    return history_start is not None and not pd.isna(history_start) and window.end <= _utc(history_start).floor("D")


def last_day(messages: pd.DataFrame) -> date | None:
    """The day of the newest dated message, or ``None`` when no message has a date."""
    newest = _dates(messages).max()
    return None if pd.isna(newest) else newest.date()


def comparison_windows(last: date, days: int) -> tuple[Window, Window]:
    """The ``days`` days ending with ``last`` (included), and the ``days`` days before them."""
    if days < 1:
        raise ValueError("days must be at least 1")
    end = _utc(last) + pd.Timedelta(days=1)
    current = Window(end - pd.Timedelta(days=days), end)
    return current, current.shifted(1)


# ---------------------------------------------------------------------------------------------- topics


def topic_labels(topics: pd.DataFrame) -> dict[int, str]:
    """Topic id → label, including the no-topic bucket."""
    labels = {int(t): str(label) for t, label in zip(topics["topic"], topics["label"], strict=True)}
    labels.setdefault(NO_TOPIC, NO_TOPIC_LABEL)
    return labels


def _label_of(labels: Mapping[int, str], topic: int) -> str:
    return labels.get(int(topic), f"Topic {topic}")


def _counts_in(messages: pd.DataFrame, window: Window | None) -> pd.Series:
    rows = messages if window is None else messages[window.contains(_dates(messages))]
    return pd.Series(_weights(rows), index=rows.index).groupby(rows["topic"].to_numpy()).sum()


def topic_table(
    messages: pd.DataFrame,
    topics: pd.DataFrame,
    current: Window | None = None,
    previous: Window | None = None,
    include_no_topic: bool = False,
    trend: Granularity | None = None,
    history_start: pd.Timestamp | date | None = None,
) -> pd.DataFrame:
    """One row per topic with its volume, sentiment and change, largest first.

    Args:
        messages: the (filtered) messages.
        topics: the run's topics table (labels and keywords).
        current, previous: windows to count for ``current``, ``previous``, ``change`` and ``change_pct``.
        include_no_topic: also list the messages without a clear topic (as topic -1).
        trend: also give each topic's count per period over the messages' whole span (``trend``, a list).
        history_start: the run's first message; a ``previous`` window that ends before it has no counts (NaN:
            a topic is not "+28 (new)" against days without data).

    Returns:
        Columns ``topic, label, keywords, messages, share, mean_sentiment, share_negative, share_positive`` and, with
        windows, ``current, previous, change, change_pct`` (NaN when ``previous`` is 0); with ``trend``,
        ``trend``. Topics without any message are left out.
    """
    labels = topic_labels(topics)
    keywords = {int(t): ", ".join(map(str, k)) for t, k in zip(topics["topic"], topics["keywords"], strict=True)}
    # Only the columns needed: copying the rest of a large frame would cost more than the sums.
    needed = [c for c in ("topic", "sentiment", "sentiment_label", "date", COUNT) if c in messages]
    rows = messages[needed] if include_no_topic else messages.loc[(messages["topic"] != NO_TOPIC).to_numpy(), needed]
    sums = _tally(rows, ["topic"])
    out = pd.DataFrame({
        "messages": sums["messages"].astype("int64"),
        "mean_sentiment": sums["total"] / sums["messages"],
        "share_negative": sums["neg"] / sums["messages"],
        "share_positive": sums["pos"] / sums["messages"],
    })
    out.index = out.index.astype("int64")
    out["share"] = out["messages"] / max(message_count(messages), 1)
    out["label"] = [_label_of(labels, t) for t in out.index]
    out["keywords"] = [keywords.get(int(t), "") for t in out.index]
    columns = ["topic", "label", "keywords", "messages", "share", "mean_sentiment", "share_negative", "share_positive"]
    if current is not None and previous is not None:
        now, before = _counts_in(rows, current), _counts_in(rows, previous)
        out["current"] = now.reindex(out.index, fill_value=0).astype("int64")
        out["previous"] = before.reindex(out.index, fill_value=0).astype("int64")
        out["change"] = out["current"] - out["previous"]
        out["change_pct"] = out["change"] / out["previous"].where(out["previous"] > 0)
        if before_history(previous, history_start):
            out[["previous", "change", "change_pct"]] = np.nan
        columns += ["current", "previous", "change", "change_pct"]
    if trend is not None:
        volume = volume_over_time(rows, trend)
        series = volume.groupby("topic")["count"].agg(list) if len(volume) else pd.Series(dtype=object)
        out["trend"] = [series.get(t, []) for t in out.index]
        columns.append("trend")
    out = out.rename_axis("topic").reset_index()
    no_topic_last = (out["topic"] == NO_TOPIC).astype(int)
    order = np.lexsort((out["topic"].to_numpy(), -out["messages"].to_numpy(), no_topic_last.to_numpy()))
    return out.iloc[order][columns].reset_index(drop=True)


@dataclass(frozen=True)
class Movers:
    """Topics whose volume changed most between two windows."""

    current: Window
    previous: Window
    rising: pd.DataFrame
    """``topic, label, current, previous, change, change_pct``; largest increase first."""
    falling: pd.DataFrame
    """The same columns; largest decrease first."""


def biggest_movers(
    messages: pd.DataFrame, topics: pd.DataFrame, current: Window, previous: Window, n: int = 5, min_messages: int = 3,
    history_start: pd.Timestamp | date | None = None,
) -> Movers:
    """The ``n`` topics that rose and fell most (in messages) from ``previous`` to ``current``.

    Topics with fewer than ``min_messages`` in both windows are left out so that 1 → 2 is not a "+100%" story;
    none moved when ``previous`` ends before ``history_start`` (see :func:`before_history`).
    """
    table = topic_table(messages, topics, current, previous, history_start=history_start)
    columns = ["topic", "label", "current", "previous", "change", "change_pct"]
    big = table[(table["current"] >= min_messages) | (table["previous"] >= min_messages)][columns]
    rising = big[big["change"] > 0].sort_values(["change", "current"], ascending=[False, False]).head(n)
    falling = big[big["change"] < 0].sort_values(["change", "previous"], ascending=[True, False]).head(n)
    return Movers(current, previous, rising.reset_index(drop=True), falling.reset_index(drop=True))


# ------------------------------------------------------------------------------------------- headline


MIN_BASE_FOR_PERCENT = 10
"""A change in a count gets a percentage only when the earlier count is at least this: '+4 (+400%)' from a
single message reads as a surge, while '+4' says what happened. A share or mean of fewer messages is not
compared either: one negative message before would make "-25 pts" of the next 900."""


@dataclass(frozen=True)
class Change:
    """A figure now and in the previous window."""

    current: float | None
    previous: float | None

    @property
    def delta(self) -> float | None:
        """``current - previous``, or ``None`` when either is unknown."""
        if self.current is None or self.previous is None:
            return None
        return self.current - self.previous

    @property
    def relative(self) -> float | None:
        """The change as a fraction of ``previous`` (0.25 = +25 %), or ``None`` when ``previous`` is 0 or unknown."""
        if self.delta is None or not self.previous:
            return None
        return self.delta / self.previous


@dataclass(frozen=True)
class Headline:
    """The four headline figures for a window, each with its value in the window before."""

    current: Window
    previous: Window
    messages: Change
    share_negative: Change
    mean_sentiment: Change
    active_topics: Change


def _figures(rows: pd.DataFrame) -> tuple[float, float | None, float | None, float]:
    w = _weights(rows)
    n = int(w.sum())
    if n == 0:
        return 0.0, None, None, 0.0
    negative = float(((rows["sentiment_label"] == "negative").to_numpy(dtype=bool) * w).sum() / n)
    active = float(rows.loc[rows["topic"] != NO_TOPIC, "topic"].nunique())
    return float(n), negative, float((rows["sentiment"].to_numpy(dtype="float64") * w).sum() / n), active


def totals(messages: pd.DataFrame) -> tuple[float, float | None, float | None, float]:
    """Messages, share negative, mean sentiment and active topics of all ``messages``: the headline of a run
    without dates, which has no period to compare."""
    return _figures(messages)


def headline(messages: pd.DataFrame, current: Window, previous: Window,
             history_start: pd.Timestamp | date | None = None) -> Headline:
    """Messages, share negative, mean sentiment and active topics (with at least one message) per window.

    The previous window's figures are unknown (None: no change is shown) where they would mislead: all of
    them when the window ends before ``history_start`` (the run's first message: "+900" against days
    without data is no rise), its share negative and mean sentiment when it holds fewer than
    :data:`MIN_BASE_FOR_PERCENT` messages.
    """
    dates = _dates(messages)
    now = _figures(messages[current.contains(dates)])
    before = _figures(messages[previous.contains(dates)])
    if before_history(previous, history_start):
        before = (None, None, None, None)
    elif before[0] < MIN_BASE_FOR_PERCENT:
        before = (before[0], None, None, before[3])
    return Headline(current, previous, *(Change(a, b) for a, b in zip(now, before, strict=True)))


# ------------------------------------------------------------------------------------- volume over time


def volume_over_time(messages: pd.DataFrame, granularity: Granularity, by: str = "topic",
                     tag_separator: str | None = None) -> pd.DataFrame:
    """Messages per period and per value of ``by`` (a topic or a metadata column), every period included.

    With the ``tag_separator`` of a column of tags, a message counts once under each of its tags.

    Returns:
        Long table ``period, <by>, count, share`` where ``share`` is the value's share of all (filtered)
        messages in that period (0 in an empty period; with tags, the shares of a period add up to more than
        1 when messages have several). Undated messages are left out; a missing metadata value counts as
        ``(blank)``. Empty when no message has a date.
    """
    dates = _dates(messages)
    dated = dates.notna().to_numpy()
    if not dated.any():
        return pd.DataFrame({"period": pd.Series(dtype="datetime64[ns, UTC]"), by: pd.Series(dtype=object),
                             "count": pd.Series(dtype="int64"), "share": pd.Series(dtype="float64")})
    keys = messages[by][dated] if by == "topic" else metadata_as_text(messages[by][dated])
    periods = period_start(dates[dated], granularity)
    weights = _weights(messages)[dated]
    full = period_range(periods.min(), periods.max(), granularity)
    totals = None
    if tag_separator is not None and by != "topic":
        # Shares are of the messages, so the totals are counted before a message is counted once per tag.
        totals = (pd.DataFrame({"period": periods.array, "n": weights}).groupby("period")["n"].sum()
                  .reindex(full, fill_value=0).rename_axis("period"))
        keys, weights, rows = explode_tags(keys, weights, tag_separator)
        periods = periods.iloc[rows]
    # The same table as pd.crosstab(periods, keys), counted by a plain group-by (several times faster).
    counts = (pd.DataFrame({"period": periods.array, by: keys.array, "n": weights})
              .groupby(["period", by])["n"].sum().unstack(fill_value=0))
    counts = counts.reindex(full, fill_value=0).rename_axis("period")
    totals = counts.sum(axis=1) if totals is None else totals
    shares = counts.div(totals.where(totals > 0), axis=0).fillna(0.0)
    out = counts.stack().rename("count").to_frame()
    out["share"] = shares.stack()
    out = out.reset_index()
    out["count"] = out["count"].astype("int64")
    return out.sort_values(["period", by]).reset_index(drop=True)


def period_totals(messages: pd.DataFrame, granularity: Granularity) -> pd.DataFrame:
    """Messages per period (every period from the first to the last dated message): ``period, count``."""
    dates = _dates(messages)
    has_date = dates.notna().to_numpy()
    if not has_date.any():
        return pd.DataFrame({"period": pd.Series(dtype="datetime64[ns, UTC]"), "count": pd.Series(dtype="int64")})
    periods = period_start(dates[has_date], granularity)
    counts = pd.Series(_weights(messages)[has_date], index=periods.index).groupby(periods).sum().reindex(period_range(periods.min(), periods.max(), granularity), fill_value=0)
    return counts.rename_axis("period").rename("count").astype("int64").reset_index()


# ------------------------------------------------------------------------------------- emerging issues


_ISSUE_COLUMNS = ["topic", "label", "count", "baseline", "ratio", "z_score", "p_value", "reason"]
_VALUE_COLUMNS = ["column", "value", "count", "baseline", "ratio", "z_score", "p_value", "reason"]


@dataclass(frozen=True)
class EmergingIssues:
    """Topics far above their own usual volume in the latest window.

    Attributes:
        window: the window tested.
        baseline_windows: how many earlier windows (of the same length, or calendar months) formed each topic's
            baseline.
        issues: ``topic, label, count, baseline, ratio, z_score, p_value, reason``, strongest first.
        note: why nothing could be tested (too little history), else ``None``.
        months: the earlier windows were the calendar months before ``window``.
        values: metadata values far above their own usual volume by the same test (a product, a channel):
            ``column, value, count, baseline, ratio, z_score, p_value, reason``, strongest first.
    """

    window: Window
    baseline_windows: int
    issues: pd.DataFrame
    note: str | None = None
    months: bool = False
    values: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        {c: pd.Series(dtype=object) for c in _VALUE_COLUMNS}))

    @property
    def baseline_in_words(self) -> str:
        """The baseline as a person says it: '8 weeks', '6 months', '8 periods of 30 days'."""
        return periods_in_words(self.baseline_windows, self.window.days, self.months)




def emerging_issues(
    messages: pd.DataFrame,
    topics: pd.DataFrame,
    window: Window,
    baseline_windows: int = 8,
    min_count: int = 5,
    min_ratio: float = 2.0,
    max_p_value: float = 0.01,
    min_baseline_windows: int = 3,
    history_start: pd.Timestamp | None = None,
    months: bool = False,
    columns: Iterable[str] = (),
    tag_columns: Mapping[str, str] | None = None,
) -> EmergingIssues:
    """Flag topics (and values of the metadata ``columns``) whose volume in ``window`` is far above their own
    trailing baseline.

    Each topic's count in the window is compared with its mean count over up to ``baseline_windows``
    earlier windows of the same length, or with ``months`` the calendar months before (only windows fully
    after ``history_start``, the first message, count: before it we know nothing). Under a Poisson model
    with that mean (at least 0.5, so a topic that was silent still needs several messages), the chance of
    seeing this many or more is the p-value. A topic is flagged when all hold: ``count >= min_count`` (tiny topics do not flicker),
    ``count >= min_ratio * baseline`` (a real jump, not just a big topic) and ``p_value <= max_p_value``. When the
    other topics together grew (all messages doubled in a busy month), the baseline grows with them first: a topic
    that only kept its share is not news.

    Args:
        messages: the (filtered) messages, including the history before ``window``.
        topics: the run's topics table (for labels).
        window: the latest window, e.g. the last 7 days.
        history_start: when the data begins; the earliest message date by default.
        months: ``window`` is a calendar month (a monthly snapshot's), compared with the months before it
            rather than with windows of its number of days, so that the baseline is what people call a month.
        columns: metadata columns whose values are tested the same way (a surge of one product's complaints
            spread over many topics shows there, not in any topic).
        tag_columns: the separators of those of ``columns`` that hold tags (:func:`tag_separators`): their tags
            are tested, each message counting under each of its tags.

    Returns:
        The flagged topics and values with a one-line reason each (see :class:`EmergingIssues`).
    """
    labels = topic_labels(topics)
    dates = _dates(messages)
    start = dates.min() if history_start is None else _utc(history_start)
    if months:
        windows = [Window(window.start - pd.DateOffset(months=i), window.start - pd.DateOffset(months=i - 1))
                   for i in range(1, baseline_windows + 1)]
    else:
        windows = [window.shifted(i) for i in range(1, baseline_windows + 1)]
    windows = [w for w in windows if not pd.isna(start) and w.start >= start.floor("D")]
    empty = pd.DataFrame({c: pd.Series(dtype=object) for c in _ISSUE_COLUMNS})
    if len(windows) < min_baseline_windows:
        need = periods_in_words(min_baseline_windows, window.days, months)
        note = (f"Not enough history to spot emerging issues: they need {need} before {window.label}, "
                "with data from the start of each.")
        return EmergingIssues(window, len(windows), empty, note, months)
    test = {"min_count": min_count, "min_ratio": min_ratio, "max_p_value": max_p_value, "months": months}
    rows = messages[messages["topic"] != NO_TOPIC]
    found = [(int(topic), _label_of(labels, topic), *surge)
             for topic, surge in _surges(rows, rows["topic"].to_numpy(), window, windows, **test)]
    issues = _strongest_first(pd.DataFrame(found, columns=_ISSUE_COLUMNS) if found else empty)
    # A value is tested on its share: when all messages double, every channel doubles, and none is the news.
    values = [(column, value, *surge) for column in columns if column in messages
              for value, surge in _value_surges(messages, column, (tag_columns or {}).get(column), window, windows,
                                                test) if value != BLANK]
    value_table = _strongest_first(pd.DataFrame(values, columns=_VALUE_COLUMNS) if values else pd.DataFrame(
        {c: pd.Series(dtype=object) for c in _VALUE_COLUMNS}))
    return EmergingIssues(window, len(windows), issues, months=months, values=value_table)


def _value_surges(messages: pd.DataFrame, column: str, separator: str | None, window: Window, windows: list[Window],
                  test: dict) -> list[tuple]:
    """:func:`_surges` of a metadata column's values; of its tags, for a column of tags (a message counts under each
    of its tags, against the number of messages)."""
    texts = metadata_as_text(messages[column])
    if separator is None:
        return _surges(messages, texts.to_numpy(), window, windows, **test, by_share=True)
    tags, _, rows = explode_tags(texts, _weights(messages), separator)
    return _surges(messages.iloc[rows], tags.to_numpy(), window, windows, **test, by_share=True, messages=messages)


def _strongest_first(found: pd.DataFrame) -> pd.DataFrame:
    return found.sort_values(["p_value", "count"], ascending=[True, False]).reset_index(drop=True) if len(found) else found


_MIN_OTHERS = 10
"""Messages a window the other topics need on average before their growth raises a topic's bar."""


def _surges(rows: pd.DataFrame, keys: np.ndarray, window: Window, windows: list[Window], min_count: int,
            min_ratio: float, max_p_value: float, months: bool, by_share: bool = False,
            messages: pd.DataFrame | None = None) -> list[tuple]:
    """``(key, (count, baseline, ratio, z_score, p_value, reason))`` for each key of ``rows`` (a topic, a metadata
    value) whose count in ``window`` passes the test of :func:`emerging_issues` against its mean in ``windows``.

    With ``by_share`` the baseline is the key's usual share of all messages times the messages in ``window``: what
    it would have had if only the volume had changed. ``messages``: what "all messages" counts when ``rows`` holds
    some messages more than once (once per tag); ``rows`` by default.
    """
    weights, dates = _weights(rows), _dates(rows)

    def counts(w: Window) -> pd.Series:
        inside = w.contains(dates)
        return pd.Series(weights[inside]).groupby(keys[inside]).sum()

    now = counts(window).sort_values(ascending=False, kind="stable")
    history = pd.DataFrame({i: counts(w) for i, w in enumerate(windows)})
    history = history.reindex(now.index.union(history.index)).fillna(0)
    total_now, total_before = float(now.sum()), float(history.to_numpy().sum())
    if messages is not None:
        all_weights, all_dates = _weights(messages), _dates(messages)
        total_now = float(all_weights[window.contains(all_dates)].sum())
        total_before = float(sum(all_weights[w.contains(all_dates)].sum() for w in windows))
    if by_share:
        baseline = history.sum(axis=1) / total_before * total_now if total_before else history.sum(axis=1) * 0
    else:
        baseline = history.mean(axis=1)
    usual_total = total_before / max(len(windows), 1)
    per = "per month" if months else f"per {window.days} days" if window.days != 1 else "per day"
    found = []
    for key, count in now.items():
        mean = float(baseline.get(key, 0.0))
        # A topic is news when it grew beyond the rest: when all other messages doubled (a sale, a
        # launch, a busier season) a topic must more than double too. The rest must have grown beyond
        # chance (by the same test), and without enough other messages to tell (a run or a filter of
        # one topic) the topic's own history decides alone.
        others_before, others_now = usual_total - mean, total_now - count
        grew = (not by_share and others_before >= _MIN_OTHERS and others_now > others_before
                and float(pdtrc(others_now - 1, others_before)) <= max_p_value)
        growth = others_now / others_before if grew else 1.0
        expected = mean * growth
        rate = max(expected, 0.5)
        p_value = float(pdtrc(count - 1, rate))
        if count < min_count or count < min_ratio * expected or p_value > max_p_value:
            continue
        ratio = count / mean if mean > 0 else float("inf")
        if by_share:
            usual = float(history.loc[key].sum()) / total_before if total_before else 0.0
            share_now = f"{count:,} of the {total_now:,.0f} messages in {window.label} ({count / total_now:.0%})"
            # A value never seen before has no usual share to be a multiple of ("inf× the 0.0").
            reason = (f"{share_now}; none before." if mean <= 0 else
                      f"{share_now}, against its usual {format_share(usual)}, which would have given "
                      f"{mean:.1f}: {ratio:.1f}× as many.")
        elif mean < 0.5:
            reason = f"{count} messages in {window.label}; almost none before ({mean:.1f} {per} on average)."
        else:
            # Two decimals where one would not give the ratio: "4.9× the usual 2.25", not "the usual 2.2" (11 / 2.2 = 5).
            usual = f"{mean:.2f}" if mean < 10 else f"{mean:.1f}"
            usual = usual[:-1] if mean < 10 and usual.endswith("0") else usual
            reason = f"{count} messages in {window.label}, {ratio:.1f}× the usual {usual} {per}."
        if growth >= 1.1:
            reason = reason[:-1] + f", while the other topics grew {growth:.1f}×."
        found.append((key, (int(count), mean, ratio, (count - expected) / np.sqrt(rate), p_value, reason)))
    return found


# ----------------------------------------------------------------------------------- sentiment over time


def sentiment_over_time(
    messages: pd.DataFrame, granularity: Granularity, by_topic: bool = False, rolling: int = 1
) -> pd.DataFrame:
    """Mean sentiment and volume per period (and per topic), every period included.

    Args:
        rolling: also smooth over this many periods (``smoothed``): the mean of all messages in the
            last ``rolling`` periods, so a quiet period weighs less than a busy one.

    Returns:
        ``period, [topic,] messages, mean_sentiment, share_negative, share_positive, smoothed``; the
        means are NaN in a period without messages.
    """
    dates = _dates(messages)
    # Only the columns needed: copying the rest of a large frame would cost more than the sums.
    needed = ["sentiment", "sentiment_label", *(["topic"] if by_topic else []), *([COUNT] if COUNT in messages else [])]
    dated = messages.loc[dates.notna().to_numpy(), needed].assign(period=period_start(dates.dropna(), granularity))
    keys = ["period", "topic"] if by_topic else ["period"]
    columns = [*keys, "messages", "mean_sentiment", "share_negative", "share_positive", "smoothed"]
    if dated.empty:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in columns})
    sums = _tally(dated, keys)
    full = period_range(dated["period"].min(), dated["period"].max(), granularity)
    if by_topic:
        index = pd.MultiIndex.from_product([full, sorted(dated["topic"].unique())], names=keys)
    else:
        index = pd.Index(full, name="period")
    sums = sums.reindex(index, fill_value=0)
    out = pd.DataFrame(index=sums.index)
    n = sums["messages"].where(sums["messages"] > 0)
    out["messages"] = sums["messages"].astype("int64")
    out["mean_sentiment"] = sums["total"] / n
    out["share_negative"] = sums["neg"] / n
    out["share_positive"] = sums["pos"] / n
    window = max(int(rolling), 1)
    if by_topic:
        grouped = sums.groupby(level="topic")
        total = grouped["total"].transform(lambda s: s.rolling(window, min_periods=1).sum())
        count = grouped["messages"].transform(lambda s: s.rolling(window, min_periods=1).sum())
    else:
        total = sums["total"].rolling(window, min_periods=1).sum()
        count = sums["messages"].rolling(window, min_periods=1).sum()
    out["smoothed"] = total / count.where(count > 0)
    return out.reset_index()[columns]


def sentiment_drivers(
    messages: pd.DataFrame, topics: pd.DataFrame, current: Window, previous: Window, n: int = 4
) -> pd.DataFrame:
    """Which topics moved the overall mean sentiment between two windows, and by how much.

    The overall mean is the message-weighted sum of topic means, so its change splits exactly into one
    contribution per topic: ``share_now * mean_now - share_before * mean_before``. A topic contributes
    by changing its tone or by growing while its tone is far from neutral.

    Returns:
        ``topic, label, previous_messages, current_messages, previous_mean, current_mean, contribution``
        for the ``n`` largest contributions up, largest first, then the ``n`` largest down, largest first:
        the largest by size alone were often all one way, and a chart of five rises hid topics that pulled
        the mean down almost as much. The contributions of all topics sum to the change in overall mean
        sentiment.
    """
    labels = topic_labels(topics)
    dates = _dates(messages)
    parts = {}
    for name, window in (("previous", previous), ("current", current)):
        rows = messages[window.contains(dates)]
        sums = _tally(rows, ["topic"])
        parts[name] = pd.DataFrame({f"{name}_messages": sums["messages"], f"{name}_mean": sums["total"] / sums["messages"],
                                    f"{name}_weight": sums["total"] / max(message_count(rows), 1)})
    table = parts["previous"].join(parts["current"], how="outer")
    table[["previous_messages", "current_messages"]] = table[["previous_messages", "current_messages"]].fillna(0)
    table["contribution"] = table["current_weight"].fillna(0) - table["previous_weight"].fillna(0)
    table = table.rename_axis("topic").reset_index()
    table["label"] = [_label_of(labels, t) for t in table["topic"]]
    rises = table[table["contribution"] > 0].sort_values("contribution", ascending=False).head(n)
    falls = table[table["contribution"] < 0].sort_values("contribution").head(n)
    table = pd.concat([rises, falls])
    columns = ["topic", "label", "previous_messages", "current_messages", "previous_mean", "current_mean",
               "contribution"]
    out = table[columns].reset_index(drop=True)
    out[["previous_messages", "current_messages"]] = out[["previous_messages", "current_messages"]].astype("int64")
    return out


def sentiment_counts(messages: pd.DataFrame) -> dict[str, int]:
    """Messages per sentiment label, every label present (0 when absent)."""
    counts = pd.Series(_weights(messages)).groupby(messages["sentiment_label"].astype(str).to_numpy()).sum()
    return {label: int(counts.get(label, 0)) for label in SENTIMENT_LABELS}


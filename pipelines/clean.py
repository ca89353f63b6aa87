"""Turn raw records into clean messages: normalised text, UTC dates, stable ids, no duplicates.

Owns: text normalisation, length bounds, date parsing, de-duplication and the record of what was
skipped and why. Pure functions over DataFrames; no file access.
"""

from __future__ import annotations

import difflib
import hashlib
import html
import json
import re
import unicodedata
import zoneinfo
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipelines.errors import FeedbackLensError, InputError
from pipelines.expectations import TAG_COLUMNS
from pipelines.ingest import (
    SEQUENCES,
    RawTable,
    ResolvedColumns,
    cell_text,
    is_nested,
    longest_text_column,
    record_texts,
)
from pipelines.metrics import count_of
from pipelines.settings import Settings

# The columns every cleaned message has, before its metadata.
BASE_COLUMNS = ("message_id", "text", "text_hash", "date", "source_row")
# Columns a run adds itself: a metadata column with one of these names is kept as "<name>_meta".
RESERVED = {*BASE_COLUMNS, "topic", "sentiment", "sentiment_label", "x", "y", "preview", *TAG_COLUMNS}
# HTML from helpdesk exports (Zendesk, Freshdesk, e-mail bodies): tags would become topic words ("div", "nbsp")
# and hide the text's own line breaks. Only known tag names: "I <3 it", "a < b" and "<ann@example.com>" stay.
_HTML_DROPPED = re.compile(r"<!--.*?-->|<(script|style)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
# A tag ends right after its name or after attributes written name=value: "<b then c>" is no tag.
_TAG_END = r"(?:\s+[^<>]*=[^<>]*)?\s*/?>"
_HTML_BREAK = re.compile(
    r"</?(?:br|p|div|li|ul|ol|tr|table|h[1-6]|blockquote|pre|hr|section|article|header|footer|dd|dt|dl)"
    + _TAG_END, re.IGNORECASE)
_HTML_INLINE = re.compile(
    r"</?(?:span|b|i|u|s|em|strong|a|font|img|small|big|sup|sub|code|td|th|tbody|thead|tfoot|label|mark|"
    r"strike|del|ins|abbr|cite|q|tt|center|wbr|html|head|body|meta|link|title|o:p)"
    + _TAG_END, re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CONTROL_ASCII = str.maketrans(dict.fromkeys([*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F], " "))
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f\u205f\u3000]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")
# A character other than printable ASCII and newlines, or a tag or entity start (< and &): normalising may change it.
_NOT_PLAIN = re.compile(r"[^\x20-\x25\x27-\x3b\x3d-\x7e\n]")
_RAW = "_raw\x1f"  # prefix of metadata columns as read, between clean_records and finish_cleaning
_HAS_ZONE = re.compile(r"(?:Z|[+-]\d{2}:?\d{2}|\b(?:UTC|GMT)\b)\s*$", re.IGNORECASE)
# "UTC+2", "GMT -05:30": an offset written the way people say it, which pandas does not read.
_SPOKEN_OFFSET = re.compile(r"(?:UTC|GMT)?\s*([+-])\s*(\d{1,2})(?::?(\d{2}))?", re.IGNORECASE)
_EXCEL_SERIALS = (20_000, 80_000)  # Excel's day numbers for 1954-2119
# A time of day alone (10:00, 2:30 PM): the general parser would put it on today's date.
_TIME_ONLY = r"(?i)T?\d{1,2}(?::\d{2}){1,2}(?:[.,]\d+)?\s*(?:[ap]\.?m\.?)?\s*(?:Z|UTC|GMT|[+-]\d{2}:?\d{2})?"
# A date with its day and month as numbers and the year last (01.11.2026, 3/11/26, 11-03-2026 14:30): which of the
# first two is the day is the file's convention, not the value's. The same separator twice; a time may follow.
_DMY = re.compile(r"^(\d{1,2})([./-])(\d{1,2})\2(\d{4}|\d{2})(?=[\sT,]|$)")
_DMY_HEAD = 11  # such a date and the character after it fit in the value's first 11 characters
# What a value of a date column says about its column's day-month order (``_date_kind`` between clean_records and
# finish_cleaning): nothing (ISO, a word for the month, day = month), proves day first (13.05.2026), proves month
# first (05/13/2026), or could be either, written with dots or with slashes or dashes.
_NO_ORDER, _DAY_FIRST, _MONTH_FIRST, _EITHER_DOTS, _EITHER_SLASHES, _EXCEL_DAY = range(6)
"""What a date value says about how it was written: the day-month order it proves or leaves open, or that it is an
Excel day number (which a note names when written dates sit beside it)."""


@dataclass
class CleanReport:
    """What cleaning did, for the run summary: counts by reason, plus notes for the user."""

    rows_read: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    truncated: int = 0
    missing_dates: int = 0
    notes: list[str] = field(default_factory=list)

    def skip(self, reason: str, count: int) -> None:
        """Record ``count`` messages dropped for ``reason``."""
        if count:
            self.skipped[reason] = self.skipped.get(reason, 0) + int(count)


def _check_ids_identify_messages(table: RawTable, out: pd.DataFrame, dup_id: pd.Series,
                                 columns: ResolvedColumns) -> str | None:
    """Refuse an id column that most messages share with a different one: each repeated id is kept once, as the
    newest version of its message, so a column of categories or one constant value taken for the id would drop
    nearly every message with no more than a count in the summary. Fewer such messages get a note naming the
    first, since they may be different messages under one id rather than versions of one."""
    if not dup_id.any():
        return None
    last = out.loc[~dup_id, ["message_id", "text_hash"]].set_index("message_id")["text_hash"]
    dropped = out.loc[dup_id, ["message_id", "text_hash", "source_row"]]
    other = dropped["text_hash"].to_numpy() != last.reindex(dropped["message_id"]).to_numpy()
    differs = int(other.sum())
    if not differs:
        return None
    if differs * 2 <= len(out):
        first = dropped[other].iloc[0]
        return (f'{count_of(differs, "message")} shared {"its" if differs == 1 else "their"} id (column '
                f'"{columns.id}") with a later row that says something else, and only the later one was kept as the '
                f'newer version (first: {table.row_label} {int(first["source_row"])}, id "{first["message_id"]}"). '
                "If they are different messages, give them ids of their own.")
    how = (f'; "{columns.id}" was taken for it from its name' if "id" in columns.detected else "")
    raise InputError(
        f'{table.path.name}, column "{columns.id}": not an id of each message. {differs:,} of {len(out):,} messages '
        f"share their id with a later one that says something else, so only {len(out) - int(dup_id.sum()):,} would be "
        "kept (a repeated id is read as a newer version of the same message).",
        fix=f"Name the column that holds a unique id of each message with --id{how}; or make the ids in the file "
            "unique.")


def _plain(text: str) -> bool:
    # Substring tests run in C; one regex with these as alternatives would take three times as long.
    return (not _NOT_PLAIN.search(text) and "  " not in text and " \n" not in text and "\n " not in text
            and "\n\n\n" not in text and text[:1] not in " \n" and text[-1:] not in " \n")


def strip_html(text: str) -> str:
    """Text without its HTML tags: block tags (p, div, br, li...) become line breaks, inline ones (b, span, a...)
    nothing, table cells a space; scripts, styles and comments go with what they hold. Entities are decoded later."""
    text = _HTML_DROPPED.sub("", text)
    text = _HTML_BREAK.sub("\n", text)
    return _HTML_INLINE.sub(lambda m: " " if m.group(0).lstrip("</")[:2].lower() in ("td", "th") else "", text)


def normalise_text(value: object) -> str:
    """Unicode NFKC, HTML line breaks and entities decoded, control characters and runs of spaces removed."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, SEQUENCES):  # paragraphs in JSON or Parquet: one per line, not a repr
        text = "\n".join(t for t in (normalise_text(v) for v in value) if t)
    else:
        text = (cell_text(value) or "") if isinstance(value, dict) else str(value)
    if _plain(text):
        return text  # most messages: the steps below would leave them as they are
    if "<" in text:
        text = strip_html(text)
    if "&" in text:
        text = html.unescape(text)
    if not text.isascii():
        return _normalise_unicode(text)
    # ASCII (most of what is left): NFKC leaves it as it is, and its only spaces are spaces and tabs, so string
    # methods do what the regular expressions do, in half the time.
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_CONTROL_ASCII).replace("\t", " ")
    while "  " in text:
        text = text.replace("  ", " ")
    return _tidy_lines(text)


def _normalise_unicode(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub(" ", text)
    text = _SPACES.sub(" ", text)
    return _tidy_lines(text)


def _tidy_lines(text: str) -> str:
    text = "\n".join(line.strip() for line in text.split("\n"))
    if text.count("\n") > 1:
        text = _BLANK_LINES.sub("\n\n", text)
    return text.strip()


def text_hash(text: str) -> str:
    """Key of the embedding cache: the same normalised text always has the same hash."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def check_timezone(zone: object, where: str) -> str:
    """``zone`` if pandas can read dates in it (a tz database name such as Europe/Paris, or an offset like +02:00).

    Checked before a run starts: pandas only looks the zone up when it meets the first date without one, deep
    in cleaning, and then fails with a traceback. ``where`` names the option or mapping-file key it came from,
    e.g. ``--timezone`` or ``mapping.yaml, line 3: timezone``.

    Raises:
        FeedbackLensError: not a zone; the fix suggests the closest zone name.
    """
    if isinstance(zone, str) and zone.strip().upper() in _FIXED_ABBREVIATIONS:
        meant, offset = _FIXED_ABBREVIATIONS[zone.strip().upper()]
        raise FeedbackLensError(f'{where} "{zone}" is a fixed offset ({offset}) that never changes for daylight saving, '
                                "so summer times would be an hour off.",
                                fix=f"Use {meant} for the local time there, or {offset} if the times really never change.")
    if isinstance(zone, str) and zone.strip():
        try:
            pd.Timestamp("2024-01-01").tz_localize(zone)
            return zone
        except Exception:  # pandas raises ZoneInfoNotFoundError, ValueError or IndexError, by the kind of typo
            pass
    closest = _closest_timezone(str(zone)) if isinstance(zone, str) else None
    hint = f"Did you mean {closest}? " if closest else ""
    raise FeedbackLensError(f'{where} "{zone}" is not a time zone.',
                            fix=f"{hint}Use a tz database name such as Europe/Paris, America/New_York or UTC, "
                            "or an offset such as +02:00.")


# What people call their zone, by the tz database name that keeps its daylight-saving rules. "PST" is no zone name,
# and its nearest spelling, MST, is a fixed offset without daylight saving: an hour wrong half the year.
_SPOKEN_ZONES = {
    "America/Los_Angeles": ("pst", "pdt", "pt", "pacific", "pacific time", "pacific standard time", "us/pacific"),
    "America/Denver": ("mdt", "mt", "mountain", "mountain time", "mountain standard time"),
    "America/Phoenix": ("arizona", "arizona time"),
    "America/Chicago": ("cst", "cdt", "ct", "central", "central time", "central standard time"),
    "America/New_York": ("edt", "et", "eastern", "eastern time", "eastern standard time"),
    "America/Anchorage": ("akst", "akdt", "alaska", "alaska time"),
    "Pacific/Honolulu": ("hst", "hawaii", "hawaii time"),
    "Europe/London": ("bst", "uk", "uk time", "british time"),
    "Europe/Paris": ("cest", "central european time", "central european summer time"),
    "Europe/Helsinki": ("eest", "eastern european time"),
    "Asia/Kolkata": ("ist", "india", "indian standard time"),
    "Australia/Sydney": ("aest", "aedt", "australian eastern time"),
    "Asia/Tokyo": ("jst", "japan", "japan standard time"),
}
# Zone names in the tz database that are fixed offsets, though people write them for zones with daylight saving.
_FIXED_ABBREVIATIONS = {"EST": ("America/New_York", "-05:00"), "MST": ("America/Denver", "-07:00")}
_SPOKEN_ZONE = {name: zone for zone, names in _SPOKEN_ZONES.items() for name in names}


def _closest_timezone(zone: str) -> str | None:
    """The zone a typo most likely meant: a wrong case or letter (europe/pariss), a city alone (Paris), "UTC+2",
    or what people call a zone ("PST", "Pacific Time")."""
    spoken = _SPOKEN_ZONE.get(" ".join(zone.casefold().replace("_", " ").split()))
    if spoken:
        return spoken
    offset = _SPOKEN_OFFSET.fullmatch(zone.strip())
    if offset:
        sign, hours, minutes = offset.groups()
        return f"{sign}{int(hours):02d}:{minutes or '00'}" if int(hours) <= 14 else None
    zones = sorted(zoneinfo.available_timezones())
    key = zone.strip().casefold().replace(" ", "_")
    by_name = {z.casefold(): z for z in zones}
    close = difflib.get_close_matches(key, by_name, n=1, cutoff=0.6)
    if close:
        return by_name[close[0]]
    by_city = {z.rsplit("/", 1)[1].casefold(): z for z in zones if "/" in z}
    close = difflib.get_close_matches(key, by_city, n=1, cutoff=0.8)
    return by_city[close[0]] if close else None


def parse_dates(values: pd.Series, assume_timezone: str = "UTC", date_order: str = "auto") -> pd.Series:
    """Parse dates in common formats and zones to UTC; unparseable values become NaT.

    Values without a zone are read in ``assume_timezone``. Numbers are read as Unix epoch
    seconds (or milliseconds when they are that large). Dates written with numbers and the year last
    (01.11.2026, 03/11/2026) are read in ``date_order``: "day-first", "month-first", or "auto": one order for
    all of ``values``, the one their dates prove (13.05.2026 can only be day first), else day first for dates
    with dots and month first for dates with slashes or dashes.

    Example:
        >>> parse_dates(pd.Series(["01.11.2026", "13.11.2026"])).dt.month.tolist()
        [11, 11]
    """
    return read_dates(values, assume_timezone, date_order)[0]


def read_dates(values: pd.Series, assume_timezone: str = "UTC",
               date_order: str = "auto") -> tuple[pd.Series, np.ndarray]:
    """:func:`parse_dates`, and what each value says about the day-month order (``_DAY_FIRST``, ...): a file read
    in parts is read in one order only once every part's values are in (:func:`finish_cleaning`)."""
    kinds = np.zeros(len(values), dtype=np.int8)
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC"), kinds
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return _in_zone(values, assume_timezone).dt.tz_convert("UTC"), kinds
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    present = values.notna() & (values.astype(str).str.strip() != "")
    if not present.any():
        return out, kinds
    vals = values[present]
    numeric = pd.to_numeric(vals, errors="coerce")
    # True/False are not dates (JSON and Excel cells can hold them); they stay text and fail as such.
    # Only strings (a text file's column): no element needs looking at one by one.
    textual = isinstance(vals.dtype, pd.StringDtype) or pd.api.types.infer_dtype(vals, skipna=False) == "string"
    is_num = numeric.notna() & (True if textual else vals.map(lambda v: not isinstance(v, pd.Timestamp | bool | np.bool_)))
    if is_num.any():
        nums = numeric[is_num].astype("float64")
        # Excel's serial dates (45123 is 16 Jul 2023; days since 30 Dec 1899, as a CSV saved from Excel may hold
        # them): as epoch seconds they would be the first day of 1970, which no feedback is from.
        serial = (nums >= _EXCEL_SERIALS[0]) & (nums < _EXCEL_SERIALS[1])
        unit = np.where(serial, "d", np.where(nums.abs() > 1e11, "ms", "s"))
        for u in ("s", "ms"):
            part = nums[unit == u]
            # Below 1e8 s (March 1973) a number is an id, a count or a rating mapped as the date by mistake.
            ok = (part < (4.1e9 if u == "s" else 4.1e12)) & (part >= 1e8)
            out.loc[part[ok].index] = _plausible(pd.to_datetime(part[ok], unit=u, utc=True))
        if serial.any():
            clock = pd.Timestamp("1899-12-30") + pd.to_timedelta(nums[serial], unit="D")
            out.loc[nums[serial].index] = _plausible(_in_zone(clock.dt.round("s"), assume_timezone).dt.tz_convert("UTC"))
            kinds[np.flatnonzero(present.to_numpy())[np.flatnonzero(is_num.to_numpy())[serial.to_numpy()]]] = _EXCEL_DAY
    rest = vals[~is_num]
    if not rest.empty:
        as_text = rest.str.strip() if textual else rest.map(
            lambda v: v.isoformat() if isinstance(v, pd.Timestamp | np.datetime64) else str(v).strip())
        # ISO 8601 first (what exports hold; parsed in C, five times as fast), any other format by the general parser,
        # which reads ISO dates the same way.
        parsed = pd.to_datetime(as_text, format="ISO8601", errors="coerce", utc=True)
        other = parsed.isna().to_numpy()
        if other.any():
            parsed = _nanoseconds(parsed)
            as_text = as_text.copy()
            as_text[other] = _zone_names_as_offsets(as_text[other])
            year_first, found = _year_first(as_text[other], date_order)
            again = pd.to_datetime(year_first, format="ISO8601", errors="coerce", utc=True)
            left = again.isna().to_numpy()
            if left.any():  # times such as "2:30 PM", month names
                again = _nanoseconds(again)
                again[left] = _nanoseconds(pd.to_datetime(year_first[left], format="mixed", errors="coerce", utc=True))
            parsed[other] = _nanoseconds(again)
            at = np.flatnonzero(present.to_numpy())[np.flatnonzero(~is_num.to_numpy())[other]]
            kinds[at] = found
        if assume_timezone != "UTC":
            naive = ~as_text.str.contains(_HAS_ZONE) & parsed.notna()
            if naive.any():
                parsed.loc[naive] = _in_zone(parsed[naive].dt.tz_convert(None), assume_timezone).dt.tz_convert("UTC")
        # "today", "now", "Monday" and a time alone name no day of their own: the parsers would read them as the day
        # the run happens, so they count as values that are not dates. The ISO reader takes only "today" and "now"
        # so (a set lookup for the many values it read); the others went through the general parser.
        dateless = as_text.isin(("today", "now")).to_numpy().copy()
        if other.any():
            odd = as_text[other]
            dateless[other] = (~odd.str.contains(r"\d") | odd.str.fullmatch(_TIME_ONLY)).to_numpy(dtype=bool)
        out.loc[rest.index] = _plausible(parsed.where(~dateless))
    return out, kinds


# Zone abbreviations that name one offset wherever they are written (US and Canadian, European, Asia-Pacific).
# CST (US Central or China) and IST (India, Ireland or Israel) name several, and stay unread.
_ZONE_OFFSETS = {"EST": "-05:00", "EDT": "-04:00", "CDT": "-05:00", "MST": "-07:00", "MDT": "-06:00",
                 "PST": "-08:00", "PDT": "-07:00", "AKST": "-09:00", "AKDT": "-08:00", "HST": "-10:00",
                 "AST": "-04:00", "ADT": "-03:00", "NST": "-03:30", "NDT": "-02:30",
                 "WET": "+00:00", "WEST": "+01:00", "BST": "+01:00", "CET": "+01:00", "CEST": "+02:00",
                 "EET": "+02:00", "EEST": "+03:00", "MSK": "+03:00", "JST": "+09:00", "KST": "+09:00",
                 "HKT": "+08:00", "SGT": "+08:00", "AWST": "+08:00", "ACST": "+09:30", "ACDT": "+10:30",
                 "AEST": "+10:00", "AEDT": "+11:00", "NZST": "+12:00", "NZDT": "+13:00"}
_ZONE_NAME = re.compile(r"\s*\(?\b(?:" + "|".join(_ZONE_OFFSETS) + r")\)?$")
_AMBIGUOUS_ZONE = re.compile(r"\b(?:CST|IST)\)?$")


def _zone_names_as_offsets(text: pd.Series) -> pd.Series:
    """``Jan 5, 2024 3:45 PM PST`` as ``Jan 5, 2024 3:45 PM -08:00``: a US or European export writes its zone's
    abbreviation, which no parser here reads."""
    named = text.str.contains(_ZONE_NAME)
    if not named.any():
        return text
    out = text.copy()
    out[named] = text[named].str.replace(_ZONE_NAME, lambda m: " " + _ZONE_OFFSETS[m.group(0).strip(" \t()")],
                                         regex=True)
    return out


def _year_first(text: pd.Series, date_order: str) -> tuple[pd.Series, np.ndarray]:
    """``text`` with its dates written day and month first (01.11.2026 14:00) rewritten year first (2026-11-01 14:00),
    in ``date_order`` ("auto": one order for all, see :func:`parse_dates`), and what each value says about the
    order. Vectorised, the numbers looked at once per distinct start of a value (a million messages are written on
    a few hundred days), and the rewritten dates parsed by pandas' ISO 8601 reader, in C."""
    codes, heads = pd.factorize(text.str.slice(0, _DMY_HEAD))
    parts = pd.Series(heads, dtype=object).str.extract(_DMY)
    dmy = parts[0].notna().to_numpy()[codes]
    kinds = np.zeros(len(text), dtype=np.int8)
    if not dmy.any():
        return text, kinds
    found = parts[0].notna().to_numpy()
    p = parts[found]
    first, second = p[0].astype("int64").to_numpy(), p[2].astype("int64").to_numpy()
    day_first = (first > 12) & (first <= 31) & (second >= 1) & (second <= 12)
    month_first = (second > 12) & (second <= 31) & (first >= 1) & (first <= 12)
    either = (first != second) & (first >= 1) & (first <= 12) & (second >= 1) & (second <= 12)
    dots = (p[1] == ".").to_numpy()
    head_kinds = np.zeros(len(heads), dtype=np.int8)
    head_kinds[found] = np.select([day_first, month_first, either & dots, either],
                                  [_DAY_FIRST, _MONTH_FIRST, _EITHER_DOTS, _EITHER_SLASHES], _NO_ORDER)
    kinds = head_kinds[codes]
    if date_order == "auto":
        # A value that proves its order is read in it even when others prove the other (the file is then refused).
        proved_day, proved_month = day_first.any(), month_first.any()
        read_day_first = np.full(len(p), proved_day) if proved_day != proved_month else dots
        read_day_first = np.where(day_first, True, np.where(month_first, False, read_day_first))
    else:
        read_day_first = np.full(len(p), date_order == "day-first")
    year = p[3].astype("int64").to_numpy()
    # Two-digit years as the general parser (dateutil) reads them: within 50 years of this one (26: 2026, 80: 1980).
    now = pd.Timestamp.now().year
    full = now // 100 * 100 + year
    full = np.where(full >= now + 50, full - 100, np.where(full < now - 50, full + 100, full))
    year = np.where(p[3].str.len().to_numpy() == 2, full, year)
    day, month = np.where(read_day_first, first, second), np.where(read_day_first, second, first)
    iso = np.full(len(heads), None, dtype=object)
    iso[found] = (pd.Series(year).astype(str).str.zfill(4) + "-" + pd.Series(month).astype(str).str.zfill(2) + "-"
                  + pd.Series(day).astype(str).str.zfill(2)).to_numpy(dtype=object)
    length = np.zeros(len(heads), dtype=np.int64)
    length[found] = (p[0].str.len() + p[2].str.len() + p[3].str.len() + 2).to_numpy()
    out = text.astype(object).to_numpy(copy=True)
    lengths = length[codes]
    for n in np.unique(lengths[dmy]):  # the time after the date, if any, from where the date ends
        rows = dmy & (lengths == n)
        tail = text[rows].str.slice(int(n))
        timed = tail != ""
        tail[timed] = tail[timed].str.replace(r"^[\s,]+", " ", regex=True).str.rstrip()
        out[rows] = (pd.Series(iso[codes[rows]], index=tail.index) + tail).to_numpy(dtype=object)
    return pd.Series(out, index=text.index), kinds


def looks_like_dates(values: pd.Series, sample: int = 200) -> bool:
    """Whether a column holds dates, for a file whose column names do not say which is the date: 19 in 20 of its
    first ``sample`` non-empty values read as dates and are written as dates (a four-digit year, or day, month and
    year as numbers). Plain numbers are not: ids, ratings and amounts would read as epoch seconds."""
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return bool(values.notna().any())
    if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
        return False
    present = values[values.notna()].head(sample * 2)
    text = present.astype(str).str.strip()
    present, text = present[text != ""].head(sample), text[text != ""].head(sample)
    if text.empty:
        return False
    written = (text.str.contains(r"\d{4}") | text.str.match(_DMY)) & pd.to_numeric(text, errors="coerce").isna()
    dated = written & parse_dates(present).notna()
    return bool(dated.mean() >= 0.95)


def _in_zone(clock: pd.Series, zone: str) -> pd.Series:
    """Clock times (no zone) as the instants they were in ``zone``, daylight-saving changes included.

    When clocks go back, 1:30 am happens twice: it is read as the first (the earlier instant). When they go forward,
    2:30 am never happens: it is read as 3:00 am, the first time after the gap. Both are real times in an export
    (a ticket opened in that hour), not mistakes to stop the run for.
    """
    return clock.dt.tz_localize(zone, ambiguous=np.ones(len(clock), dtype=bool), nonexistent="shift_forward")


def _nanoseconds(dates: pd.Series) -> pd.Series:
    """UTC dates in nanoseconds, those beyond that unit's years (1678-2261: implausible anyway) missing."""
    years = dates.dt.year
    return dates.where(dates.notna() & (years > 1678) & (years < 2262)).astype("datetime64[ns, UTC]")


def _plausible(dates: pd.Series) -> pd.Series:
    """Dates outside 1970-2100 are typos or placeholders (0001-01-01, 9999-12-31), not feedback dates."""
    keep = dates.notna() & (dates.dt.year >= 1970) & (dates.dt.year <= 2100)
    return dates.where(keep).astype("datetime64[ns, UTC]")


def _zoneless_times(values: pd.Series, dates: pd.Series) -> np.ndarray:
    """Which dates have a time of day but name no zone (so were read in the zone assumed): a time zone note's rows."""
    if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_numeric_dtype(values.dtype):
        return np.zeros(len(values), dtype=bool)  # zoned, or epoch seconds (UTC by definition)
    timed = (dates.notna() & (dates != dates.dt.normalize())).to_numpy()
    if pd.api.types.is_datetime64_any_dtype(values.dtype) or not timed.any():
        return timed
    text = values.astype(str).str.strip()
    zoned = text.str.contains(_HAS_ZONE).to_numpy(dtype=bool) | text.str.contains(_ZONE_NAME).to_numpy(dtype=bool)
    return timed & ~zoned & pd.to_numeric(text, errors="coerce").isna().to_numpy()


def _after_today() -> pd.Timestamp:
    # A day's slack: a clock in a zone east of UTC is already in tomorrow.
    return pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=1)


def _settle_date_order(table: RawTable, out: pd.DataFrame, column: str, settings: Settings,
                       report: CleanReport) -> None:
    """One day-month order for the whole column (``settings.date_order`` "auto"), once every record is in: the
    dates that could be either are read again where a slice (a part read on a worker) had no proof of its own, or
    the order read is said in a note. A column whose dates prove both orders is refused.

    Raises:
        InputError: a date proves day first and another month first; names a line of each and the option.
    """
    if settings.date_order != "auto":
        return
    kinds = out["_date_kind"].to_numpy()
    day, month = np.flatnonzero(kinds == _DAY_FIRST), np.flatnonzero(kinds == _MONTH_FIRST)
    if len(day) and len(month):
        def place(i: int) -> str:
            line = table.line_of(int(out["source_row"].iat[i]), column)
            return f"{table.row_label} {line}: {str(out['_date_value'].iat[i])[:40]!r}"

        raise InputError(
            f'{table.path.name}, column "{column}": some dates are written day first and others month first '
            f"({place(day[0])} can only be day first; {place(month[0])} can only be month first), so a date such as "
            "03/11/2026 cannot be read safely.",
            fix="Write every date the same way (best as 2026-11-03), or say how to read them with --date-order "
            "day-first or --date-order month-first (date_order in a mapping file); dates that do not fit that order "
            "are then reported as dates not understood.")
    if len(day) or len(month):
        wrong = kinds == (_EITHER_SLASHES if len(day) else _EITHER_DOTS)
        if wrong.any():
            order = "day-first" if len(day) else "month-first"
            out.loc[wrong, "date"] = parse_dates(out.loc[wrong, "_date_value"], settings.assume_timezone, order)
        return
    for kind, read, other in ((_EITHER_DOTS, "day", "month"), (_EITHER_SLASHES, "month", "day")):
        either = np.flatnonzero(kinds == kind)
        if len(either):
            value, date = out["_date_value"].iat[either[0]], out["date"].iat[either[0]]
            if pd.notna(date):
                date = date.tz_convert(settings.assume_timezone)
                report.notes.append(
                    f'Column "{column}": dates like {value} were read {read} first ({date.day} {date:%b %Y}); '
                    f"if they are {other} first, use --date-order {other}-first.")


def _bad_date_error(table: RawTable, column: str, bad: pd.DataFrame, total: int) -> InputError:
    # The line of the date itself: in a CSV record whose text spans lines, not the line the record starts on.
    first = "; ".join(f"{table.row_label} {table.line_of(int(r), column)}: {str(v)[:40]!r}"
                      for r, v in zip(bad["_row"].head(3), bad[column].head(3), strict=True))
    values = bad[column].astype(str).str.strip()
    why = (": times of day without a day" if values.str.fullmatch(_TIME_ONLY).all()
           else ": CST and IST each name several time zones (US Central or China; India, Ireland or Israel)"
           if values.str.contains(_AMBIGUOUS_ZONE).any() else "")
    return InputError(
        f'{table.path.name}, column "{column}": {len(bad):,} of {total:,} values are not dates '
        f"(first: {first}){why}.",
        fix=("Write the zone as an offset (2024-05-31 14:00 -06:00)" if "CST" in why
             else "Correct those values (e.g. 2024-05-31 or 2024-05-31T14:00:00+02:00)")
        + ", map another column with --date, or pass --on-bad-date drop to skip those messages.",
    )


def _no_text_note(table: RawTable, column: str, rows: pd.Series, shown: int = 3) -> str:
    """'3 messages without text skipped (field "body" missing or empty), first at lines 12, 30, 45.'"""
    places = ", ".join(str(int(r)) for r in rows.head(shown))
    label = table.row_label + ("s" if min(len(rows), shown) > 1 else "")
    return (f'{count_of(len(rows), "message")} without text skipped (field "{column}" missing or empty), '
            f"first at {label} {places}.")


def clean_messages(table: RawTable, columns: ResolvedColumns, settings: Settings) -> tuple[pd.DataFrame, CleanReport]:
    """Clean raw records into messages.

    Returns a frame with ``message_id``, ``text``, ``text_hash``, ``date`` (UTC or NaT),
    ``source_row`` and the metadata columns, plus a :class:`CleanReport`.

    Raises:
        InputError: unparseable dates when ``settings.on_bad_date == "fail"``; no messages left.
    """
    return finish_cleaning(table, clean_records(table.frame, columns, settings), columns, settings)


def clean_records(raw: pd.DataFrame, columns: ResolvedColumns, settings: Settings) -> pd.DataFrame:
    """The part of cleaning that looks at one record at a time: any slice of the records can be cleaned on its
    own (on a Dask worker), and :func:`finish_cleaning` then joins the slices as if they were cleaned at once.

    Returns one row per record: ``source_row``, ``text`` (normalised, cut to the longest length), ``text_hash``,
    ``date`` (parsed), ``message_id`` (the id column as text, or ""), the metadata columns as read (named with the
    ``_RAW`` prefix: a metadata column may be called "text"), and what finishing needs: ``_truncated``,
    ``_date_given``, ``_date_kind`` (what the value says about the day-month order), ``_date_value`` (the value as
    read, where it is not a date, could be day or month first, is after today or is the slice's first proof of an
    order).
    """
    out = pd.DataFrame({"source_row": raw["_row"].astype("int64").to_numpy()})
    out["text"] = [normalise_text(v) for v in raw[columns.text].tolist()]
    too_long = (out["text"].str.len() > settings.max_message_chars).to_numpy()
    if too_long.any():
        out.loc[too_long, "text"] = out.loc[too_long, "text"].str.slice(0, settings.max_message_chars)
    out["_truncated"] = too_long
    out["text_hash"] = [text_hash(t) if t else "" for t in out["text"]]
    if columns.date:
        # Keeps the zone-aware type even when no value in this slice is a date (an array of NaT would lose it).
        dates, kinds = read_dates(raw[columns.date], settings.assume_timezone, settings.date_order)
        out["date"] = dates.set_axis(out.index)
        given = (raw[columns.date].notna() & (raw[columns.date].astype(str).str.strip() != "")).to_numpy()
        out["_date_given"] = given
        out["_date_kind"] = kinds
        keep = given & (out["date"].isna().to_numpy() | (kinds >= _EITHER_DOTS)
                        | (out["date"] > _after_today()).to_numpy())
        for proof in (_DAY_FIRST, _MONTH_FIRST):
            keep[np.flatnonzero(kinds == proof)[:1]] = True
        # As objects first: masking a column of whole numbers would turn it to floats (-1 shown as "-1.0"), and only
        # in the slices where some value is masked.
        out["_date_value"] = raw[columns.date].astype(object).where(keep).to_numpy(dtype=object)
        out["_zoneless_time"] = _zoneless_times(raw[columns.date], out["date"]) if settings.assume_timezone == "UTC" \
            else False
    else:
        out["date"] = pd.Series(pd.NaT, index=out.index, dtype="datetime64[ns, UTC]")
        out["_date_given"] = False
        out["_zoneless_time"] = False
        out["_date_kind"] = np.int8(_NO_ORDER)
        out["_date_value"] = None
    for col in columns.metadata:
        out[_RAW + col] = raw[col].to_numpy()  # typed once every record is in (a column is numbers only if all are)
    if columns.id:
        ids = raw[columns.id].map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v).strip())
        out["message_id"] = ids.to_numpy()
    else:
        out["message_id"] = ""
    return out


def finish_cleaning(table: RawTable, records: pd.DataFrame, columns: ResolvedColumns,
                    settings: Settings) -> tuple[pd.DataFrame, CleanReport]:
    """Messages from all of a file's :func:`clean_records` (in file order): what needs every record at once,
    dropping empty texts and undated ones, typing the metadata, de-duplicating and giving ids.

    Raises:
        InputError: unparseable dates when ``settings.on_bad_date == "fail"``; no messages left.
    """
    out = records.reset_index(drop=True)
    report = CleanReport(rows_read=len(out))
    empty = (out["text"] == "").to_numpy()
    report.skip("empty text", empty.sum())
    if empty.any():
        report.notes.append(_no_text_note(table, columns.text, out.loc[empty, "source_row"]))

    too_long = out["_truncated"].to_numpy(dtype=bool)
    if too_long.any():
        report.truncated = int(too_long.sum())
        first = int(out.loc[too_long, "source_row"].iloc[0])
        report.notes.append(
            f"{count_of(report.truncated, 'message')} longer than {settings.max_message_chars:,} characters "
            f"{'was' if report.truncated == 1 else 'were'} cut to that "
            f"length (first at {table.row_label} {first}); raise --max-chars to keep more."
        )

    if columns.date:
        _settle_date_order(table, out, columns.date, settings, report)
        given = out["_date_given"].to_numpy(dtype=bool)
        bad = given & out["date"].isna().to_numpy() & ~empty
        if bad.any():
            bad_rows = pd.DataFrame({"_row": out.loc[bad, "source_row"], columns.date: out.loc[bad, "_date_value"]})
            if settings.on_bad_date == "fail":
                error = _bad_date_error(table, columns.date, bad_rows, int((~empty).sum()))
                blank = int((~given & ~empty).sum())
                if blank:  # kept without a date either way: said now, not first in the summary of a skipping run
                    error = error.with_fix(f"{error.fix} ({count_of(blank, 'message')} with an empty date "
                                           f"{'is' if blank == 1 else 'are'} kept, without a date.)")
                raise error
            report.skip(f'date not understood in column "{columns.date}"', bad.sum())
            empty = empty | bad
        report.missing_dates = int((~given & ~empty).sum())
        zoneless = ~empty & out["_zoneless_time"].to_numpy(dtype=bool)
        if zoneless.any():  # a helpdesk export's local times, read as UTC, put late tickets on the next day
            report.notes.append(
                f'Column "{columns.date}": {count_of(int(zoneless.sum()), "time")} of day without a time zone '
                f"{'was' if zoneless.sum() == 1 else 'were'} read as UTC; if they are local times, give your zone with "
                "--timezone (e.g. --timezone America/New_York), so that days are yours.")
        excel_days = ~empty & (out["_date_kind"].to_numpy() == _EXCEL_DAY) & out["date"].notna().to_numpy()
        written = ~empty & ~excel_days & given & out["date"].notna().to_numpy()
        if excel_days.any() and written.any():  # a sheet where some cells lost their date format: worth a look
            first = np.flatnonzero(excel_days)[0]
            line = table.line_of(int(out["source_row"].iat[first]), columns.date)
            day = out["date"].iat[first].tz_convert(settings.assume_timezone)
            report.notes.append(
                f'Column "{columns.date}": {count_of(int(excel_days.sum()), "value")} {"is an Excel day number" if excel_days.sum() == 1 else "are Excel day numbers"} '
                f"among {count_of(int(written.sum()), 'written date')} (first: {table.row_label} {line}: "
                f"{out['_date_value'].iat[first]}, read as {day.day} {day:%b %Y}). Check that they are dates; formatting "
                "the column as dates in the spreadsheet before saving writes every row alike.")
        future = ~empty & (out["date"] > _after_today()).to_numpy()
        if future.any():
            first = np.flatnonzero(future)[0]
            line = table.line_of(int(out["source_row"].iat[first]), columns.date)
            report.notes.append(
                f"{count_of(int(future.sum()), 'date')} {'is' if future.sum() == 1 else 'are'} after today (first: "
                f"{table.row_label} {line}: {out['_date_value'].iat[first]}): check the date order (--date-order) "
                f'and that column "{columns.date}" holds when the messages were written.')

    meta_names: dict[str, str] = {}
    for col in columns.metadata:
        name = col if col not in RESERVED else f"{col}_meta"
        meta_names[col] = name
        raw = out.pop(_RAW + col)
        out[name] = _metadata_values(raw)
        odd = _nearly_numbers(table, col, raw, out[name], out["source_row"])
        if odd:
            report.notes.append(odd)

    out = out[~empty].copy()
    if settings.remove_repeated_lines:
        out, removed = _without_boilerplate_lines(out, settings.boilerplate_share, settings.boilerplate_messages)
        if removed:
            shown = "; ".join(f'"{line[:50]}" ({count_of(n, "message")})' for line, n in removed[:3])
            more = f" and {len(removed) - 3:,} more" if len(removed) > 3 else ""
            report.notes.append(f"Lines repeated at the start or end of many messages were left out as signatures or "
                                f"templates: {shown}{more} (--keep-repeated-lines keeps them).")

    # Exact duplicates: the same record twice (a re-export, a double upload). The same words from
    # two customers on different days are two messages and both count.
    key_cols = ["text_hash", "date", *meta_names.values()]
    dup = out.duplicated(subset=key_cols + (["message_id"] if columns.id else []), keep="first")
    report.skip("exact duplicate", dup.sum())
    out = out[~dup]
    if columns.id:
        missing_id = out["message_id"] == ""
        if missing_id.any():
            out.loc[missing_id, "message_id"] = _record_ids(out[missing_id], key_cols)
            n = int(missing_id.sum())
            report.notes.append(
                f'{count_of(n, "message")} had no id in column "{columns.id}" (first at {table.row_label} '
                f'{int(out.loc[missing_id, "source_row"].iloc[0])}): {"it was" if n == 1 else "they were"} given ids '
                "made from the text, date and details, so a later export of the same message keeps its id only if it "
                "is unchanged.")
        # The same id again is a newer version of that message: keep the last one.
        dup_id = out.duplicated(subset=["message_id"], keep="last")
        shared = _check_ids_identify_messages(table, out, dup_id, columns)
        if shared:
            report.notes.append(shared)
        report.skip(f'repeated id in column "{columns.id}" (kept the last)', dup_id.sum())
        out = out[~dup_id]
        # Kept, since different ids are different messages; but said, since an export that copies rows under
        # new ids (a review saw the same quote twice in a snapshot) would otherwise count them twice unseen.
        same = out.duplicated(subset=key_cols, keep="first")
        repeats = int(same.sum())
        if repeats:
            first = int(out.loc[same, "source_row"].iloc[0])
            report.notes.append(
                f"{count_of(repeats, 'message')} repeat{'s' if repeats == 1 else ''} another message's "
                f"text, date and details under a different id (first at {table.row_label} {first}); both are kept "
                f'and counted. If they are copies, remove them from the file (or map another id column than "{columns.id}").')
    else:
        out["message_id"] = _record_ids(out, key_cols)

    if out.empty:
        reasons = ", ".join(f"{n:,} {r}" for r, n in report.skipped.items()) or "none"
        raise InputError(
            f'{table.path.name}: no messages left after cleaning (column "{columns.text}"; skipped: {reasons}).',
            fix="Check that --text names the column that holds the message text.",
        )
    _check_texts_are_messages(table, out, columns.text, list(meta_names.values()), report)
    cols = [*BASE_COLUMNS, *meta_names.values()]
    return out[cols].reset_index(drop=True), report


# Only digits, spaces and the punctuation of numbers, dates, amounts and codes: no word to read.
_NO_WORDS = re.compile(r"[\d\s.,:;/\\\-+()#%$€£*'\"_|]*")
NOT_MESSAGES_SHARE = 0.9
"""A text column whose values are this share or more of dates or wordless numbers and codes holds no messages."""
WORDLESS_NOTE_SHARE, WORDLESS_MIN_MESSAGES = 0.1, 5
"""A text column with this share (and number) of wordless messages, but fewer than :data:`NOT_MESSAGES_SHARE`, is
analysed with a note: such messages count, but their topics have no keywords ("40", "41", … of a wrong column)."""
FEW_TEXTS_MIN_MESSAGES = 20
"""From this many messages, a text column with very few different texts is said to look like a category."""


def _check_texts_are_messages(table: RawTable, out: pd.DataFrame, column: str, metadata: Sequence[str],
                              report: CleanReport) -> None:
    """Refuse a text column of dates or wordless numbers (a wrong --text; topics would find no words), and note one
    with very few different texts (a category such as a channel, analysed as if it were the messages)."""
    texts = out["text"]
    better = longest_text_column(out, metadata)  # where the messages probably are
    fix = (f'Pass --text "{better}" if that column holds the messages' if better else
           "Pass --text with the column that holds the messages")
    sample = texts.head(2_000)  # the first messages tell: a wrong column is wrong throughout
    records = record_texts(sample)
    if records.mean() >= NOT_MESSAGES_SHARE:  # a nested column (Parquet struct, JSON object) read as the text
        first = int(np.flatnonzero(records)[0])
        record = json.loads(sample.iloc[first], strict=False)
        fields = list(record) if isinstance(record, dict) else []
        raise InputError(
            f'{table.path.name}: column "{column}", read as the message text, holds records '
            f'({sample.iloc[first][:60]}{"…" if len(sample.iloc[first]) > 60 else ""} at {table.row_label} '
            f'{int(out["source_row"].iloc[first])}), not messages.',
            fix=(f"Save the file with the record's fields ({', '.join(fields[:6])}) as columns of their own (in pandas: "
                 "pd.json_normalize), then choose the one that holds the messages with --text"
                 if fields else fix) + ".")
    wordless = sample.str.fullmatch(_NO_WORDS).to_numpy(dtype=bool)
    dates = looks_like_dates(sample)
    if dates or wordless.mean() >= NOT_MESSAGES_SHARE:
        first = 0 if dates else int(np.flatnonzero(wordless)[0])
        raise InputError(f'{table.path.name}: column "{column}", read as the message text, holds '
                         f'{"dates" if dates else "numbers or codes without words"} (e.g. "{sample.iloc[first][:40]}" at '
                         f'{table.row_label} {int(out["source_row"].iloc[first])}), not messages.', fix=f"{fix}.")
    if wordless.sum() >= WORDLESS_MIN_MESSAGES and wordless.mean() >= WORDLESS_NOTE_SHARE:
        all_wordless = texts.str.fullmatch(_NO_WORDS).to_numpy(dtype=bool)
        first = int(np.flatnonzero(all_wordless)[0])
        report.notes.append(
            f'Column "{column}", read as the message text: {int(all_wordless.sum()):,} of '
            f"{count_of(len(texts), 'message')} {'has' if all_wordless.sum() == 1 else 'have'} no words, only numbers "
            f"or codes (e.g. "
            f'"{texts.iloc[first][:30]}" at {table.row_label} {int(out["source_row"].iloc[first])}): they are counted, '
            "but give their topics no keywords. If the column is not the messages, " + fix[:1].lower() + fix[1:] + ".")
    distinct = texts.nunique()
    if len(texts) >= FEW_TEXTS_MIN_MESSAGES and distinct <= max(5, 0.02 * len(texts)):
        common = ", ".join(f'"{t[:30]}"' for t in texts.value_counts().index[:3])
        report.notes.append(f'Column "{column}", read as the message text, holds only {count_of(distinct, "different text")} '
                            f"in {count_of(len(texts), 'message')} ({common}{', …' if distinct > 3 else ''}): it looks "
                            f"like a category, not messages. {fix}.")


def _without_boilerplate_lines(out: pd.DataFrame, share: float,
                               at_least: int) -> tuple[pd.DataFrame, list[tuple[str, int]]]:
    """Messages without the lines that many of them repeat: e-mail signatures ("Sent from my iPhone") and template
    text a helpdesk adds, which would otherwise make topics of their own words. A line counts when it is in at least
    ``share`` of the messages and ``at_least`` of them, and goes only from a message's first or last lines; a
    message made only of such lines (an auto-reply) stays whole. Returns the messages and the lines left out with
    how many messages held each, most first."""
    multi = out["text"].str.contains("\n", regex=False).to_numpy()
    if multi.sum() < at_least:
        return out, []
    lines = out.loc[multi, "text"].str.split("\n")
    counts = Counter(line.strip() for parts in lines for line in set(parts) if line.strip())
    threshold = max(at_least, share * len(out))
    common = {line: n for line, n in counts.items() if n >= threshold}
    if not common:
        return out, []

    left_out: Counter = Counter()

    def without(parts: list[str]) -> str | None:
        # Only from the ends (greetings, signatures, template headers and footers): a line in the middle is the
        # customer's, however many others wrote it too.
        start, end = 0, len(parts)
        while start < end and (not parts[start].strip() or parts[start].strip() in common):
            start += 1
        while end > start and (not parts[end - 1].strip() or parts[end - 1].strip() in common):
            end -= 1
        if start == end:
            return None
        left_out.update({line.strip() for line in parts[:start] + parts[end:] if line.strip()})
        return normalise_text("\n".join(parts[start:end]))

    stripped = lines.map(without)
    changed = stripped.notna() & (stripped != out.loc[multi, "text"])
    if not changed.any():
        return out, []
    index = stripped[changed].index
    out.loc[index, "text"] = stripped[changed]
    out.loc[index, "text_hash"] = [text_hash(t) for t in stripped[changed]]
    return out, sorted(left_out.items(), key=lambda kv: (-kv[1], kv[0]))


def _record_ids(frame: pd.DataFrame, key_cols: list[str]) -> list[str]:
    """Stable ids from the record's content, so the same message keeps its id across re-runs."""
    columns = [frame[c].astype(object).where(frame[c].notna(), "").map(str).tolist() for c in key_cols]
    return [hashlib.sha1("\x1f".join(p).encode("utf-8")).hexdigest()[:16] for p in zip(*columns, strict=True)]


def _nearly_numbers(table: RawTable, column: str, raw: pd.Series, typed: pd.Series, rows: pd.Series) -> str | None:
    """A note on a column of numbers (a rating) kept as text for a few values that are not ("4 stars", "N/A"): as
    text it is no scale, so the Expectations page cannot measure on it, and "N/A" is a filter value."""
    if not isinstance(typed.dtype, pd.StringDtype):
        return None
    present = typed.notna().to_numpy()
    numbers = pd.to_numeric(raw, errors="coerce").notna().to_numpy() & present
    odd = present & ~numbers
    if present.sum() < 10 or numbers.sum() < 0.9 * present.sum() or not odd.any():
        return None
    shown = list(dict.fromkeys(str(v) for v in typed[odd]))[:3]
    first = int(rows[odd].iloc[0])
    return (f'Column "{column}": {int(odd.sum()):,} of {int(present.sum()):,} values are not numbers '
            f"({', '.join(repr(v) for v in shown)}; first at {table.row_label} {first}), so the column is read as text, "
            "not as a scale. If it is a rating, write those as plain numbers, such as 4 or 4.5, or leave them empty.")


def _metadata_values(values: pd.Series) -> pd.Series:
    """Numbers stay numbers (ratings), everything else becomes trimmed text; blanks become missing. True/false
    values read "Yes"/"No" (not 1.0/0.0), lists "a, b" and records as JSON (not Python's or NumPy's repr)."""
    present = values.notna() & (values.astype(str).str.strip() != "")
    kind = pd.api.types.infer_dtype(values[present], skipna=True)  # in C: no look at each value in Python
    if kind == "boolean":
        return values.map(lambda v: ("Yes" if v else "No") if isinstance(v, bool | np.bool_) else None).astype("string")
    # Lists and records (JSON, Parquet) are "mixed"; numbers among them would be read as numbers.
    as_num = values.map(lambda v: np.nan) if kind == "mixed" and _holds_containers(values) \
        else pd.to_numeric(values, errors="coerce")
    if present.any() and as_num[present].notna().all():
        return as_num.astype("float64")
    if kind == "string":
        written = _numbers_with_separators(values[present].str.strip())
        if written is not None:
            return written.reindex(values.index).astype("float64")
    text = values.map(cell_text)
    return text.where(text != "", None).astype("string")


# Numbers as people write them with separators: 4,5 and 1.234,50 (Germany, France, ...) or 1,234.50 (English).
_DECIMAL_COMMA = r"[+-]?(?:\d{1,3}(?:\.\d{3})+|\d+)(?:,\d+)?"
_THOUSANDS_COMMA = r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"


def _numbers_with_separators(text: pd.Series, sample: int = 200) -> pd.Series | None:
    """A column of numbers written with a decimal comma (a rating of 4,5) or thousands commas (1,234.50) as numbers,
    or None when its values are not all such numbers or do not prove which comma they use: "1,234" alone could be
    either, and stays text."""
    for pattern, proof, to_number in (
            (_DECIMAL_COMMA, r",(?:\d{1,2}|\d{4,})$|\..*,", lambda t: t.str.replace(".", "").str.replace(",", ".")),
            (_THOUSANDS_COMMA, r",\d{3}(?:,\d{3})*\.|^[+-]?\d{1,3}(?:,\d{3}){2,}$", lambda t: t.str.replace(",", ""))):
        # The first values first: a column of words is turned down without a look at all of them.
        if not text.head(sample).str.fullmatch(pattern).all() or not text.str.fullmatch(pattern).all():
            continue
        if text.str.contains(proof).any():
            return pd.to_numeric(to_number(text), errors="coerce")
    return None


def _holds_containers(values: pd.Series) -> bool:
    return bool(values.map(is_nested).any())


"""Shared page parts: the page frame, empty states, drillable charts and the message list.

Owns how the dashboard shows things that every page shows the same way. Message text and metadata
come from customers: they are only ever shown as plain text (escaped Markdown, a table cell or CSV
with formula-looking cells defused), never as HTML or live Markdown.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import auth, data, filters
from dashboard.data import RunInfo, RunRef
from pipelines.charts import PLOTLY_CONFIG, count_of, format_date, format_sentiment
from pipelines.errors import FeedbackLensError
from pipelines.metrics import (
    GRANULARITIES,
    Granularity,
    MessageFilter,
    column_words,
    day_span,
    default_granularity,
    message_count,
    metadata_value_text,
    search_terms,
    term_pattern,
    without_each_filter,
    zone_words,
)
from pipelines.store import files_in_words

_PUNCTUATION = re.compile("([" + re.escape(string.punctuation) + "])")
WORD_JOINER = "\u2060"
LONG_MESSAGE = 600
"""Longer messages show their start, with the whole text one click away."""
_AUTOLINK = re.compile(r"(?i):/|www\.|@.")


@dataclass(frozen=True)
class View:
    """What a page shows: which run, its facts, and the current filter."""

    ref: RunRef
    info: RunInfo
    filter: MessageFilter


# Side-by-side charts and figure cards fit a wide screen but are cut on a projector or a laptop with
# the sidebar open (1024 px leaves the page ~560 px): there, rows of charts stack, and figure cards
# wrap instead of cutting "4,973" to "4,…". Streamlit's columns cannot do this by themselves.
RESPONSIVE_STYLE = """<style>
@media (max-width: 1279px) {
  [data-testid="stMain"] [data-testid="stHorizontalBlock"]:has([data-testid="stPlotlyChart"]) { flex-wrap: wrap; }
  [data-testid="stMain"] [data-testid="stHorizontalBlock"]:has([data-testid="stPlotlyChart"])
    > [data-testid="stColumn"] { min-width: 100%; }
}
[data-testid="stMain"] [data-testid="stHorizontalBlock"]:has([data-testid="stMetric"]) { flex-wrap: wrap; }
[data-testid="stMain"] [data-testid="stHorizontalBlock"]:has([data-testid="stMetric"])
  > [data-testid="stColumn"] { min-width: 10rem; }
</style>"""


def frame() -> View | None:
    """The router's part of every page: pick the run, build the sidebar filters, show the run's note.

    Returns ``None`` when there is no run to show (the page then shows the empty state).
    """
    st.html(RESPONSIVE_STYLE)  # style only: Streamlit adds it without taking room on the page
    filters.seed_run([m["id"] for m in data.runs(data.store_dir())])
    try:
        ref = data.current_ref()
        info = data.info(ref)
    except FeedbackLensError:
        return None
    f = filters.sidebar(info)
    with st.sidebar:
        st.caption(f"Run {ref.id} · {count_of(info.messages, 'message')} · "
                   f"{escape_markdown(files_in_words(info.manifest))}")
    filters.show_notices()
    return View(ref, info, f)


def page_view(required: bool = True) -> View | None:
    """The run and filter for a page; shows the "no run yet" state and stops the page when there is none
    (or returns ``None`` when the page works without a run: ``required=False``)."""
    try:
        ref = data.current_ref()
        info = data.info(ref)
    except FeedbackLensError as err:
        # The upload form on the Data page is the other way to make a run; only an admin sees it (dashboard.upload).
        upload = ("Or upload a file under **Analyse a new file** on the **Data** page." if auth.allowed("admin") else
                  "An admin can also upload a file under **Analyse a new file** on the **Data** page.")
        st.info(f"**No analysed run to show yet.**\n\n{err}\n\n{upload}", icon=":material/inventory_2:")
        if not required:
            return None
        st.stop()
    note = info.manifest.get("note")
    if note:
        st.caption(f":material/info: {escape_markdown(str(note))}")
    return View(ref, info, filters.current(info))


def filter_caption(view: View) -> None:
    """One line naming the active filters (or saying there are none)."""
    parts = filters.describe(view.filter, view.info)
    st.caption("Filtered to " + "; ".join(escape_markdown(p) for p in parts) if parts else
               "All messages of the run (use the filters in the sidebar to narrow them).")


def require_messages(rows: pd.DataFrame | data.MessageList, view: View | None = None) -> None:
    """Stop the page with a friendly note when no message passes the filters: which filter to remove to see some
    (a hint to widen dates that already cover the run helped nobody)."""
    if rows.empty:
        hints = []
        if view is not None:
            for words, wider in without_each_filter(view.filter):
                n = message_count(data.figure_cube(view.ref, wider))
                if n:
                    hints.append(f"without {words}, {count_of(n, 'message')} would")
        said = "; ".join(hints[:3])
        st.info(f"**No messages match these filters together.** {said[:1].upper()}{said[1:]}." if hints else
                "**No messages match these filters.** Remove some of the filters in the sidebar.",
                icon=":material/filter_alt_off:")
        st.button("Clear filters", on_click=filters.clear, key="empty_clear")
        st.stop()


def page_start(title: str) -> tuple[View, pd.DataFrame]:
    """The opening every analysis page shares: run note, title, filter line, and the filtered messages as
    counted per day, topic, tone and metadata (:func:`dashboard.data.figure_cube`; read-only).

    Stops the page with an empty state when there is no run or no message passes the filters.
    """
    view = page_view()
    st.title(title)
    filter_caption(view)
    rows = data.figure_cube(view.ref, view.filter)
    require_messages(rows, view)
    return view, rows


PERIOD_DAYS = (7, 30, 90)


def period_picker(view: View, key: str, label: str = "Period", option: str = "Last {} days",
                  help: str | None = None) -> int:
    """How many days the period figures compare, ending on the last day of the date filter (or of the data).

    With a date filter from a chosen day, its days are the period: a manager who narrowed the dates
    to one week expects that week's figures, not the 30 days up to its end. Otherwise the last
    7 / 30 / 90 days (30 by default).
    """
    start = view.filter.start
    if start is not None:
        end = view.filter.end or view.info.last_day or start
        days = max(1, (end - start).days + 1)
        st.caption(f":material/date_range: **Period:** the date filter, {day_span(start, end)} "
                   f"({count_of(days, 'day')}). For the last 7, 30 or 90 days instead, start the sidebar's dates on "
                   f"the run's first day, {format_date(view.info.first_day)}.")
        return days
    return st.segmented_control(label, PERIOD_DAYS, format_func=option.format, default=30,
                                key=filters.remembered(key), help=help) or 30


def granularity_picker(where, view: View, key: str) -> Granularity:
    """Day / week / month, starting from a step that suits the filtered span."""
    step = default_granularity(view.filter.start or view.info.first_day, view.filter.end or view.info.last_day)
    return where.segmented_control("By", GRANULARITIES, format_func=str.capitalize, default=step,
                                   key=filters.remembered(key)) or step


def chart(fig: go.Figure, key: str, to_drill: Callable[[list], filters.Drill | None] | None = None) -> None:
    """Show a figure; with ``to_drill``, clicking a point opens the messages behind it.

    ``to_drill`` turns one point's ``customdata`` into a :class:`~dashboard.filters.Drill`; several
    clicked points (shift-click) are merged.
    """
    if to_drill is None:
        st.plotly_chart(fig, key=key, theme=None, config=PLOTLY_CONFIG)
        return

    def on_select() -> None:
        event = st.session_state.get(key) or {}
        points = (event.get("selection") or {}).get("points") or []
        drill = drill_from_points(points, to_drill)
        if drill is not None:
            filters.drill_down(drill)

    st.plotly_chart(fig, key=key, theme=None, config=PLOTLY_CONFIG, on_select=on_select, selection_mode="points")


def drill_from_points(points: Sequence[dict], to_drill: Callable[[list], filters.Drill | None]) -> filters.Drill | None:
    """The merged drill-down of the clicked points that carry ``customdata``."""
    drills = [d for p in points if p.get("customdata") is not None for d in [to_drill(list(p["customdata"]))] if d]
    if not drills:
        return None
    out = drills[0]
    for d in drills[1:]:
        out = out.merged(d)
    return out


# ---------------------------------------------------------------------------------------- messages


def _escape(text: str) -> str:
    return _PUNCTUATION.sub(r"\\\1", text)


def _defang(line: str) -> str:
    # Markdown still turns bare web and mail addresses into links after reading the escapes: an
    # invisible word joiner inside "://", after "www" and after "@" keeps them plain text.
    return _AUTOLINK.sub(lambda m: m.group()[:-1] + WORD_JOINER + m.group()[-1], line)


def highlight(text: str, terms: Sequence[str]) -> str:
    """Escaped Markdown of ``text`` (lines trimmed, line breaks kept) with ``terms`` in bold, any case."""
    pattern = re.compile("|".join(term_pattern(t) for t in sorted(terms, key=len, reverse=True)), re.IGNORECASE)
    lines = []
    for line in str(text).splitlines():
        line, parts, last = _defang(line.strip()), [], 0
        for match in pattern.finditer(line) if terms else ():
            parts += [_escape(line[last:match.start()]), f"**{_escape(match.group())}**"]
            last = match.end()
        lines.append("".join(parts) + _escape(line[last:]))
    return "  \n".join(lines)


def escape_markdown(text: str) -> str:
    """Text that Markdown shows literally: every ASCII punctuation mark backslash-escaped, lines trimmed."""
    return highlight(text, ())


def has_times(dates: pd.Series | None) -> bool:
    """Whether any of ``dates`` has a time of day: a file of dates alone reads as midnight, and '25 Nov 2025, 00:00'
    would show a time nobody wrote. Decided for a whole list or column, so that one message at midnight in a run
    with times still shows its '00:00'."""
    if dates is None or not pd.api.types.is_datetime64_any_dtype(dates):
        return False
    dated = dates.dropna()
    return bool((dated != dated.dt.normalize()).any())


def message_meta(row: pd.Series, labels: dict[int, str], metadata: Sequence[str], with_time: bool = True,
                 zone: str = "UTC", dated: bool = True) -> str:
    """'3 Mar 2026, 14:05 UTC · “coffee · cup” · Negative (−0.62) · rating: 4' as escaped Markdown (the date
    without its time when ``with_time`` is false: see :func:`has_times`; metadata as filters write it, see
    :func:`pipelines.metrics.metadata_as_text`). Dates are clock times of the run's time zone ``zone``
    (:func:`pipelines.metrics.on_the_clock`), and the time says which clock. Where no message of the list has a
    date (``dated`` false: a run without dates), the line says nothing of dates rather than "no date" on every card."""
    when = row.get("date")
    if pd.notna(when) and getattr(when, "tzinfo", None) is not None:
        when = pd.Timestamp(when).tz_convert("UTC")  # clock times are carried as UTC; a time of another zone is not one
    day = "no date" if pd.isna(when) else format_date(when)
    parts = [f"{day}, {when:%H:%M} {zone_words(zone)}" if with_time and pd.notna(when) else day] if dated else []
    # The topic's name quoted: its keywords are joined with "·" as the parts are ("boxes · oz · Positive" read as one).
    parts += [f"“{labels.get(int(row['topic']), str(row['topic']))}”",
              f"{str(row['sentiment_label']).capitalize()} ({format_sentiment(row['sentiment'])})"]
    parts += [f"{column_words(c)}: {metadata_value_text(row[c])}" for c in metadata
              if c in row and pd.notna(row[c]) and str(row[c]).strip()]
    if "similarity" in row and pd.notna(row["similarity"]):
        parts.append(f"similarity {row['similarity']:.2f}")
    return " · ".join(escape_markdown(p) for p in parts)


def message_list(rows: pd.DataFrame, labels: dict[int, str], metadata: Sequence[str], query: str = "",
                 zone: str = "UTC", key: str = "message_list", cut_at: int | None = None) -> None:
    """Messages as cards: date (on the clock of the run's time zone ``zone``), topic, sentiment and metadata
    above the text (matches of ``query`` in bold). ``cut_at``: the run's longest message, in characters (its
    setting ``max_message_chars``): a message of that length was cut when analysed, and its card says so."""
    terms = search_terms(query)
    with_time = has_times(rows.get("date"))
    dated = "date" in rows and bool(rows["date"].notna().any())
    with st.container(key=key):
        for _, row in rows.iterrows():
            text = str(row["text"])
            with st.container(border=True):
                st.caption(message_meta(row, labels, metadata, with_time, zone, dated))
                if len(text) <= LONG_MESSAGE:
                    st.markdown(highlight(text, terms))
                    continue
                st.markdown(highlight(text[:LONG_MESSAGE].rsplit(" ", 1)[0] + " …", terms))
                cut = cut_at is not None and len(text) >= cut_at
                with st.expander(f"Read the message as analysed: its first {len(text):,} characters (the rest was "
                                 "cut when the file was analysed)" if cut else
                                 f"Read the whole message ({len(text):,} characters)"):
                    st.markdown(highlight(text, terms))


def export_table(rows: pd.DataFrame, labels: dict[int, str], metadata: Sequence[str], zone: str = "UTC") -> pd.DataFrame:
    """The messages as people read them: date (with its time unless no message has one; on the clock of the run's
    time zone ``zone``, which the column's name gives unless it is UTC), topic, sentiment, metadata, text, id."""
    out = pd.DataFrame({
        "date" if zone_words(zone) == "UTC" else f"date ({zone_words(zone)})": rows["date"].dt.strftime("%Y-%m-%d %H:%M:%S" if has_times(rows["date"]) else "%Y-%m-%d").fillna("")
        if "date" in rows else "",
        "topic": [labels.get(int(t), str(t)) for t in rows["topic"]],
        "sentiment": rows["sentiment_label"].astype(str),
        "sentiment_score": rows["sentiment"].round(3),
    }, index=rows.index)
    for column in metadata:
        if column in rows:
            out[column] = rows[column]
    if "similarity" in rows:
        out["similarity"] = rows["similarity"].round(3)
    out["text"] = rows["text"]
    out["message_id"] = rows["message_id"]
    return out.reset_index(drop=True)


def csv_bytes(table: pd.DataFrame) -> bytes:
    """UTF-8 CSV in which no text cell or header can run as a spreadsheet formula (those get a leading
    apostrophe), by the same rule as snapshot spreadsheets (:func:`pipelines.snapshot_files.escape_formula`)."""
    from pipelines.snapshot_files import escape_formula  # only on download: the module brings the exporters

    safe = table.rename(columns=lambda c: escape_formula(str(c)))
    for column in safe.columns:
        if safe[column].dtype == object or pd.api.types.is_string_dtype(safe[column]):
            text = safe[column].astype("string")
            safe[column] = text.map(escape_formula, na_action="ignore")
    return safe.to_csv(index=False).encode("utf-8")


# ---------------------------------------------------------------------------------------- expectation gaps


def pick_chart(fig: go.Figure, key: str, on_pick: Callable[[list], None]) -> None:
    """Show a figure whose click calls ``on_pick`` with the clicked point's ``customdata`` (to choose within the page)."""

    def on_select() -> None:
        points = ((st.session_state.get(key) or {}).get("selection") or {}).get("points") or []
        custom = next((p["customdata"] for p in points if p.get("customdata") is not None), None)
        if custom is not None:
            on_pick(list(custom))

    st.plotly_chart(fig, key=key, theme=None, config=PLOTLY_CONFIG, on_select=on_select, selection_mode="points")


def highlight_span(text: str, start: int, end: int, colour: str = "orange") -> str:
    """Escaped Markdown of ``text`` with the characters ``start:end`` on a coloured background (bold).

    The text is escaped first, piece by piece, and only the markers are added around the escaped span,
    so nothing in the message can act as Markdown, HTML or a colour directive. Out-of-range spans
    (``-1`` for "none") highlight nothing.
    """
    text = str(text)
    start, end = max(0, min(start, len(text))), max(0, min(end, len(text)))
    if end <= start:
        return escape_markdown(text)
    lines, offset = [], 0
    for line in text.split("\n"):
        lo, hi = max(start - offset, 0), min(end - offset, len(line))
        offset += len(line) + 1
        if lo >= hi:
            lines.append(escape_markdown(line))
            continue
        before, span, after = line[:lo].lstrip(), line[lo:hi].strip(), line[hi:].rstrip()
        marked = f":{colour}-background[**{escape_markdown(span)}**]" if span else ""
        lines.append(escape_markdown(before) + (" " if before.endswith(" ") else "") + marked
                     + (" " if after.startswith(" ") else "") + escape_markdown(after))
    return "  \n".join(line.strip() for line in lines)


def excerpt(text: str, start: int, end: int, context: int = 280) -> tuple[str, int, int]:
    """The part of a long ``text`` around ``start:end`` (cut at spaces, "…" marking cuts), with the shifted span."""
    text = str(text)
    if len(text) <= LONG_MESSAGE or start < 0:
        return text, start, end
    lo, hi = max(0, start - context), min(len(text), end + context)
    if lo > 0:  # start at a sentence if one starts in the window, else at a word
        sentence = re.search(r"[.!?]\s+|\n", text[lo:start])
        lo = lo + sentence.end() if sentence else (text.find(" ", lo, start) + 1 or lo)
    if hi < len(text):
        space = text.rfind(" ", end, hi)
        hi = space if space > 0 else hi
    head, tail = ("… " if lo > 0 else ""), (" …" if hi < len(text) else "")
    return head + text[lo:hi] + tail, start - lo + len(head), end - lo + len(head)


def statement_list(rows: pd.DataFrame, labels: dict[int, str], metadata: Sequence[str],
                   source_names: dict[str, str], zone: str = "UTC") -> None:
    """Expectation statements as cards: met or unmet, where the expectation came from, the message with the
    statement highlighted (long messages show the part around it, the whole text one click away)."""
    with_time = has_times(rows.get("date"))
    dated = "date" in rows and bool(rows["date"].notna().any())
    with st.container(key="statement_list"):
        for _, row in rows.iterrows():
            text, start, end = str(row["text"]), int(row["expectation_start"]), int(row["expectation_end"])
            unmet = str(row["expectation_met"]) == "unmet"
            key = str(row["expectation_source"])  # "unknown" or missing: the message does not say
            source = f"Expected from: {source_names[key]}" if key in source_names and key != "unknown" else (
                "Source not stated")
            with st.container(border=True):
                st.markdown((":red-badge[:material/close: Unmet]" if unmet else ":green-badge[:material/check: Met]")
                            + f" :gray-badge[{escape_markdown(source)}]")
                st.caption(message_meta(row, labels, metadata, with_time, zone, dated))
                shown, s, e = excerpt(text, start, end)
                st.markdown(highlight_span(shown, s, e))
                if shown != text:
                    with st.expander(f"Read the whole message ({len(text):,} characters)"):
                        st.markdown(highlight_span(text, start, end))

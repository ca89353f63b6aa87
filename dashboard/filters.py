"""Global filters: the sidebar widgets (built here, once), their mirror in the URL, and drill-down.

Owns the session-state keys of the filters, reading them back as one
:class:`~pipelines.metrics.MessageFilter` for every page (:func:`current`); the query string that
makes a view shareable; and drill-down, where a chart or table selection narrows the filters and
opens the Messages page. Values in a link that do not fit the run are ignored with a notice, never
an error. Pages must not write these keys themselves.

URL: ``?run=<id>&from=2026-09-01&to=2026-09-30&topic=3&topic=5&sentiment=negative&rating=5+stars``
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import data
from dashboard.data import RUN_KEY, RunInfo
from pipelines.charts import format_date, short_label
from pipelines.errors import FeedbackLensError
from pipelines.metrics import (
    SENTIMENT_LABELS,
    Granularity,
    MessageFilter,
    column_title,
    day_span,
    parse_range,
    period_end,
    zone_words,
)
from pipelines.snapshot import filter_words

DATES, TOPICS, SENTIMENTS = "filter_dates", "filter_topics", "filter_sentiments"
DATES_SPAN = "filter_dates_span"  # the run's first and last day when the date range was last set
META = "filter_meta:"
"""Prefix of the key of a metadata filter (``filter_meta:rating``)."""
RANGE = META + "range:"
"""Prefix of the key of a numeric column's range (``filter_meta:range:amount``), a metadata filter too."""
SEEDED, NOTICES, GOTO, BACK, PAGE = "_filters_seeded", "_filter_notices", "_goto_page", "_drill_back", "_page"
MESSAGES_PAGE = "app_pages/messages.py"
_REMEMBERED: set[str] = set()
P_RUN, P_FROM, P_TO, P_TOPIC, P_SENTIMENT = "run", "from", "to", "topic", "sentiment"
STREAMLIT_PARAMS = {"embed", "embed_options"}
RESERVED = {P_RUN, P_FROM, P_TO, P_TOPIC, P_SENTIMENT} | STREAMLIT_PARAMS


def meta_param(column: str) -> str:
    """The URL name of a metadata filter: the column name (``meta.<name>`` if it clashes with ours)."""
    return f"meta.{column}" if column in RESERVED else column


def _meta_keys(info: RunInfo) -> dict[str, str]:
    return {column: META + column for column in info.metadata}


def _range_keys(info: RunInfo) -> dict[str, str]:
    return {column: RANGE + column for column in info.ranges}


def _whole(low: float, high: float) -> bool:
    return float(low).is_integer() and float(high).is_integer()


def number_text(x: float) -> str:
    """A bound of a range as a link writes it: ``250`` for a whole number, else as Python writes the float."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _parse_range(name: str, value: str, bounds: tuple[float, float]) -> tuple[float, float] | None:
    picked = parse_range(value)
    if picked is None or None in picked:  # a link writes both bounds
        _notice(f"{name}={value} is not a range like {name}={number_text(bounds[0])}..{number_text(bounds[1])}.")
        return None
    if picked[0] > bounds[1] or picked[1] < bounds[0]:
        _notice(f"{name}={value} is outside this run's {number_text(bounds[0])}–{number_text(bounds[1])}; it is ignored.")
        return None
    return max(picked[0], bounds[0]), min(picked[1], bounds[1])


def _notice(text: str) -> None:
    st.session_state.setdefault(NOTICES, []).append(text)


# ---------------------------------------------------------------------------------------- the run choice


def seed_run(run_ids: list[str]) -> None:
    """On a session's first run, take the run named in the link (``?run=``) if it exists."""
    if st.session_state.get(SEEDED):
        return
    wanted = st.query_params.get(P_RUN)
    if wanted and wanted in run_ids:
        st.session_state[RUN_KEY] = wanted
    elif wanted:
        _notice(f'run "{wanted}" does not exist in this store; showing the latest run.')


def remembered(key: str) -> str:
    """The key of a page's own choice (its step, period, breakdown, topics drawn), registered so that the choice
    stays as the user left it while they read another page (see :func:`keep_page_choices`)."""
    _REMEMBERED.add(key)
    return key


def keep_page_choices() -> None:
    """Called by the router before every page: saves each page's choices again, so that Streamlit does not forget a
    widget's value when its page is not drawn (a manager set Trends to weeks with a breakdown by rating, read the
    messages of a point, came back, and found months without a breakdown)."""
    state = st.session_state
    for key in _REMEMBERED & set(state.keys()):
        state[key] = state[key]


def choose_run(run_id: str) -> None:
    """Callback: show another run; its filters start empty (topic ids differ between runs)."""
    st.session_state[RUN_KEY] = run_id
    # Another run's topics and columns: the pages' choices (topics drawn, a breakdown) start afresh too.
    for key in [k for k in st.session_state if k in (DATES, TOPICS, SENTIMENTS) or str(k).startswith(META)
                or k in _REMEMBERED]:
        del st.session_state[key]


# ---------------------------------------------------------------------------------------- seeding


def _parse_day(name: str, value: str) -> date | None:
    try:
        return date.fromisoformat(value)
    except ValueError:
        _notice(f'{name}={value} is not a date like 2026-03-31.')
        return None


def _clamp_days(start: date | None, end: date | None, info: RunInfo) -> tuple[date | None, date | None] | None:
    """The link's days within the run's; None when none of them is in the run (a day at the run's edge would
    read as the answer for the days asked for)."""
    first, last = info.first_day, info.last_day
    if not first or not last:
        return start, end
    if (start and start > last) or (end and end < first):
        asked = day_span(start, end) if start and end else format_date(start or end)
        _notice(f"the link's dates ({asked}) are outside this run's, {day_span(first, last)}; they are ignored.")
        return None
    for name, day in (("from", start), ("to", end)):
        if day and not first <= day <= last:
            _notice(f"{name}={day.isoformat()} is outside this run's dates; using {format_date(min(max(day, first), last))}.")
    return (max(start, first) if start else None), (min(end, last) if end else None)


def _seed_from_url(info: RunInfo) -> None:
    params = st.query_params
    columns = {meta_param(c): c for c in info.metadata}
    ranges = {meta_param(c): c for c in info.ranges}
    start = end = None
    for name in list(params.keys()):
        values = params.get_all(name)
        if name in STREAMLIT_PARAMS or name == P_RUN:
            continue
        if name in (P_FROM, P_TO):
            if not info.has_dates:
                _notice(f"{name}= is ignored: this run has no dates.")
                continue
            day = _parse_day(name, values[-1])
            start, end = (day, end) if name == P_FROM else (start, day)
        elif name == P_TOPIC:
            good = [int(v) for v in values if v.lstrip("-").isdigit() and int(v) in info.labels]
            for bad in (v for v in values if not (v.lstrip("-").isdigit() and int(v) in info.labels)):
                _notice(f"topic={bad} is not a topic of this run.")
            st.session_state[TOPICS] = sorted(set(good))
        elif name == P_SENTIMENT:
            st.session_state[SENTIMENTS] = [v for v in SENTIMENT_LABELS if v in values]
            for bad in (v for v in values if v not in SENTIMENT_LABELS):
                _notice(f"sentiment={bad} is not one of {', '.join(SENTIMENT_LABELS)}.")
        elif name in ranges:
            column = ranges[name]
            if (picked := _parse_range(name, values[-1], info.ranges[column])) is not None:
                st.session_state[RANGE + column] = picked
        elif name in columns:
            column = columns[name]
            # Links made before whole numbers were written without ".0" ("rating=4.0") still mean "4".
            values = [v[:-2] if v.endswith(".0") and v[:-2].lstrip("-").isdigit() and v not in info.metadata[column]
                      else v for v in values]
            st.session_state[META + column] = [v for v in info.metadata[column] if v in values]
            for bad in (v for v in values if v not in info.metadata[column]):
                _notice(f'{name}={bad} is not a value of "{column}" in this run.')
        else:
            _notice(f'"{name}" is not a filter of this run.')
    if start and end and start > end:
        _notice("from= is after to=; the dates in the link are ignored.")
    elif (start or end) and (days := _clamp_days(start, end, info)) is not None:
        start, end = days
        st.session_state[DATES] = (start or info.first_day, end or info.last_day)


def _sanitize(info: RunInfo) -> None:
    """Give every filter a valid value before its widget is built (a new run may lack old topics)."""
    state = st.session_state

    def keep(key: str, value: object) -> None:
        if key not in state or state[key] != value:
            state[key] = value

    if info.has_dates:
        span = (info.first_day, info.last_day)
        dates = tuple(d for d in state.get(DATES) or () if isinstance(d, date)) or span
        # An end of the range the user left at the run's first or last day follows the run when its days
        # change (new messages added while the page is open): left at the old last day, it would become a
        # filter nobody set and hide the new messages.
        before = state.get(DATES_SPAN)
        if before is not None and tuple(before) != span:  # (dates may be a start alone: zip stops there)
            dates = tuple(new if d == old else d for d, old, new in zip(dates, before, span, strict=False))
        keep(DATES, tuple(min(max(d, info.first_day), info.last_day) for d in dates))
        state[DATES_SPAN] = span
    else:
        state.pop(DATES, None)
    keep(TOPICS, [t for t in state.get(TOPICS) or [] if t in info.labels])
    keep(SENTIMENTS, [s for s in state.get(SENTIMENTS) or [] if s in SENTIMENT_LABELS])
    for column, key in _meta_keys(info).items():
        keep(key, [v for v in state.get(key) or [] if v in info.metadata[column]])
    for column, key in _range_keys(info).items():
        low, high = info.ranges[column]
        picked = tuple(state.get(key) or (low, high))
        picked = (min(max(picked[0], low), high), max(min(picked[-1], high), low))
        keep(key, tuple(int(x) for x in picked) if _whole(low, high) else picked)


# ---------------------------------------------------------------------------------------- reading


def current(info: RunInfo) -> MessageFilter:
    """The filter the sidebar holds now (the full date range counts as no date filter)."""
    state = st.session_state
    start = end = None
    dates = state.get(DATES) or ()
    if info.has_dates and dates:
        start = dates[0] if dates[0] != info.first_day else None
        end = dates[1] if len(dates) > 1 and dates[1] != info.last_day else None
    meta = tuple((c, tuple(state.get(k) or ())) for c, k in _meta_keys(info).items() if state.get(k))
    ranges = tuple((c, float(state[k][0]), float(state[k][-1])) for c, k in _range_keys(info).items()
                   if state.get(k) and tuple(map(float, state[k])) != info.ranges[c])  # the whole span: no filter
    return MessageFilter(start=start, end=end, topics=tuple(sorted(state.get(TOPICS) or ())),
                         sentiments=tuple(state.get(SENTIMENTS) or ()), metadata=meta,
                         tags=tuple((c, info.tags[c]) for c, _ in meta if c in info.tags), ranges=ranges)


def describe(f: MessageFilter, info: RunInfo) -> list[str]:
    """The active filters in words, to be joined with "; ", e.g. ['1–30 Sep 2026', 'topic “coffee · cup”',
    'negative'], as a snapshot of the view writes them."""
    dates = [day_span(f.start or info.first_day, f.end or info.last_day)] if f.start or f.end else []
    return dates + filter_words(f, info.labels, longest=30)


def clear() -> None:
    """Callback: remove every filter."""
    for key in [k for k in st.session_state if k in (DATES, TOPICS, SENTIMENTS) or str(k).startswith(META)]:
        del st.session_state[key]


# ---------------------------------------------------------------------------------------- the sidebar


def sidebar(info: RunInfo) -> MessageFilter:
    """Build the filter widgets (once per rerun, from the entrypoint) and mirror them in the URL."""
    if not st.session_state.get(SEEDED):
        _seed_from_url(info)
        st.session_state[SEEDED] = True
    _sanitize(info)
    with st.sidebar:
        st.header("Filters", divider="gray")
        if info.has_dates:
            st.date_input("Dates", key=DATES, min_value=info.first_day, max_value=info.last_day, format="YYYY-MM-DD",
                          help=f"Messages from the first to the last day, both included ({zone_words(info.time_zone)}).")
        else:
            st.caption("This run has no dates, so there is no date filter.")
        options = sorted(info.labels, key=lambda t: (t < 0, -info.topic_sizes.get(t, 0)))
        st.multiselect("Topics", options, key=TOPICS, placeholder="All topics",
                       format_func=lambda t: f"{short_label(info.labels[t])} ({info.topic_sizes.get(t, 0):,})")
        st.pills("Sentiment", list(SENTIMENT_LABELS), selection_mode="multi", key=SENTIMENTS,
                 format_func=str.capitalize)
        for column, key in _meta_keys(info).items():
            tagged = column in info.tags
            st.multiselect(column_title(column), info.metadata[column], key=key, placeholder="All",
                           help="Messages with any of the chosen tags." if tagged else None)
        for column, key in _range_keys(info).items():
            low, high = info.ranges[column]
            whole = _whole(low, high)  # whole numbers: an integer slider, steps of 1
            st.slider(column_title(column), int(low) if whole else low, int(high) if whole else high, key=key,
                      step=None if whole else _step(low, high),
                      help="Messages from the lower to the upper number, both included.")
        f = current(info)
        st.button("Clear filters", on_click=clear, disabled=f.is_empty, icon=":material/filter_alt_off:")
    _sync_url(info, f)
    return f


def _step(low: float, high: float) -> float:
    """A slider step of about a hundredth of the span, as a round number (0.01, 0.5, 10)."""
    span = high - low
    if span <= 0:
        return 0.01
    step = 10 ** np.floor(np.log10(span / 100))
    return float(step * 5 if span / (step * 5) >= 100 else step * 2 if span / (step * 2) >= 100 else step)


def _sync_url(info: RunInfo, f: MessageFilter) -> None:
    want = _url_params(info, f)
    params = st.query_params
    if {k: params.get_all(k) for k in params.keys() if k not in STREAMLIT_PARAMS} != want:
        # One change, so the browser's history gets one entry per change of filters, not one per parameter.
        params.from_dict({**want, **_streamlit_params()})


def _streamlit_params() -> dict[str, list[str]]:
    """Streamlit's own parameters in the address (``embed``), kept whatever the filters."""
    return {k: st.query_params.get_all(k) for k in st.query_params.keys() if k in STREAMLIT_PARAMS}


def _url_params(info: RunInfo, f: MessageFilter) -> dict[str, list[str]]:
    """The page address's parameters for the filter ``f`` (and the run, when one was chosen)."""
    want: dict[str, list[str]] = {}
    if st.session_state.get(RUN_KEY):
        want[P_RUN] = [info.ref.id]
    if f.start:
        want[P_FROM] = [f.start.isoformat()]
    if f.end:
        want[P_TO] = [f.end.isoformat()]
    if f.topics:
        want[P_TOPIC] = [str(t) for t in f.topics]
    if f.sentiments:
        want[P_SENTIMENT] = list(f.sentiments)
    for column, values in f.metadata:
        want[meta_param(column)] = list(values)
    for column, low, high in f.ranges:
        want[meta_param(column)] = [f"{number_text(low)}..{number_text(high)}"]
    return want


def show_notices() -> None:
    """Say (once) which values from the link were ignored."""
    notices = st.session_state.pop(NOTICES, None)
    if notices:
        st.warning("Some settings in the link were ignored:\n" + "\n".join(f"- {n}" for n in notices),
                   icon=":material/link_off:")


# ---------------------------------------------------------------------------------------- drill-down


@dataclass(frozen=True)
class Drill:
    """What a selection narrows the filters to; empty fields leave that filter as it is."""

    topics: tuple[int, ...] = ()
    dates: tuple[date, date] | None = None
    sentiments: tuple[str, ...] = ()
    metadata: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def merged(self, other: Drill) -> Drill:
        """Both selections together (several clicked points): topics and values joined, dates spanned."""
        dates = self.dates or other.dates
        if self.dates and other.dates:
            dates = (min(self.dates[0], other.dates[0]), max(self.dates[1], other.dates[1]))
        meta = dict(self.metadata)
        for column, values in other.metadata:
            meta[column] = tuple(dict.fromkeys(meta.get(column, ()) + values))
        return Drill(tuple(sorted(set(self.topics) | set(other.topics))), dates,
                     tuple(dict.fromkeys(self.sentiments + other.sentiments)), tuple(meta.items()))


def period_dates(start: str, granularity: Granularity) -> tuple[date, date]:
    """First and last day of the period (day, week, month) that starts on ``start`` (``YYYY-MM-DD``)."""
    first = pd.Timestamp(start)
    return first.date(), (period_end(first, granularity) - timedelta(days=1)).date()


def remember_page(path: str, title: str) -> None:
    """Called by the router before the sidebar is drawn: the page now shown, so Messages can offer the way back.

    Leaving a drilled-into Messages page for the page the drill came from (the browser's Back button, or that
    page's entry in the navigation) brings that page's filters back, as Messages' "Back to …" button does; on
    any other page the drill's filters stay, to be looked at there.
    """
    state = st.session_state
    state[PAGE] = {"path": path, "title": title}
    if path != MESSAGES_PAGE:
        back = state.pop(BACK, None)
        if back and back["path"] == path:
            clear()
            state.update(back["state"])


def drill_down(drill: Drill) -> None:
    """Callback: narrow the filters to a selection and open Messages (the previous filters are kept for "Back")."""
    state = st.session_state
    keys = [k for k in state if k in (DATES, TOPICS, SENTIMENTS) or str(k).startswith(META)]
    source = state.get(PAGE) or {"path": "app_pages/overview.py", "title": "Overview"}
    state[BACK] = {**source, "state": {k: state[k] for k in keys}}
    # Set every filter through the session-state API: the page switch that follows interrupts the
    # rerun before the sidebar is drawn, and widget values that were not set this way would be dropped.
    for key in keys:
        state[key] = state[key]
    if drill.topics:
        state[TOPICS] = list(drill.topics)
    if drill.dates:
        state[DATES] = drill.dates
    if drill.sentiments:
        state[SENTIMENTS] = list(drill.sentiments)
    for column, values in drill.metadata:
        state[META + column] = list(values)
    state[GOTO] = MESSAGES_PAGE


def go_back() -> None:
    """Callback: restore the filters from before the drill-down and return to that page."""
    back = st.session_state.pop(BACK, None)
    if not back:
        return
    clear()
    st.session_state.update(back["state"])
    st.session_state[GOTO] = back["path"]


def back_title() -> str | None:
    """The page a drill-down came from, if the Messages page was opened by one."""
    back = st.session_state.get(BACK)
    return back["title"] if back else None


def follow() -> None:
    """Called by the router before anything is drawn: open the page a callback asked for.

    The page opens at its address with the new filters in one step, so the browser's history gets one entry (the
    filters set afterwards made a second, sometimes on the page left behind, and Back then stayed on Messages).
    """
    target = st.session_state.pop(GOTO, None)
    if not target:
        return
    try:
        info = data.info(data.current_ref())
    except FeedbackLensError:  # no run yet: no filters to carry
        info = None
    st.switch_page(target, query_params={**(_url_params(info, current(info)) if info else {}), **_streamlit_params()})

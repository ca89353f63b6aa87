"""Presentation-ready Plotly figures and number formats, shared by the dashboard and (later) snapshots.

Owns how results look: one colour per topic everywhere (:func:`topic_colour`; :func:`topic_colours` keeps the
topics of one figure apart when the palette wraps round), sentiment colours, titles, axis labels, human dates
and number formats. Each chart function takes a result from :mod:`pipelines.metrics` and returns a
``plotly.graph_objects.Figure``; nothing is drawn as a side effect and nothing is computed here that a page
or a snapshot could disagree on.

Points that stand for messages carry ``customdata`` (the topic id and/or the period start as
``YYYY-MM-DD``) so that a click or selection can open the messages behind it.

Example:
    >>> fig = topic_volume_chart(metrics.volume_over_time(messages, "week"), labels, "week")
    >>> fig.write_html("volume.html")
"""

from __future__ import annotations

import functools
import html
import json
import math
from collections.abc import Mapping, Sequence
from datetime import date
from fractions import Fraction

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from pipelines.expectations import SOURCE_NAMES, SOURCES, ExpectationSettings
from pipelines.metrics import (
    MIN_BASE_FOR_PERCENT,
    NO_TOPIC,
    Change,
    Granularity,
    Movers,
    count_of,
    format_share,
    period_end,
)
from pipelines.store import PREVIEW_CHARS, message_preview

# Distinct, print-friendly colours; topic ids are ordered by size, so the largest topics get the first.
PALETTE = (
    "#4C78A8", "#F58518", "#54A24B", "#E45756", "#B279A2", "#72B7B2", "#EECA3B", "#9D755D", "#FF9DA6", "#1F3A68",
    "#8DB600", "#882D17", "#604E97", "#C2B280", "#E68FAC", "#2B3D26", "#0067A5", "#F6A600", "#B3446C", "#17BECF",
    "#654522", "#DCD300", "#E25822", "#3B7D3B", "#7F7FBF", "#A05195", "#D45087", "#637939", "#AEC7E8", "#843C39",
)
NO_TOPIC_COLOUR = "#B0B4BA"
OTHER_TOPICS_COLOUR = "#D3D6DB"  # the map's smaller topics: lighter than "no clear topic"
SENTIMENT_COLOURS = {"negative": "#C8423B", "neutral": "#9AA0A6", "positive": "#2E8B57"}
SENTIMENT_SCALE = [[0.0, "#B2182B"], [0.25, "#EF8A62"], [0.5, "#F2F2F2"], [0.75, "#67A9CF"], [1.0, "#2166AC"]]
# A cell with too few messages for a mean: a plain grey (no blue or red in it) darker than the scale's neutral middle.
TOO_FEW_COLOUR, TOO_FEW_TEXT = "#C4C4C4", "#404040"
ACCENT = "#2E5EAA"
FONT = dict(family="Source Sans Pro, Segoe UI, Helvetica, Arial, sans-serif", size=14, color="#262730")
_DATE_FORMAT = {"day": "%-d %b %Y", "week": "%-d %b %Y", "month": "%b %Y"}
_HOVER_DATE = {"day": "%-d %b %Y", "week": "week of %-d %b %Y", "month": "%B %Y"}
_PERIOD_WORD = {"day": "day", "week": "week", "month": "month"}
MAX_LABEL = 38


# --------------------------------------------------------------------------------------------- formats


def topic_colour(topic: int) -> str:
    """The colour of a topic on every chart (grey for messages without a clear topic)."""
    topic = int(topic)
    return NO_TOPIC_COLOUR if topic == NO_TOPIC else PALETTE[topic % len(PALETTE)]


def topic_colours(topics: Sequence[int] | pd.Series | np.ndarray) -> dict[int, str]:
    """The colour of each topic drawn together in one figure: distinct while there are palette colours to go round.

    A topic keeps its own :func:`topic_colour` (the same on every page) unless a topic with a smaller id in the
    figure has it already (topic 31 against topic 1 with 30 colours): it then takes the next palette colour,
    after its own, that no topic of the figure has. The smaller id wins because ids are ordered by size. The
    result depends only on the set of topics, so it is the same on every chart that draws the same topics.
    Messages without a clear topic stay grey; past the palette's size, colours repeat as :func:`topic_colour`'s.

    Example:
        >>> topic_colours([31, 1]) == {1: PALETTE[1], 31: PALETTE[2]}
        True
    """
    ids = sorted({int(t) for t in topics})
    colours = {t: NO_TOPIC_COLOUR for t in ids if t == NO_TOPIC}
    displaced = []
    for topic in (t for t in ids if t != NO_TOPIC):
        own = topic_colour(topic)
        if own in colours.values():
            displaced.append(topic)
        else:
            colours[topic] = own
    free = [c for c in PALETTE if c not in colours.values()]
    for topic in displaced:  # the first free colour after the topic's own, walking round the palette
        start = topic % len(PALETTE)
        ahead = [c for c in PALETTE[start:] + PALETTE[:start] if c in free]
        colours[topic] = ahead[0] if ahead else topic_colour(topic)
        if ahead:
            free.remove(ahead[0])
    return colours


def short_label(label: str, limit: int = MAX_LABEL) -> str:
    """A topic label cut to ``limit`` characters for legends and axes."""
    return label if len(label) <= limit else label[: limit - 1].rstrip(" ·") + "…"


MINUS = "\u2212"
"""The minus sign, as Plotly writes it on axes and in hover labels: numbers in text use it too, so "−0.59" in a
sentence reads as the "−0.5" on the chart beside it (a hyphen is shorter and higher)."""


def signed(x: float, spec: str = "+.2f") -> str:
    """``x`` formatted by ``spec`` with the minus sign: '−0.59', '+12', '−1,204'; what rounds to zero has no sign
    ('0', '0.00', never '+0' or '−0.00'), as the spreadsheet's number formats write it."""
    text = format(x, spec)
    if not any(c in "123456789" for c in text):
        return text.lstrip("+-")
    return text.replace("-", MINUS)


def format_count(n: float | None) -> str:
    """'1,234' (or '–' when unknown)."""
    return "–" if n is None or (isinstance(n, float) and math.isnan(n)) else f"{round(n):,}"


def format_sentiment(x: float | None) -> str:
    """'+0.32' or '−0.59' on the −1 … +1 scale (or '–'); a score that rounds to zero is '0.00'."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return signed(x, "+.2f")


def format_contribution(x: float) -> str:
    """A topic's contribution to a change in mean sentiment ('+0.025'): three decimals, since they are small."""
    return signed(x, "+.3f")


def format_date(value: object) -> str:
    """'3 Mar 2026' from a date, datetime or ISO string (or '–')."""
    ts = pd.Timestamp(value) if value is not None and value != "" else pd.NaT
    return "–" if pd.isna(ts) else f"{ts.day} {ts:%b %Y}"


def nothing_before(first_day: date) -> str:
    """Why a period at the start of the data has no change: 'The run's messages start on 1 Sep 2026, so there is
    nothing before to compare with.'"""
    return f"The run's messages start on {format_date(first_day)}, so there is nothing before to compare with."


def _counted(counts: Sequence[float] | pd.Series | np.ndarray, noun: str = "message") -> list[str]:
    """'1 message', '12 messages' for each count, to hover as ``%{hovertext}``: a hover template can only write
    '%{y} messages', which reads '1 messages'."""
    return [count_of(int(n), noun) for n in counts]


_CHANGE_DIGITS = {"count": 0, "share": 1, "sentiment": 2}


def shown_change(change: Change, kind: str = "count") -> float | None:
    """The change as :func:`format_change` writes it: rounded to the digits shown (a share in percentage points),
    never -0; ``None`` when unknown."""
    if change.delta is None:
        return None
    value = change.delta * 100 if kind == "share" else change.delta
    return round(value, _CHANGE_DIGITS.get(kind, 0)) + 0.0  # + 0.0 turns -0.0 into 0.0


def change_rounds_to_zero(change: Change, kind: str = "count") -> bool:
    """True when the change is known and shows as nothing ('0', '0.0 pts', '0.00'): a page shows it without
    the colour and arrow of a rise or a fall."""
    return shown_change(change, kind) == 0


def _percent_of(delta: float, previous: float | None) -> str:
    """' (+30%)' for a change in a count, or '' when there is none or the earlier count is under
    :data:`MIN_BASE_FOR_PERCENT` (0 included)."""
    if not delta or previous is None or abs(previous) < MIN_BASE_FOR_PERCENT:
        return ""
    return f" ({signed(delta / previous, '+.0%')})"


def format_change(change: Change, kind: str = "count") -> str | None:
    """A change for people: '+12 (+30%)' for counts, '+0.7 pts' for shares, '+0.08' for sentiment; None if unknown.

    A count change has no percentage when the earlier count is under :data:`MIN_BASE_FOR_PERCENT` ('+4', not
    '+4 (+400%)'). :func:`change_rounds_to_zero` says whether the result shows no change.
    """
    value = shown_change(change, kind)
    if value is None:
        return None
    if kind == "share":
        return f"{signed(value, '+.1f')} pts"
    if kind == "sentiment":
        return signed(value, "+.2f")
    return f"{signed(value, '+,.0f')}{_percent_of(change.delta, change.previous)}"


def format_topic_change(change: float | None, change_pct: float | None) -> str:
    """A topic's change in messages between two windows, written the same way on the dashboard's movers chart and in
    snapshots: '+12 (+30%)', '+3 (none before)' when the topic had no message in the window before (no percentage exists), '+1' when it
    had fewer than :data:`MIN_BASE_FOR_PERCENT` (as :func:`format_change`), '–' when unknown.

    Args:
        change, change_pct: the ``change`` and ``change_pct`` columns of :func:`pipelines.metrics.topic_table`
            (``change_pct`` is NaN when the previous window had no message of the topic).
    """
    if change is None or pd.isna(change):
        return "–"
    if change_pct is None or pd.isna(change_pct):
        return f"{change:+,.0f} (none before)" if change > 0 else signed(change, "+,.0f")
    previous = round(abs(change / change_pct)) if change_pct else None  # the earlier count
    return f"{signed(change, '+,.0f')}{_percent_of(change, previous)}"


def rounded_shares(counts: Sequence[float], digits: int = 0) -> list[float]:
    """Percentages of the whole that add up to exactly 100 when shown with ``digits`` decimals (largest remainder:
    each part is rounded down, and the parts that lost most get the missing steps back). All zero for no total."""
    total = sum(Fraction(c) for c in counts)
    if total <= 0:
        return [0.0] * len(counts)
    steps = [Fraction(c) * 100 * 10 ** digits / total for c in counts]
    floors = [math.floor(x) for x in steps]
    missing = 100 * 10 ** digits - sum(floors)
    # Largest remainder first; on a tie the larger part, then the earlier one.
    order = sorted(range(len(steps)), key=lambda i: (-(steps[i] - floors[i]), -steps[i], i))
    for i in order[:missing]:
        floors[i] += 1
    return [f / 10 ** digits for f in floors]


def format_shares(counts: Sequence[float], digits: int = 0) -> list[str]:
    """Shares of a whole shown side by side ('33%', '33%', '34%'), rounded by :func:`rounded_shares` so that they add
    up to 100%, not 99% or 101%; a part that is not nothing but rounds to 0 reads '<1%', as in :func:`format_share`.
    '–' for each when the whole is nothing."""
    if sum(counts) <= 0:
        return ["–"] * len(counts)
    smallest = 10.0 ** -digits
    return [f"<{smallest:.{digits}f}%" if c > 0 and share == 0 else f"{share:.{digits}f}%"
            for c, share in zip(counts, rounded_shares(counts, digits), strict=True)]


def _sentiment_parts(table: pd.DataFrame) -> np.ndarray:
    """Each row's negative, neutral and positive shares (of :func:`pipelines.metrics.topic_table`)."""
    negative, positive = table["share_negative"].to_numpy(float), table["share_positive"].to_numpy(float)
    return np.column_stack([negative, np.clip(1 - negative - positive, 0, 1), positive])


def negative_shares_written(table: pd.DataFrame) -> list[str]:
    """Each topic's negative share as the sentiment-by-topic bars write it ('12%', '<1%'): rounded with its
    neutral and positive shares to add up to 100%, so that a table beside the bars never reads 12% for their 11%."""
    return [format_shares(list(row))[0] for row in _sentiment_parts(table)]


def negative_percents(table: pd.DataFrame) -> np.ndarray:
    """The numbers of :func:`negative_shares_written` (0-100), for a table column that sorts."""
    return np.array([rounded_shares(list(row))[0] for row in _sentiment_parts(table)], dtype=float)


def sentiment_word(x: float | None) -> str:
    """A plain word for a mean sentiment score."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "no messages"
    if x <= -0.25:
        return "negative"
    if x < 0.1:
        return "mixed"
    return "positive" if x < 0.5 else "very positive"


def _text(label: str, limit: int = MAX_LABEL) -> str:
    """A label from the data, cut and escaped: Plotly renders some HTML tags in names and axis labels."""
    return html.escape(short_label(str(label), limit))


def hover_safe(text: str, limit: int = PREVIEW_CHARS) -> str:
    """Message text for a hover box: cut, line breaks flattened and HTML-escaped (Plotly renders some tags).

    A message's stored ``preview`` (:func:`pipelines.store.message_preview`) gives the same hover as its text.
    """
    return html.escape(message_preview(text, limit))


def escape_html(texts):
    """``html.escape`` over an Arrow string array, in Arrow (many hover texts at once, without a Python call each)."""
    import pyarrow.compute as pc

    # "&" first, so the entities the later replacements add are not escaped again.
    for char, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"), ("'", "&#x27;")):
        texts = pc.replace_substring(texts, char, entity)
    return texts


def _naive(periods: pd.Series) -> pd.Series:
    """UTC timestamps as plain wall-clock times: Plotly has no time zones and would shift aware ones."""
    p = pd.to_datetime(periods)
    return p.dt.tz_convert("UTC").dt.tz_localize(None) if p.dt.tz is not None else p


def _iso(periods: pd.Series) -> np.ndarray:
    return pd.to_datetime(periods).dt.strftime("%Y-%m-%d").to_numpy()


TEMPLATE = "plotly_white"
# The chart toolbar (shown while the pointer is over a chart) keeps the download, box zoom and reset
# buttons: with all seven it covered the end of a long title in a half-width chart. Dragging still
# zooms and a double click resets.
PLOTLY_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2},
                 "modeBarButtonsToRemove": ["lasso2d", "select2d", "pan2d", "zoomIn2d", "zoomOut2d", "autoScale2d"]}


def _use_template(fig: go.Figure, name: str = TEMPLATE) -> None:
    """Give ``fig`` the registered template ``name`` the way Plotly gives every new figure its default one:
    without validating the template's thousand-odd settings again, which is most of what a small chart
    costs (about 14 ms each). The figure gets its own copy, and its JSON is the same as with
    ``update_layout(template=name)``."""
    layout = fig.layout
    layout._validate = False
    try:
        layout.template = pio.templates[name]
    finally:
        layout._validate = fig._validate


def _merged(base: dict, extra: dict) -> dict:
    """``base`` updated with ``extra`` the way ``update_layout`` updates: nested dicts merged, the rest replaced."""
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _house_style(title: str, x_title: str | None = None, y_title: str | None = None, height: int = 420,
                 legend: bool = True, x_axes: tuple[str, ...] = ("xaxis",), y_axes: tuple[str, ...] = ("yaxis",)) -> dict:
    """The house layout (title, font, margins, legend, axes) as a layout dict for the named axes."""
    x_axis = {"showgrid": False, "automargin": True} | ({} if x_title is None else {"title": {"text": x_title}})
    y_axis = {"automargin": True, "gridcolor": "#E6E8EB", "zeroline": False} | (
        {} if y_title is None else {"title": {"text": y_title}})
    return {
        "title": {"text": title, "x": 0, "xanchor": "left", "font": {"size": 18}},
        "font": FONT,
        "height": height,
        "margin": {"l": 10, "r": 20, "t": 60, "b": 10},
        "hoverlabel": {"font": {"size": 13}, "align": "left"},
        "showlegend": legend,
        "legend": {"orientation": "h", "yanchor": "top", "y": -0.18, "xanchor": "left", "x": 0, "title": {"text": ""},
                   "font": {"size": 13}},
        **{axis: x_axis for axis in x_axes},
        **{axis: y_axis for axis in y_axes},
    }


def _layout(fig: go.Figure, title: str, x_title: str | None = None, y_title: str | None = None,
            height: int = 420, legend: bool = True) -> go.Figure:
    # The house style, set as one new layout rather than through update_layout / update_xaxes, which re-check
    # every property path against the figure (about 10 ms a chart); the figure's JSON is the same.
    style = _house_style(title, x_title, y_title, height, legend,
                         tuple(axis.plotly_name for axis in fig.select_xaxes()),
                         tuple(axis.plotly_name for axis in fig.select_yaxes()))
    current = fig.layout.to_plotly_json()
    current.pop("template", None)
    fig.layout = _merged(current, style)
    _use_template(fig)
    return fig


def _figure(data: list[dict], layout: dict) -> go.Figure:
    """A figure from plain trace and layout dicts, in the house template, without Plotly checking each property
    on the way in (most of what a small chart costs: 20-50 ms a chart, on every filter change). The dicts are
    written as Plotly's JSON has them; tests/test_charts.py checks every such chart against full validation."""
    fig = go.Figure(data=data, layout=layout, _validate=False)
    _use_template(fig)
    return fig


def empty_chart(title: str, message: str, height: int = 300) -> go.Figure:
    """A chart frame that says why there is nothing to show."""
    fig = _layout(go.Figure(), title, height=height, legend=False)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.add_annotation(text=message, showarrow=False, font=dict(size=15, color="#6B7280"), x=0.5, y=0.5,
                       xref="paper", yref="paper")
    return fig


def count_axis(top: float) -> dict:
    """Axis settings for a count of messages (or statements) whose largest value is ``top``: whole-number ticks.

    Left alone, Plotly ticks a small range in halves (0, 0.5, 1, 1.5 messages). Below 50 the step is set to 1, 2,
    5 or 10 from 0 (about five ticks); above, Plotly's own steps are whole numbers anyway, and ``,d`` writes
    them as '1,200'.
    """
    ticks: dict = {"tickformat": ",d"}
    if not top or not np.isfinite(top) or abs(top) < 50:
        ticks |= {"tick0": 0, "dtick": max(1, _nice_step(abs(float(top or 0)) / 5))}
    return ticks


_FEW_PERIODS = 10


def _date_ticks(stamps: object, granularity: Granularity) -> tuple[dict, float | None]:
    """The x-axis settings for periods starting at ``stamps`` (any dates), and the width in milliseconds to give
    bars (``None``: leave them be)."""
    periods = sorted({t.tz_localize(None) if t.tzinfo else t for t in map(pd.Timestamp, stamps)})
    axis: dict = {"tickformat": _DATE_FORMAT[granularity], "hoverformat": _HOVER_DATE[granularity]}
    if 0 < len(periods) <= _FEW_PERIODS:
        # Left alone, Plotly ticks a short span in hours or half months (read as "30 Oct, 30 Oct, 31 Oct" or
        # "Sep 2025, Sep 2025, Oct 2025") and stretches a lone bar over the whole width: one tick per period,
        # half a period either side.
        half = (period_end(periods[-1], granularity) - periods[-1]) / 2
        axis |= _tick_labels(periods, granularity)
        axis["range"] = [(periods[0] - half).isoformat(), (periods[-1] + half).isoformat()]
        # A lone bar on a date axis is drawn one millisecond wide: give bars most of their period.
        return axis, half.total_seconds() * 1000 * 1.6
    if periods:
        # Every step-th period, counted back from the last, so the latest (a snapshot's own month, the current week)
        # is always labelled: left to Plotly, a year of months was ticked Nov, Jan, …, Sep and October had none.
        # Weekly ticks fall on the weeks' Mondays (Plotly's fell on Sundays, under the day before a week's bar).
        step = math.ceil(len(periods) / _FEW_PERIODS)
        axis |= _tick_labels(periods[::-1][::step][::-1], granularity)
    return axis, None


def _tick_labels(ticks: list[pd.Timestamp], granularity: Granularity) -> dict:
    """Ticks at ``ticks``, the year written once under the first and where it changes ("Jun / 2026, Jul, …, Jan /
    2027"): they fit a half-width chart level, where "Jun 2026" on every tick was tilted and clipped."""
    text = [(f"{p:%b}" if granularity == "month" else f"{p.day} {p:%b}")
            + (f"<br>{p.year}" if i == 0 or p.year != ticks[i - 1].year else "") for i, p in enumerate(ticks)]
    return {"tickmode": "array", "tickvals": [p.isoformat() for p in ticks], "ticktext": text}


def _date_axis(fig: go.Figure, granularity: Granularity, **where) -> None:
    """Date ticks for ``fig``'s periods (all its traces' x values) on the x axes that ``where`` selects."""
    axis, bar_width = _date_ticks((x for trace in fig.data for x in (trace.x if trace.x is not None else ())),
                                  granularity)
    fig.update_xaxes(**axis, **where)
    if bar_width is not None:
        fig.update_traces(width=bar_width, selector={"type": "bar"})


# ------------------------------------------------------------------------------------------ topic charts


def topic_volume_chart(
    volume: pd.DataFrame,
    labels: Mapping[int, str],
    granularity: Granularity,
    measure: str = "count",
    title: str | None = None,
) -> go.Figure:
    """Lines of messages (or share of messages) per topic over time.

    Args:
        volume: :func:`pipelines.metrics.volume_over_time` by topic (already limited to the topics to show).
        labels: topic id → label.
        measure: ``"count"`` or ``"share"``.

    Points carry ``customdata = [topic, period]``.
    """
    word = _PERIOD_WORD[granularity]
    share = measure == "share"
    title = title or (f"Share of messages per topic, by {word}" if share else f"Messages per topic, by {word}")
    if volume.empty:
        return empty_chart(title, "No dated messages match the filters.")
    fig = go.Figure()
    few = volume["period"].nunique() <= 30
    order = volume.groupby("topic")["count"].sum().sort_values(ascending=False).index
    colours = topic_colours(order)
    for topic in order:
        rows = volume[volume["topic"] == topic]
        label = labels.get(int(topic), f"Topic {topic}")
        values = rows["share"] * 100 if share else rows["count"]
        fig.add_trace(go.Scatter(
            x=_naive(rows["period"]), y=values, name=_text(label), mode="lines+markers",
            line=dict(color=colours[int(topic)], width=2.5),
            marker=dict(size=7 if few else 4),
            customdata=np.column_stack([np.full(len(rows), int(topic)), _iso(rows["period"]), rows["count"]]),
            hovertext=_counted(rows["count"]),
            hovertemplate=(f"<b>{html.escape(label)}</b><br>%{{x}}<br>"
                           + ("%{y:.1f}% of messages (%{customdata[2]})" if share else "%{hovertext}")
                           + "<extra></extra>"),
        ))
    _layout(fig, title, None, "Share of messages (%)" if share else "Messages")
    _date_axis(fig, granularity)
    fig.update_yaxes(rangemode="tozero", ticksuffix="%" if share else "")
    if not share:
        fig.update_yaxes(**count_axis(float(volume["count"].max())))
    fig.update_layout(hovermode="closest")
    if volume["period"].nunique() == 1:  # one dot per topic, on top of each other: no line to read
        word = _PERIOD_WORD[granularity]
        hint = {"month": "choose weeks or days", "week": "choose days"}.get(granularity, "widen the dates")
        fig.update_layout(title=dict(subtitle=dict(text=f"One {word} only, so there is no trend to draw: {hint}.",
                                                   font=dict(size=13, color="#6B7280"))), margin=dict(t=80))
    return fig


def breakdown_chart(volume: pd.DataFrame, column: str, granularity: Granularity, measure: str = "count",
                    title: str | None = None, tags: bool = False) -> go.Figure:
    """Stacked bars of messages per period split by a metadata column (``customdata = [value, period]``); with
    ``tags`` (a column of tags, where a message counts under each of its tags), bars side by side, since a stack
    would add up to more messages than there were."""
    word = _PERIOD_WORD[granularity]
    share = measure == "share"
    what = f"{column.replace('_', ' ')} tag" if tags else column.replace("_", " ")
    title = title or f"{'Share of messages' if share else 'Messages'} by {what}, per {word}"
    if volume.empty:
        return empty_chart(title, "No dated messages match the filters.")
    fig = go.Figure()
    values = volume.groupby(column)["count"].sum().sort_values(ascending=False).index
    for i, value in enumerate(values):
        rows = volume[volume[column] == value]
        fig.add_trace(go.Bar(
            x=_naive(rows["period"]), y=rows["share"] * 100 if share else rows["count"], name=_text(value),
            marker_color=PALETTE[(i + 9) % len(PALETTE)],
            customdata=np.column_stack([rows[column].astype(str), _iso(rows["period"]), rows["count"]]),
            hovertext=_counted(rows["count"]),
            hovertemplate=f"<b>{html.escape(str(value))}</b><br>%{{x}}<br>"
                          + ("%{y:.1f}% (%{hovertext})" if share else "%{hovertext}")
                          + "<extra></extra>",
        ))
    _layout(fig, title, None, "Share of messages (%)" if share else "Messages")
    fig.update_layout(barmode="group" if tags else "stack", bargap=0.15)
    fig.update_yaxes(ticksuffix="%" if share else "")
    if not share:
        highest = volume["count"].max() if tags else volume.groupby("period")["count"].sum().max()
        fig.update_yaxes(**count_axis(float(highest)))
    _date_axis(fig, granularity)
    return fig


def top_topics_chart(table: pd.DataFrame, n: int = 10, title: str = "Top topics by messages") -> go.Figure:
    """Horizontal bars of the ``n`` largest topics of :func:`pipelines.metrics.topic_table`.

    Bars carry ``customdata = [topic, label]``.
    """
    if table.empty:
        return empty_chart(title, "No messages match the filters.")
    top = table.head(n).iloc[::-1]
    text = [f"{c:,} · {format_share(s)}" for c, s in zip(top["messages"], top["share"], strict=True)]
    fig = go.Figure(go.Bar(
        x=top["messages"], y=[_text(s) for s in top["label"]], orientation="h",
        marker_color=list(map(topic_colours(top["topic"]).get, top["topic"].astype(int))),
        text=text,
        textposition="outside", cliponaxis=False,
        customdata=np.column_stack([top["topic"].astype(int), top["label"].map(html.escape)]),
        hovertext=_counted(top["messages"]),
        hovertemplate="<b>%{customdata[1]}</b><br>%{hovertext}<extra></extra>",
    ))
    _layout(fig, title, "Messages", None, height=max(300, 60 + 34 * len(top)), legend=False)
    fig.update_xaxes(showgrid=True, gridcolor="#E6E8EB", rangemode="tozero")
    fig.update_xaxes(range=[0, float(top["messages"].max()) * 1.25], **count_axis(float(top["messages"].max())))
    # Room for the longest bar's figures beyond the axis: in a narrow column ("28 · 17%" beside long topic labels)
    # they were cut at the chart's edge.
    fig.update_layout(margin=dict(r=20 + 7 * max(len(t) for t in text)))
    return fig


def movers_chart(movers: Movers, title: str | None = None) -> go.Figure:
    """Diverging bars: change in messages per topic, rising above falling (``customdata = [topic]``)."""
    title = title or f"Biggest changes: {movers.current.label} vs the {count_of(movers.current.days, 'day')} before"
    rows = pd.concat([movers.falling.iloc[::-1], movers.rising.iloc[::-1]], ignore_index=True)
    if rows.empty:
        return empty_chart(title, "No topic changed by enough messages to show.")
    text = [format_topic_change(c, p) for c, p in zip(rows["change"], rows["change_pct"], strict=True)]
    labels = [_text(s) for s in rows["label"]]
    fig = go.Figure(go.Bar(
        x=rows["change"], y=labels, orientation="h",
        marker_color=list(map(topic_colours(rows["topic"]).get, rows["topic"].astype(int))),
        customdata=np.column_stack([rows["topic"].astype(int), rows["label"].map(html.escape), rows["previous"],
                                    rows["current"]]),
        hovertemplate="<b>%{customdata[1]}</b><br>%{customdata[2]} → %{customdata[3]} messages<extra></extra>",
    ))
    _layout(fig, title, "Change in messages", None, height=max(260, 60 + 34 * len(rows)), legend=False)
    # The changes as a column right of the plot: a label at the end of a falling bar would run into the topic
    # names on a half-width chart.
    fig.layout.annotations = [dict(x=1, xref="paper", xanchor="left", xshift=8, y=label, yref="y", text=t,
                                   showarrow=False) for label, t in zip(labels, text, strict=True)]
    span = float(rows["change"].abs().max()) * 1.1
    fig.update_layout(margin=dict(r=20 + 7 * max(len(t) for t in text)))
    # The axis spans both signs in a narrow plot: ticks for half as many messages keep the labels upright.
    fig.update_xaxes(range=[-span, span], zeroline=True, zerolinecolor="#9AA0A6", showgrid=True, gridcolor="#E6E8EB",
                     **count_axis(2 * float(rows["change"].abs().max())))
    return fig


MAP_POINTS = 20_000
"""Most messages drawn on a map; a larger set is sampled (seeded) to this many."""


def topic_map_chart(points: pd.DataFrame, labels: Mapping[int, str], title: str = "Map of messages by topic",
                    max_points: int = MAP_POINTS, label_topics: int = 8, coloured_topics: int = 15) -> go.Figure:
    """Messages on the run's 2-D map, one colour per topic (``customdata = [topic]``; the hover text in ``hovertext``).

    Args:
        points: messages with ``x, y, topic, text`` (or ``hover`` instead of ``text``: the hover
            texts made already, by :func:`hover_safe`); a larger set is sampled to ``max_points``.
        label_topics: how many of the largest topics get their label written on the map.
        coloured_topics: how many of the largest topics get a colour of their own; the others are grey.
    """
    if points.empty:
        return empty_chart(title, "No messages match the filters.", height=520)
    if len(points) > max_points:
        points = points.sample(max_points, random_state=0)
    sizes = points["topic"].value_counts()
    hover = points["hover"] if "hover" in points else points["text"].map(hover_safe)
    # Each topic's rows found once (a stable sort), and the traces handed to the figure all at once: adding them
    # one by one deep-copies every trace added before each time.
    order = np.argsort(points["topic"].to_numpy(), kind="stable")
    topics = points["topic"].to_numpy()[order]
    starts = np.flatnonzero(np.r_[True, topics[1:] != topics[:-1]])
    where = dict(zip(topics[starts].tolist(), np.split(order, starts[1:]), strict=True))
    x, y, hover = points["x"].to_numpy(), points["y"].to_numpy(), hover.to_numpy(dtype=object)
    ranked = sorted(sizes.index, key=lambda t: (t == NO_TOPIC, -sizes[t]))
    # Colours for the largest topics only: fifty topics share the palette's colours, and two orange clouds on a
    # slide read as one topic. The others are light grey, one legend entry, each still its own topic on hover and
    # click.
    coloured = [t for t in ranked if t != NO_TOPIC][:coloured_topics]
    others = [t for t in ranked if t != NO_TOPIC and t not in set(coloured)]
    traces, notes, colours = [], [], topic_colours([*coloured, *(t for t in ranked if t == NO_TOPIC)])
    for topic in ranked:
        rows = where[topic]
        label = labels.get(int(topic), f"Topic {topic}")
        other = topic in others
        # The texts and the topic as plain lists: the figure's JSON (tens of thousands of hover texts) then encodes
        # in one orjson pass. Not a NumPy array for customdata: Plotly sends numbers as a typed array, whose point
        # reached Streamlit's click event as {"0": 5}, read as topic 0 for every dot.
        traces.append({
            "type": "scattergl", "x": x[rows], "y": y[rows], "mode": "markers",
            "name": f"{len(others)} smaller topics" if other else _text(label),
            "marker": {"color": OTHER_TOPICS_COLOUR if other else colours[int(topic)], "size": 7,
                       "opacity": 0.6 if other else 0.75, "line": {"width": 0}},
            **({"legendgroup": "smaller", "showlegend": topic == others[0]} if other else {}),
            "customdata": [[int(topic)]] * len(rows), "hovertext": hover[rows].tolist(),
            "hovertemplate": f"<b>{html.escape(label)}</b><br>%{{hovertext}}<extra></extra>",
        })
    for topic in [t for t in sizes.index if t != NO_TOPIC][:label_topics]:
        rows = where[topic]
        notes.append({"x": float(np.median(x[rows])), "y": float(np.median(y[rows])), "showarrow": False,
                      "text": _text(labels.get(int(topic), f"Topic {topic}"), 24), "font": {"size": 12, "color": "#262730"},
                      "bgcolor": "rgba(255,255,255,0.75)", "borderpad": 2})
    layout = _merged(_house_style(title, None, None, height=580), {
        "annotations": notes, "xaxis": {"visible": False}, "yaxis": {"visible": False},
        "legend": {"orientation": "v", "y": 1, "yanchor": "top", "x": 1.02, "xanchor": "left"},
        "margin": {"l": 10, "r": 10, "t": 60, "b": 10}})
    return _figure(traces, layout)


def period_comparison_chart(table: pd.DataFrame, current_label: str, previous_label: str, n: int = 12,
                            title: str | None = None) -> go.Figure:
    """Grouped bars of messages per topic in two windows (``customdata = [topic, window]``)."""
    title = title or f"Messages per topic: {current_label} vs {previous_label}"
    if table.empty:
        return empty_chart(title, "No messages match the filters.")
    rows = table.assign(top=table[["current", "previous"]].max(axis=1)).sort_values("top", ascending=False).head(n)
    rows = rows.iloc[::-1]
    names = [_text(s) for s in rows["label"]]
    fig = go.Figure()
    for column, name, colour, opacity in (("previous", previous_label, "#9AA0A6", 1.0),
                                          ("current", current_label, ACCENT, 1.0)):
        fig.add_trace(go.Bar(
            x=rows[column], y=names, orientation="h", name=html.escape(name), marker_color=colour, opacity=opacity,
            customdata=np.column_stack([rows["topic"].astype(int), np.full(len(rows), column)]),
            hovertext=_counted(rows[column]),
            hovertemplate=f"{html.escape(name)}: %{{hovertext}}<extra></extra>",
        ))
    _layout(fig, title, "Messages", None, height=max(320, 80 + 44 * len(rows)))
    fig.update_layout(barmode="group", bargap=0.25, legend=dict(traceorder="reversed"))
    fig.update_xaxes(showgrid=True, gridcolor="#E6E8EB", rangemode="tozero",
                     **count_axis(float(rows[["current", "previous"]].max().max())))
    return fig


# -------------------------------------------------------------------------------------- sentiment charts


def sentiment_chart(series: pd.DataFrame, granularity: Granularity, title: str | None = None,
                    smoothed_label: str | None = None) -> go.Figure:
    """Mean sentiment over time above the number of messages, on a shared time axis.

    Args:
        series: :func:`pipelines.metrics.sentiment_over_time` (overall).
        smoothed_label: name of the smoothed line (e.g. "3-month average"); ``None`` hides it.

    Volume bars carry ``customdata = [period]`` so a period can be opened.
    """
    word = _PERIOD_WORD[granularity]
    title = title or f"Sentiment and volume, by {word}"
    if series.empty:
        return empty_chart(title, "No dated messages match the filters.", height=520)
    x = _naive(series["period"])
    # Room between the panels: at 0.06 the "−1 negative" tick sat on the volume axis's top figure.
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.64, 0.36], vertical_spacing=0.11)
    fig.add_trace(go.Scatter(
        x=x, y=series["mean_sentiment"], name="Mean sentiment", mode="lines+markers", connectgaps=False,
        line=dict(color=ACCENT, width=2.5 if smoothed_label is None else 1.5),
        marker=dict(size=6), opacity=1.0 if smoothed_label is None else 0.55,
        customdata=np.column_stack([series["messages"], series["share_negative"].fillna(0) * 100]),
        hovertext=_counted(series["messages"]),
        hovertemplate="%{x}<br>Mean sentiment %{y:+.2f}<br>%{hovertext}, "
                      "%{customdata[1]:.0f}% negative<extra></extra>",
    ), row=1, col=1)
    if smoothed_label:
        fig.add_trace(go.Scatter(
            x=x, y=series["smoothed"], name=smoothed_label, mode="lines", line=dict(color=ACCENT, width=3),
            hovertemplate=f"%{{x}}<br>{html.escape(smoothed_label)} %{{y:+.2f}}<extra></extra>",
        ), row=1, col=1)
    fig.add_trace(go.Bar(
        x=x, y=series["messages"], name="Messages", marker_color="#AEB8C4",
        customdata=_iso(series["period"]).reshape(-1, 1),
        hovertext=_counted(series["messages"]),
        hovertemplate="%{x}<br>%{hovertext}<extra></extra>",
    ), row=2, col=1)
    _layout(fig, title, height=540)
    fig.add_hline(y=0, line=dict(color="#9AA0A6", width=1, dash="dot"), row=1, col=1)
    fig.update_yaxes(title_text="Mean sentiment", range=[-1.05, 1.05], tickvals=[-1, -0.5, 0, 0.5, 1],
                     ticktext=["−1 negative", "−0.5", "0", "+0.5", "+1 positive"], row=1, col=1)
    fig.update_yaxes(title_text="Messages", rangemode="tozero", row=2, col=1,
                     **count_axis(float(series["messages"].max())))
    _date_axis(fig, granularity, row=1, col=1)
    _date_axis(fig, granularity, row=2, col=1)
    fig.update_layout(hovermode="x unified", legend=dict(y=-0.12))
    return fig


def topic_sentiment_heatmap(series: pd.DataFrame, labels: Mapping[int, str], granularity: Granularity,
                            min_messages: int = 3, max_topics: int = 15, title: str | None = None,
                            last_periods: int | None = None) -> go.Figure:
    """Topics × periods coloured by mean sentiment, the message count written in each cell.

    With ``last_periods``, only the latest that many periods are drawn (the title says so), and the topics are the
    largest of those periods: a year by day is 365 columns of mostly grey cells, too narrow to read or click.

    Cells with fewer than ``min_messages`` messages are grey (the first trace; the means are the second) so a swing
    on two messages is not read like one on two hundred; only the ``max_topics`` largest topics are drawn. Cells of
    both traces carry ``customdata = [topic, period, messages]``. Plotly selects no heatmap cell on a click, so a
    third trace of invisible square markers, one on each cell's centre, is what the pointer hovers and clicks: it
    carries the same ``customdata`` and the hover text.
    """
    word = _PERIOD_WORD[granularity]
    if last_periods and not series.empty:
        latest = pd.Timestamp(series["period"].max())
        step = pd.DateOffset(months=1) if granularity == "month" else pd.Timedelta(days=7 if granularity == "week" else 1)
        first = latest - step * (last_periods - 1)
        if pd.Timestamp(series["period"].min()) < first:  # calendar periods: days without messages count too
            series = series[pd.to_datetime(series["period"]) >= first]
            title = title or f"Sentiment per topic, by {word}: the last {last_periods} {word}s"
    title = title or f"Sentiment per topic, by {word}"
    if series.empty:
        return empty_chart(title, "No dated messages match the filters.")
    sizes = series.groupby("topic")["messages"].sum()
    order = sorted(sizes.index, key=lambda t: (t == NO_TOPIC, -sizes[t]))
    shown_topics = order[:max_topics]
    periods = sorted(series["period"].unique())
    grid = series.set_index(["topic", "period"]).reindex(pd.MultiIndex.from_product([shown_topics, periods]))
    counts = grid["messages"].fillna(0).to_numpy().reshape(len(shown_topics), len(periods))
    means = grid["mean_sentiment"].to_numpy(dtype=float).reshape(len(shown_topics), len(periods))
    days = [pd.Timestamp(period).strftime("%Y-%m-%d") for period in periods]
    z, text, custom = [], [], []
    for i, topic in enumerate(shown_topics):
        z_row, t_row, c_row = [], [], []
        for j, day in enumerate(days):
            n, mean = int(counts[i, j]), means[i, j]
            shown = n >= min_messages and pd.notna(mean)
            z_row.append(float(mean) if shown else None)
            t_row.append(f"{n:,}" if n and len(periods) <= 26 else "")
            c_row.append([int(topic), day, n])
        z.append(z_row)
        text.append(t_row)
        custom.append(c_row)
    if all(v is None for row in z for v in row):  # a grid of blank cells reads as a broken chart
        where = f"in the last {last_periods} {word}s" if title.endswith(f"the last {last_periods} {word}s") else "here"
        fix = "Choose a longer step." if where != "here" else "Widen the dates or choose a longer step."
        return empty_chart(title, f"Every topic has fewer than {count_of(min_messages, 'message')} a {word} {where}: "
                                  f"too few for a mean sentiment. {fix}")
    x = _naive(pd.Series(periods))
    names = [_text(labels.get(int(t), f"Topic {t}")) for t in shown_topics]
    # Cells without a mean are grey, under the coloured ones: left blank they were near white, as a mean of 0 is
    # (the scale's middle), and a neutral topic read like one without messages.
    few = [[0.0 if v is None else None for v in row] for row in z]
    few_text = [[t if v is None else "" for t, v in zip(t_row, z_row, strict=True)] for t_row, z_row in zip(text, z,
                                                                                                          strict=True)]
    text = [[t if v is not None else "" for t, v in zip(t_row, z_row, strict=True)] for t_row, z_row in zip(text, z,
                                                                                                          strict=True)]
    fig = go.Figure(go.Heatmap(
        z=few, x=x, y=names, text=few_text, texttemplate="%{text}", textfont=dict(size=11, color=TOO_FEW_TEXT),
        customdata=custom, colorscale=[[0, TOO_FEW_COLOUR], [1, TOO_FEW_COLOUR]], showscale=False, xgap=2, ygap=2,
        hoverinfo="skip", name="Too few messages",
    ))
    fig.add_trace(go.Heatmap(
        z=z, x=x, y=names, text=text, texttemplate="%{text}", textfont=dict(size=11), customdata=custom,
        colorscale=SENTIMENT_SCALE, zmin=-1, zmax=1, xgap=2, ygap=2, hoverinfo="skip",
        colorbar=dict(title=dict(text="Mean<br>sentiment"), tickvals=[-1, 0, 1], ticktext=["−1", "0", "+1"],
                      thickness=14),
    ))
    cells = [(name, period, c, v) for name, c_row, z_row in zip(names, custom, z, strict=True)
             for period, c, v in zip(x, c_row, z_row, strict=True)]
    when = {period: pd.Timestamp(period).strftime(_HOVER_DATE[granularity]) for period in x}
    fig.add_trace(go.Scatter(
        x=[cell[1] for cell in cells], y=[cell[0] for cell in cells], customdata=[cell[2] for cell in cells],
        # The period written out: %{x} would show an axis tick's own text ("Oct") where a cell sits on a tick.
        text=[f"{when[period]}<br>Mean sentiment {signed(v)} ({count_of(c[2], 'message')})" if v is not None else
              f"{when[period]}<br>{count_of(c[2], 'message')}: too few for a mean sentiment (from {min_messages})"
              if c[2] else f"{when[period]}<br>No messages"
              for _, period, c, v in cells],
        # Markers of a pixel: the nearest centre is then the cell under the pointer, however narrow the cells (a
        # larger marker overlapped its neighbours on weeks and days, and the one to the right won).
        mode="markers", marker=dict(symbol="square", size=1, color="rgba(0,0,0,0)"), showlegend=False,
        name="Cells", hovertemplate="<b>%{y}</b><br>%{text}<extra></extra>",
        # Selecting a cell must not fade the others' (invisible) markers into view.
        selected=dict(marker=dict(opacity=0)), unselected=dict(marker=dict(opacity=0)),
    ))
    _layout(fig, title, None, None, height=max(320, 110 + 34 * len(shown_topics)), legend=False)
    note = "Numbers are messages; " if len(periods) <= 26 else ""
    note += f"grey cells have fewer than {count_of(min_messages, 'message')}."
    if len(order) > len(shown_topics):
        # "(no clear topic)" is a row here but no topic: counted, it made 49 topics read as 50.
        real = [t for t in order if t != NO_TOPIC]
        note += f" The {len([t for t in shown_topics if t != NO_TOPIC])} largest of {count_of(len(real), 'topic')}."
    # Hover (and so a click) reaches the nearest cell's marker from anywhere in the cell, however wide it is.
    fig.update_layout(title=dict(subtitle=dict(text=note, font=dict(size=13, color="#6B7280"))),
                      margin=dict(t=80), hovermode="closest", hoverdistance=-1)
    fig.update_yaxes(autorange="reversed", showgrid=False)
    _date_axis(fig, granularity)
    return fig


def sentiment_drivers_chart(drivers: pd.DataFrame, current_label: str, title: str | None = None) -> go.Figure:
    """Bars of each topic's contribution to the change in mean sentiment (``customdata = [topic]``)."""
    title = title or f"Which topics moved sentiment ({current_label} vs the period before)"
    if drivers.empty:
        return empty_chart(title, "No messages in the compared periods.")
    # The largest rise on top, the largest fall at the foot (Plotly draws the first row at the bottom).
    rows = drivers.sort_values("contribution", kind="stable")
    colours = [SENTIMENT_COLOURS["positive"] if c >= 0 else SENTIMENT_COLOURS["negative"] for c in rows["contribution"]]
    fig = go.Figure(go.Bar(
        x=rows["contribution"], y=[_text(s) for s in rows["label"]], orientation="h", marker_color=colours,
        text=[format_contribution(c) for c in rows["contribution"]], textposition="outside", cliponaxis=False,
        customdata=np.column_stack([rows["topic"].astype(int), rows["label"].map(html.escape),
                                    rows["previous_messages"], rows["current_messages"],
                                    rows["previous_mean"].fillna(0), rows["current_mean"].fillna(0)]),
        hovertemplate="<b>%{customdata[1]}</b><br>%{customdata[2]} → %{customdata[3]} messages<br>"
                      "mean %{customdata[4]:+.2f} → %{customdata[5]:+.2f}<extra></extra>",
    ))
    _layout(fig, title, "Contribution to the change in mean sentiment", None,
            height=max(260, 70 + 36 * len(rows)), legend=False)
    span = float(rows["contribution"].abs().max() or 0.01) * 1.5
    ticks, tick_text = signed_ticks(span)
    fig.update_xaxes(range=[-span, span], zeroline=True, zerolinecolor="#9AA0A6", showgrid=True,
                     gridcolor="#E6E8EB", tickvals=ticks, ticktext=tick_text)
    return fig


def signed_ticks(span: float, per_side: int = 3) -> tuple[list[float], list[str]]:
    """Ticks for an axis from ``-span`` to ``span`` at a round step (1, 2, 2.5 or 5 × a power of ten; about
    ``per_side`` each side of 0), written with just enough decimals and the minus sign: '−0.005', '0', '+0.010'.
    Plotly's own ticks under a fixed two-decimal format read '−0.01, −0.01, +0.00' at steps of 0.005."""
    raw = span / per_side
    power = 10.0 ** math.floor(math.log10(raw))
    mult = next(m for m in (1, 2, 2.5, 5, 10) if m * power >= raw * (1 - 1e-9))
    step = mult * power
    decimals = max(0, -math.floor(math.log10(step) + 1e-9) + (1 if mult == 2.5 else 0))
    count = int(math.floor(span / step + 1e-9))
    values = [round(k * step, decimals + 2) for k in range(-count, count + 1)]
    return values, [signed(v, f"+.{decimals}f") if v else "0" for v in values]


def sentiment_split_chart(counts: Mapping[str, int], title: str = "Messages by sentiment") -> go.Figure:
    """One stacked bar of negative / neutral / positive messages."""
    total = sum(counts.values())
    if not total:
        return empty_chart(title, "No messages match the filters.", height=160)
    fig = go.Figure()
    labels = ("negative", "neutral", "positive")
    shares = format_shares([counts.get(label, 0) for label in labels])  # shown together: they add up to 100%
    for label, share in zip(labels, shares, strict=True):
        n = counts.get(label, 0)
        fig.add_trace(go.Bar(
            x=[n], y=[""], orientation="h", name=label.capitalize(), marker_color=SENTIMENT_COLOURS[label],
            text=[f"{label.capitalize()} {share}" if n / total >= 0.08 else ""], textposition="inside",
            insidetextanchor="middle", customdata=[[label]],
            hovertemplate=f"{label.capitalize()}: {count_of(n, 'message')} ({share})<extra></extra>",
        ))
    _layout(fig, title, None, None, height=170, legend=False)
    fig.update_layout(barmode="stack", margin=dict(l=10, r=10, t=50, b=10))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig



TOPIC_SENTIMENT_MIN_MESSAGES = 10
"""A topic's sentiment mix is drawn from this many messages up: the shares of three messages would rank it."""


def topic_sentiment_chart(table: pd.DataFrame, n: int = 12, min_messages: int = TOPIC_SENTIMENT_MIN_MESSAGES,
                          title: str = "Sentiment by topic") -> go.Figure:
    """The negative / neutral / positive share of each of the ``n`` largest topics of
    :func:`pipelines.metrics.topic_table` with ``min_messages`` or more, the most negative on top.

    Segments carry ``customdata = [topic, sentiment label, label]``.
    """
    sized = table[(table["topic"] != NO_TOPIC) & (table["messages"] >= min_messages)] if not table.empty else table
    if sized.empty:
        return empty_chart(title, f"No topic has {min_messages} messages or more within these filters.", height=200)
    top = sized.head(n)
    order = ("negative", "neutral", "positive")
    negative, positive = top["share_negative"].to_numpy(), top["share_positive"].to_numpy()
    # Each bar's three figures are read together: rounded to add up to 100%, as on the sentiment split; and the bars
    # are ordered by the negative share as written, so that "8%" never sits above "9%".
    parts = _sentiment_parts(top)
    rank = np.lexsort((-positive, negative, negative_percents(top)))
    top, parts = top.iloc[rank], parts[rank]
    shares = dict(zip(order, parts.T, strict=True))
    names = [f"{_text(label)} ({m:,})" for label, m in zip(top["label"], top["messages"], strict=True)]
    written = [format_shares(list(row)) for row in parts]
    fig = go.Figure()
    for i, sentiment in enumerate(order):
        share = shares[sentiment]
        counts = np.rint(share * top["messages"].to_numpy()).astype(int)
        fig.add_trace(go.Bar(
            x=share * 100, y=names, orientation="h", name=sentiment.capitalize(),
            marker_color=SENTIMENT_COLOURS[sentiment],
            text=[w[i] if v >= 0.07 else "" for w, v in zip(written, share, strict=True)], textposition="inside",
            insidetextanchor="middle",
            customdata=np.column_stack([top["topic"].astype(int), np.full(len(top), sentiment),
                                        top["label"].map(html.escape)]),
            hovertext=_counted(counts),
            hovertemplate=f"<b>%{{customdata[2]}}</b><br>{sentiment.capitalize()}: %{{x:.0f}}% "
                          "(%{hovertext})<extra></extra>",
        ))
    _layout(fig, title, None, None, height=max(280, 130 + 32 * len(top)))
    shown = (f"The {len(top)} largest topics" if len(sized) > len(top) else
             "The one topic" if len(top) == 1 else f"All {count_of(len(top), 'topic')}")
    # The legend at the figure's foot, below the axis labels (placed on the plot's edge, it covered 40% and 60%).
    fig.update_layout(barmode="stack", legend=dict(orientation="h", yref="container", y=0.01, x=0.5, xanchor="center",
                                                   yanchor="bottom", traceorder="normal"),
                      title=dict(subtitle=dict(text=f"{shown} with {min_messages} messages or more, the most negative "
                                                    "on top.", font=dict(size=13, color="#6B7280"))),
                      margin=dict(t=90, b=80))
    fig.update_xaxes(range=[0, 100], ticksuffix="%", showgrid=True, gridcolor="#E6E8EB")
    return fig


# ------------------------------------------------------------------------------------- expectation gaps

# Low priority is blue, not grey: grey is "not ranked", and a large, badly delivered area drawn grey looked unranked.
QUADRANT_COLOURS = {"fix first": "#C8423B", "keep it up": "#2E8B57", "low priority": "#5E81AC",
                    "possible overkill": "#D08A0B", "not ranked": "#C9CDD2"}
QUADRANT_HINTS = {"fix first": "matters a lot, delivered poorly", "keep it up": "matters a lot, delivered well",
                  "low priority": "matters less, delivered poorly", "possible overkill": "matters less, delivered well",
                  "not ranked": "too few messages to rank"}
SOURCE_COLOURS = {"company": "#2E5EAA", "other_brands": "#F58518", "reviews": "#B279A2", "previous": "#54A24B",
                  "unknown": "#C9CDD2"}
_GAP_MEASURES = {"unmet_rate": "Unmet expectations (%)", "mean_sentiment": "Mean sentiment",
                 "mentions": "Messages mentioning the area"}


def area_colour(area: str, areas: list[str] | Mapping[str, str]) -> str:
    """The colour of an expectation area: by its place in the run's taxonomy, so it stays the same on every chart."""
    keys = list(areas)
    return PALETTE[keys.index(area) % len(PALETTE)] if area in keys else NO_TOPIC_COLOUR


MIN_QUADRANT_AREAS = 3
"""Fewest areas for which the Importance–Performance chart shades and names quadrants (see :func:`ipa_quadrants`)."""
TOO_FEW_AREAS = f"Too few areas to compare: quadrants need at least {MIN_QUADRANT_AREAS}"


def unmet_words(unmet: object, statements: object) -> str:
    """An area's unmet expectations as a reader sees them: '38% unmet (3 of 8 statements)', or only the counts
    ('1 of 1 statements unmet') on fewer than :data:`MIN_BASE_FOR_PERCENT` statements, where a percentage ('100%')
    would read as a finding; '–' without statements."""
    n = 0 if statements is None or pd.isna(statements) else round(float(statements))
    k = 0 if unmet is None or pd.isna(unmet) else round(float(unmet))
    if not n:
        return "–"
    if n < MIN_BASE_FOR_PERCENT:
        return f"{k} of {n} {'statement' if n == 1 else 'statements'} unmet"
    return f"{format_share(k / n)} unmet ({k} of {n} statements)"


def ipa_quadrants(ipa: pd.DataFrame) -> bool:
    """Whether the quadrants of an :func:`pipelines.expectations.ipa_table` say anything, so may be shown and named.

    The cuts are the averages of the areas shown, so quadrants only compare areas with each other: a lone area
    sits on both cuts and always lands in "keep it up" (even at 100% unmet), and of two areas each is always on
    the other side of both averages, however good or bad both are. From three areas on the split compares.
    The snapshot's table and "fix first" list follow the same rule as the chart.
    """
    return int((ipa["quadrant"] != "not ranked").sum()) >= MIN_QUADRANT_AREAS if "quadrant" in ipa else \
        len(ipa) >= MIN_QUADRANT_AREAS


def _area_name(names: Mapping[str, str], area: str, limit: int = MAX_LABEL) -> str:
    return _text(names.get(area, area), limit)


def outcome_words(outcome: str) -> str:
    """What an area's performance is the mean of: 'sentiment', or 'rating (scaled −1 to +1)'."""
    return "sentiment" if outcome == "sentiment" else f"{outcome} (scaled −1 to +1)"


_LABEL_SPOTS = ("top center", "bottom center", "middle right", "middle left", "top right", "top left",
                "bottom right", "bottom left")


def _label_spots(x: np.ndarray, y: np.ndarray, widths: np.ndarray, radii: np.ndarray,
                 blocked: list[tuple[float, float, float, float]], plot: tuple[float, float],
                 height: float = 16.0) -> list[str]:
    """Where to write each point's label so labels overlap each other, bubbles, ``blocked`` boxes and the
    edges of the ``plot`` (width, height) least.

    Everything is in pixels of an assumed plot area; greedy, biggest bubble first. Boxes are
    ``(x0, y0, x1, y1)`` with y growing upwards.
    """
    def box(i: int, spot: str) -> tuple[float, float, float, float]:
        w, r, gap = widths[i], radii[i], 3.0
        vertical, horizontal = spot.split()
        if vertical == "middle":
            y0 = y[i] - height / 2
        else:
            y0 = y[i] + r + gap if vertical == "top" else y[i] - r - gap - height
        if horizontal == "center":
            x0 = x[i] - w / 2
        elif vertical == "middle":
            x0 = x[i] + r + gap if horizontal == "right" else x[i] - r - gap - w
        else:
            x0 = x[i] + r * 0.4 if horizontal == "right" else x[i] - r * 0.4 - w
        return x0, y0, x0 + w, y0 + height

    def overlap(a: tuple, b: tuple) -> float:
        return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))

    bubbles = [(x[i] - radii[i], y[i] - radii[i], x[i] + radii[i], y[i] + radii[i]) for i in range(len(x))]
    w, h, far = plot[0], plot[1], 1e5
    placed = list(blocked) + [(-far, -far, 0, far), (w, -far, far, far), (-far, -far, far, 0), (-far, h, far, far)]
    spots = [""] * len(x)
    for i in np.argsort(-radii, kind="stable"):
        others = placed + [b for j, b in enumerate(bubbles) if j != i]
        costs = [sum(overlap(box(i, s), o) for o in others) + k * 0.5 for k, s in enumerate(_LABEL_SPOTS)]
        best = _LABEL_SPOTS[int(np.argmin(costs))]
        spots[i] = best
        placed.append(box(i, best))
    return spots


def _cut_words(ipa: pd.DataFrame) -> str:
    """What the cross-hairs are: the areas' averages, or neutral performance when the areas average below it."""
    if ipa["performance_cut_rule"].iloc[0] == "neutral":
        return "average importance of the areas shown, neutral performance"
    return "average of the areas shown"


def ipa_chart(ipa: pd.DataFrame, names: Mapping[str, str], outcome: str = "sentiment",
              title: str = "Which expectations to fix first", height: int = 560) -> go.Figure:
    """Importance–Performance Analysis (Martilla & James): one bubble per expectation area.

    Args:
        ipa: :func:`pipelines.expectations.ipa_table` (with ``quadrant`` and the cuts).
        names: area key → display name.
        outcome: what performance and importance are measured on: ``"sentiment"`` or the name of the
            rating column the gap table used.

    x is performance (the mean outcome of the messages that mention the area), y is importance (how
    strongly a mention moves the outcome), the dashed cross-hairs are the cuts, each quadrant is shaded
    and named for managers (the names sit in bands above and below the data, so no bubble hides them),
    and bubble size is the number of messages. Points carry
    ``customdata = [area, name, mentions, unmet %, statements, quadrant]``. With fewer than
    :data:`MIN_QUADRANT_AREAS` areas there are no cuts, shading or quadrant names (:func:`ipa_quadrants`): the areas
    are plain points, the quadrant is blank and a note says why.

    Example:
        >>> gaps = expectations.area_gap_table(messages, rating_col="rating")
        >>> ipa_chart(expectations.ipa_table(gaps), {"fair_pricing": "Fair pricing"}, "rating").show()
    """
    if ipa.empty:
        return empty_chart(title, "No expectation area has enough mentions to place it.", height=height)
    ipa = ipa.sort_values("mentions", ascending=False, kind="stable")  # drawn biggest first: small bubbles on top
    i_cut, p_cut = float(ipa["importance_cut"].iloc[0]), float(ipa["performance_cut"].iloc[0])
    perf, imp = ipa["performance"].astype(float).to_numpy(), ipa["importance"].astype(float).to_numpy()
    lo, hi = min(perf.min(), p_cut), max(perf.max(), p_cut)
    pad = max((hi - lo) * 0.18, 0.12)
    x_range = [lo - pad, hi + pad]
    top = max(imp.max(), i_cut)
    y_range = [-0.2 * top, top * 1.25]  # bands below and above the data hold the quadrant names
    # The cuts are averages of these same areas: with one or two areas every placement is forced, so then the areas
    # are drawn as plain points with a note rather than in a quadrant they did not earn (see ipa_quadrants).
    quadrants = ipa_quadrants(ipa)
    corners = {"fix first": (x_range[0], p_cut, i_cut, y_range[1]), "keep it up": (p_cut, x_range[1], i_cut, y_range[1]),
               "low priority": (x_range[0], p_cut, y_range[0], i_cut),
               "possible overkill": (p_cut, x_range[1], y_range[0], i_cut)} if quadrants else {}
    shapes, annotations = [], []
    for quadrant, (x0, x1, y0, y1) in corners.items():
        shapes.append({"type": "rect", "x0": x0, "x1": x1, "y0": y0, "y1": y1, "fillcolor": QUADRANT_COLOURS[quadrant],
                       "opacity": 0.07, "line": {"width": 0}, "layer": "below"})
        left, upper = x0 == x_range[0], y1 == y_range[1]
        annotations.append({"x": 0.01 if left else 0.99, "y": 0.99 if upper else 0.01, "xref": "x domain", "yref": "y domain",
                            "xanchor": "left" if left else "right", "yanchor": "top" if upper else "bottom",
                            "showarrow": False, "align": "left" if left else "right",
                            "text": f"<b>{quadrant.upper()}</b> <span style='font-size:12px'>· {QUADRANT_HINTS[quadrant]}</span>",
                            "font": {"size": 15, "color": QUADRANT_COLOURS[quadrant]}})
    cut_line = {"color": "#9AA0A6", "width": 1.2, "dash": "dash"}
    if not quadrants:  # no cross-hairs either: the note, in the band above the data where a quadrant name would be
        annotations.append({"x": 0.01, "y": 0.99, "xref": "x domain", "yref": "y domain", "xanchor": "left",
                            "yanchor": "top", "showarrow": False, "align": "left", "text": TOO_FEW_AREAS,
                            "font": {"size": 14, "color": "#6B7280"}})
    else:
        shapes += [{"type": "line", "x0": p_cut, "x1": p_cut, "xref": "x", "y0": 0, "y1": 1, "yref": "y domain", "line": cut_line},
                   {"type": "line", "x0": 0, "x1": 1, "xref": "x domain", "y0": i_cut, "y1": i_cut, "yref": "y",
                    "line": cut_line}]
    shown = [_area_name(names, a, 34) for a in ipa["area"]]
    mentions = ipa["mentions"].astype(float).to_numpy()
    diameters = np.maximum(np.sqrt(mentions / mentions.max()) * 56, 10)
    width_px, height_px = 850.0, height - 170.0  # the plot area of a full-width chart, roughly
    px = (perf - x_range[0]) / (x_range[1] - x_range[0]) * width_px
    py = (imp - y_range[0]) / (y_range[1] - y_range[0]) * height_px
    corner_boxes = [(0, height_px - 24, 330, height_px), (width_px - 330, height_px - 24, width_px, height_px),
                    (0, 0, 330, 24), (width_px - 330, 0, width_px, 24)] if quadrants else [
                    (0, height_px - 24, 7.5 * len(TOO_FEW_AREAS), height_px)]
    spots = _label_spots(px, py, np.array([7.2 * len(html.unescape(t)) for t in shown]), diameters / 2, corner_boxes,
                         (width_px, height_px))
    # A small bubble inside a bigger one: its label beside the big bubble read as the big one's name. It is written
    # on the big bubble's free side instead, with a line to the small bubble (drawn on top: bubbles go biggest first).
    texts = list(shown)
    for i, j in _enclosed(px, py, diameters / 2):
        texts[i] = ""
        below = "top" in spots[j]
        annotations.append({"x": perf[i], "y": imp[i], "xref": "x", "yref": "y", "text": shown[i], "showarrow": True,
                            "arrowhead": 0, "arrowwidth": 1, "arrowcolor": "#6B7280", "ax": 0,
                            "ay": (1 if below else -1) * (diameters[j] / 2 + 18 + abs(py[i] - py[j])),
                            "font": {"size": 13, "color": "#262730"}})
    bubbles = {
        "type": "scatter", "x": perf, "y": imp, "mode": "markers+text", "text": texts, "textposition": spots,
        "textfont": {"size": 13, "color": "#262730"}, "cliponaxis": False, "showlegend": False,
        # An area on too few messages to rank is grey whether or not the others are in quadrants.
        "marker": {"size": diameters, "color": [QUADRANT_COLOURS[q] if quadrants or q == "not ranked" else ACCENT
                                                for q in ipa["quadrant"]]
                   if quadrants or (ipa["quadrant"] == "not ranked").any() else ACCENT,
                   "opacity": 0.85, "line": {"color": "white", "width": 1.5}},
        "customdata": np.column_stack([ipa["area"].astype(str), [html.escape(names.get(a, a)) for a in ipa["area"]],
                                       ipa["mentions"].astype(int),
                                       [unmet_words(u, n) for u, n in zip(ipa["unmet"], ipa["statements"], strict=True)],
                                       ipa["statements"].astype(int),
                                       [q.capitalize() if quadrants or q == "not ranked" else "" for q in ipa["quadrant"]]]),
        "hovertemplate": "<b>%{customdata[1]}</b>" + (" · %{customdata[5]}" if quadrants else "")
                         + "<br>Performance %{x:+.2f} · importance "
                         "%{y:.2f}<br>%{customdata[2]:,} messages · %{customdata[3]}<extra></extra>",
    }
    words = outcome_words(outcome)
    style = _house_style(title, f"Performance: mean {words} of messages about the area →",
                         f"Importance: {words} moved by a mention →", height=height, legend=False)
    step = _nice_step(top / 4)
    layout = _merged(style, {
        # No "shapes" key without shapes: Plotly's own JSON leaves an empty list out.
        **({"shapes": shapes} if shapes else {}), "annotations": annotations,
        # Two lines: on one, the subtitle ran past the right edge of a 1400 px page and was cut mid-word.
        "title": {"subtitle": {"text": "Bubble size = messages about the area"
                                       + (f" · dashed lines = {_cut_words(ipa)}" if quadrants else "")
                                       + f"<br>Importance = how much a mention moves the {html.escape(outcome)}"
                                       + (" · grey = too few messages to rank"
                                          if (ipa["quadrant"] == "not ranked").any() else ""),
                               "font": {"size": 13, "color": "#6B7280"}}},
        "margin": {"t": 104},
        "xaxis": {"range": x_range, "tickformat": "+.2~f", "zeroline": False, "showgrid": True, "gridcolor": "#F0F1F3"},
        # As many decimals as the step needs: on one day's messages the ticks 0.005 and 0.01 both read "0.01".
        "yaxis": {"range": y_range, "tickvals": np.arange(0, top * 1.25, step),
                  "tickformat": f".{max(2, _decimals(step))}~f", "gridcolor": "#F0F1F3"},
    })
    return _figure([bubbles], layout)


def _enclosed(x: np.ndarray, y: np.ndarray, radii: np.ndarray) -> list[tuple[int, int]]:
    """``(i, j)`` for each point ``i`` whose centre lies inside the bigger bubble ``j`` (pixels), ``j`` the biggest."""
    pairs = []
    for i in range(len(x)):
        around = [j for j in range(len(x)) if radii[j] > radii[i] and math.hypot(x[i] - x[j], y[i] - y[j]) < radii[j]]
        if around:
            pairs.append((i, max(around, key=lambda j: radii[j])))
    return pairs


def _decimals(step: float) -> int:
    """The fewest decimals that write ``step`` (and so each multiple of it) exactly: 0.25 → 2, 0.005 → 3."""
    return next((d for d in range(8) if abs(round(step, d) - step) < 1e-12 * max(1.0, abs(step))), 8)


def _nice_step(raw: float) -> float:
    """1, 2 or 5 times a power of ten, at least ``raw``."""
    if not raw > 0:
        return 1.0
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def area_gap_bars(gaps: pd.DataFrame, names: Mapping[str, str], title: str = "Expectation gaps by area") -> go.Figure:
    """Three bar panels per area, biggest gap on top: unmet-expectation rate, mean sentiment, messages.

    Args:
        gaps: :func:`pipelines.expectations.area_gap_table` (areas to show; rates NaN when too few mentions).
        names: area key → display name.

    Bars carry ``customdata = [area, name]``.
    """
    if gaps.empty:
        return empty_chart(title, "No message mentions an expectation area.")
    rows = gaps.assign(_rate=gaps["unmet_rate"].fillna(-1)).sort_values(["_rate", "mentions"], ascending=False)
    rows = rows.iloc[::-1]
    y = [_area_name(names, a, 34) for a in rows["area"]]
    custom = np.column_stack([rows["area"].astype(str), [html.escape(names.get(a, a)) for a in rows["area"]],
                              rows["unmet"], rows["statements"]])
    panels = _side_by_side(("<b>Unmet expectations</b>", "<b>Mean sentiment</b>", "<b>Messages about the area</b>"))
    rate = rows["unmet_rate"].astype(float)
    mean = rows["mean_sentiment"].astype(float)
    bar = {"type": "bar", "y": y, "orientation": "h", "customdata": custom, "textposition": "outside", "cliponaxis": False}
    data = [
        bar | {"x": (rate * 100).fillna(0).to_numpy(), "marker": {"color": QUADRANT_COLOURS["fix first"]}, "xaxis": "x",
               "yaxis": "y", "text": [("" if pd.isna(r) else format_share(r) if n >= MIN_BASE_FOR_PERCENT else f"{k:.0f} of {n:.0f}")
                                      for r, k, n in zip(rate, rows["unmet"], rows["statements"], strict=True)],
               "hovertemplate": "<b>%{customdata[1]}</b><br>%{customdata[2]} of %{customdata[3]} expectation statements "
                                "unmet<extra></extra>"},
        bar | {"x": mean.fillna(0).to_numpy(), "xaxis": "x2", "yaxis": "y2",
               "marker": {"color": [SENTIMENT_COLOURS["positive" if v >= 0.1 else "negative" if v <= -0.25 else "neutral"]
                                    for v in mean.fillna(0)]},
               "text": [format_sentiment(v) if pd.notna(v) else "" for v in mean],
               "hovertemplate": "<b>%{customdata[1]}</b><br>Mean sentiment %{text}<extra></extra>"},
        bar | {"x": rows["mentions"].to_numpy(), "marker": {"color": ACCENT}, "xaxis": "x3", "yaxis": "y3",
               "text": [f"{n:,} ({format_share(s)})" for n, s in zip(rows["mentions"], rows["share"], strict=True)],
               "hovertemplate": "<b>%{customdata[1]}</b><br>%{text} of the messages<extra></extra>"},
    ]
    # A bar of no length ("0 of 3", "0%") writes its text outside its end, which is the axis: into the area's name.
    # Written to the right of the axis instead, as "too few messages" is.
    texts, lengths = data[0]["text"], data[0]["x"]
    flat = np.array([bool(t) and v == 0 for t, v in zip(texts, lengths, strict=True)])
    if flat.any():
        data[0]["text"] = ["" if f else t for t, f in zip(texts, flat, strict=True)]
        data.append({"type": "scatter", "x": np.zeros(flat.sum()), "y": np.array(y)[flat], "mode": "text",
                     "text": [f"  {t}" for t, f in zip(texts, flat, strict=True) if f], "textposition": "middle right",
                     "hoverinfo": "skip", "textfont": {"size": 14}, "xaxis": "x", "yaxis": "y"})
    for col, values, x in ((1, rate, 0.0), (2, mean, 0.0)):
        missing = values.isna().to_numpy()
        if missing.any():
            data.append({"type": "scatter", "x": np.full(missing.sum(), x), "y": np.array(y)[missing], "mode": "text",
                         "text": "  too few messages", "textposition": "middle right", "hoverinfo": "skip",
                         "textfont": {"color": "#8A9099", "size": 12}, "xaxis": f"x{col if col > 1 else ''}",
                         "yaxis": f"y{col if col > 1 else ''}"})
    x_axes = ("xaxis", "xaxis2", "xaxis3")
    hidden = {"showgrid": False, "showticklabels": False, "zeroline": False}
    ranges = {"xaxis": {"range": [0, max(float(rate.max() * 100) if rate.notna().any() else 0, 10) * 1.35]},
              "xaxis2": {"range": [-1.35, 1.35], "zeroline": True, "zerolinecolor": "#9AA0A6"},
              "xaxis3": {"range": [0, float(rows["mentions"].max()) * 1.45 + 1]}}
    layout = _merged(panels, _house_style(title, height=max(300, 100 + 38 * len(rows)), legend=False, x_axes=x_axes,
                                          y_axes=("yaxis", "yaxis2", "yaxis3")))
    layout = _merged(layout, {axis: hidden for axis in x_axes})
    layout = _merged(layout, ranges)
    for note in layout["annotations"]:
        note["font"] = {"size": 14, "color": "#4B5563"}
    layout["bargap"] = 0.3
    return _figure(data, layout)


@functools.lru_cache(maxsize=8)
def _side_by_side_layout(titles: tuple[str, ...]) -> str:
    fig = make_subplots(rows=1, cols=len(titles), shared_yaxes=True, horizontal_spacing=0.05, subplot_titles=titles)
    layout = fig.layout.to_plotly_json()
    layout.pop("template", None)
    return json.dumps(layout)


def _side_by_side(titles: tuple[str, ...]) -> dict:
    """The layout of panels side by side sharing their y axis, with these titles (as make_subplots lays them out;
    worked out once, then copied: make_subplots alone takes longer than the rest of a chart)."""
    return json.loads(_side_by_side_layout(titles))


def gap_trend_chart(trend: pd.DataFrame, names: Mapping[str, str], measure: str = "unmet_rate",
                    granularity: Granularity = "month", max_areas: int = 5, title: str | None = None) -> go.Figure:
    """One line per expectation area over time: unmet-expectation rate (or mean sentiment, or mentions).

    Args:
        trend: :func:`pipelines.expectations.gap_trend`; rates are NaN in periods with too few mentions,
            which leave a gap in the line.
        names: area key → display name (in taxonomy order: it sets each area's colour).
        measure: ``"unmet_rate"``, ``"mean_sentiment"`` or ``"mentions"``.
        max_areas: only the areas with the most expectation statements (or mentions) are drawn.

    Points carry ``customdata = [area, period, statements, unmet, mentions]``.
    """
    word = _PERIOD_WORD[granularity]
    title = title or {"unmet_rate": "Unmet expectations", "mean_sentiment": "Sentiment",
                      "mentions": "Messages"}[measure] + f" per area, by {word}"
    shown = trend[trend[measure].notna()] if not trend.empty else trend
    if shown.empty:
        return empty_chart(title, "Too few messages per period to show a trend.")
    if shown["period"].nunique() < 2:  # a dot per area over one label is no trend
        return empty_chart(title, f"Only one {word} has enough messages about the areas: a trend needs two or more.")
    weight = "mentions" if measure == "mentions" else "statements"
    order = shown.groupby("area")[weight].sum().sort_values(ascending=False).index[:max_areas]
    value = {"unmet_rate": "%{y:.0f}% unmet (%{customdata[3]} of %{hovertext})",
             "mean_sentiment": "mean sentiment %{y:+.2f} (%{hovertext})",
             "mentions": "%{hovertext}"}[measure]
    data = []
    for area in order:
        rows = trend[trend["area"] == area].sort_values("period")
        values = rows[measure] * 100 if measure == "unmet_rate" else rows[measure]
        name = names.get(area, area)
        data.append({
            "type": "scatter", "x": _naive(rows["period"]).to_numpy(), "y": values.to_numpy(), "name": _text(name, 34),
            "mode": "lines+markers", "connectgaps": False, "line": {"color": area_colour(area, names), "width": 2.5},
            "marker": {"size": 7},
            "customdata": np.column_stack([np.full(len(rows), area), _iso(rows["period"]), rows["statements"],
                                           rows["unmet"], rows["mentions"]]),
            "hovertext": _counted(rows["statements"], "statement") if measure == "unmet_rate" else _counted(
                rows["mentions"]),
            "hovertemplate": f"<b>{html.escape(name)}</b><br>%{{x}}<br>{value}<extra></extra>",
        })
    layout = _merged(_house_style(title, None, _GAP_MEASURES[measure]),
                     {"xaxis": _date_ticks((x for trace in data for x in trace["x"]), granularity)[0]})
    if measure == "unmet_rate":
        note = (f"{word.capitalize()}s with fewer than {ExpectationSettings().min_mentions} expectation statements about "
                "an area are skipped.")
        layout = _merged(layout, {"yaxis": {"range": [0, 105], "ticksuffix": "%"}, "margin": {"t": 80},
                                  "title": {"subtitle": {"text": note, "font": {"size": 13, "color": "#6B7280"}}}})
    elif measure == "mean_sentiment":
        layout = _merged(layout, {"yaxis": {"range": [-1.05, 1.05], "tickformat": "+.1f"}})
    else:
        layout = _merged(layout, {"yaxis": {"rangemode": "tozero", **count_axis(float(shown["mentions"].max()))}})
    layout["hovermode"] = "closest"
    return _figure(data, layout)


def expectation_sources_chart(sources: pd.DataFrame, names: Mapping[str, str],
                              title: str = "Where the expectations came from") -> go.Figure:
    """Bars per area of its expectation statements' sources (company, other brands, reviews, …), as shares of the
    area's statements: on one count scale, an urgent area of 11 statements beside one of 1,400 showed no bar.

    Args:
        sources: :func:`pipelines.expectations.source_table`.
        names: area key → display name.

    Segments carry ``customdata = [area, source, unmet, name, statements]``; each area's label gives its number of
    statements.
    """
    totals = sources.groupby("area", sort=False)["statements"].sum() if not sources.empty else pd.Series(dtype=int)
    totals = totals[totals > 0].sort_values(ascending=True, kind="stable")
    if totals.empty:
        return empty_chart(title, "No expectation statements match the filters.")
    areas = list(totals.index)
    y = [f"{_area_name(names, a, 34)} ({totals[a]:,})" for a in areas]
    grid = sources.set_index(["area", "source"])
    data = []
    for source in SOURCES:
        counts = [int(grid["statements"].get((a, source), 0)) for a in areas]
        unmet = [int(grid["unmet"].get((a, source), 0)) for a in areas]
        shares = [100 * c / totals[a] for c, a in zip(counts, areas, strict=True)]
        label = SOURCE_NAMES.get(source, source)
        data.append({
            "type": "bar", "x": shares, "y": y, "orientation": "h", "name": html.escape(label),
            "marker": {"color": SOURCE_COLOURS.get(source, ACCENT)},
            "text": [f"{v:.0f}%" if v >= 8 else "" for v in shares],
            "textposition": "inside", "insidetextanchor": "middle", "textangle": 0,
            "customdata": np.column_stack([areas, np.full(len(areas), source), unmet,
                                           [html.escape(names.get(a, a)) for a in areas], counts]),
            "hovertext": _counted(counts, "statement"),
            "hovertemplate": f"<b>%{{customdata[3]}}</b><br>{html.escape(label)}: %{{hovertext}}, %{{x:.0f}}% of the "
                             f"area's (%{{customdata[2]}} unmet)<extra></extra>",
        })
    layout = _merged(_house_style(title, "Share of statements", None,
                                  height=max(300, 120 + 40 * len(areas))),
                     # The legend at the foot of the whole figure: placed below the plot (a share of its height),
                     # it ran into the axis title on a short chart, which then read as the legend's title.
                     # A share too narrow for its label at a readable size shows none (the hover has it): Plotly
                     # otherwise shrinks "13%" to a smudge in a half-width column.
                     {"barmode": "stack", "bargap": 0.3, "uniformtext": {"minsize": 10, "mode": "hide"},
                      "legend": {"traceorder": "normal", "yref": "container", "y": 0, "yanchor": "bottom"},
                      "xaxis": {"showgrid": True, "gridcolor": "#E6E8EB", "range": [0, 100], "ticksuffix": "%"}})
    return _figure(data, layout)

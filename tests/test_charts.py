"""Charts: presentation-ready figures built from metric results, with drill-down data on every mark."""

from __future__ import annotations

import html
import json
from datetime import date

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from pipelines import charts
from pipelines import expectations as ex
from pipelines import metrics as m

TOPICS = pd.DataFrame({"topic": [0, 1], "label": ["refund · delay", "<b>login</b> · password"],
                       "keywords": [["refund", "delay"], ["login", "password"]]})
LABELS = m.topic_labels(TOPICS)


@pytest.fixture
def messages() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    days = pd.date_range("2026-01-01", "2026-03-31", freq="D", tz="UTC")
    rows = pd.DataFrame({
        "date": days[rng.integers(0, len(days), 300)] + pd.to_timedelta(rng.integers(0, 86_400, 300), unit="s"),
        "topic": rng.choice([0, 1, -1], 300, p=[0.6, 0.3, 0.1]),
        "sentiment": rng.uniform(-1, 1, 300),
        "channel": rng.choice(["email", "chat"], 300),
        "x": rng.normal(size=300), "y": rng.normal(size=300),
        "text": ["Refund <script>alert(1)</script> took weeks"] * 300,
    })
    rows["sentiment_label"] = np.where(rows["sentiment"] < -0.25, "negative",
                                       np.where(rows["sentiment"] > 0.25, "positive", "neutral"))
    rows["message_id"] = [f"m{i}" for i in range(300)]
    return rows


def titles(fig: go.Figure) -> tuple[str, str, str]:
    layout = fig.layout
    return layout.title.text, layout.xaxis.title.text or "", layout.yaxis.title.text or ""


def test_each_topic_keeps_one_colour_and_no_topic_is_grey():
    assert charts.topic_colour(3) == charts.topic_colour(3) == charts.PALETTE[3]
    assert len({charts.topic_colour(t) for t in range(20)}) == 20
    assert charts.topic_colour(m.NO_TOPIC) == charts.NO_TOPIC_COLOUR
    assert charts.topic_colour(len(charts.PALETTE)) == charts.PALETTE[0]


def _lab(colour: str) -> np.ndarray:
    """CIE L*a*b* (D65) of an sRGB colour: distances there are how different two colours look."""
    rgb = np.array([int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    rgb = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ rgb
    t = xyz / np.array([0.9505, 1.0, 1.089])
    f = np.where(t > 0.008856, np.cbrt(t), 7.787 * t + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def test_no_two_topic_colours_look_alike():
    """Two topics of one chart were drawn in #F6A600 and #FFA600, and two others in near-identical purples."""
    labs = [_lab(c) for c in charts.PALETTE]
    closest = min(np.linalg.norm(a - b) for i, a in enumerate(labs) for b in labs[i + 1:])
    assert closest >= 10  # CIE76 ΔE; about 2.3 is the smallest difference people notice side by side


def test_topics_drawn_together_never_share_a_colour_even_past_the_palette():
    """Topic 31 has topic 1's colour (30 colours): with a filter both can be among the topics drawn together."""
    size = len(charts.PALETTE)
    assert charts.topic_colour(1) == charts.topic_colour(1 + size)
    pair = charts.topic_colours([1 + size, 1])
    assert pair[1] == charts.topic_colour(1) and pair[1 + size] != pair[1]  # the smaller id keeps its own colour
    assert charts.topic_colours([1 + size]) == {1 + size: charts.topic_colour(1 + size)}  # alone: its own colour
    rng = np.random.default_rng(3)
    for n in (2, 5, 12, size):
        topics = rng.choice(np.arange(200), n, replace=False).tolist()
        colours = charts.topic_colours(topics + [m.NO_TOPIC])
        assert len({colours[t] for t in topics}) == n and set(colours.values()) <= {*charts.PALETTE, charts.NO_TOPIC_COLOUR}
        assert colours[m.NO_TOPIC] == charts.NO_TOPIC_COLOUR
        assert charts.topic_colours(topics[::-1]) == {t: colours[t] for t in topics}  # the set decides, not the order
        # A topic whose own colour no smaller topic of the figure has keeps it, as on every other page.
        for t in topics:
            if not any(u < t and charts.topic_colour(u) == charts.topic_colour(t) for u in topics):
                assert colours[t] == charts.topic_colour(t)

    # On the charts: lines, bars and map points of topics 1 and 31.
    labels = {1: "mortgage · home · foreclosure", 1 + size: "pst · appraisal · chain", 2: "loan · payment"}
    periods = pd.to_datetime(["2025-09-01", "2025-10-01", "2025-11-01"])
    volume = pd.DataFrame([{"period": p, "topic": t, "count": 5 + t % 7, "share": 0.1} for t in labels for p in periods])
    lines = charts.topic_volume_chart(volume, labels, "month")
    assert len({t.line.color for t in lines.data}) == 3
    table = pd.DataFrame({"topic": list(labels), "label": list(labels.values()), "messages": [30, 20, 10],
                          "share": [0.5, 0.3, 0.2]})
    assert len(set(charts.top_topics_chart(table).data[0].marker.color)) == 3
    points = pd.DataFrame({"x": np.arange(9.0), "y": np.arange(9.0), "topic": list(labels) * 3, "text": ["t"] * 9})
    assert len({t.marker.color for t in charts.topic_map_chart(points, labels).data}) == 3


def test_the_map_colours_the_largest_topics_and_greys_the_rest_under_one_legend_entry():
    """Fifty topics on thirty colours: tea and nuts were both orange. The 15 largest get colours of their own; the
    rest are grey, one legend entry, and each dot still names and opens its own topic."""
    sizes = {t: 100 - t for t in range(50)}
    points = pd.DataFrame([{"x": float(t), "y": float(i), "topic": t, "text": f"m{t}-{i}"}
                           for t, n in sizes.items() for i in range(n // 10)])
    labels = {t: f"topic {t}" for t in sizes}
    fig = charts.topic_map_chart(points, labels)
    colours = [t.marker.color for t in fig.data]
    assert len(set(colours[:15])) == 15 and charts.OTHER_TOPICS_COLOUR not in colours[:15]
    assert set(colours[15:]) == {charts.OTHER_TOPICS_COLOUR}
    legend = [t.name for t in fig.data if t.showlegend is not False]
    assert legend[15:] == ["35 smaller topics"] and len(legend) == 16
    assert [t.customdata[0][0] for t in fig.data] == list(range(50))  # a grey dot opens its own topic
    assert "topic 49" in fig.data[-1].hovertemplate


def test_numbers_and_dates_are_formatted_for_people():
    assert charts.format_count(12345.0) == "12,345" and charts.format_count(None) == "–"
    assert charts.format_share(0.123, 1) == "12.3%" and charts.format_share(float("nan")) == "–"
    assert charts.format_share(0.004) == "<1%" and charts.format_share(0.0004, 1) == "<0.1%"  # few, not none
    assert charts.format_share(0) == "0%" and charts.format_share(0.006) == "1%"
    assert charts.format_sentiment(0.3) == "+0.30" and charts.format_sentiment(-0.05) == "−0.05"
    assert charts.format_date("2026-03-05T10:00:00+00:00") == "5 Mar 2026" and charts.format_date(None) == "–"
    assert charts.format_change(m.Change(12, 10)) == "+2 (+20%)"
    assert charts.format_change(m.Change(10, 10)) == "0"
    assert charts.format_change(m.Change(0.2, 0.15), "share") == "+5.0 pts"
    assert charts.format_change(m.Change(0.1, 0.3), "sentiment") == "−0.20"  # Plotly's minus sign, not a hyphen
    assert charts.format_sentiment(-0.594) == "−0.59" and charts.format_sentiment(-0.004) == "0.00"
    assert charts.format_contribution(-0.0251) == "−0.025" and charts.format_change(m.Change(80, 100)) == "−20 (−20%)"
    assert charts.format_change(m.Change(3, None)) is None
    assert charts.format_topic_change(3, float("nan")) == "+3 (none before)"  # no message before: no percentage
    assert charts.format_topic_change(5, 0.5) == "+5 (+50%)" and charts.format_topic_change(-10, -0.5) == "−10 (−50%)"
    assert charts.format_topic_change(1200, None) == "+1,200 (none before)" and charts.format_topic_change(None, None) == "–"
    assert charts.short_label("a" * 50, 10) == "aaaaaaaaa…"
    assert charts.hover_safe("<b>hi</b>\n there") == "&lt;b&gt;hi&lt;/b&gt; there"


def test_a_change_on_a_small_base_has_no_percentage():
    """'+4 (+400%)' from one message reads as a surge: under 10 earlier (or none) only the signed count is shown."""
    assert charts.MIN_BASE_FOR_PERCENT == 10
    assert charts.format_change(m.Change(5, 1)) == "+4"
    assert charts.format_change(m.Change(3, 9)) == "−6"
    assert charts.format_change(m.Change(4, 0)) == "+4"
    assert charts.format_change(m.Change(15, 10)) == "+5 (+50%)"  # a normal base keeps its percentage
    assert charts.format_change(m.Change(1_300, 1_000)) == "+300 (+30%)"
    assert charts.format_topic_change(4, 4.0) == "+4" and charts.format_topic_change(-2, -0.5) == "−2"
    assert charts.format_topic_change(-3, -0.3) == "−3 (−30%)"  # 10 before
    assert charts.format_topic_change(0, 0.0) == "0"  # no change: no sign, no "(+0%)"


def test_a_change_says_when_it_rounds_to_zero():
    """The Overview shows a change that reads '0.0 pts' without a colour or arrow: the formatter says so."""
    assert charts.change_rounds_to_zero(m.Change(10, 10))
    assert charts.change_rounds_to_zero(m.Change(0.2504, 0.2500), "share")  # +0.04 pts
    assert charts.format_change(m.Change(0.2500, 0.2504), "share") == "0.0 pts"  # never "+0.0 pts" or "−0.0 pts"
    assert charts.change_rounds_to_zero(m.Change(0.104, 0.1), "sentiment")
    assert charts.format_change(m.Change(0.1, 0.104), "sentiment") == "0.00"
    assert not charts.change_rounds_to_zero(m.Change(0.2506, 0.2500), "share")  # +0.1 pts
    assert not charts.change_rounds_to_zero(m.Change(11, 10))
    assert not charts.change_rounds_to_zero(m.Change(3, None))  # unknown is not "no change"


def test_shares_shown_together_add_up_to_100_percent():
    # Rounded one by one these read 34% + 34% + 34% (or 33% + 33% + 33%); together they must make 100%.
    assert charts.format_shares([1, 1, 1]) == ["34%", "33%", "33%"]
    shares = charts.format_shares([335, 335, 330])  # 33.5% + 33.5% + 33%: rounded alone 34 + 34 + 33 = 101
    assert shares == ["34%", "33%", "33%"] and sum(charts.rounded_shares([335, 335, 330])) == 100
    assert charts.rounded_shares([1, 2, 3, 4, 5, 6, 7], 1) == [3.6, 7.1, 10.7, 14.3, 17.9, 21.4, 25.0]
    assert sum(charts.rounded_shares([1, 2, 3, 4, 5, 6, 7], 1)) == pytest.approx(100)
    assert charts.format_shares([1, 0, 999]) == ["<1%", "0%", "100%"]  # a few, not none
    assert charts.format_shares([0, 0]) == ["–", "–"]
    split = charts.sentiment_split_chart({"negative": 335, "neutral": 335, "positive": 330})
    assert [t.text[0] for t in split.data] == ["Negative 34%", "Neutral 33%", "Positive 33%"]


def test_topic_volume_chart_has_a_line_per_topic_with_drill_down_data(messages):
    volume = m.volume_over_time(messages, "week")
    fig = charts.topic_volume_chart(volume[volume["topic"] >= 0], LABELS, "week")
    assert titles(fig) == ("Messages per topic, by week", "", "Messages")
    assert [t.name for t in fig.data] == ["refund · delay", "&lt;b&gt;login&lt;/b&gt; · password"]
    assert fig.layout.xaxis.tickformat == "%-d %b %Y"
    topic, period, count = fig.data[0].customdata[0]
    assert int(topic) == 0 and period == "2025-12-29" and int(count) >= 0
    share = charts.topic_volume_chart(volume, LABELS, "month", measure="share")
    assert share.layout.yaxis.ticksuffix == "%" and share.layout.title.text.startswith("Share of messages")
    assert max(max(t.y) for t in share.data) <= 100


def test_breakdown_chart_stacks_metadata_values(messages):
    split = m.volume_over_time(messages, "month", by="channel")
    fig = charts.breakdown_chart(split, "channel", "month")
    assert fig.layout.barmode == "stack" and {t.name for t in fig.data} == {"email", "chat"}
    assert fig.data[0].customdata[0][1] == "2026-01-01"
    assert fig.layout.xaxis.tickformat == "%b %Y"


def test_topic_bars_movers_and_comparison(messages):
    current, previous = m.comparison_windows(date(2026, 3, 31), 30)
    table = m.topic_table(messages, TOPICS, current, previous)
    top = charts.top_topics_chart(table)
    assert top.layout.title.text == "Top topics by messages" and top.layout.xaxis.title.text == "Messages"
    assert [int(c[0]) for c in top.data[0].customdata] == table["topic"].tolist()[::-1]
    assert list(top.data[0].marker.color) == [charts.topic_colour(t) for t in table["topic"][::-1]]
    movers = charts.movers_chart(m.biggest_movers(messages, TOPICS, current, previous, min_messages=1))
    assert "Biggest changes" in movers.layout.title.text and movers.layout.xaxis.title.text == "Change in messages"
    # Each change is written beside its bar, right of the plot (clear of the topic names on the left).
    changes = {a.y: a.text for a in movers.layout.annotations}
    assert set(changes) == set(movers.data[0].y) and all(a.xref == "paper" and a.x == 1 for a in movers.layout.annotations)
    assert all(t.startswith(("+", "-")) and "(" in t for t in changes.values())
    compare = charts.period_comparison_chart(table, current.label, previous.label)
    assert [t.name for t in compare.data] == [previous.label, current.label]
    assert compare.data[1].customdata[0][1] == "current"


def test_count_axes_tick_whole_messages(messages):
    """Small counts: Plotly alone would tick 0.5, 1.5, 2.5 messages."""
    assert charts.count_axis(3) == {"tickformat": ",d", "tick0": 0, "dtick": 1}
    assert charts.count_axis(30)["dtick"] == 10 and charts.count_axis(7)["dtick"] == 2
    assert charts.count_axis(5000) == {"tickformat": ",d"}  # Plotly's own steps are whole numbers there
    few = messages.head(6)
    current, previous = m.comparison_windows(few["date"].max().date(), 45)
    table = m.topic_table(few, TOPICS, current, previous)
    volume = m.volume_over_time(few, "week")
    movers = m.biggest_movers(few, TOPICS, current, previous, min_messages=1)
    axes = [charts.top_topics_chart(table).layout.xaxis, charts.topic_volume_chart(volume, LABELS, "week").layout.yaxis,
            charts.movers_chart(movers).layout.xaxis,
            charts.period_comparison_chart(table, current.label, previous.label).layout.xaxis,
            charts.breakdown_chart(m.volume_over_time(few, "week", by="channel"), "channel", "week").layout.yaxis,
            charts.sentiment_chart(m.sentiment_over_time(few, "week"), "week").layout.yaxis2]
    for axis in axes:
        assert axis.tickformat == ",d" and axis.tick0 == 0 and axis.dtick >= 1 and float(axis.dtick).is_integer()
    share = charts.topic_volume_chart(volume, LABELS, "week", measure="share").layout.yaxis
    assert share.dtick is None and share.ticksuffix == "%"


def test_sentiment_chart_shows_volume_under_the_mean(messages):
    series = m.sentiment_over_time(messages, "month", rolling=2)
    fig = charts.sentiment_chart(series, "month", smoothed_label="2-month average")
    assert [t.name for t in fig.data] == ["Mean sentiment", "2-month average", "Messages"]
    assert fig.layout.yaxis.range == (-1.05, 1.05) and fig.layout.yaxis2.title.text == "Messages"
    assert list(fig.data[2].customdata[:, 0]) == ["2026-01-01", "2026-02-01", "2026-03-01"]


def test_a_single_day_gets_one_tick_and_a_visible_bar(messages):
    one_day = messages.assign(date=pd.Timestamp("2026-10-31 12:00", tz="UTC"))
    fig = charts.sentiment_chart(m.sentiment_over_time(one_day, "day"), "day")
    # Not Plotly's hourly ticks ("30 Oct, 30 Oct, 31 Oct") over a bar one millisecond wide.
    assert fig.layout.xaxis.tickvals == fig.layout.xaxis2.tickvals == ("2026-10-31T00:00:00",)
    assert fig.layout.xaxis2.range == ("2026-10-30T12:00:00", "2026-10-31T12:00:00")
    assert fig.data[-1].type == "bar" and fig.data[-1].width == 0.8 * 86_400_000
    many = charts.sentiment_chart(m.sentiment_over_time(messages, "week"), "week")
    assert many.layout.xaxis.range is None and many.data[-1].width is None  # a long span keeps Plotly's range
    # Every other week or so is ticked, on the weeks' Mondays, under their bars (Plotly's own fell on Sundays), the
    # latest week always among them, level labels with the year once ("5 Jan<br>2026", "19 Jan", …).
    ticks = [pd.Timestamp(t) for t in many.layout.xaxis.tickvals]
    weeks = sorted(pd.Timestamp(x) for x in many.data[-1].x)
    assert {t.day_name() for t in ticks} == {"Monday"} and ticks[-1] == weeks[-1] and len(ticks) <= 10 < len(weeks)
    assert many.layout.xaxis.ticktext[0].endswith("<br>2026") and "<br>" not in many.layout.xaxis.ticktext[1]


def test_heatmap_greys_cells_on_too_few_messages(messages):
    series = m.sentiment_over_time(messages, "week", by_topic=True)
    fig = charts.topic_sentiment_heatmap(series, LABELS, "week", min_messages=5)
    few, heat, cells = fig.data
    counts = np.array([[c[2] for c in row] for row in heat.customdata])
    z = np.array(heat.z, dtype=float)
    assert np.isnan(z[counts < 5]).all() and not np.isnan(z[counts >= 5]).any()
    assert (counts < 5).any() and (counts >= 5).any()
    # Those cells are grey, not blank: blank read like a mean of 0 (the scale's near-white middle).
    grey = np.array(few.z, dtype=float)
    assert not np.isnan(grey[counts < 5]).any() and np.isnan(grey[counts >= 5]).all()
    assert {c for _, c in few.colorscale} == {charts.TOO_FEW_COLOUR} and few.showscale is False
    assert charts.TOO_FEW_COLOUR not in {c for _, c in heat.colorscale}
    # Each count is written once, by the trace that draws its cell.
    assert all(bool(a) != bool(b) for ra, rb in zip(few.text, heat.text, strict=True) for a, b in
               zip(ra, rb, strict=True) if a or b)
    assert list(heat.y)[0] == "refund · delay"  # largest topic on top
    # Plotly selects no heatmap cell on a click: an invisible marker on each cell's centre carries its drill-down.
    assert few.hoverinfo == heat.hoverinfo == "skip" and cells.type == "scatter" and cells.marker.color.endswith(",0)")
    flat = [list(c) for row in heat.customdata for c in row]
    assert [list(c) for c in cells.customdata] == flat
    assert list(cells.y) == [name for name in heat.y for _ in heat.x]
    assert [pd.Timestamp(x) for x in cells.x] == [pd.Timestamp(x) for _ in heat.y for x in heat.x]
    written = {(c[0], c[1]): text for c, text in zip(flat, cells.text, strict=True)}
    assert all(("too few" in written[(c[0], c[1])]) == (0 < c[2] < 5) for c in flat)
    assert all(("No messages" in written[(c[0], c[1])]) == (c[2] == 0) for c in flat)
    # Each names its period in full, not as an axis tick would ("Oct"), and the markers are a pixel: larger, they
    # overlapped narrow cells (weeks, days) and a click opened the cell to the right.
    assert all(written[(c[0], c[1])].startswith(f"week of {pd.Timestamp(c[1]):%-d %b %Y}<br>") for c in flat)
    assert cells.marker.size == 1
    assert fig.layout.hoverdistance == -1 and fig.layout.hovermode == "closest"
    assert "grey cells have fewer than 5 messages" in fig.layout.title.subtitle.text
    topics = sorted(set(series["topic"]) - {m.NO_TOPIC})
    shown = charts.topic_sentiment_heatmap(series, LABELS, "week", max_topics=1).layout.title.subtitle.text
    assert f"The 1 largest of {len(topics)} topics." in shown  # "(no clear topic)" is not a topic
    blank = charts.topic_sentiment_heatmap(series, LABELS, "week", min_messages=int(series["messages"].max()) + 1)
    assert not blank.data and "too few for a mean sentiment" in blank.layout.annotations[0].text


def test_drivers_split_and_map(messages):
    current, previous = m.comparison_windows(date(2026, 3, 31), 30)
    drivers = charts.sentiment_drivers_chart(m.sentiment_drivers(messages, TOPICS, current, previous),
                                             current.label)
    assert drivers.layout.xaxis.title.text == "Contribution to the change in mean sentiment"
    # Ticks at a round step with enough decimals: at steps of 0.005 a fixed "+.2f" wrote "−0.01" twice and "+0.00".
    for span, step in ((0.024, 0.01), (0.015, 0.005), (0.3, 0.1), (0.0012, 0.0005)):
        values, texts = charts.signed_ticks(span)
        assert len(set(texts)) == len(texts) and "0" in texts and np.allclose(np.diff(values), step), (span, texts)
        assert all(t == "0" or t[0] in "+−" for t in texts) and max(values) <= span
    ticks = drivers.layout.xaxis.ticktext
    assert ticks and len(set(ticks)) == len(ticks) and "0" in ticks
    split = charts.sentiment_split_chart(m.sentiment_counts(messages))
    assert [t.name for t in split.data] == ["Negative", "Neutral", "Positive"]
    world = charts.topic_map_chart(messages, LABELS, max_points=100)
    assert sum(len(t.x) for t in world.data) == 100
    hover = " ".join(h for t in world.data for h in t.hovertext)
    assert all(c[0] == int(t.customdata[0][0]) for t in world.data for c in t.customdata)  # the topic, for the drill-down
    assert "<script>" not in hover and "&lt;script&gt;" in hover
    assert any(a.text == "refund · delay" for a in world.layout.annotations)


def test_topic_sentiment_chart_puts_the_most_negative_topic_on_top(messages):
    rows = messages.copy()
    rows.loc[rows["topic"] == 1, "sentiment_label"] = "negative"  # topic 1: all negative
    table = m.topic_table(rows, TOPICS)
    fig = charts.topic_sentiment_chart(table)
    assert [t.name for t in fig.data] == ["Negative", "Neutral", "Positive"]
    negative = fig.data[0]
    assert negative.y[-1] == f"{charts._text(LABELS[1])} ({int((rows['topic'] == 1).sum())})"
    assert negative.x[-1] == pytest.approx(100)  # the top bar: plotly draws the last category on top
    refund = rows[rows["topic"] == 0]
    shares = refund["sentiment_label"].value_counts(normalize=True) * 100
    for trace in fig.data:  # each segment: the topic's share of that sentiment, and what a click opens
        assert trace.x[0] == pytest.approx(shares.get(trace.name.lower(), 0))
        assert list(trace.customdata[0][:2]) == [0, trace.name.lower()]
    assert negative.y[0] == f"refund · delay ({len(refund)})"
    assert -1 not in {c[0] for c in negative.customdata}  # messages without a clear topic are not a topic
    assert sum(float(t.x[0]) for t in fig.data) == pytest.approx(100)
    written = [int(t.text[0].rstrip("%")) for t in fig.data if t.text[0]]  # all three parts here are ≥ 7%
    assert len(written) == 3 and sum(written) == 100  # rounded together, as the sentiment split is
    # Ordered by the negative share as written: 8.6% shown "8%" (its bar's parts rounded to add up to 100%) goes
    # below 8.55% shown "9%" (Plotly lists bars from the bottom).
    close = pd.DataFrame({"topic": [0, 1], "label": ["a", "b"], "messages": [10_000, 10_000],
                          "share_negative": [0.086, 0.0855], "share_positive": [0.088, 0.10]})
    bars = charts.topic_sentiment_chart(close)
    assert [t[:1] for t in bars.data[0].y] == ["a", "b"] and list(bars.data[0].text) == ["8%", "9%"]
    few = charts.topic_sentiment_chart(table, min_messages=int(table["messages"].max()) + 1)
    assert few.layout.annotations[0].text.startswith("No topic has")


def test_a_topics_negative_share_reads_the_same_in_a_table_as_on_its_bar():
    # 11.55% negative, 44.7% neutral, 43.75% positive: rounded alone the negative part reads 12%, but the bar's three
    # parts read 11% + 45% + 44% (they add up to 100%): a table beside it, on the dashboard or in a snapshot,
    # writes 11% too.
    table = pd.DataFrame({"topic": [0], "label": ["refunds"], "messages": [1000],
                          "share_negative": [0.1155], "share_positive": [0.4375]})
    bar = charts.topic_sentiment_chart(table)
    assert [t.text[0] for t in bar.data] == ["11%", "45%", "44%"]
    assert charts.negative_shares_written(table) == ["11%"] and charts.negative_percents(table).tolist() == [11.0]
    assert charts.format_share(0.1155) == "12%"  # what the table wrote before
    tiny = table.assign(share_negative=[0.004], share_positive=[0.5])
    assert charts.negative_shares_written(tiny) == ["<1%"]


def test_a_trend_of_one_period_says_there_is_none_to_draw(messages):
    one_week = messages[messages["date"] < messages["date"].min() + pd.Timedelta(days=1)]
    volume = m.volume_over_time(one_week, "week")
    assert volume["period"].nunique() == 1
    fig = charts.topic_volume_chart(volume, LABELS, "week")
    assert fig.layout.title.subtitle.text == "One week only, so there is no trend to draw: choose days."
    assert charts.topic_volume_chart(m.volume_over_time(messages, "week"), LABELS, "week").layout.title.subtitle.text \
        is None
    # One topic left by the filters: "The one topic", not "All 1 topic".
    table = m.topic_table(messages[messages["topic"] == 0], TOPICS)
    assert charts.topic_sentiment_chart(table).layout.title.subtitle.text.startswith("The one topic with 10 messages")


def test_empty_results_give_a_chart_that_says_why():
    empty = m.volume_over_time(pd.DataFrame({"date": pd.Series(dtype="datetime64[ns, UTC]"),
                                             "topic": pd.Series(dtype=int)}), "week")
    fig = charts.topic_volume_chart(empty, LABELS, "week")
    assert fig.layout.annotations[0].text == "No dated messages match the filters."
    assert charts.sentiment_split_chart({"negative": 0}).layout.annotations[0].text.startswith("No messages")


def test_figures_serialise_for_export(messages):
    series = m.sentiment_over_time(messages, "week")
    spec = json.loads(charts.sentiment_chart(series, "week").to_json())
    assert spec["layout"]["title"]["text"] == "Sentiment and volume, by week"
    assert spec["layout"]["font"]["size"] == 14


# ------------------------------------------------------------------------------------- expectation gaps

AREA_NAMES = {"speed": "Speed of service", "price": "Fair <i>pricing</i>", "policy": "Clear policies",
              "app": "Seamless app"}


@pytest.fixture
def tagged() -> pd.DataFrame:
    """Messages tagged with expectation areas: slow speed is the painful, important gap; pricing is fine."""
    rng = np.random.default_rng(1)
    n = 240
    areas = [list(rng.choice(["speed", "price", "policy"], size=rng.integers(0, 3), replace=False)) for _ in range(n)]
    slow = np.array(["speed" in a for a in areas])
    sentiment = np.clip(rng.normal(0.3, 0.3, n) - 0.8 * slow, -1, 1)
    stated = rng.random(n) < 0.5
    met = np.where(stated, np.where(slow & (rng.random(n) < 0.8), "unmet", "met"), None)
    days = pd.date_range("2026-01-01", "2026-04-30", freq="D", tz="UTC")
    return pd.DataFrame({
        "date": days[rng.integers(0, len(days), n)], "areas": areas, "sentiment": sentiment,
        "expectation": stated, "expectation_met": met,
        "expectation_source": np.where(stated, rng.choice(list(ex.SOURCES), n), None),
        "rating": np.where(sentiment > 0, "5 stars", "1-4 stars"),
    })


def test_a_small_bubble_inside_a_big_one_is_named_by_a_line_to_it_and_drawn_on_top():
    """A topic filter left Speed of service (4 messages) at nearly the place of Product quality (60): its label,
    beside the big bubble, read as the big bubble's name. Now the big one is drawn first and the small one is
    named on the big one's free side with a line to it; and the importance axis writes 0.005, not 0.01 twice."""
    ipa = pd.DataFrame({"area": ["speed", "quality", "price", "policy"], "performance": [0.40, 0.401, 0.5, 0.55],
                        "importance": [0.0052, 0.005, 0.003, 0.009], "mentions": [4, 60, 20, 12],
                        "unmet": [1, 5, 2, 1], "statements": [2, 20, 8, 5],
                        "quadrant": ["possible overkill"] * 4, "importance_cut": [0.006] * 4,
                        "performance_cut": [0.3] * 4, "performance_cut_rule": ["average"] * 4})
    names = {"speed": "Speed of service", "quality": "Product quality", "price": "Fair pricing", "policy": "Policies"}
    fig = charts.ipa_chart(ipa, names)
    point = fig.data[0]
    assert [c[0] for c in point.customdata] == ["quality", "price", "policy", "speed"]
    assert point.text[-1] == "" and point.text[0] == "Product quality"
    pointer = [a for a in fig.layout.annotations if a.text == "Speed of service"]
    assert len(pointer) == 1 and pointer[0].showarrow and (pointer[0].x, pointer[0].y) == (0.40, 0.0052)
    ticks = [f"{v:.{fig.layout.yaxis.tickformat[1]}f}" for v in fig.layout.yaxis.tickvals]
    assert len(set(ticks)) == len(ticks), ticks


def test_a_gap_bar_of_no_length_writes_its_figure_beside_the_axis_not_into_the_area_name():
    gaps = pd.DataFrame({"area": ["quality", "price"], "mentions": [12, 40], "share": [0.2, 0.6],
                         "statements": [3, 20], "unmet": [0, 5], "unmet_rate": [0.0, 0.25],
                         "mean_sentiment": [0.61, 0.2]})
    fig = charts.area_gap_bars(gaps, {"quality": "Product quality", "price": "Fair pricing"})
    rates = fig.data[0]
    quality = list(rates.y).index("Product quality")
    assert rates.text[quality] == "" and rates.text[1 - quality] == "25%"
    beside = [t for t in fig.data if t.type == "scatter" and t.xaxis == "x" and "0 of 3" in "".join(t.text)]
    assert len(beside) == 1 and list(beside[0].y) == ["Product quality"] and beside[0].textposition == "middle right"


def test_ipa_chart_places_each_area_in_a_named_quadrant_with_its_key(tagged):
    gaps = ex.area_gap_table(tagged, list(AREA_NAMES), rating_col="rating")
    ipa = ex.ipa_table(gaps)
    fig = charts.ipa_chart(ipa, AREA_NAMES, "rating")
    point = fig.data[0]
    ipa = ipa.sort_values("mentions", ascending=False, kind="stable")  # drawn biggest first, small ones on top
    assert [c[0] for c in point.customdata] == ipa["area"].tolist()
    assert set(ipa["area"]) == {"speed", "price", "policy"}  # "app": nobody mentions it
    assert list(point.x) == pytest.approx(ipa["performance"].tolist())
    assert list(point.y) == pytest.approx(ipa["importance"].tolist())
    assert "Fair &lt;i&gt;pricing&lt;/i&gt;" in point.text and not any("<i>" in t for t in point.text)
    sizes = dict(zip(ipa["area"], point.marker.size, strict=True))
    counts = dict(zip(ipa["area"], ipa["mentions"], strict=True))
    assert (sizes["speed"] > sizes["policy"]) == (counts["speed"] > counts["policy"])
    corners = " ".join(a.text for a in fig.layout.annotations)
    assert all(q.upper() in corners for q in ex.QUADRANTS)
    speed = ipa.set_index("area").loc["speed"]
    assert speed["quadrant"] == "fix first"
    assert point.marker.color[ipa["area"].tolist().index("speed")] == charts.QUADRANT_COLOURS["fix first"]
    lines = [s for s in fig.layout.shapes if s.type == "line"]
    assert {round(s.x0, 6) for s in lines} >= {round(ipa["performance_cut"][0], 6)}
    assert {round(s.y0, 6) for s in lines} >= {round(ipa["importance_cut"][0], 6)}
    assert fig.layout.xaxis.title.text.startswith("Performance: mean rating")
    assert fig.layout.yaxis.title.text.startswith("Importance")
    assert all(t in charts._LABEL_SPOTS for t in point.textposition)
    empty = charts.ipa_chart(ex.ipa_table(gaps.iloc[0:0]), AREA_NAMES)
    assert empty.layout.annotations[0].text == "No expectation area has enough mentions to place it."


@pytest.mark.parametrize("areas", [["speed"], ["speed", "policy"]])
def test_ipa_chart_names_no_quadrant_for_fewer_than_three_areas(tagged, areas):
    """The cuts are the averages of the areas shown: a lone area always sat on them, in "keep it up" (green)."""
    gaps = ex.area_gap_table(tagged, list(AREA_NAMES), rating_col="rating")
    ipa = ex.ipa_table(gaps[gaps["area"].isin(areas)])
    assert not charts.ipa_quadrants(ipa) and charts.ipa_quadrants(ex.ipa_table(gaps))
    fig = charts.ipa_chart(ipa, AREA_NAMES, "rating")
    point = fig.data[0]
    assert [c[0] for c in point.customdata] == areas and all(c[5] == "" for c in point.customdata)
    assert [a.text for a in fig.layout.annotations] == ["Too few areas to compare: quadrants need at least 3"]
    assert not fig.layout.shapes  # no shading, no dashed averages
    assert point.marker.color == charts.ACCENT and "customdata[5]" not in point.hovertemplate
    assert "dashed" not in fig.layout.title.subtitle.text
    checked = go.Figure(json.loads(fig.to_json()))  # still only properties Plotly knows
    assert json.loads(checked.to_json()) == json.loads(fig.to_json())


def test_area_gap_bars_put_the_biggest_gap_on_top_and_say_when_too_few(tagged):
    gaps = ex.area_gap_table(tagged, list(AREA_NAMES))
    fig = charts.area_gap_bars(gaps, AREA_NAMES)
    unmet, sentiment, volume = fig.data[:3]
    assert [c[0] for c in unmet.customdata][-1] == "speed"  # horizontal bars: the last is drawn on top
    assert list(volume.x) == list(gaps.set_index("area").loc[[c[0] for c in volume.customdata], "mentions"])
    assert unmet.text[-1].endswith("%") and sentiment.text[-1].startswith("−")
    assert [a.text for a in fig.layout.annotations] == ["<b>Unmet expectations</b>", "<b>Mean sentiment</b>",
                                                         "<b>Messages about the area</b>"]
    too_few = [t for t in fig.data[3:] if t.mode == "text"]
    assert too_few and all("Seamless app" in y for t in too_few for y in t.y)


def test_gap_trend_chart_draws_unmet_rate_per_area_by_month(tagged):
    trend = ex.gap_trend(tagged, "M", list(AREA_NAMES))
    fig = charts.gap_trend_chart(trend, AREA_NAMES)
    assert fig.layout.title.text == "Unmet expectations per area, by month"
    assert fig.layout.yaxis.ticksuffix == "%"
    assert sorted(t.name for t in fig.data) == sorted(html.escape(n) for n in AREA_NAMES.values() if n != "Seamless app")
    speed = next(t for t in fig.data if t.name == "Speed of service")
    expected = trend[(trend["area"] == "speed")].sort_values("period")
    assert list(speed.y) == pytest.approx((expected["unmet_rate"] * 100).tolist(), nan_ok=True)
    assert [tuple(c[:2]) for c in speed.customdata][:2] == [("speed", "2026-01-01"), ("speed", "2026-02-01")]
    assert len(charts.gap_trend_chart(trend, AREA_NAMES, max_areas=1).data) == 1
    volume = charts.gap_trend_chart(trend, AREA_NAMES, "mentions")
    assert volume.layout.yaxis.title.text == "Messages mentioning the area"
    assert charts.gap_trend_chart(trend.iloc[0:0], AREA_NAMES).layout.annotations[0].text.startswith("Too few")
    one_month = charts.gap_trend_chart(trend[trend["period"] == trend["period"].min()], AREA_NAMES, "mentions")
    assert not one_month.data and "a trend needs two or more" in one_month.layout.annotations[0].text


def test_few_periods_are_ticked_level_with_the_year_once():
    """'Jun 2026' on each of six ticks was tilted and clipped in a half-width chart: months, then the year under the
    first and where it changes; days the same way."""
    months = pd.date_range("2026-10-01", periods=5, freq="MS")
    axis, _ = charts._date_ticks(months, "month")
    assert axis["ticktext"] == ["Oct<br>2026", "Nov", "Dec", "Jan<br>2027", "Feb"]
    days = pd.date_range("2026-12-30", periods=4, freq="D")
    assert charts._date_ticks(days, "day")[0]["ticktext"] == ["30 Dec<br>2026", "31 Dec", "1 Jan<br>2027", "2 Jan"]


def test_gap_trend_over_a_few_months_ticks_each_month_once(tagged):
    """Left alone, Plotly ticked a three-month span every half month: "Sep 2025 Sep 2025 Oct 2025 Oct 2025"."""
    trend = ex.gap_trend(tagged, "M", list(AREA_NAMES))
    months = sorted(trend["period"].unique())[:3]
    for measure in ("unmet_rate", "mean_sentiment", "mentions"):
        fig = charts.gap_trend_chart(trend[trend["period"].isin(months)], AREA_NAMES, measure)
        axis = fig.layout.xaxis
        assert axis.tickmode == "array" and len(axis.tickvals) == len(months)
        stamps = [pd.Timestamp(p) for p in months]  # the year once, under the first month and where it changes
        assert axis.ticktext == tuple(f"{p:%b}" + (f"<br>{p.year}" if i == 0 or p.year != stamps[i - 1].year else "")
                                      for i, p in enumerate(stamps))
        assert pd.Timestamp(axis.range[0]) < pd.Timestamp(months[0]) < pd.Timestamp(months[-1]) < pd.Timestamp(axis.range[1])
    # The same ticks as every other time chart draws (one helper for all).
    volume = pd.DataFrame({"period": pd.to_datetime(months), "topic": 0, "count": 3, "share": 0.5})
    assert list(charts.topic_volume_chart(volume, LABELS, "month").layout.xaxis.tickvals) == list(axis.tickvals)


def test_hovers_write_one_message_not_one_messages(messages):
    periods = pd.to_datetime(["2026-01-01", "2026-02-01"])
    volume = pd.DataFrame({"period": periods, "topic": 0, "count": [1, 2], "share": [0.5, 0.5]})
    fig = charts.topic_volume_chart(volume, LABELS, "month")
    assert list(fig.data[0].hovertext) == ["1 message", "2 messages"] and "%{hovertext}" in fig.data[0].hovertemplate
    assert "messages" not in fig.data[0].hovertemplate
    split = charts.sentiment_split_chart({"negative": 1, "neutral": 0, "positive": 3})
    assert "Negative: 1 message (" in split.data[0].hovertemplate
    table = pd.DataFrame({"topic": [0], "label": ["refund"], "messages": [1], "share": [1.0]})
    assert list(charts.top_topics_chart(table).data[0].hovertext) == ["1 message"]


def test_expectation_sources_chart_stacks_sources_per_area(tagged):
    sources = ex.source_table(tagged, list(AREA_NAMES))
    fig = charts.expectation_sources_chart(sources, AREA_NAMES)
    assert fig.layout.barmode == "stack"
    assert [t.name for t in fig.data] == [ex.SOURCE_NAMES[s].replace("&", "&amp;") for s in ex.SOURCES]
    company = fig.data[0]
    assert {c[1] for c in company.customdata} == {"company"} and "Seamless app" not in company.y
    by_area = sources[sources["source"] == "company"].set_index("area")["statements"]
    totals = sources.groupby("area")["statements"].sum()
    # Shares of each area's statements: a small urgent area is as readable as the largest.
    assert list(company.x) == pytest.approx([100 * by_area[c[0]] / totals[c[0]] for c in company.customdata])
    assert [int(c[4]) for c in company.customdata] == [by_area[c[0]] for c in company.customdata]
    assert all(label.endswith(f"({totals[c[0]]:,})") for label, c in zip(company.y, company.customdata, strict=True))
    # Short: the title is centred under a plot narrowed by long area names in a half-width column, and the
    # longer "Share of each area's statements" ran past the figure's right edge at a 1440 px page.
    assert fig.layout.xaxis.title.text == "Share of statements"
    assert fig.layout.uniformtext.minsize == 10 and fig.layout.uniformtext.mode == "hide"  # no shrunken "13%"
    # The legend sits at the foot of the whole figure, below the axis title (checked in PNGs drawn by kaleido,
    # 1 to 8 areas, 560 and 900 px wide): placed as a share of the plot's height, on a short chart it ran into the
    # axis title, which then read as the legend's title.
    assert (fig.layout.legend.yref, fig.layout.legend.y, fig.layout.legend.yanchor) == ("container", 0, "bottom")
    assert fig.layout.legend.orientation == "h"
    none = sources.assign(statements=0)
    assert charts.expectation_sources_chart(none, AREA_NAMES).layout.annotations[0].text.startswith("No expectation")
    json.loads(fig.to_json())


def test_charts_built_without_plotly_checks_pass_them(tagged):
    """The expectation charts and the topic map are built from plain dicts without Plotly's property checks (they cost more than
    the rest of a filter change at a million messages): every property must still be one Plotly knows, with a
    valid value, and the validated figure must be the same chart."""
    gaps = ex.area_gap_table(tagged, list(AREA_NAMES), rating_col="rating")
    few = gaps.assign(unmet_rate=gaps["unmet_rate"].where(gaps["area"] != "price"))
    trend = ex.gap_trend(tagged, "W", list(AREA_NAMES))
    figures = [charts.ipa_chart(ex.ipa_table(gaps), AREA_NAMES, "rating"), charts.area_gap_bars(few, AREA_NAMES),
               charts.expectation_sources_chart(ex.source_table(tagged, list(AREA_NAMES)), AREA_NAMES),
               *(charts.gap_trend_chart(trend, AREA_NAMES, measure, "week")
                 for measure in ("unmet_rate", "mean_sentiment", "mentions"))]
    points = pd.DataFrame({"x": np.arange(30.0), "y": np.arange(30.0) % 7, "topic": np.arange(30) % 4 - 1,
                           "message_id": [f"m{i}" for i in range(30)], "text": [f"<b>text</b> {i}" for i in range(30)]})
    figures.append(charts.topic_map_chart(points, {0: "Delivery", 1: "Taste <i>", 2: "Price"}, max_points=20))
    for fig in figures:
        checked = go.Figure(json.loads(fig.to_json()))  # raises on an unknown property or a bad value
        assert json.loads(checked.to_json()) == json.loads(fig.to_json())
        # A click hands the app each point's customdata: a typed array ({"bdata": …}) came back as {"0": 5}, and
        # every dot of the topic map opened topic 0.
        for trace in json.loads(fig.to_json())["data"]:
            assert "customdata" not in trace or isinstance(trace["customdata"], list), (fig.layout.title.text, trace)


def test_only_an_unranked_area_is_grey_on_the_importance_performance_chart():
    """A large area delivered poorly ("low priority") drawn grey looked like one too small to rank."""
    import colorsys

    def saturation(colour: str) -> float:
        r, g, b = (int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5))
        return colorsys.rgb_to_hls(r, g, b)[2]

    assert len(set(charts.QUADRANT_COLOURS.values())) == len(charts.QUADRANT_COLOURS)
    assert {q for q, c in charts.QUADRANT_COLOURS.items() if saturation(c) < 0.25} == {"not ranked"}


def test_a_heatmap_by_day_can_show_the_last_weeks_only(messages):
    """A year by day is hundreds of columns of grey cells: the Sentiment page draws the last six weeks of days."""
    series = m.sentiment_over_time(messages, "day", by_topic=True)
    days = pd.to_datetime(series["period"]).dt.tz_localize(None)  # the chart's axis has no zone
    assert (days.max() - days.min()).days > 42  # the fixture spans more than six weeks
    fig = charts.topic_sentiment_heatmap(series, LABELS, "day", last_periods=42)
    drawn = pd.to_datetime(pd.Series(fig.data[1].x))
    assert drawn.max() == days.max() and (drawn.max() - drawn.min()).days <= 41
    assert set(drawn) == set(days[days >= days.max() - pd.Timedelta(days=41)])  # every day with messages in them
    assert fig.layout.title.text.endswith("by day: the last 42 days")
    blank = charts.topic_sentiment_heatmap(series, LABELS, "day", last_periods=42, min_messages=1_000)
    assert "fewer than 1,000 messages a day in the last 42 days" in blank.layout.annotations[0].text
    assert "Choose a longer step." in blank.layout.annotations[0].text  # other dates would not show
    whole = charts.topic_sentiment_heatmap(series, LABELS, "day", last_periods=10_000)
    assert len(whole.data[1].x) == days.nunique() and whole.layout.title.text.endswith("by day")

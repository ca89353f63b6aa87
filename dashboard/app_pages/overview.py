"""Overview: the headline figures for the latest period, top topics, movers and emerging issues."""

from dataclasses import replace

import streamlit as st

from dashboard import components, data, filters
from dashboard.filters import Drill
from pipelines import charts
from pipelines.charts import (
    count_of,
    format_change,
    format_count,
    format_sentiment,
    format_share,
    nothing_before,
    shown_change,
)

view, rows = components.page_start("Overview")

EXPLAIN = {"Messages": "Messages in the period.", "Negative": "Share of messages with a negative tone.",
           "Mean sentiment": "Average tone from −1 (very negative) to +1 (very positive).",
           "Active topics": "Topics with at least one message in the period."}

if not view.info.has_dates:
    st.info("This run has no dates, so there is no period to compare; these are the totals.")
    n, negative, mean, active = data.totals(view.ref, view.filter)
    for col, (label, value) in zip(st.columns(4, border=True), (
            ("Messages", format_count(n)), ("Negative", format_share(negative, 1)),
            ("Mean sentiment", format_sentiment(mean)), ("Active topics", format_count(active))), strict=True):
        col.metric(label, value, help=EXPLAIN[label].replace(" in the period", ""))
    table = data.topic_table(view.ref, view.filter)
    components.chart(charts.top_topics_chart(table), "overview_top", lambda c: Drill(topics=(int(c[0]),)))
    st.stop()

days = components.period_picker(view, "overview_days",
                                help="The period ends on the last day of the data (or of the date filter).")
period = data.period(view.info, view.filter, days)
current, previous = period.window, period.previous_window
h = data.headline(view.ref, view.filter, current, previous)
if h.messages.previous is None:  # the days before hold no data: "+900" would read as a surge
    st.caption(f"**{period.label}**. {nothing_before(view.info.first_day)}")
else:
    st.caption(f"**{period.label}** compared with {period.versus_in_full}.")
figures = (
    ("Messages", format_count(h.messages.current), h.messages, "count", "off", EXPLAIN["Messages"]),
    ("Negative", format_share(h.share_negative.current, 1), h.share_negative, "share", "inverse", EXPLAIN["Negative"]),
    ("Mean sentiment", format_sentiment(h.mean_sentiment.current), h.mean_sentiment, "sentiment", "normal",
     EXPLAIN["Mean sentiment"]),
    ("Active topics", format_count(h.active_topics.current), h.active_topics, "count", "off",
     EXPLAIN["Active topics"]),
)
for col, (label, value, change, kind, colour, explain) in zip(st.columns(4, border=True), figures, strict=True):
    shown, moved = format_change(change, kind), shown_change(change, kind)
    # A change that rounds to nothing ("0.0 pts") is shown plain. Arrow and colour are set here, from the number:
    # Streamlit reads them from a leading hyphen, and a fall is written with the minus sign ("−3.1 pts").
    unchanged, falls = not moved, bool(moved and moved < 0)
    tone = "gray" if unchanged or colour == "off" else "red" if falls == (colour == "normal") else "green"
    col.metric(label, value, shown, delta_color=tone, help=explain,
               delta_arrow="off" if unchanged else "down" if falls else "up")

left, right = st.columns(2, gap="large")
with left:
    in_period = data.topic_table(view.ref, replace(view.filter, start=current.first_day, end=current.last_day))
    components.chart(charts.top_topics_chart(in_period, n=8, title=f"Top topics, {current.label}"), "overview_top",
                     lambda c: Drill(topics=(int(c[0]),), dates=(current.first_day, current.last_day)))
with right:
    moved = data.movers(view.ref, view.filter, current, previous)
    components.chart(charts.movers_chart(moved, title=f"Biggest movers vs {period.versus}"), "overview_movers",
                     # Both periods: a topic that fell to none would otherwise open an empty list.
                     lambda c: Drill(topics=(int(c[0]),), dates=(previous.first_day, current.last_day)))
has_movers = not (moved.rising.empty and moved.falling.empty)
if not in_period.empty:  # a hint for bars that are there: an empty chart says why it has none
    st.caption("Click a bar to read its messages" + ("; a mover's bar opens those of both periods." if has_movers else "."))

SHOWN_ISSUES = 8  # more are one click away: a manager reads the strongest first


def issue_card(title: str, reason: str, count: int, key: str, drill: Drill) -> None:
    """One emerging issue: what, why, and a button to read its messages."""
    with st.container(border=True):
        text, action = st.columns([4, 1], vertical_alignment="center")
        text.markdown(f"**{components.escape_markdown(title)}**  \n" + components.escape_markdown(reason))
        action.button(f"Read {count_of(count, 'message')}", key=key, on_click=filters.drill_down, args=(drill,),
                      width="stretch")


st.subheader("Emerging issues")
found = data.emerging(view.ref, view.filter, current, months=period.kind == "month")
days_shown = (current.first_day, current.last_day)
if found.note:
    st.info(found.note)
    st.stop()
if not found.values.empty:
    # First: a surge of one product's (or channel's) messages, spread over many topics, is the headline, and passes
    # no single topic's test.
    st.caption(f"Values of your data's columns ({', '.join(sorted(set(found.values['column'])))}) whose share of the "
               f"messages is far above their usual share over the last {found.baseline_in_words}.")
    for rising in found.values.itertuples():
        issue_card(f"{rising.column}: {rising.value}", rising.reason, int(rising.count), f"rising_{rising.Index}",
                   Drill(metadata=((rising.column, (rising.value,)),), dates=days_shown))
if found.issues.empty:
    st.success(f"No topic is far above its usual volume {current.within}: each topic is compared with its own "
               f"last {found.baseline_in_words}.", icon=":material/check_circle:")
    st.stop()
st.caption(f"Topics far above their own usual volume, compared with their last {found.baseline_in_words}.")
for n, issue in enumerate(found.issues.itertuples()):
    if n == SHOWN_ISSUES:
        more = st.expander(f"{count_of(len(found.issues) - SHOWN_ISSUES, 'more topic')} far above usual")
    with more if n >= SHOWN_ISSUES else st.container():
        issue_card(issue.label, issue.reason, int(issue.count), f"emerging_{issue.topic}",
                   Drill(topics=(int(issue.topic),), dates=days_shown))

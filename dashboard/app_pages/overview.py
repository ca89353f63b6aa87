"""Overview: the headline figures for the latest period, top topics, movers and emerging issues."""

from dataclasses import replace

import streamlit as st

from dashboard import components, data, filters
from dashboard.filters import Drill
from pipelines import charts
from pipelines.charts import (
    change_rounds_to_zero,
    count_of,
    format_change,
    format_count,
    format_sentiment,
    format_share,
)

view, rows = components.page_start("Overview")

if not view.info.has_dates:
    st.info("This run has no dates, so there is no period to compare; these are the totals.")
    table = data.topic_table(view.ref, view.filter)
    components.chart(charts.top_topics_chart(table), "overview_top", lambda c: Drill(topics=(int(c[0]),)))
    st.stop()

days = components.period_picker(view, "overview_days",
                                help="The period ends on the last day of the data (or of the date filter).")
current, previous = data.windows(view.info, view.filter, days)
st.caption(f"**{current.label}** compared with the {count_of(days, 'day')} before ({previous.label}).")

h = data.headline(view.ref, view.filter, current, previous)
figures = (
    ("Messages", format_count(h.messages.current), h.messages, "count", "off",
     "Messages in the period."),
    ("Negative", format_share(h.share_negative.current, 1), h.share_negative, "share", "inverse",
     "Share of messages with a negative tone."),
    ("Mean sentiment", format_sentiment(h.mean_sentiment.current), h.mean_sentiment, "sentiment", "normal",
     "Average tone from −1 (very negative) to +1 (very positive)."),
    ("Active topics", format_count(h.active_topics.current), h.active_topics, "count", "off",
     "Topics with at least one message in the period."),
)
for col, (label, value, change, kind, colour, explain) in zip(st.columns(4, border=True), figures, strict=True):
    shown = format_change(change, kind)
    # A change that rounds to nothing ("+0.0 pts") is shown plain: Streamlit would colour it by its sign.
    unchanged = shown is None or change_rounds_to_zero(change, kind)
    col.metric(label, value, shown, delta_color="off" if unchanged else colour, help=explain,
               delta_arrow="off" if unchanged else "auto")

left, right = st.columns(2, gap="large")
with left:
    in_period = data.topic_table(view.ref, replace(view.filter, start=current.first_day, end=current.last_day))
    components.chart(charts.top_topics_chart(in_period, n=8, title=f"Top topics, {current.label}"), "overview_top",
                     lambda c: Drill(topics=(int(c[0]),), dates=(current.first_day, current.last_day)))
with right:
    moved = data.movers(view.ref, view.filter, current, previous)
    components.chart(charts.movers_chart(moved, title=f"Biggest movers vs the {count_of(days, 'day')} before"), "overview_movers",
                     lambda c: Drill(topics=(int(c[0]),), dates=(current.first_day, current.last_day)))
st.caption("Click a bar to read its messages.")

st.subheader("Emerging issues")
found = data.emerging(view.ref, view.filter, current)
if found.note:
    st.info(found.note)
elif found.issues.empty:
    st.success(f"No topic is far above its usual volume in {current.label}: each topic is compared with its own "
               f"last {found.baseline_in_words}.", icon=":material/check_circle:")
else:
    st.caption(f"Topics far above their own usual volume, compared with their last {found.baseline_in_words}.")
    for issue in found.issues.itertuples():
        with st.container(border=True):
            text, action = st.columns([5, 1], vertical_alignment="center")
            text.markdown(f"**{components.escape_markdown(issue.label)}**  \n"
                          + components.escape_markdown(issue.reason))
            action.button(f"Read the {count_of(int(issue.count), 'message')}", key=f"emerging_{issue.topic}",
                          on_click=filters.drill_down,
                          args=(Drill(topics=(int(issue.topic),), dates=(current.first_day, current.last_day)),))
if not found.note and not found.values.empty:
    # A surge spread over many topics (one product's complaints) passes no topic's test, but its column's.
    st.caption("Also far above their own usual volume, by the same test: values of your data's columns "
               f"({', '.join(sorted(set(found.values['column'])))}).")
    for rising in found.values.itertuples():
        with st.container(border=True):
            text, action = st.columns([5, 1], vertical_alignment="center")
            text.markdown(f"**{components.escape_markdown(rising.column)}: {components.escape_markdown(rising.value)}**  \n"
                          + components.escape_markdown(rising.reason))
            action.button(f"Read the {count_of(int(rising.count), 'message')}", key=f"rising_{rising.Index}",
                          on_click=filters.drill_down,
                          args=(Drill(metadata=((rising.column, (rising.value,)),),
                                      dates=(current.first_day, current.last_day)),))

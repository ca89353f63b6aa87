"""Trends: topic volume over time, by day, week or month, as counts or shares, with an optional breakdown."""

import streamlit as st

from dashboard import components, data, filters
from dashboard.filters import Drill, period_dates
from pipelines import charts
from pipelines.metrics import column_title

MEASURES = {"count": "Messages", "share": "Share of messages"}

view, rows = components.page_start("Trends")
if not view.info.has_dates:
    st.info("This run has no dates, so there are no trends to show. The Topics page has the totals.")
    st.stop()

# The two toggles side by side at their own widths, the topics on a row of their own: in a quarter-width column
# "Share of messages" was cut off, and the chips of five topics did not fit (Streamlit then hides the rest).
controls = st.container(horizontal=True, gap="large")
granularity = components.granularity_picker(controls, view, "trends_granularity")
measure = controls.segmented_control("Show", list(MEASURES), format_func=MEASURES.get, default="count",
                                     key=filters.remembered("trends_measure")) or "count"
table = data.topic_table(view.ref, view.filter)
ranked = table["topic"].tolist()
picked = st.multiselect("Topics to draw", ranked, default=ranked[:5], key=filters.remembered("trends_topics"),
                        format_func=lambda t: charts.short_label(view.info.labels.get(t, str(t))),
                        help="The five largest topics are drawn first; add or remove any.") or ranked[:5]

volume = data.volume(view.ref, view.filter, granularity)
shown = volume[volume["topic"].isin(picked)]
components.chart(charts.topic_volume_chart(shown, view.info.labels, granularity, measure), "trends_volume",
                 lambda c: Drill(topics=(int(c[0]),), dates=period_dates(c[1], granularity)))
st.caption("Click a point to read the messages of that topic in that period. Periods at either end may be partial.")

columns = list(view.info.metadata)
if columns:
    by = st.selectbox("Break down all messages by", [None, *columns], key=filters.remembered("trends_breakdown"),
                      format_func=lambda c: "(no breakdown)" if c is None else column_title(c))
    if by:
        split = data.volume(view.ref, view.filter, granularity, by=by)
        tagged = by in view.info.tags
        components.chart(charts.breakdown_chart(split, by, granularity, measure, tags=tagged), "trends_breakdown_chart",
                         lambda c: Drill(metadata=((by, (str(c[0]),)),), dates=period_dates(c[1], granularity)))
        if tagged:
            st.caption(f"{column_title(by)} holds tags: a message with several counts under each of them.")

st.subheader("Compare periods")
days = components.period_picker(view, "trends_days")
period = data.period(view.info, view.filter, days)
current, previous = period.window, period.previous_window
compared = data.topic_table(view.ref, view.filter, compare=(current, previous))


def open_window(c: list) -> Drill:
    window = current if c[1] == "current" else previous
    return Drill(topics=(int(c[0]),), dates=(window.first_day, window.last_day))


components.chart(charts.period_comparison_chart(compared, current.label, previous.label), "trends_compare",
                 open_window)

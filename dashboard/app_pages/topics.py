"""Topics: a sortable table of every topic (volume, tone, trend, change) and a map of the messages."""

import streamlit as st

from dashboard import components, data, filters
from dashboard.filters import Drill
from pipelines.charts import MIN_BASE_FOR_PERCENT, format_sentiment, negative_percents, nothing_before, signed
from pipelines.lineage import changes_in_words, new_since_last_run
from pipelines.metrics import before_history

view, rows = components.page_start("Topics")

compare = None
if view.info.has_dates:
    days = components.period_picker(view, "topics_days", label="Change over the last", option="{} days")
    period = data.period(view.info, view.filter, days)
    compare = (period.window, period.previous_window)
table = data.topic_table(view.ref, view.filter, compare=compare, trend="week" if compare else None,
                         include_no_topic=True)
# The negative share as the Sentiment page's bars write it (rounded with its neutral and positive shares).
shown = table.assign(share=table["share"] * 100, share_negative=negative_percents(table))
changes = changes_in_words(view.info.manifest)
if changes:  # after a re-fit, say which topics the data brought that the earlier run did not have
    fresh = new_since_last_run(view.info.topics, view.info.manifest, view.ref.id)
    shown["label"] = [f"{label} (new)" if int(t) in fresh else label for t, label in zip(shown["topic"], shown["label"],
                                                                                          strict=True)]
    st.caption(f"{changes}; new topics are marked (new).")
if compare:
    # As everywhere else: no percentage on fewer than 10 messages before ("+500%" from 1 to 6).
    shown["change_pct"] = (shown["change_pct"] * 100).where(shown["previous"] >= MIN_BASE_FOR_PERCENT)
    if before_history(period.previous_window, view.info.first_day):
        st.caption(f"Messages {period.within}. {nothing_before(view.info.first_day)}")
    else:
        st.caption(f"Change: messages {period.within} against {period.versus_in_full}.")

config = {
    "topic": None,
    "label": st.column_config.TextColumn("Topic", width=215, pinned=True),
    "keywords": st.column_config.TextColumn("Keywords", width="medium"),
    "messages": st.column_config.NumberColumn("Messages", format="localized", width=78),
    "share": st.column_config.ProgressColumn("Share", format="%.1f%%", min_value=0,
                                             max_value=float(shown["share"].max()) or 100, width=105),
    "mean_sentiment": st.column_config.NumberColumn("Sentiment", width=78,
                                                    help="Mean tone, −1 (negative) to +1 (positive)."),
    "share_negative": st.column_config.NumberColumn("Negative", format="%.0f%%", width=72),
    "trend": st.column_config.LineChartColumn("Trend", y_min=0, width="small", help="Messages per week."),
    # Short headers, small columns: the whole table fits a 1400 px page (the caption above says which days).
    "current": st.column_config.NumberColumn("Now", width=55, help="Messages in the last period."),
    "previous": st.column_config.NumberColumn("Before", width=62, help="Messages in the period before."),
    "change": st.column_config.NumberColumn("Change", width=66),
    "change_pct": st.column_config.NumberColumn("Change %", width=78),
}
# Signed numbers are written as everywhere else, with the minus sign ("−0.59"); a column's own format could only
# write a hyphen. The table still sorts them by value.
written = shown.style.format({"mean_sentiment": format_sentiment, "change": lambda v: signed(round(v), "+,d"),
                              "change_pct": lambda v: f"{signed(round(v), '+d')}%"}, na_rep="–")


def open_topic() -> None:
    picked = (st.session_state.get("topics_table") or {}).get("selection", {}).get("rows", [])
    if picked:
        filters.drill_down(Drill(topics=(int(table.iloc[picked[0]]["topic"]),)))


st.dataframe(written, column_config=config, hide_index=True, key="topics_table", on_select=open_topic,
             selection_mode="single-row", height=min(35 * (len(shown) + 1) + 3, 600), placeholder="–",
             column_order=["label", "messages", "share", "mean_sentiment", "share_negative", "trend", "current",
                           "previous", "change", "change_pct", "keywords"])
st.caption("Sort by clicking a column header. Select a row to read that topic's messages.")

figure = data.topic_map(view.ref, view.filter, tuple(sorted(view.info.labels.items())))
components.chart(figure, "topics_map", lambda c: Drill(topics=(int(c[0]),)))
st.caption("Each dot is a message; messages about similar things sit close together. Click a dot to open its topic.")

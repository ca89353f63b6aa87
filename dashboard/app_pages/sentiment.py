"""Sentiment over time: overall with volume alongside, per topic, and which topics drive the change."""

import streamlit as st

from dashboard import components, data, filters
from dashboard.filters import Drill, period_dates
from pipelines import charts
from pipelines.charts import count_of, format_contribution, format_date, format_sentiment
from pipelines.metrics import MIN_BASE_FOR_PERCENT, sentiment_counts

view, rows = components.page_start("Sentiment")
components.chart(charts.sentiment_split_chart(sentiment_counts(rows)), "sentiment_split",
                 lambda c: Drill(sentiments=(str(c[0]),)))
by_topic = data.topic_table(view.ref, view.filter)
components.chart(charts.topic_sentiment_chart(by_topic), "sentiment_by_topic",
                 lambda c: Drill(topics=(int(c[0]),), sentiments=(str(c[1]),)))
if (by_topic["messages"] >= charts.TOPIC_SENTIMENT_MIN_MESSAGES).any():  # else the chart says why it has no bars
    st.caption("Click a part of a bar to read that topic's messages of that sentiment.")
if not view.info.has_dates:
    st.info("This run has no dates, so sentiment cannot be shown over time.")
    st.stop()

c1, c2 = st.columns([1, 2])
granularity = components.granularity_picker(c1, view, "sentiment_granularity")
series = data.sentiment(view.ref, view.filter, granularity)
rolling = 1
if len(series) >= 3:  # an average over one or two periods smooths nothing: no slider then
    rolling = c2.slider(f"Rolling average over {granularity}s", 1, 6, 1, key=filters.remembered("sentiment_rolling"),
                        help="1 = no smoothing. The average weighs each message once, so a quiet period counts less.")
    series = data.sentiment(view.ref, view.filter, granularity, rolling=rolling)
smoothed = f"{rolling}-{granularity} average" if rolling > 1 else None
components.chart(charts.sentiment_chart(series, granularity, smoothed_label=smoothed), "sentiment_overall",
                 lambda c: Drill(dates=period_dates(str(c[0]), granularity)) if len(c) == 1 else None)
st.caption("The bars show how many messages each point stands on. Click a bar to read that period's messages.")

# By day, six weeks: a year of days is 365 columns of grey cells, each a few pixels wide.
LAST_DAYS = 42
per_topic = data.sentiment(view.ref, view.filter, granularity, by_topic=True)
last = LAST_DAYS if granularity == "day" else None
heatmap = charts.topic_sentiment_heatmap(per_topic, view.info.labels, granularity, last_periods=last)
components.chart(heatmap, "sentiment_topics",
                 lambda c: Drill(topics=(int(c[0]),), dates=period_dates(str(c[1]), granularity)) if c[2] else None)
if heatmap.data:  # else the chart says why it has no cells
    cut = last and heatmap.layout.title.text.endswith(f"the last {last} days")
    st.caption(f"Click a cell to read that topic's messages of that {granularity}."
               + (f" By day, the last {last} days of the dates chosen are shown: choose Week or Month for the whole "
                  "span, or narrow the dates to see other days." if cut else ""))

st.subheader("What moved sentiment")
days = components.period_picker(view, "sentiment_days")
period = data.period(view.info, view.filter, days)
current, previous = period.window, period.previous_window
h = data.headline(view.ref, view.filter, current, previous)
drivers = data.drivers(view.ref, view.filter, current, previous)
if h.mean_sentiment.delta is None:
    if h.messages.previous is None:
        why = f"the run's messages start on {format_date(view.info.first_day)}, so there is nothing before"
    elif not h.messages.current:
        why = f"there are no messages {period.within}"
    else:  # a mean of one or two messages before would make any change look large
        why = (f"{period.versus} {'has' if period.kind != 'range' else 'have'} "
               f"{count_of(int(h.messages.previous), 'message')}, too few for a mean to compare with "
               f"({MIN_BASE_FOR_PERCENT} are needed)")
    st.info(f"What moved sentiment {period.within} cannot be shown: {why}.")
else:
    ways = [(word, drivers[sign * drivers["contribution"] > 0].head(1)) for word, sign in (("rise", 1), ("fall", -1))]
    lead = "; ".join(f"largest {word}: **{components.escape_markdown(d.label)}** ({format_contribution(d.contribution)})"
                     for word, top in ways for d in top.itertuples())
    lead = f" {lead[0].upper()}{lead[1:]}." if lead else ""
    st.markdown(f"Mean sentiment went from **{format_sentiment(h.mean_sentiment.previous)}** "
                f"({previous.label}) to **{format_sentiment(h.mean_sentiment.current)}** ({current.label})."
                + lead)
    components.chart(charts.sentiment_drivers_chart(drivers, current.label), "sentiment_drivers",
                     lambda c: Drill(topics=(int(c[0]),), dates=(current.first_day, current.last_day)))
    st.caption("A topic moves the average by changing its tone, or by growing while its tone is far from neutral. "
               "The contributions of all topics add up to the whole change; the largest up and the largest down are "
               "shown.")

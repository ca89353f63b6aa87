"""Expectation gaps: where what customers expected differs from what they got, area by area.

Shows the Importance–Performance chart, the gap per area with its trend, where the expectations came
from, and for one chosen area the topics behind its gap and its expectation statements (the stated
expectation highlighted). All numbers come from :mod:`pipelines.expectations` through ``data``.
"""

import math

import streamlit as st

from dashboard import components, data, filters
from dashboard.filters import Drill
from pipelines import charts
from pipelines.charts import count_of, format_count, format_share
from pipelines.expectations import SOURCE_NAMES
from pipelines.metrics import message_count

AREA = "expectations_area"
STATEMENTS_PER_PAGE = 10
MEASURES = {"unmet_rate": "Unmet", "mean_sentiment": "Sentiment", "mentions": "Volume"}
SHOWN = {"unmet": "Unmet", "met": "Met", "all": "All"}

view, rows = components.page_start("Expectation gaps")
names = data.expectation_areas(view.ref)
if names is None:
    st.info("**This run has no expectation tags**: it was analysed before expectation gaps existed, or with them "
            "switched off. Re-analyse to see expectation gaps: `feedback-lens analyse FILE`.", icon=":material/update:")
    st.stop()
gaps = data.gaps(view.ref, view.filter)
if gaps.table.empty:
    st.info("**No message within these filters mentions an expectation area.** Widen the filters in the sidebar.",
            icon=":material/filter_alt_off:")
    st.stop()


def pick(custom: list) -> None:
    st.session_state[AREA] = str(custom[0])


# With fewer than three areas the quadrants say nothing (the chart draws none), so none is "fix first".
fix = list(gaps.ipa.loc[gaps.ipa["quadrant"] == "fix first", "area"]) if charts.ipa_quadrants(gaps.ipa) else []
figures = (("About an area", format_count(gaps.mentioned), f"{format_share(gaps.mentioned / message_count(rows))} of the "
            "messages mention at least one expectation area."),
           ("Statements", format_count(gaps.statements), "Expectation statements: messages that say what the "
            "customer expected."),
           ("Unmet", format_share(gaps.unmet / gaps.statements if gaps.statements else None),
            "Share of the expectation statements saying the expectation was not met."))
*cols, callout = st.columns([1, 1, 1, 2], border=True)
for col, (label, value, explain) in zip(cols, figures, strict=True):
    col.metric(label, value, help=explain)
callout.markdown("**:red[Fix first]**  \n"
                 + (components.escape_markdown(", ".join(names.get(a, a) for a in fix)) if fix else "Nothing stands out"))
callout.caption("Areas that matter most to customers and where they are least satisfied.")

components.pick_chart(charts.ipa_chart(gaps.ipa, names, gaps.outcome), "expectations_ipa", pick)
left_out = len(gaps.table) - len(gaps.ipa)
outcome = components.escape_markdown(gaps.outcome)
st.caption(f"Performance: the mean {charts.outcome_words(gaps.outcome)} of the messages about an area; importance: "
           f"by how much a mention of the area moves the {outcome}, up or down, on the same −1 to +1 scale (0.4: "
           f"messages that mention it score 0.4 lower or higher than those that do not, the other areas held equal). "
           "Click an area on any chart to read its statements below." + (f" {count_of(left_out, 'area')} with too few messages "
                        f"{'is' if left_out == 1 else 'are'} left out." if left_out else ""))
components.pick_chart(charts.area_gap_bars(gaps.table, names), "expectations_bars", pick)
left, right = st.columns(2, gap="large")
with left:
    if view.info.has_dates:
        measure = st.segmented_control("Trend of", list(MEASURES), format_func=MEASURES.get, default="unmet_rate",
                                       key=filters.remembered("expectations_measure")) or "unmet_rate"
        trend = data.gap_trend(view.ref, view.filter)
        components.pick_chart(charts.gap_trend_chart(trend, names, measure), "expectations_trend", pick)
    else:
        st.info("This run has no dates, so the gaps cannot be shown over time.", icon=":material/timeline:")
with right:
    components.pick_chart(charts.expectation_sources_chart(data.gap_sources(view.ref, view.filter), names),
                          "expectations_sources", pick)

st.subheader("Behind each gap")
urgent = gaps.table.assign(fix=gaps.table["area"].isin(fix), stated=gaps.table["statements"] > 0)
urgent = urgent.sort_values(["stated", "fix", "unmet", "mentions"], ascending=False)
areas = list(urgent["area"])  # the most urgent first, those with statements to read before the others
stated = dict(zip(urgent["area"], urgent["statements"], strict=True))
# A choice kept from before the filters changed moves to an area with statements if it has none under the new ones
# (a choice made under these filters stays: the analyst may want its topics).
refiltered = st.session_state.get(f"{AREA}_filter", view.filter) != view.filter
st.session_state[f"{AREA}_filter"] = view.filter
if st.session_state.get(AREA) not in areas or (refiltered and not stated.get(st.session_state[AREA])
                                               and stated[areas[0]]):
    st.session_state[AREA] = areas[0]
area = st.selectbox("Expectation area", areas, format_func=lambda a: names.get(a, a), key=filters.remembered(AREA))
topics, quotes = st.columns(2, gap="large")
with topics:
    st.markdown("**Topics behind it**")
    table = data.gap_topics(view.ref, view.filter, area)

    def open_topic() -> None:
        picked = (st.session_state.get("expectations_topics") or {}).get("selection", {}).get("rows", [])
        if picked:
            filters.drill_down(Drill(topics=(int(table.iloc[picked[0]]["topic"]),)))

    st.dataframe(table.assign(share=table["share"] * 100), hide_index=True, key="expectations_topics",
                 on_select=open_topic, selection_mode="single-row", column_order=["label", "mentions", "unmet", "share"],
                 column_config={"label": st.column_config.TextColumn("Topic", width=180),
                                "mentions": st.column_config.NumberColumn("Messages", width=75),
                                "unmet": st.column_config.NumberColumn("Unmet", width=60,
                                                                       help="Unmet expectation statements."),
                                "share": st.column_config.ProgressColumn("Share", format="%.0f%%", width=80,
                                                                         min_value=0, max_value=100,
                                                                         help="Share of the area's messages.")})
    st.caption("Select a topic to read all its messages.")
with quotes:
    found = data.statements(view.ref, view.filter, area)
    if not len(found):
        elsewhere = [f"{names.get(a, a)} ({count_of(int(n), 'statement')})" for a, n in stated.items() if n][:3]
        st.info("No message about this area states an expectation."
                + (f" Areas with statements: {', '.join(elsewhere)}." if elsewhere else ""),
                icon=":material/format_quote:")
        st.stop()
    counts = {"unmet": int(found.unmet.sum()), "all": len(found)}
    counts["met"] = counts["all"] - counts["unmet"]
    show = st.segmented_control("Statements", list(SHOWN), format_func=lambda k: f"{SHOWN[k]} ({counts[k]})",
                                default="unmet" if counts["unmet"] else "all",
                                key=filters.remembered("expectations_shown")) or "all"
    chosen = found.rows if show == "all" else found.rows[found.unmet == (show == "unmet")]
    # Ten at a time, every one reachable (only the first ten could be read); another area or filter starts at page 1.
    pages = max(1, math.ceil(len(chosen) / STATEMENTS_PER_PAGE))
    pager = f"expectations_page_{hash((view.ref, view.filter, area, show)) & 0xFFFFFFFF:x}"
    first = (min(st.session_state.get(pager, 1), pages) - 1) * STATEMENTS_PER_PAGE
    page_rows = chosen[first:first + STATEMENTS_PER_PAGE]
    st.caption(f"{first + 1:,}–{first + len(page_rows):,} of {count_of(len(chosen), 'statement')}; the stated "
               "expectation is highlighted." if len(chosen) > 1 else "The stated expectation is highlighted.")
    components.statement_list(data.rows_at(view.ref, page_rows), view.info.labels, list(view.info.metadata),
                              SOURCE_NAMES, view.info.time_zone)
    if pages > 1:
        st.pagination(pages, key=pager, max_visible_pages=5)

"""Messages: the messages behind any number, with keyword and semantic search, pages and a CSV download.

Other pages' selections land here with the filters narrowed to what was clicked.
"""

import math

import streamlit as st

from dashboard import components, data, filters
from pipelines.charts import count_of
from pipelines.errors import FeedbackLensError
from pipelines.metrics import zone_words
from pipelines.search import SemanticSettings

ORDERS = {"newest": "Newest first", "oldest": "Oldest first", "negative": "Most negative first",
          "positive": "Most positive first"}
UNDATED_ORDERS = {"file": "As in the file", "negative": ORDERS["negative"], "positive": ORDERS["positive"]}
MODES = {"words": "Words", "meaning": "Meaning"}
PAGE_SIZE = 20

view = components.page_view()
cut_at = view.info.manifest.get("settings", {}).get("max_message_chars")  # a message this long was cut
st.title("Messages")
came_from = filters.back_title()
if came_from:
    with st.container(border=True):
        text, action = st.columns([4, 1], vertical_alignment="center")
        text.markdown(f"The messages behind your selection on **{came_from}**.")
        action.button(f"Back to {came_from}", on_click=filters.go_back, icon=":material/arrow_back:",
                      key="messages_back")
components.filter_caption(view)
if len(view.filter.topics) == 1:  # one topic: what its messages typically say, analysts' pinned examples first
    typical, pinned = data.typical_messages(view.ref, view.filter.topics[0])
    if len(typical):
        with st.expander(f"Typical messages of {view.info.labels.get(view.filter.topics[0], 'this topic')}",
                         icon=":material/push_pin:" if pinned & set(typical["message_id"].astype(str)) else None):
            if pinned:
                st.caption("Pinned by an analyst on the Curate topics page first, then those closest to the topic's "
                           "centre.")
            components.message_list(typical, view.info.labels, list(view.info.metadata), zone=view.info.time_zone,
                                    key="typical_messages", cut_at=cut_at)

semantic_ready = data.has_embeddings(view.ref)
c0, c1, c2 = st.columns([1.2, 3, 1.2], vertical_alignment="bottom")
mode = c0.segmented_control("Search by", list(MODES), format_func=MODES.get, key="messages_mode", default="words",
                            help="Words: messages containing every word. Meaning: messages that say something "
                            "similar, even in other words (uses the run's language model).") or "words"
if mode == "meaning" and not semantic_ready:
    st.info("This run was analysed before semantic search existed. Analyse the file again to search by meaning.",
            icon=":material/info:")
    mode = "words"
if mode == "meaning":
    query = c1.text_input("Find messages like", key="messages_semantic",
                          placeholder="Describe the issue, e.g. refund took weeks",
                          help="Ranks the messages within the current filters by how close their meaning is.")
    order = "newest"  # until there is a query; then the most similar come first
    c2.caption("Most similar first")
else:
    query = c1.text_input("Search the messages", key="messages_query",
                          placeholder='Words that must all appear, e.g. refund late or "took weeks"',
                          help="Finds messages containing every word, as a whole word (any case; \"ok\" does not "
                          "find \"look\"), within the current filters. Put words in double quotes to find them "
                          "together as a phrase.")
    orders = ORDERS if view.info.has_dates else UNDATED_ORDERS
    if st.session_state.get("messages_order") not in orders:  # a run with dates was shown before
        st.session_state.pop("messages_order", None)
    order = c2.selectbox("Order", list(orders), format_func=orders.get, key="messages_order")

if mode == "meaning" and query.strip():
    try:
        found = data.semantic_search(view.ref, view.filter, query.strip())
    except FeedbackLensError as err:
        st.error(str(err), icon=":material/error:")
        st.stop()
    if found.empty:
        st.info(f"No message within these filters is close in meaning to: {components.escape_markdown(query)}. "
                "Try describing it differently, or widen the filters.", icon=":material/search_off:")
        st.stop()
else:
    found = data.search(view.ref, view.filter, query.strip() if mode == "words" else "", order)
    if found.empty:
        if query.strip():
            st.info(f"No message within these filters contains all of: {components.escape_markdown(query)}.",
                    icon=":material/search_off:")
            st.stop()
        components.require_messages(found, view)

metadata = [c for c in view.info.manifest.get("columns", {}).get("metadata", []) if c in found.columns]
pages = max(1, math.ceil(len(found) / PAGE_SIZE))
# A new filter or search starts again at page 1: the pager's key changes with them.
pager_key = f"messages_page_{hash((view.ref, view.filter, mode, query.strip(), order)) & 0xFFFFFFFF:x}"
page = st.session_state.get(pager_key, 1)
first = (page - 1) * PAGE_SIZE

head, download = st.columns([3, 1], vertical_alignment="bottom")
closest = " closest in meaning" if mode == "meaning" and query.strip() else ""
# A meaning search stops at its limit: say so, or "500" reads as all the matching messages.
capped = " (the closest; more may match)" if mode == "meaning" and len(found) >= SemanticSettings().limit else ""
last = min(first + PAGE_SIZE, len(found))
shown = f"showing {first + 1:,}" if last == first + 1 else f"showing {first + 1:,}–{last:,}"
head.markdown(f"**{count_of(len(found), 'message')}{closest}**{capped} · {shown}")
if view.info.has_dates:
    head.caption("Dates and times are in UTC: a day is a UTC day." if zone_words(view.info.time_zone) == "UTC" else
                 f"Dates and times are in {zone_words(view.info.time_zone)} ({view.info.time_zone}), and so are the "
                 "days.")
download.download_button(
    "Download CSV", lambda: components.csv_bytes(components.export_table(data.with_texts(view.ref, found.all()), view.info.labels,
                                                         metadata, view.info.time_zone)),
    file_name=f"messages-{view.ref.id}.csv", mime="text/csv", icon=":material/download:", width="stretch",
    on_click="ignore", help="All messages that match the filters and the search, not just this page.")

# Bold words only for a word search: a meaning match need not share a single word with the query.
components.message_list(data.with_texts(view.ref, found.page(first, PAGE_SIZE)), view.info.labels, metadata,
                        query if mode == "words" else "", view.info.time_zone, cut_at=cut_at)
if pages > 1:
    st.pagination(pages, key=pager_key, max_visible_pages=7)

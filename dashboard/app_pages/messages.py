"""Messages: the messages behind any number, with keyword search, pages and a CSV download.

Other pages' selections land here with the filters narrowed to what was clicked.
"""

import math

import streamlit as st

from dashboard import components, data, filters
from pipelines.charts import format_count

ORDERS = {"newest": "Newest first", "oldest": "Oldest first", "negative": "Most negative first",
          "positive": "Most positive first"}
PAGE_SIZE = 20

view = components.page_view()
st.title("Messages")
came_from = filters.back_title()
if came_from:
    with st.container(border=True):
        text, action = st.columns([4, 1], vertical_alignment="center")
        text.markdown(f"The messages behind your selection on **{came_from}**.")
        action.button(f"Back to {came_from}", on_click=filters.go_back, icon=":material/arrow_back:",
                      key="messages_back")
components.filter_caption(view)

c1, c2 = st.columns([3, 1])
query = c1.text_input("Search the messages", key="messages_query",
                      placeholder="Words that must all appear, e.g. refund late",
                      help="Finds messages containing every word (any case) within the current filters.")
order = c2.selectbox("Order", list(ORDERS), format_func=ORDERS.get, key="messages_order")

found = data.search(view.ref, view.filter, query.strip(), order)
if found.empty:
    if query.strip():
        st.info(f"No message within these filters contains all of: {components.escape_markdown(query)}.",
                icon=":material/search_off:")
        st.stop()
    components.require_messages(found)

metadata = [c for c in view.info.manifest.get("columns", {}).get("metadata", []) if c in found]
pages = max(1, math.ceil(len(found) / PAGE_SIZE))
# A new filter or search starts again at page 1: the pager's key changes with them.
pager_key = f"messages_page_{hash((view.ref, view.filter, query.strip(), order)) & 0xFFFFFFFF:x}"
page = st.session_state.get(pager_key, 1)
first = (page - 1) * PAGE_SIZE

head, download = st.columns([3, 1], vertical_alignment="bottom")
head.markdown(f"**{format_count(len(found))} messages** · showing {first + 1:,}–{min(first + PAGE_SIZE, len(found)):,}")
download.download_button(
    "Download CSV", lambda: components.csv_bytes(components.export_table(found, view.info.labels, metadata)),
    file_name=f"messages-{view.ref.id}.csv", mime="text/csv", icon=":material/download:", width="stretch",
    on_click="ignore", help="All messages that match the filters and the search, not just this page.")

components.message_list(found.iloc[first:first + PAGE_SIZE], view.info.labels, metadata, query)
if pages > 1:
    st.pagination(pages, key=pager_key, max_visible_pages=7)

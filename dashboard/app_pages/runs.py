"""Data: which run is shown (its input, counts, settings and notes), switching runs, and analysing a new file."""

import json

import pandas as pd
import streamlit as st

from dashboard import components, data, filters, upload
from pipelines.charts import format_count, format_date, format_share
from pipelines.metrics import count_of, day_span, zone_words
from pipelines.store import files_in_words, input_files, runs_on_the_way


def file_size(n: int) -> str:
    """'812 bytes', '41 KB', '2.2 MB', '1.3 GB': a size as a file manager writes it."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            value = n / scale
            return f"{value:.1f} {unit}" if value < 10 else f"{value:,.0f} {unit}"
    return f"{n:,} bytes"


st.title("Data")
view = components.page_view(required=False)
if view is None:  # no run yet: the upload below is one way to make the first one
    upload.section(data.store_dir())
    st.stop()
m = view.info.manifest
counts = m.get("counts", {})
created = pd.Timestamp(m.get("created_at")) if m.get("created_at") else None
st.markdown(f"Showing run **{view.ref.id}**, analysed on "
            f"{format_date(created)}{f' at {created:%H:%M} UTC' if created is not None else ''}.")

cols = st.columns(4, border=True)
cols[0].metric("Messages analysed", format_count(counts.get("messages")),
               help=f"{format_count(counts.get('rows_read'))} rows read from the file.")
# As the other pages count them, after analysts' merges, splits and noise (the manifest keeps the model's figures).
sizes = view.info.topic_sizes
curated_topics = sum(1 for t, n in sizes.items() if t >= 0 and n)
no_topic = sizes.get(-1, 0) / max(sum(sizes.values()), 1)
found = (f"The topic model found {format_count(counts.get('topics'))}"
         + ("; analysts' edits make them these." if curated_topics != counts.get("topics") else "."))
cols[1].metric("Topics", format_count(curated_topics), help=found)
cols[2].metric("Without a clear topic", format_share(no_topic, 1),
               help=f"As the topic model left them: {format_share(counts.get('outlier_share'), 1)} "
                    f"({format_share(counts.get('outlier_share_before'), 1)} before outlier reduction).")
first, last = view.info.first_day, view.info.last_day  # days of the run's time zone, as every page counts them
days = (last - first).days + 1 if first is not None else None
cols[3].metric("Days covered", format_count(days),
               help=f"{format_date(first)} to {format_date(last)} ({zone_words(view.info.time_zone)})" if days else "No dates.")



source = m.get("input", {})
columns = m.get("columns", {})
files = input_files(m)
last_file = "Last file's " if len(files) > 1 else "File "  # a run files were added to: the facts are the last one's
facts = {
    "Input files" if len(files) > 1 else "Input file": ", ".join(files),
    "Dates": f"{day_span(first, last)} ({zone_words(view.info.time_zone)})" if days else "none",
    f"{last_file}format, size".capitalize(): f"{str(source.get('format', '')).upper()}, "
                                             f"{file_size(source.get('size_bytes') or 0)}",
    f"{last_file}fingerprint (SHA-256)": str(source.get("sha256", ""))[:16] + "…",
    "Text column": columns.get("text"),
    "Date column": columns.get("date") or "none",
    "Id column": columns.get("id") or "none (ids derived from the text)",
    # How the sidebar filters each: tag by tag, by a range, or (unmarked) by its values.
    "Metadata columns": ", ".join(f"{c} (tags)" if c in view.info.tags else f"{c} (range)" if c in view.info.ranges
                                  else c for c in columns.get("metadata", [])) or "none",
    "Skipped": "; ".join(f"{format_count(n)} {reason}" for reason, n in counts.get("skipped", {}).items()) or "none",
    "Cut to the maximum length": format_count(counts.get("truncated", 0)),
    "Without a date": format_count(counts.get("missing_dates", 0)),
    "Encoder": f"{m.get('encoder', {}).get('name')} ({m.get('encoder', {}).get('dimension')} dimensions)",
    "Sentiment scorer": m.get("sentiment_scorer"),
}
st.dataframe(pd.DataFrame({"About this run": list(facts), "": [str(v) for v in facts.values()]}), hide_index=True,
             width="stretch", height=35 * (len(facts) + 1) + 3)
for note in m.get("notes", []):
    st.caption(f":material/info: {components.escape_markdown(str(note))}")
with st.expander("Settings, timings and versions"):
    st.code(json.dumps({k: m.get(k) for k in ("settings", "timings", "versions")}, indent=2), language="json")

st.subheader("All runs")
every_run = data.runs(view.ref.store)
# Several files analysed together publish a run per file, each adding one; the last holds them all.
on_the_way = runs_on_the_way(every_run) - {view.ref.id, data.latest_id(view.ref.store)}
runs = [r for r in every_run if r["id"] not in on_the_way]
listing = pd.DataFrame([{
    "Run": r["id"], "Analysed": format_date(r.get("created_at")), "Input files": files_in_words(r),
    "Messages": r.get("counts", {}).get("messages"), "Topics": r.get("counts", {}).get("topics"),
    "Shown": "●" if r["id"] == view.ref.id else "",
} for r in runs])
st.dataframe(listing, hide_index=True, width="stretch",
             column_config={"Messages": st.column_config.NumberColumn(format="localized")})
if len(runs) > 1:  # which run this session shows: any role may switch; no one else's view changes
    ids = [r["id"] for r in runs]
    pick, go = st.columns([3, 1], vertical_alignment="bottom")
    if st.session_state.get("runs_choice_for") != view.ref.id:  # another run is shown now: the box starts on it
        st.session_state.pop("runs_choice", None)
        st.session_state["runs_choice_for"] = view.ref.id
    chosen = pick.selectbox("Show another run", ids, index=ids.index(view.ref.id), key="runs_choice",
                            format_func=lambda i: f"{i} · {files_in_words(next(r for r in runs if r['id'] == i))}")
    go.button("Show this run", on_click=filters.choose_run, args=(chosen,), disabled=chosen == view.ref.id,
              icon=":material/swap_horiz:")
st.caption("New runs appear here within seconds of `feedback-lens analyse FILE` finishing."
           + (f" Not listed: {count_of(len(on_the_way), 'run')} made on the way while several files were analysed "
              "together, each holding fewer files than the run after it." if on_the_way else ""))

st.divider()
upload.section(view.ref.store)

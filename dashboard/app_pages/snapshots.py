"""Snapshots: export the current view as a snapshot for a meeting, and download past snapshots.

Draws only: making, listing and packing snapshots is :mod:`pipelines.snapshot` (the same code as
``feedback-lens snapshot``). Snapshots go to ``$FEEDBACK_LENS_SNAPSHOTS`` or ``<store>/snapshots``, the folder
the CLI writes to by default (:func:`pipelines.snapshot.snapshot_folder`).
"""

from datetime import timedelta

import pandas as pd
import streamlit as st

from dashboard import components
from pipelines import snapshot
from pipelines.charts import format_date
from pipelines.errors import FeedbackLensError
from pipelines.metrics import day_span

PERIOD, PICKED, DONE, KEPT = "snapshots_period", "snapshots_table", "snapshots_done", "snapshots_kept"


def _made(created: str) -> str:
    """'6 Dec 2026, 15:28 UTC': dates written as on every other page."""
    when = pd.Timestamp(created)
    when = when.tz_convert("UTC") if when.tzinfo else when
    return f"{format_date(when)}, {when:%H:%M} UTC"


view = components.page_view()
out = snapshot.snapshot_folder(view.ref.store)
st.title("Snapshots")
st.caption("A snapshot is a frozen picture of one period for a meeting: a report that opens in any browser "
           "without the dashboard, a spreadsheet, CSV files, chart images and slides. Scheduled ones come from "
           "`feedback-lens snapshot --period last-week`.")

with st.container(border=True):
    st.markdown("**Export this view**")
    components.filter_caption(view)
    choices = {"last-week": "Last week", "last-month": "Last month", "last-quarter": "Last quarter"}
    if view.info.last_day is not None:  # the windows the other pages compare, ending on the last message's day
        last = view.info.last_day
        # Which week, month and quarter they are: "Last month" alone left the reader to work out October.
        def which(spec: str) -> str:
            p = snapshot.parse_period(spec, last)
            return p.label if p.kind == "month" else day_span(p.first, p.last)

        choices = {spec: f"{words} ({which(spec)})" for spec, words in choices.items()}
        choices |= {f"{last - timedelta(days=days - 1)}..{last}": f"Last {days} days" for days in (7, 30)}
    if view.filter.start or view.filter.end:
        first, last = view.filter.start or view.info.first_day, view.filter.end or view.info.last_day
        # A filter of exactly a month, quarter or week is that period, compared as the other pages compare it.
        filtered = snapshot.period_of_days(first, last)
        choices = {filtered.name: f"{filtered.label} (the dates filter)", **choices}
    if not view.info.has_dates:
        st.info("This run has no dates, so it has no periods to make a snapshot of.")
    else:
        period = st.segmented_control("Period", list(choices), format_func=choices.get, default=next(iter(choices)),
                                      key=PERIOD, help="Last week and last month are the last complete ones "
                                      "before the run's last message; the last 7 and 30 days end on its day, as "
                                      "on the other pages.") or next(iter(choices))
        if st.button("Export this view", type="primary", icon=":material/ios_share:"):
            earlier = {m["name"]: m["created"] for m in snapshot.list_snapshots(out)}
            try:
                with st.spinner("Writing the report, spreadsheet, chart images and slides…"):
                    made = snapshot.make_snapshot(view.ref.store, out, period, run_id=view.ref.id,
                                                  message_filter=view.filter)
            except FeedbackLensError as err:
                st.error(components.escape_markdown(str(err)), icon=":material/error:")
            else:
                st.session_state[DONE] = made.name
                # Another run's snapshot is never replaced; this run's own of the same period and filters is.
                replaced = (f"it replaces the one made on {_made(earlier[made.name])}" if made.name in earlier
                            else "")
                st.session_state[KEPT] = "; ".join(w for w in (replaced, snapshot.kept_words(made)) if w)
                st.session_state.pop(PICKED, None)
        if st.session_state.get(DONE):
            kept = st.session_state.get(KEPT) or ""
            st.success(f"Snapshot **{components.escape_markdown(st.session_state[DONE])}** is ready below."
                       + (f" {components.escape_markdown(kept[:1].upper() + kept[1:])}." if kept else ""),
                       icon=":material/check_circle:")

st.subheader("Past snapshots")
found = snapshot.list_snapshots(out)
if not found:
    st.info(f"No snapshots in `{out}` yet. Export this view above, or run `feedback-lens snapshot --period "
            "last-month`.", icon=":material/photo_library:")
    st.stop()
listing = pd.DataFrame([{
    "Period": m["period"]["label"], "Filters": "; ".join(m.get("filter_words") or []) or "all messages",
    "Messages": m["counts"]["messages_in_period"], "Run": m["run"]["id"],
    "Made": _made(m["created"]), "Folder": m["name"],
} for m in found])
event = st.dataframe(listing, hide_index=True, width="stretch", key=PICKED, on_select="rerun",
                     selection_mode="single-row",
                     column_config={"Messages": st.column_config.NumberColumn(format="localized")})
rows = event.selection.rows if event and event.selection else []
chosen = found[rows[0]] if rows else next((m for m in found if m["name"] == st.session_state.get(DONE)), found[0])
st.caption("Select a row to download another snapshot. A period made again from a newer run keeps the earlier "
           "snapshot under its own folder (ending in the run it came from); the most recently made is listed first.")

name = chosen["name"]
st.markdown(f"**{components.escape_markdown(chosen['period']['label'])}** · "
            f"{components.escape_markdown('; '.join(chosen.get('filter_words') or []) or 'all messages')} · "
            f"folder `{name}`")
files = {f["path"] for f in chosen["files"]}
# One row of buttons as wide as their labels, the same gap between each (columns of fixed widths cut long labels).
with st.container(horizontal=True, gap="small"):
    for file, (label, mime) in snapshot.DOWNLOADS.items():
        if file in files:
            st.download_button(label, data=snapshot.snapshot_file(out, name, file).read_bytes,
                               file_name=f"{name}-{file}", mime=mime, on_click="ignore", key=f"download_{name}_{file}",
                               icon=":material/download:", width="content")
    st.download_button("Everything (ZIP)", data=lambda: snapshot.snapshot_archive(out, name), file_name=f"{name}.zip",
                       mime="application/zip", on_click="ignore", key=f"download_{name}_zip",
                       icon=":material/folder_zip:", width="content")

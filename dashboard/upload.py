"""Upload a feedback file in the browser, map its columns, and follow its analysis in the background.

Draws only: reading the file, guessing columns and running the analysis are :mod:`pipelines.jobs`.
Analysing a file adds a run that becomes everyone's default, so it is an admin action: the section is
hidden from other roles, and starting, showing or dismissing a job re-checks the role when it happens.
The analysis runs in its own process, so this session (and every other) stays usable meanwhile;
the progress box polls the job's status file every two seconds while a job is running.
"""

from __future__ import annotations

import hashlib
import time
import zoneinfo
from pathlib import Path

import streamlit as st

from dashboard import auth, components, data, filters
from pipelines import jobs
from pipelines.charts import count_of
from pipelines.errors import FeedbackLensError
from pipelines.ingest import SUPPORTED_FORMATS
from pipelines.settings import DATE_ORDERS, ColumnMapping
from pipelines.store import latest_run_id, latest_time_zone

NONE = "(none)"
TIME_ZONES = sorted(zoneinfo.available_timezones())
STOP, SKIP = "Stop and list them", "Skip those rows"
# The date-order choice, in words, by its setting (pipelines.settings.DATE_ORDERS).
ORDER_WORDS = dict(zip(DATE_ORDERS, ("Find out from the dates", "Day first (31.12.2026)", "Month first (12/31/2026)"),
                       strict=True))
SHOWN_JOBS = 5
SHOWN_FOR_S = 3600
"""How long another session's finished analysis stays listed."""
_WATCHING, _MINE = "upload_watching", "upload_mine"


@st.cache_data(max_entries=16, show_spinner="Reading the file…")
def _preview(name: str, digest: str, _data: bytes, sheet: str | None = None) -> jobs.UploadPreview:
    # Keyed by the content's hash: the bytes themselves are not hashed again on every rerun.
    return jobs.preview_upload(name, _data, sheet)


def section(store: str) -> None:
    """The "Analyse a new file" box: upload, column mapping, start; then the progress of recent analyses."""
    if not auth.allowed("admin"):
        st.caption("An admin can analyse a new file here.")
        return
    st.subheader("Analyse a new file")
    uploaded = st.file_uploader(
        "Feedback files", type=sorted({s.lstrip(".") for s in SUPPORTED_FORMATS}), key="upload_file",
        accept_multiple_files=True,
        help="CSV, TSV, JSON, JSON Lines, Parquet or Excel, one message per row. Several exports of one source "
        "(e.g. one a month, with the same columns) are analysed as one run, in the order they are listed. The "
        "analysis runs in the background; the new run appears on this page when it is ready.")
    if uploaded:
        _mapping_form(store, [(f.name, f.getvalue()) for f in uploaded])
    _progress(store)


def _read_preview(name: str, content: bytes, sheet: str | None = None,
                  digest: str | None = None) -> jobs.UploadPreview | None:
    """The file's preview, or None after showing why it cannot be read. ``digest``: the content's SHA-256 when the
    caller has it (hashing a large upload again on every rerun is what the cache key avoids)."""
    try:
        return _preview(name, digest or hashlib.sha256(content).hexdigest(), content, sheet)
    except FeedbackLensError as err:
        st.error(f"{components.escape_markdown(err.message)}\n\n**How to fix:** "
                 f"{components.escape_markdown(jobs.for_the_upload_form(err.fix) or 'Check the file and upload it again.')}",
                 icon=":material/error:")
        return None


def _mapping_form(store: str, files: list[tuple[str, bytes]]) -> None:
    (name, content), more = files[0], files[1:]
    digest = hashlib.sha256(content).hexdigest()
    preview = _read_preview(name, content, digest=digest)
    sheet = None
    if preview is not None and len(preview.sheets) > 1:  # a workbook of several sheets with rows: which one?
        sheet = st.selectbox("Sheet", preview.sheets, index=preview.sheets.index(preview.sheet)
                             if preview.sheet in preview.sheets else 0,
                             key=f"upload_sheet_{digest[:16]}",  # per workbook
                             help="The workbook's sheets with rows; the first with enough rows for an analysis is "
                             "chosen. A later file that is a workbook is read from the sheet of the same name.")
        preview = _read_preview(name, content, sheet, digest)
    others = [_read_preview(n, c, sheet) for n, c in more]
    if preview is None or None in others:
        return
    if others:
        st.caption(f"{count_of(len(files), 'file')}: {components.escape_markdown(', '.join(n for n, _ in files))}. "
                   f"The first is analysed and each later one added to the run before it; the columns are chosen "
                   "from the first.")
    sheet_read = f"sheet “{components.escape_markdown(preview.sheet)}” · " if preview.sheet else ""
    st.caption(f"{components.escape_markdown(preview.file)} · {preview.format.upper()} · {sheet_read}"
               f"{preview.rows:,} rows · first rows:")
    st.dataframe(preview.sample, hide_index=True, width="stretch", height=213)
    for note in preview.notes:  # the sheet read, the other sheets left, the encoding guessed
        st.info(components.escape_markdown(note), icon=":material/info:")
    cols = preview.columns
    if preview.text is None:  # the first column is offered, but nothing says it holds the messages
        st.warning("No column looks like the messages (texts of several words). Choose the column that holds them "
                   "as “Message text” below.", icon=":material/help:")
    with st.form("upload_mapping", border=True):
        st.markdown("**Which columns hold what?** Guessed from the column names; change them if they are wrong.")
        a, b, c = st.columns(3)
        text = a.selectbox("Message text", cols, index=cols.index(preview.text) if preview.text in cols else 0)
        date = b.selectbox("Date", [NONE, *cols], index=([NONE, *cols].index(preview.date) if preview.date else 0),
                           help="Without dates there are no trends, only totals.")
        id_ = c.selectbox("Message id", [NONE, *cols], index=([NONE, *cols].index(preview.id) if preview.id else 0),
                          help="Lets a re-analysis recognise the same message; derived from the text when none.")
        rest = [col for col in cols if col not in {preview.text, preview.date, preview.id}]
        metadata = st.multiselect("Other columns to keep as filters and breakdowns", cols, default=rest,
                                  help="E.g. channel, product, region, rating.")
        d, z, o = st.columns(3)
        bad_dates = d.radio("Rows whose date cannot be read", [STOP, SKIP], horizontal=True,
                            help="Stopping loses nothing: you see which rows to fix. Skipping analyses the other "
                            "rows and reports how many were left out.")
        # The zone of the latest run by default: a team uploads each week's export in its own zone. The first file
        # is read in the browser's zone (the person uploading it is the best guess there is), not UTC.
        latest = latest_run_id(Path(store))
        browser = st.context.timezone if st.context.timezone in TIME_ZONES else None
        zone_before = latest_time_zone(Path(store)) if latest else (browser or "UTC")
        zone = z.selectbox("Your time zone", TIME_ZONES,
                           index=TIME_ZONES.index(zone_before if zone_before in TIME_ZONES else "UTC"),
                           help="Dates written without a zone are read in it (those that name one, e.g. "
                           "2026-03-01T09:00+01:00, keep theirs), and the pages and snapshots count its days and "
                           "show its clock times.")
        if latest and browser and browser != zone_before:  # a file from elsewhere: say which zone this one is
            z.caption(f"The latest run's zone; your browser is on {browser}.")
        order = o.selectbox("Dates like 03/11/2026", DATE_ORDERS, format_func=ORDER_WORDS.get,
                            help="Which number is the day. Found out from the dates: a 13 or more first means day "
                            "first; when every date could be either, dots (03.11.2026) are read day first and slashes "
                            "month first, and the run's notes say so.")
        note = st.text_input("Note shown with the run (optional)", max_chars=300,
                             placeholder="e.g. App-store reviews, export of 3 November")
        add = latest is not None and st.checkbox(
            "Add these messages to the latest run's", help=f"For an export that holds only the newest messages (e.g. "
            f"this week's): they join the messages of run {latest}, whose topics, names and edits stay. Without it the "
            "file is analysed on its own and the pages show only its messages. A message whose id the run holds is "
            "replaced by the file's.")
        submitted = st.form_submit_button("Analyse these files" if others else "Analyse this file", type="primary",
                                          icon=":material/play_arrow:")
    if not submitted:
        return
    chosen = [text, date, id_]
    picked = [v for v in chosen if v != NONE]
    if len(set(picked)) < len(picked):
        st.error("Choose a different column for the text, the date and the id.", icon=":material/error:")
        return
    mapping = ColumnMapping(text=text, date=None if date == NONE else date, id=None if id_ == NONE else id_,
                            metadata=tuple(m for m in metadata if m not in picked))
    lacking = [(other.file, [c for c in [*picked, *mapping.metadata] if c not in other.columns]) for other in others]
    lacking = [(file, columns) for file, columns in lacking if columns]
    if lacking:  # said now, not after the first file's minutes of analysis
        st.error("; ".join(f"{components.escape_markdown(file)} has no column "
                           f"{', '.join(f'“{components.escape_markdown(c)}”' for c in columns)}"
                           for file, columns in lacking)
                 + ". Upload files with the same columns together, or leave the column out of the choices above.",
                 icon=":material/error:")
        return
    auth.require("admin")  # checked when the job starts, not only when the form was drawn
    try:
        job = jobs.start_analysis(store, preview.file, content, mapping, note=note.strip() or None,
                                  on_bad_date="drop" if bad_dates == SKIP else "fail", timezone=zone,
                                  date_order=order, add=add, more=more, sheet=sheet)
    except (FeedbackLensError, OSError) as err:
        st.error(f"Could not start the analysis: {components.escape_markdown(str(err))}", icon=":material/error:")
        return
    st.session_state.setdefault(_MINE, []).append(job.id)
    st.toast(f"Analysing {job.file} in the background.", icon=":material/hourglass_top:")


def _recent_jobs(store: str) -> list[jobs.JobStatus]:
    """The analyses to show: those running, those this session started or watched, and others finished within the
    hour; an old result of someone else's upload (its run no longer the latest) is no news here."""
    mine = set(st.session_state.get(_MINE, [])) | set(st.session_state.get(_WATCHING, []))
    now = time.time()
    return [j for j in jobs.list_jobs(store)
            if not j.finished or j.id in mine or now - j.updated_at < SHOWN_FOR_S][:SHOWN_JOBS]


def _progress(store: str) -> None:
    recent = _recent_jobs(store)
    if not recent:
        return
    running = any(not j.finished for j in recent)
    # Poll only while something runs; a finished job needs no refresh.
    st.fragment(_job_boxes, run_every=2 if running else None)(store)


def _job_boxes(store: str) -> None:
    recent = _recent_jobs(store)
    watching = st.session_state.setdefault(_WATCHING, [])
    for job in recent:
        with st.container(border=True, key=f"job_{job.id}"):
            if not job.finished:
                if job.id not in watching:
                    watching.append(job.id)
                fraction = job.fraction
                label = f"{job.file}: {job.stage}…" + (f" {job.done:,} of {job.total:,}" if job.total else "")
                st.progress(fraction if fraction is not None else 0.0, text=components.escape_markdown(label))
                continue
            text, act = st.columns([5, 1], vertical_alignment="center")
            if job.state == "done":
                text.success(f"**{components.escape_markdown(job.file)}** {'are' if job.files > 1 else 'is'} analysed: run "
                             f"{job.run_id}, "
                             f"{count_of(job.messages or 0, 'message')}, {count_of(job.topics or 0, 'topic')}.",
                             icon=":material/check_circle:")
                if job.run_id != _shown_run_id():
                    act.button("Show it", key=f"show_{job.id}", on_click=auth.guarded("admin", _show),
                               args=(job.run_id, store, job.id), type="primary")
                else:  # shown already: the box is only news, to put away
                    act.button("Dismiss", key=f"dismiss_{job.id}", on_click=auth.guarded("admin", jobs.remove_job),
                               args=(store, job.id))
                if job.id in watching:  # its run just appeared: refresh the whole page so every list shows it
                    watching.remove(job.id)
                    data.runs.clear()
                    st.rerun(scope="app")
            else:
                text.error(f"**{components.escape_markdown(job.file)}** could not be analysed: "
                           f"{components.escape_markdown(job.error or 'unknown error')}"
                           + (f"\n\n**How to fix:** {components.escape_markdown(job.fix)}" if job.fix else ""),
                           icon=":material/error:")
                act.button("Dismiss", key=f"dismiss_{job.id}", on_click=auth.guarded("admin", jobs.remove_job),
                           args=(store, job.id))


def _shown_run_id() -> str | None:
    """The run this session shows now, or None when there is none yet."""
    try:
        return data.current_ref().id
    except FeedbackLensError:
        return None


def _show(run_id: str, store: str, job_id: str) -> None:
    data.runs.clear()
    filters.choose_run(run_id)
    jobs.remove_job(store, job_id)

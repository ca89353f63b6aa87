"""Uploading a file in the dashboard: preview and column guess, the background analysis and its status."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from pipelines import jobs
from pipelines.errors import InputError
from pipelines.settings import ColumnMapping
from pipelines.store import list_runs

APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"


def _csv(frame) -> bytes:
    return frame.to_csv(index=False).encode("utf-8")


def test_the_preview_guesses_the_columns_the_analysis_would_use(sample_frame):
    preview = jobs.preview_upload("reviews.csv", _csv(sample_frame.head(40)))
    assert (preview.text, preview.date, preview.id) == ("text", "date", "review_id")
    assert preview.rows == 40 and preview.columns == ["review_id", "date", "rating", "text"]
    assert len(preview.sample) == 5


def test_the_preview_shows_no_personal_data(sample_frame):
    frame = sample_frame.head(8).copy()
    frame.loc[frame.index[0], "text"] = "Support never replied to carla@firma.de, tel. +49 30 123456789. Terrible."
    preview = jobs.preview_upload("reviews.csv", _csv(frame))
    assert preview.sample["text"].iloc[0] == "Support never replied to [email], tel. [phone]. Terrible."
    assert preview.sample["text"].iloc[1] == frame["text"].iloc[1]  # the rest as written
    assert preview.sample["review_id"].tolist() == frame["review_id"].head(5).astype(str).tolist()


def test_the_preview_offers_the_longest_text_column_when_no_name_is_usual(sample_frame):
    frame = sample_frame.head(40).rename(columns={"text": "what_they_said", "review_id": "ref"})
    preview = jobs.preview_upload("export.csv", _csv(frame))
    assert preview.text == "what_they_said" and preview.id is None


def _upload(monkeypatch, store, name: str, content: bytes, mime: str) -> AppTest:
    """The Data page of a dashboard on ``store`` with ``name`` chosen in the upload form; fails on an exception."""
    monkeypatch.setenv("FEEDBACK_LENS_STORE", str(store))
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    at.switch_page("app_pages/runs.py").run()
    at.file_uploader(key="upload_file").set_value((name, content, mime)).run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_a_column_of_records_is_not_offered_as_the_messages_and_the_form_says_to_choose(monkeypatch, tmp_path):
    """A Parquet file whose texts sit inside a struct column: the form pre-selected that column as the text, and one
    click published a run of JSON. Now nothing is guessed, the form says so, and the analysis refuses the column."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"id": [f"m{i}" for i in range(40)],
                      "payload": [{"text": f"Parcel {i} came late and the box was crushed", "date": "2026-01-02"}
                                  for i in range(40)]})
    out = io.BytesIO()
    pq.write_table(table, out)
    assert jobs.preview_upload("nested.parquet", out.getvalue()).text is None
    at = _upload(monkeypatch, tmp_path / "store", "nested.parquet", out.getvalue(), "application/octet-stream")
    assert any(w.value.startswith("No column looks like the messages") for w in at.warning)


def test_the_preview_says_which_sheet_it_read_and_shows_cells_as_the_run_will(monkeypatch, tmp_path):
    """A workbook whose first sheet is a cover page: the preview reads the sheet with rows and the form says so (as
    the run's notes will); a JSON list cell shows "a, b", not Python's repr."""
    import io

    from openpyxl import Workbook

    book = Workbook()
    book.active.title = "Cover"
    data = book.create_sheet("Reviews")
    data.append(["text", "channel"])
    for i in range(40):
        data.append([f"Parcel {i} came late and the box was crushed", "app"])
    out = io.BytesIO()
    book.save(out)
    preview = jobs.preview_upload("export.xlsx", out.getvalue())
    assert preview.rows == 40 and preview.notes == [
        'Read sheet "Reviews"; passed over "Cover" (no rows below a header) before it: a cover or notes sheet, not the '
        'feedback.']
    lines = "\n".join(json.dumps({"text": f"Refund {i} was slow", "tags": ["refund", "slow"]}) for i in range(6))
    assert jobs.preview_upload("f.jsonl", lines.encode()).sample["tags"].iloc[0] == "refund, slow"

    at = _upload(monkeypatch, tmp_path / "store", "export.xlsx", out.getvalue(), "application/vnd.ms-excel")
    assert any('Read sheet "Reviews"' in i.value.replace("\\", "") for i in at.info)


def test_an_unreadable_upload_gets_the_same_clear_error_as_the_command_line():
    with pytest.raises(InputError, match=r"feedback\.pdf: unknown file format \(\.pdf\)"):
        jobs.preview_upload("feedback.pdf", b"%PDF-1.7")
    with pytest.raises(InputError, match="the file is empty"):
        jobs.preview_upload("empty.csv", b"")


def test_uploaded_names_cannot_leave_the_job_folder():
    assert jobs.safe_file_name("../../etc/passwd") == "passwd"
    assert jobs.safe_file_name("C:\\Users\\me\\reviews 2026.csv") == "reviews 2026.csv"
    assert jobs.safe_file_name("..") == "upload"


def test_a_job_whose_process_died_reads_as_failed(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    job_dir = tmp_path / "jobs" / "20260101-000000-abcd"
    job_dir.mkdir(parents=True)
    reporter = jobs.StatusFileReporter(job_dir, jobs.JobStatus(id=job_dir.name, file="a.csv", pid=proc.pid))
    with reporter.stage("Embedding", 100) as stage:
        stage.advance(40)
        reporter.update(force=True)
        assert jobs.read_status(job_dir).state == "failed"  # pid is gone
        assert "stopped unexpectedly" in jobs.read_status(job_dir).error
    reporter.status = replace(reporter.status, pid=None)
    with reporter.stage("Embedding", 100) as stage:
        stage.advance(40)
        reporter.update(force=True)
        status = jobs.read_status(job_dir)
        assert (status.state, status.stage, status.fraction) == ("running", "Embedding", 0.4)
    assert [s.id for s in jobs.list_jobs(tmp_path)] == [job_dir.name]


def _wait(store: Path, job_id: str, timeout: float = 900) -> jobs.JobStatus:
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = jobs.read_status(jobs.jobs_dir(store) / job_id)
        if status and status.finished:
            return status
        time.sleep(1)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def test_a_bad_upload_fails_in_the_background_with_a_clear_error_and_no_run(tmp_path, sample_frame):
    job = jobs.start_analysis(tmp_path, "tiny.csv", _csv(sample_frame.head(10)), ColumnMapping())
    status = _wait(tmp_path, job.id, timeout=120)
    assert status.state == "failed"
    assert "Not enough messages to find topics: 10 after cleaning" in status.error and status.fix
    assert list_runs(tmp_path) == []


def test_an_upload_can_skip_rows_with_unreadable_dates_as_the_form_chooses(tmp_path, sample_frame):
    tiny = sample_frame.head(10).copy()
    tiny.loc[3, "date"] = "someday"
    stopped = _wait(tmp_path, jobs.start_analysis(tmp_path, "dates.csv", _csv(tiny), ColumnMapping()).id, 120)
    assert stopped.state == "failed" and "someday" in stopped.error
    assert "--on-bad-date" not in stopped.fix and "Skip those rows" in stopped.fix  # the form's words, not the CLI's
    skipped = _wait(tmp_path, jobs.start_analysis(tmp_path, "dates.csv", _csv(tiny), ColumnMapping(),
                                                  on_bad_date="drop", timezone="Europe/Paris").id, 120)
    # The bad row was skipped, not stopped at: the run then ends on the next check, too few messages.
    assert skipped.state == "failed" and "Not enough messages to find topics: 9 after cleaning" in skipped.error
    # ... and says what was left out, and why.
    assert '(1 date not understood in column "date" left out of 10 rows)' in skipped.error
    assert list_runs(tmp_path) == []


def test_an_upload_added_to_no_run_says_so_in_the_forms_words(tmp_path, sample_frame):
    job = jobs.start_analysis(tmp_path, "week.csv", _csv(sample_frame.head(40)), ColumnMapping(), add=True)
    status = _wait(tmp_path, job.id, timeout=120)
    assert status.state == "failed" and status.error.startswith("--add: there is no earlier run in")
    assert status.fix == ('Analyse the first file without "Add these messages to the latest run\'s"; later files can '
                          "then be added to it.")


def _stages_until_finished(store: Path, job_id: str, timeout: float = 300) -> tuple[jobs.JobStatus, list[str]]:
    """The job's final status and every stage name seen on the way."""
    seen: list[str] = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = jobs.read_status(jobs.jobs_dir(store) / job_id)
        if status and (not seen or seen[-1] != status.stage):
            seen.append(status.stage)
        if status and status.finished:
            return status, seen
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


@pytest.mark.slow
def test_several_uploaded_files_make_one_run_and_a_bad_later_file_stops_before_the_first(monkeypatch, tmp_path,
                                                                                        sample_frame):
    """Monthly exports uploaded together: as on the command line, the first is analysed and the next added to its
    run. Two exports of the same name are two files. A date that cannot be read in the second stops the job before
    the first is published, so the latest run never holds part of the upload."""
    jan, feb = sample_frame.iloc[0:600:6], sample_frame.iloc[1:600:6]
    bad = feb.copy()
    bad.loc[bad.index[7], "date"] = "someday"
    failed, _ = _stages_until_finished(tmp_path, jobs.start_analysis(
        tmp_path, "export.csv", _csv(jan), ColumnMapping(), more=[("export.csv", _csv(bad))]).id)
    assert failed.state == "failed" and failed.error.startswith('export (2).csv, column "date"')
    assert "someday" in failed.error and "Nothing was analysed: both files are checked" in failed.fix
    assert "Skip those rows" in failed.fix and list_runs(tmp_path) == []

    job = jobs.start_analysis(tmp_path, "export.csv", _csv(jan), ColumnMapping(), more=[("export.csv", _csv(feb))])
    assert job.file == "export.csv and 1 more file" and job.files == 2
    assert sorted(p.name for p in (jobs.jobs_dir(tmp_path) / job.id / "input").iterdir()) == [
        "export (2).csv", "export.csv"]
    done, stages = _stages_until_finished(tmp_path, job.id)
    assert done.state == "done", (done.error, done.fix)
    assert any(s.startswith("File 1 of 2, export.csv: Embedding") for s in stages), stages
    assert any(s.startswith("File 2 of 2, export (2).csv: ") for s in stages), stages
    runs = list_runs(tmp_path)
    assert len(runs) == 2 and done.run_id == runs[0]["id"]  # the second file's run, which holds both
    assert runs[0]["counts"]["messages"] == len(jan) + len(feb) == done.messages
    # The Data page lists the run that holds both files, not the first file's run made on the way.
    monkeypatch.setenv("FEEDBACK_LENS_STORE", str(tmp_path))
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    at.switch_page("app_pages/runs.py").run()
    listed = next(d.value for d in at.dataframe if "Input files" in d.value.columns)
    assert listed["Run"].tolist() == [runs[0]["id"]] and listed["Input files"].tolist() == ["export.csv + export (2).csv"]
    assert any("Not listed: 1 run made on the way" in c.value for c in at.caption)


def test_the_form_says_before_starting_when_a_later_file_lacks_a_chosen_column(monkeypatch, tmp_path, sample_frame):
    store = tmp_path / "store"
    monkeypatch.setenv("FEEDBACK_LENS_STORE", str(store))
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    at.switch_page("app_pages/runs.py").run()
    jan, feb = sample_frame.iloc[0:200:5], sample_frame.iloc[1:200:5].drop(columns=["rating"])
    at.file_uploader(key="upload_file").set_value([("jan.csv", _csv(jan), "text/csv"),
                                                   ("feb.csv", _csv(feb), "text/csv")]).run()
    assert not at.exception, [e.message for e in at.exception]
    shown = [c.value.replace("\\", "") for c in at.caption]  # as Markdown renders the escapes
    assert any(c.startswith("2 files: jan.csv, feb.csv. The first is analysed") for c in shown), shown
    submit = next(b for b in at.button if b.label == "Analyse these files")
    submit.click().run()
    assert [e.value.replace("\\", "") for e in at.error] == ["feb.csv has no column “rating”. Upload files with the same columns "
                                           "together, or leave the column out of the choices above."]
    assert jobs.list_jobs(store) == []  # nothing started
    at.multiselect[0].set_value([])  # without it, the files can go (a form's choices count when it is sent)
    next(b for b in at.button if b.label == "Analyse these files").click().run()
    assert not at.error, [e.value for e in at.error]
    started = jobs.list_jobs(store)
    assert len(started) == 1 and started[0].file == "jan.csv and 1 more file"
    os.kill(started[0].pid, signal.SIGKILL)  # its analysis is another test's (above); this one is about the form


@pytest.mark.slow
def test_upload_in_the_dashboard_analyses_in_the_background_and_the_run_appears(monkeypatch, tmp_path, sample_frame):
    """The real path: AppTest uploads a file on the Data page of an empty store, a detached process analyses it
    with the real model, and the page then offers the new run."""
    store = tmp_path / "store"
    monkeypatch.setenv("FEEDBACK_LENS_STORE", str(store))
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    at.switch_page("app_pages/runs.py").run()
    assert any("No analysed run to show yet" in i.value for i in at.info)
    upload = sample_frame.iloc[::40].rename(columns={"text": "comment", "review_id": "ref"})
    at.file_uploader(key="upload_file").set_value(("shop feedback.csv", _csv(upload), "text/csv")).run()
    assert not at.exception, [e.message for e in at.exception]
    assert at.selectbox[0].value == "comment" and at.selectbox[1].value == "date"
    at.selectbox[2].set_value("ref")
    at.multiselect[0].set_value(["rating"])
    at.text_input[0].input("Uploaded in a test")
    at.radio[0].set_value("Skip those rows")
    at.selectbox[3].set_value("Europe/Paris")
    at.button[0].click().run()  # the form's submit button
    assert not at.exception, [e.message for e in at.exception]
    started = jobs.list_jobs(store)
    assert len(started) == 1
    spec = json.loads((jobs.jobs_dir(store) / started[0].id / "job.json").read_text())
    assert spec["mapping"] == {"text": "comment", "date": "date", "id": "ref", "metadata": ["rating"]}
    assert (spec["on_bad_date"], spec["timezone"]) == ("drop", "Europe/Paris")
    assert any("shop feedback" in p.proto.text for p in at.get("progress"))  # progress shows meanwhile

    status = _wait(store, started[0].id)
    assert status.state == "done", (status.error, status.fix)
    run = list_runs(store)[0]
    assert run["id"] == status.run_id and run["counts"]["messages"] == len(upload) == status.messages
    assert run["note"] == "Uploaded in a test" and run["columns"]["metadata"] == ["rating"]
    at.run()
    assert any("is analysed" in s.value and status.run_id in s.value for s in at.success)
    # The new run is the latest, which this session follows: it shows it already, so the box offers to put the news
    # away, not "Show it" (a session showing a run chosen on this page gets "Show it").
    assert any(status.run_id in md.value for md in at.markdown)  # "Showing run …"
    assert not [b for b in at.button if b.key == f"show_{status.id}"]
    at.button(key=f"dismiss_{status.id}").click().run()
    assert jobs.list_jobs(store) == [] and not at.success


def test_another_sessions_old_result_is_not_listed_but_a_recent_one_is(monkeypatch, tmp_path):
    """A new visitor to the Data page saw last week's upload result ("Show it": a run long replaced) and another
    upload's error; results stay listed for an hour, and always in the session that started them."""
    store = tmp_path / "store"
    now = time.time()
    for job_id, file, age in (("20260101-000000-a0a0", "old.csv", 7200), ("20260101-000000-b0b0", "new.csv", 60)):
        job_dir = jobs.jobs_dir(store) / job_id
        job_dir.mkdir(parents=True)
        jobs._write_status(job_dir, jobs.JobStatus(id=job_id, file=file, state="failed", error="bad dates",
                                                   created_at=now - age, updated_at=now - age))
    job_dir = jobs.jobs_dir(store) / "20260101-000000-c0c0"
    job_dir.mkdir(parents=True)
    jobs._write_status(job_dir, jobs.JobStatus(id=job_dir.name, file="done.csv", state="done", run_id="20260101-000000-dddd",
                                               messages=40, topics=3, created_at=now - 30, updated_at=now - 30))
    monkeypatch.setenv("FEEDBACK_LENS_STORE", str(store))
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    at.switch_page("app_pages/runs.py").run()
    errors = [e.value.replace("\\", "") for e in at.error]  # as shown: markdown escapes removed
    assert any("new.csv" in e for e in errors) and not any("old.csv" in e for e in errors)
    done = next(b for b in at.button if b.key == "show_20260101-000000-c0c0")  # its run is not the one shown
    assert done.label == "Show it" and any("done.csv" in m.value.replace("\\", "") for m in at.success)
    at.session_state["upload_mine"] = ["20260101-000000-a0a0"]  # the session that uploaded it still sees it
    assert any("old.csv" in e.value.replace("\\", "") for e in at.run().error)


@pytest.mark.slow
def test_a_workbook_of_several_sheets_is_read_from_the_sheet_chosen_in_the_form(monkeypatch, tmp_path, sample_frame):
    """The form offers the workbook's sheets with rows (the first with enough rows chosen), shows the chosen sheet's
    rows, and the background analysis (the real model) reads that sheet."""
    import io

    import pandas as pd

    store = tmp_path / "store"
    book = io.BytesIO()
    q1, q2 = sample_frame.iloc[0:400:5], sample_frame.iloc[1:400:5].head(60)
    with pd.ExcelWriter(book) as writer:
        pd.DataFrame({"About": ["Exported from the shop"]}).to_excel(writer, sheet_name="Read me", index=False)
        q1.to_excel(writer, sheet_name="Q1", index=False)
        q2.to_excel(writer, sheet_name="Q2", index=False)
    at = _upload(monkeypatch, store, "export.xlsx", book.getvalue(),
                 "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    sheet = next(s for s in at.selectbox if s.label == "Sheet")
    assert sheet.options == ["Read me", "Q1", "Q2"] and sheet.value == "Q1"
    assert any("80 rows" in c.value for c in at.caption)
    sheet.set_value("Q2").run()
    with pytest.raises(InputError) as err:  # as a later workbook of an upload that lacks the sheet chosen
        jobs.preview_upload("export.xlsx", book.getvalue(), sheet="Q3")
    assert jobs.for_the_upload_form(err.value.fix) == (
        'Choose a sheet every uploaded workbook has in the "Sheet" choice, or upload this file on its own.')
    assert not at.exception, [e.message for e in at.exception]
    assert any("XLSX · sheet “Q2” · 60 rows" in c.value for c in at.caption)
    assert not any("80 rows" in c.value for c in at.caption)
    assert not any("Only sheet" in i.value for i in at.info)  # the choice is on screen, not in a note
    next(b for b in at.button if b.label == "Analyse this file").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    started = jobs.list_jobs(store)
    assert len(started) == 1
    assert json.loads((jobs.jobs_dir(store) / started[0].id / "job.json").read_text())["sheet"] == "Q2"
    status = _wait(store, started[0].id)
    assert status.state == "done", (status.error, status.fix)
    from pipelines.store import load_run

    assert set(load_run(store).messages["message_id"]) == set(q2["review_id"].astype(str))

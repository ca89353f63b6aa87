"""Background analyses: a file uploaded in the dashboard is analysed in its own process.

Owns the job folder and its status file. Each job lives in ``<store>/jobs/<job_id>/``::

    job.json       what to analyse: the file, the column mapping, the note (written once)
    status.json    state, current stage and progress, the run id or the error (replaced atomically)
    input/<name>   the uploaded file
    log.txt        the analysis process's own output, for a maintainer

The analysis runs in a separate, detached process (``python -m pipelines.jobs JOB_DIR``), so the
dashboard stays responsive for every user while it works and a closed browser tab does not stop it.
The run is published through :func:`pipelines.analyse.analyse_file` like any other: atomically, so a
failed or killed job leaves the previous runs untouched.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import pandas as pd

from pipelines.errors import FeedbackLensError, InputError
from pipelines.metrics import count_of
from pipelines.settings import ColumnMapping, Settings
from pipelines.store import new_run_id, pid_alive, write_atomic

ROOT = Path(__file__).resolve().parents[1]
_JOB_ID = re.compile(r"\d{8}-\d{6}-[0-9a-f]{4}")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]+")
STATES = ("queued", "running", "done", "failed")


@dataclass(frozen=True)
class JobStatus:
    """Where a background analysis stands."""

    id: str
    file: str
    state: str = "queued"
    stage: str = "Waiting to start"
    done: int = 0
    total: int | None = None
    run_id: str | None = None
    error: str | None = None
    fix: str | None = None
    messages: int | None = None
    topics: int | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    pid: int | None = None
    files: int = 1

    @property
    def finished(self) -> bool:
        """Done or failed: nothing more will happen."""
        return self.state in ("done", "failed")

    @property
    def fraction(self) -> float | None:
        """Progress of the current stage, 0..1, when it has a known size."""
        return min(1.0, self.done / self.total) if self.total else None


@dataclass(frozen=True)
class UploadPreview:
    """What the dashboard needs to ask for a column mapping: the columns, a guess for each role, a few rows."""

    file: str
    format: str
    rows: int
    columns: list[str]
    text: str | None
    date: str | None
    id: str | None
    sample: pd.DataFrame
    notes: list[str] = field(default_factory=list)  # what reading found: the sheet read, the encoding, ...
    sheet: str | None = None  # a workbook's sheet that was read
    sheets: list[str] = field(default_factory=list)  # a workbook's sheets with rows, to choose from


def _redacted(sample: pd.DataFrame) -> pd.DataFrame:
    """The preview's cells with personal data redacted, as the analysis will store them: the form is on screen
    (a projector, a shared desk), and nothing else the dashboard shows holds an e-mail address or a phone number."""
    from pipelines.redact import redact_texts

    out = sample.copy()
    for column in out.columns:
        given = out[column].notna().to_numpy()
        if given.any():
            out.loc[given, column] = redact_texts(out.loc[given, column].tolist())[0]
    return out


def preview_upload(file_name: str, data: bytes, sheet: str | None = None) -> UploadPreview:
    """Read an uploaded file the way the analysis will and guess its columns; ``sheet``: a workbook's sheet to
    read (``Settings.sheet``), else the first with rows.

    Raises:
        InputError: the file cannot be read (the message names the place and the fix, as for the CLI).
    """
    from pipelines.ingest import cell_text, longest_text_column, read_feedback_file, resolve_columns

    name = safe_file_name(file_name)
    with tempfile.TemporaryDirectory(prefix="feedback-lens-upload-") as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        table = read_feedback_file(path, sheet)
    try:
        guess = resolve_columns(table, ColumnMapping())
        text, date, id_ = guess.text, guess.date, guess.id
    except InputError:  # no column has a usual name: offer the one with the longest texts
        text = longest_text_column(table.frame, table.columns)
        date = id_ = None
    # Cells as the run will show them (a list "a, b", not its repr).
    sample = _redacted(table.frame[table.columns].head(5).map(cell_text).astype("string"))
    return UploadPreview(name, table.format, len(table.frame), table.columns, text, date, id_, sample, table.notes,
                         table.sheet, table.sheets)


def jobs_dir(store: Path) -> Path:
    """Folder holding the background jobs."""
    return Path(store) / "jobs"


def safe_file_name(name: str) -> str:
    """A file name that cannot leave the job folder (no path parts, no odd characters), keeping the extension."""
    base = _SAFE_NAME.sub("_", Path(str(name).replace("\\", "/")).name).strip(" .") or "upload"
    return base[:120]


def _write_status(job_dir: Path, status: JobStatus) -> None:
    write_atomic(job_dir / "status.json", json.dumps(asdict(status)).encode("utf-8"))


def read_status(job_dir: Path) -> JobStatus | None:
    """A job's status; a job whose process is gone while it claims to run is reported as failed."""
    try:
        raw = json.loads((Path(job_dir) / "status.json").read_text("utf-8"))
        status = JobStatus(**{k: v for k, v in raw.items() if k in JobStatus.__dataclass_fields__})
    except (OSError, ValueError, TypeError):
        return None
    if not status.finished and status.pid and not pid_alive(status.pid):
        status = replace(status, state="failed", error="The analysis stopped unexpectedly (its process ended).",
                         fix="Start it again; if it fails again, see log.txt in the job folder.")
    return status


def list_jobs(store: Path) -> list[JobStatus]:
    """Every job's status, newest first."""
    base = jobs_dir(store)
    if not base.exists():
        return []
    found = [read_status(p) for p in base.iterdir() if _JOB_ID.fullmatch(p.name) and p.is_dir()]
    return sorted((s for s in found if s is not None), key=lambda s: s.id, reverse=True)


def start_analysis(store: Path, file_name: str, data: bytes, mapping: ColumnMapping, note: str | None = None,
                   python: str | None = None, on_bad_date: str = "fail", timezone: str = "UTC",
                   date_order: str = "auto", add: bool = False, more: Sequence[tuple[str, bytes]] = (),
                   sheet: str | None = None) -> JobStatus:
    """Save an uploaded file in a new job folder and start analysing it in a detached process.

    ``on_bad_date``, ``timezone`` and ``date_order`` are the analysis settings of the same names (``fail`` or
    ``drop``; the zone of dates written without one; ``auto``, ``day-first`` or ``month-first``); ``add`` adds the
    file's messages to the latest run's (``--add``). ``more`` are further files (name, content) with the same
    columns, analysed after it as the command line analyses several files: each added to the run before it, all
    of them checked before the first is analysed. ``sheet`` is the sheet read from a workbook (``--sheet``).

    Returns:
        The job's first status (``queued``).

    Raises:
        InputError: an uploaded file is empty.
    """
    names: list[str] = []
    for given, content in [(file_name, data), *more]:
        name = safe_file_name(given)
        if not content:
            raise InputError(f"{name}: the file is empty (0 bytes).",
                             fix="Export the feedback again; the file has no data.")
        stem, suffix = Path(name).stem, Path(name).suffix
        # Two exports of the same name (from two folders) are two files, not one named twice.
        name = next(n for k in range(1, len(more) + 2) for n in [name if k == 1 else f"{stem} ({k}){suffix}"]
                    if n not in names)
        names.append(name)
    job_id = new_run_id()
    job_dir = jobs_dir(store) / job_id
    (job_dir / "input").mkdir(parents=True)
    for name, (_, content) in zip(names, [(file_name, data), *more], strict=True):
        write_atomic(job_dir / "input" / name, content)
    name = names[0]
    spec = {"file": name, "more_files": names[1:], "store": str(Path(store).resolve()), "note": note,
            "on_bad_date": on_bad_date,
            "timezone": timezone, "date_order": date_order, "add": add, "sheet": sheet,
            "mapping": {"text": mapping.text, "date": mapping.date, "id": mapping.id,
                        "metadata": list(mapping.metadata) if mapping.metadata is not None else None}}
    write_atomic(job_dir / "job.json", json.dumps(spec, indent=2).encode("utf-8"))
    now = time.time()
    shown = name if len(names) == 1 else f"{name} and {count_of(len(names) - 1, 'more file')}"
    status = JobStatus(id=job_id, file=shown, created_at=now, updated_at=now, files=len(names))
    _write_status(job_dir, status)
    with open(job_dir / "log.txt", "ab") as log:
        proc = subprocess.Popen([python or sys.executable, "-m", "pipelines.jobs", str(job_dir)], cwd=ROOT,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)  # survives the dashboard session that started it
    # Reap the process when it ends, so a crashed job is not kept "alive" as a zombie of this process.
    threading.Thread(target=proc.wait, daemon=True).start()
    status = replace(status, pid=proc.pid)
    _write_status(job_dir, status)
    return status


def remove_job(store: Path, job_id: str) -> None:
    """Forget a finished job (its run, if any, stays)."""
    if _JOB_ID.fullmatch(job_id):
        shutil.rmtree(jobs_dir(store) / job_id, ignore_errors=True)


class _StatusStage:
    def __init__(self, reporter: StatusFileReporter) -> None:
        self.reporter = reporter

    def advance(self, n: int) -> None:
        self.reporter.update(done=self.reporter.status.done + n)

    def describe(self, text: str) -> None:
        pass  # the stage name is what a user needs; details go to the log


class StatusFileReporter:
    """A progress reporter that keeps ``status.json`` current (at most twice a second, plus every stage change)."""

    def __init__(self, job_dir: Path, status: JobStatus) -> None:
        self.job_dir, self.status = Path(job_dir), status
        self._last = 0.0
        self.prefix = ""  # "File 2 of 3, feb.csv: " while one of several files is analysed

    def update(self, force: bool = False, **changes) -> None:
        """Change the status; written when forced or half a second after the last write."""
        self.status = replace(self.status, **changes, updated_at=time.time())
        if force or self.status.updated_at - self._last >= 0.5:
            self._last = self.status.updated_at
            _write_status(self.job_dir, self.status)

    @contextmanager
    def stage(self, name: str, total: int | None = None, unit: str = "msg") -> Iterator[_StatusStage]:
        self.update(force=True, state="running", stage=self.prefix + name, done=0, total=total)
        yield _StatusStage(self)
        self.update(force=True, done=total or 0)


# Errors say how to fix them on the command line; an upload's fix names the form's choices instead.
_FORM_WORDS = (
    (re.compile(r"map another column with --date, or pass --on-bad-date drop to skip those messages"),
     'choose another Date column, or "Skip those rows", when you upload the file again'),
    (re.compile(r"(?:pass )?--on-bad-date drop"), 'choose "Skip those rows" when you upload the file again'),
    (re.compile(r"--timezone(?: \S+)?"), "the time zone choice of the upload form"),
    (re.compile(r"use --add"), 'tick "Add these messages to the latest run\'s" when you upload the file'),
    (re.compile(r"without --add"), 'without "Add these messages to the latest run\'s"'),
    (re.compile(r"with --add"), 'with "Add these messages to the latest run\'s" ticked'),
    # In the form a missing sheet can only be a later workbook's: the "Sheet" choice is the first file's sheets.
    (re.compile(r"Give one of those names with --sheet \(or sheet: in the mapping file\), or leave it out to read the "
                r"first sheet with rows\."),
     'Choose a sheet every uploaded workbook has in the "Sheet" choice, or upload this file on its own.'),
    (re.compile(r"--text"), 'the "Message text" choice'),
    (re.compile(r"--date"), 'the "Date" choice'),
    (re.compile(r"--id"), 'the "Message id" choice'),
)


def for_the_upload_form(fix: str | None) -> str | None:
    """A command-line fix ("pass --on-bad-date drop") in the upload form's words ("choose "Skip those rows"")."""
    if not fix:
        return fix
    for pattern, words in _FORM_WORDS:
        fix = pattern.sub(words, fix)
    return fix


def run_job(job_dir: Path) -> int:
    """Analyse a job's file (in the job's own process) and record the outcome in its status. Exit code."""
    from pipelines.analyse import analyse_file, analyse_files

    job_dir = Path(job_dir)
    spec = json.loads((job_dir / "job.json").read_text("utf-8"))
    status = read_status(job_dir) or JobStatus(id=job_dir.name, file=spec["file"], created_at=time.time())
    reporter = StatusFileReporter(job_dir, replace(status, pid=os.getpid()))
    reporter.update(force=True, state="running", stage="Starting")
    m = spec["mapping"]
    mapping = ColumnMapping(text=m.get("text"), date=m.get("date"), id=m.get("id"),
                            metadata=tuple(m["metadata"]) if m.get("metadata") is not None else None)
    try:
        settings = Settings(store_dir=Path(spec["store"]), on_bad_date=spec.get("on_bad_date", "fail"),
                            assume_timezone=spec.get("timezone", "UTC"), date_order=spec.get("date_order", "auto"),
                            sheet=spec.get("sheet"))
        files = [job_dir / "input" / name for name in [spec["file"], *spec.get("more_files", [])]]

        def starting(i: int, file: Path, added: bool) -> None:
            reporter.prefix = f"File {i + 1} of {len(files)}, {file.name}: " if len(files) > 1 else ""

        add = bool(spec.get("add", False))
        # One file: its box names it, so its errors need not (the command line's "few.csv: not enough messages").
        summary = (analyse_file(files[0], mapping, settings, reporter, note=spec.get("note"), add=add)
                   if len(files) == 1 else
                   analyse_files(files, mapping, settings, reporter, note=spec.get("note"), add=add,
                                 starting=starting)[-1])
    except FeedbackLensError as err:
        reporter.update(force=True, state="failed", stage="Stopped", error=err.message,
                        fix=for_the_upload_form(err.fix))
        return 2
    except Exception as err:  # noqa: BLE001 - a job must always end with a status a user can read
        reporter.update(force=True, state="failed", stage="Stopped",
                        error=f"The analysis failed unexpectedly ({type(err).__name__}: {str(err)[:200]}).",
                        fix="See log.txt in the job folder, or run `feedback-lens analyse` on the file for details.")
        raise
    reporter.update(force=True, state="done", stage="Finished", run_id=summary.run_id, messages=summary.messages,
                    topics=summary.topics)
    print(summary.format(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run_job(Path(sys.argv[1])))

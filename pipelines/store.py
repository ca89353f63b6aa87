"""The run store: analysed runs on disk, published atomically, read without locks.

Layout under the store folder::

    runs/<run_id>/run.json            manifest (written last inside the run)
    runs/<run_id>/messages.parquet    one row per message: text, preview, date, metadata, topic, sentiment, x, y
    runs/<run_id>/topics.parquet      one row per topic: label, keywords, size, share, representatives
    runs/<run_id>/keywords.parquet    topic keywords with c-TF-IDF weights
    runs/<run_id>/embeddings.npy      message embeddings (float16, one row per message row; for semantic search)
    runs/.tmp-<run_id>-<pid>/         a run being written; never listed, removed once its writer is gone
    latest                            the id of the newest complete run (replaced atomically)
    cache/embeddings/<encoder>/       embedding cache shards

A run folder appears under ``runs/`` only by an atomic rename of a complete temporary folder, and
``latest`` moves only after that, so a reader sees the previous run or the new one, never half.
This is the contract between pipeline and dashboard: :func:`load_run` is the one reader.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.errors import StoreError, write_failure

RUN_TABLES = ("messages", "topics", "keywords")
OPTIONAL_TABLES = ("cube",)
"""Tables a run may hold besides :data:`RUN_TABLES` (runs from older versions lack them): ``cube``, the
messages counted per day, topic, tone and metadata value (:func:`pipelines.metrics.message_cube`)."""
TEXT_COLUMNS = ("text", "text_hash", "expectation_sentence", "preview")
"""The messages' long text columns. Readers that show a page of messages at a time leave them out of
memory and fetch the rows they show (:mod:`pipelines.message_texts`)."""
MESSAGE_ROW_GROUP = 20_000
"""Rows per Parquet row group of ``messages.parquet``: fetching a page of texts reads only the groups
that hold those rows, not the whole text column."""
PREVIEW_CHARS = 160
"""Length of a message's stored ``preview``: the start of its text on one line, what a map's hover shows."""


def message_preview(text: str, limit: int = PREVIEW_CHARS) -> str:
    """The start of ``text`` on one line (whitespace runs as one space), cut to ``limit`` characters with "…"."""
    text = str(text)
    # Flattening a long text's start gives the start of the flattened text: no need to split all of it.
    flat = " ".join(text[: 2 * limit].split())
    if len(flat) <= limit:
        flat = " ".join(text.split())
    return flat[: limit - 1] + "…" if len(flat) > limit else flat
RUN_ARRAYS = ("embeddings",)
"""Optional arrays a run may hold (runs from older versions lack them)."""
_RUN_ID = re.compile(r"\d{8}-\d{6}-[0-9a-f]{4}")
FORMAT_VERSION = 1


@dataclass
class Run:
    """One published run, loaded read-only."""

    id: str
    path: Path
    manifest: dict
    messages: pd.DataFrame
    topics: pd.DataFrame
    keywords: pd.DataFrame

    @property
    def time_zone(self) -> str:
        """The zone whose days, weeks and months the run's figures count, and whose clock its times are shown on
        (``--timezone``; UTC for runs that name none)."""
        return run_time_zone(self.manifest)


def run_time_zone(manifest: dict) -> str:
    """The time zone a run's manifest names (``--timezone``), UTC when it names none."""
    return str((manifest.get("settings") or {}).get("assume_timezone") or "UTC")


def latest_time_zone(store: Path) -> str:
    """The time zone of the store's latest run: files added to it are read in it. UTC when there is no run."""
    latest = latest_run_id(store)
    return next((run_time_zone(m) for m in list_runs(store) if m["id"] == latest), "UTC")


def runs_dir(store: Path) -> Path:
    """Folder holding the published runs."""
    return Path(store) / "runs"


def cache_dir(store: Path) -> Path:
    """Folder holding the embedding cache."""
    return Path(store) / "cache" / "embeddings"


def redaction_cache_dir(store: Path) -> Path:
    """Folder holding the redactions remembered between runs (:mod:`pipelines.redaction_cache`)."""
    return Path(store) / "cache" / "redactions"


_last_in_second: dict[str, int] = {}
"""The highest fraction given to an id of each second in this process."""


def new_run_id(now: float | None = None) -> str:
    """Time-ordered id such as ``20261123-142501-3f9a``: the time to the second, then the fraction of that second
    in 65536ths.

    Runs are listed in id order. The four hex digits used to be random, so two runs started within one second
    (a small file added just after another) were listed in a random order, the older one first. Ids made in
    this process never repeat and follow one another: one that would equal or precede the last one made in its
    second follows it instead.
    """
    now = time.time() if now is None else now
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
    fraction = min(max(int(now % 1 * 65536), _last_in_second.get(stamp, -1) + 1), 65535)
    _last_in_second[stamp] = fraction
    return f"{stamp}-{fraction:04x}"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id is running (on this machine)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_abandoned(store: Path) -> list[str]:
    """Delete temporary run folders whose writer process is gone (a crash or a kill)."""
    removed = []
    base = runs_dir(store)
    if not base.exists():
        return removed
    for tmp in base.glob(".tmp-*"):
        try:
            pid = int(tmp.name.rsplit("-", 1)[-1])
        except ValueError:
            pid = -1
        if pid != os.getpid() and (pid < 0 or not pid_alive(pid)):
            shutil.rmtree(tmp, ignore_errors=True)
            removed.append(tmp.name)
    return removed


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MB blocks (input files and snapshot files can be large)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new content, never a mix."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def exchange_folders(a: Path, b: Path) -> bool:
    """Swap two folders in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported.

    Replacing a folder by renaming the old one away and the new one in leaves a moment with neither;
    a crash in that moment would lose the old one. The exchange has no such moment.
    """
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        _fsync_dir(Path(a).parent)
        return True
    err = ctypes.get_errno()
    if err in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: this file system or kernel cannot exchange
        return False
    raise OSError(err, os.strerror(err), str(b))


def publish_run(store: Path, run_id: str, tables: dict[str, pd.DataFrame], manifest: dict,
                arrays: dict[str, np.ndarray] | None = None) -> Path:
    """Write a complete run (tables, optional ``arrays`` from :data:`RUN_ARRAYS`) and make it the latest, atomically.

    Raises:
        StoreError: the store cannot be written (permissions, full disk); the previous run stays.
    """
    unknown = set(tables) - {*RUN_TABLES, *OPTIONAL_TABLES}
    if unknown:  # a table no reader would look for is a mistake, not something to drop quietly
        raise ValueError(f"unknown run table(s) {sorted(unknown)}")
    store = Path(store)
    base = runs_dir(store)
    tmp = base / f".tmp-{run_id}-{os.getpid()}"
    final = base / run_id
    try:
        base.mkdir(parents=True, exist_ok=True)
        remove_abandoned(store)
        tmp.mkdir()
        messages = tables["messages"]
        if "text" in messages and "preview" not in messages:
            # Maps and lists of a large run read this short column from disk instead of the whole texts.
            tables = {**tables, "messages": messages.assign(preview=[message_preview(t) for t in messages["text"]])}
        for name in (*RUN_TABLES, *(t for t in OPTIONAL_TABLES if t in tables)):
            tables[name].to_parquet(tmp / f"{name}.parquet", index=False, row_group_size=MESSAGE_ROW_GROUP)
        for name, array in (arrays or {}).items():
            if name not in RUN_ARRAYS:
                raise ValueError(f"unknown run array {name!r}")
            np.save(tmp / f"{name}.npy", array, allow_pickle=False)
        manifest = {**manifest, "id": run_id, "format_version": FORMAT_VERSION, "complete": True}
        write_atomic(tmp / "run.json", json.dumps(manifest, indent=2, default=str).encode("utf-8"))
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        _fsync_dir(tmp)
        os.rename(tmp, final)
        _fsync_dir(base)
        write_atomic(store / "latest", run_id.encode("utf-8"))
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        reason, fix = write_failure(err, "--store")
        raise StoreError(
            f"Could not write the run to {store}: {reason}. The previous run is unchanged.",
            fix=f"{fix[:-1]}, then run the analysis again.",
        ) from None
    return final


def _read_manifest(path: Path) -> dict | None:
    try:
        manifest = json.loads((path / "run.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if not manifest.get("complete") or not all((path / f"{t}.parquet").exists() for t in RUN_TABLES):
        return None
    return manifest


def list_runs(store: Path) -> list[dict]:
    """Manifests of the complete runs, newest first."""
    base = runs_dir(store)
    if not base.exists():
        return []
    found = []
    for p in base.iterdir():
        if not _RUN_ID.fullmatch(p.name) or not p.is_dir():
            continue
        manifest = _read_manifest(p)
        if manifest is not None:
            found.append(manifest)
    return sorted(found, key=lambda m: m["id"], reverse=True)


def runs_on_the_way(runs: list[dict]) -> set[str]:
    """Ids of the runs that several files analysed together published before their last file's run (each file is
    added to the run before it); the last one holds them all. A batch stopped part-way keeps its last run listed."""
    last: dict[str, tuple[int, str]] = {}
    for m in runs:
        batch = m.get("batch") or {}
        if batch.get("id"):
            last[batch["id"]] = max(last.get(batch["id"], (0, "")), (int(batch.get("file", 0)), m["id"]))
    return {m["id"] for m in runs if (m.get("batch") or {}).get("id") and last[m["batch"]["id"]][1] != m["id"]}


def latest_run_id(store: Path) -> str | None:
    """The run ``latest`` points to, or the newest complete run if the pointer is missing or stale."""
    store = Path(store)
    try:
        run_id = (store / "latest").read_text("utf-8").strip()
        if _RUN_ID.fullmatch(run_id) and _read_manifest(runs_dir(store) / run_id) is not None:
            return run_id
    except OSError:
        pass
    runs = list_runs(store)
    return runs[0]["id"] if runs else None


def load_run(store: Path, run_id: str | None = None, texts: bool = True) -> Run:
    """Load a run (the latest by default); with ``texts=False`` its messages without :data:`TEXT_COLUMNS`.

    Row ``i`` of ``run.messages`` (index ``i``) is row ``i`` of ``messages.parquet`` either way, which is how
    :class:`pipelines.message_texts.MessageTexts` finds the texts of rows loaded without them.

    Raises:
        StoreError: there is no run yet, or the named run does not exist.
    """
    store = Path(store)
    if not store.is_dir():  # a mistyped --store is no empty store
        raise missing_store_error(store)
    run_id = run_id or latest_run_id(store)
    if run_id is None:
        raise StoreError(f"No analysed run in {store} yet.",
                         fix="Run `feedback-lens analyse FILE` (or `make run` for the bundled sample).")
    path = runs_dir(store) / run_id
    manifest = _read_manifest(path) if _RUN_ID.fullmatch(run_id) else None
    if manifest is None:
        raise StoreError(f'There is no complete run "{run_id}" in {store}.', fix="Run `feedback-lens runs` to list the runs.")
    frames = {t: pd.read_parquet(path / f"{t}.parquet") for t in RUN_TABLES if t != "messages"}
    columns = None
    if not texts:
        import pyarrow.parquet as pq

        columns = [c for c in pq.read_schema(path / "messages.parquet").names if c not in TEXT_COLUMNS]
    frames["messages"] = pd.read_parquet(path / "messages.parquet", columns=columns)
    return Run(run_id, path, manifest, frames["messages"], frames["topics"], frames["keywords"])


def load_run_table(run: Run, name: str) -> pd.DataFrame | None:
    """One of a run's :data:`OPTIONAL_TABLES`; ``None`` when the run has none (older runs) or it cannot be read."""
    if name not in OPTIONAL_TABLES:
        raise ValueError(f"unknown optional run table {name!r}")
    try:
        return pd.read_parquet(run.path / f"{name}.parquet")
    except (OSError, ValueError):
        return None


def load_run_array(run: Run, name: str) -> np.ndarray | None:
    """One of a run's optional arrays, memory-mapped read-only; ``None`` when the run has none (older runs).

    The array's rows follow the rows of ``run.messages`` as loaded.
    """
    path = run.path / f"{name}.npy"
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return None
    return array if len(array) == len(run.messages) else None


def missing_store_error(store: str | Path) -> StoreError:
    """The error for a store folder that does not exist: most often a mistyped --store, not an empty store."""
    return StoreError(f"There is no run store folder {store}.",
                      fix="Check the folder given with --store (or $FEEDBACK_LENS_STORE); `feedback-lens analyse FILE` "
                          "creates it with the first run.")


def input_files(manifest: dict) -> list[str]:
    """The names of the files a run holds, first to last (a run made before the list was kept: its one file)."""
    return list(manifest.get("files") or [(manifest.get("input") or {}).get("name", "")])


def files_in_words(manifest: dict, shown: int = 2) -> str:
    """'reviews.csv', 'jan.csv + feb.csv', or 'jan.csv + 3 more files': the files a run holds."""
    files = [f for f in input_files(manifest) if f]
    return " + ".join(files) if len(files) <= shown else f"{files[0]} + {len(files) - 1} more files"

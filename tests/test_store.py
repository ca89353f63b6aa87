"""The run store: atomic publishing, readers never see half a run, disk errors keep the previous run."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from pipelines import store as store_mod
from pipelines.errors import StoreError
from pipelines.store import latest_run_id, list_runs, load_run, message_preview, publish_run, remove_abandoned, runs_dir


def _tables(n: int = 3) -> dict[str, pd.DataFrame]:
    messages = pd.DataFrame({"message_id": [f"m{i}" for i in range(n)], "text": ["hello"] * n, "topic": [0] * n})
    topics = pd.DataFrame({"topic": [0], "label": ["greeting · hello"], "keywords": [["hello"]], "size": [n]})
    keywords = pd.DataFrame({"topic": [0], "rank": [1], "word": ["hello"], "weight": [1.0]})
    return {"messages": messages, "topics": topics, "keywords": keywords}


def _manifest() -> dict:
    return {"counts": {"messages": 3, "topics": 1}, "input": {"name": "f.csv"}}


def test_publish_and_load_round_trip(tmp_path):
    publish_run(tmp_path, "20260101-000000-aaaa", _tables(), _manifest())
    run = load_run(tmp_path)
    assert run.id == "20260101-000000-aaaa"
    assert run.manifest["complete"] is True
    assert run.topics["keywords"].iloc[0].tolist() == ["hello"]
    # The store adds each message's one-line preview (what maps and large-run lists read from disk).
    expected = _tables()["messages"]
    pd.testing.assert_frame_equal(run.messages, expected.assign(preview=[message_preview(t) for t in expected["text"]]))


def test_runs_started_within_one_second_are_listed_newest_first(tmp_path):
    """A small file added a fraction of a second after another run started was listed below it half the time (the
    id's last part was random), and `feedback-lens runs`, the Data page and the runs made on the way follow this
    order."""
    from pipelines.store import _RUN_ID, new_run_id

    t = 1_796_000_000.0  # a whole second
    ids = [new_run_id(t + f) for f in (0.0, 0.2, 0.5, 0.9998)]
    assert ids == sorted(ids) and len(set(ids)) == 4 and all(_RUN_ID.fullmatch(i) for i in ids)
    assert ids[0].endswith("-0000") and ids[1][:-5] == ids[3][:-5]  # the same second, told apart by its fraction
    assert new_run_id(t + 0.5) > ids[2]  # the same instant twice in one process: a new id all the same
    assert new_run_id(t - 3600) < ids[0]  # a time given (an analysis' start) keeps its place
    made = [new_run_id() for _ in range(200)]  # back to back, many within one 65536th of a second
    assert made == sorted(made) and len(set(made)) == 200
    for i, run_id in enumerate(ids):
        publish_run(tmp_path, run_id, _tables(), _manifest() | {"counts": {"messages": i, "topics": 1}})
    assert [m["counts"]["messages"] for m in list_runs(tmp_path)] == [3, 2, 1, 0]


def test_latest_moves_only_to_complete_runs(tmp_path):
    publish_run(tmp_path, "20260101-000000-aaaa", _tables(), _manifest())
    publish_run(tmp_path, "20260102-000000-bbbb", _tables(5), _manifest())
    assert latest_run_id(tmp_path) == "20260102-000000-bbbb"
    assert [m["id"] for m in list_runs(tmp_path)] == ["20260102-000000-bbbb", "20260101-000000-aaaa"]
    # The older run stays readable by id.
    assert len(load_run(tmp_path, "20260101-000000-aaaa").messages) == 3


def test_no_run_yet_says_how_to_make_one(tmp_path):
    with pytest.raises(StoreError) as info:
        load_run(tmp_path)
    assert str(info.value) == (
        f"No analysed run in {tmp_path} yet.\n"
        "  How to fix: Run `feedback-lens analyse FILE` (or `make run` for the bundled sample)."
    )


def test_half_written_run_is_invisible_and_cleaned_up(tmp_path):
    publish_run(tmp_path, "20260101-000000-aaaa", _tables(), _manifest())
    # A writer that died (its pid is gone) left a temporary folder and an incomplete run folder.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    debris = runs_dir(tmp_path) / f".tmp-20260103-000000-cccc-{dead.stdout.strip()}"
    debris.mkdir()
    (debris / "messages.parquet").write_bytes(b"partial")
    incomplete = runs_dir(tmp_path) / "20260104-000000-dddd"
    incomplete.mkdir()
    (incomplete / "run.json").write_text('{"id": "20260104-000000-dddd"}')
    assert [m["id"] for m in list_runs(tmp_path)] == ["20260101-000000-aaaa"]
    assert latest_run_id(tmp_path) == "20260101-000000-aaaa"
    assert remove_abandoned(tmp_path) == [debris.name]
    assert not debris.exists()


def test_stale_latest_pointer_falls_back_to_newest_complete_run(tmp_path):
    publish_run(tmp_path, "20260101-000000-aaaa", _tables(), _manifest())
    (tmp_path / "latest").write_text("20991231-000000-gone")
    assert latest_run_id(tmp_path) == "20260101-000000-aaaa"


def test_full_disk_gives_clear_error_and_keeps_previous_run(tmp_path, monkeypatch):
    publish_run(tmp_path, "20260101-000000-aaaa", _tables(), _manifest())

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(pd.DataFrame, "to_parquet", full)
    with pytest.raises(StoreError) as info:
        publish_run(tmp_path, "20260102-000000-bbbb", _tables(), _manifest())
    assert str(info.value) == (
        f"Could not write the run to {tmp_path}: the disk is full. The previous run is unchanged.\n"
        "  How to fix: Free disk space or choose another folder with --store, then run the analysis again."
    )
    assert latest_run_id(tmp_path) == "20260101-000000-aaaa"
    assert not list(runs_dir(tmp_path).glob(".tmp-*"))


def test_killed_between_write_and_rename(tmp_path):
    """A process killed at the worst moment (complete temp folder, not yet renamed) changes nothing."""
    publish_run(tmp_path, "20260101-000000-aaaa", _tables(), _manifest())
    root = str(Path(store_mod.__file__).resolve().parents[1])
    code = (
        f"import os, signal, sys; sys.path.insert(0, {root!r})\n"
        "from pipelines import store\n"
        "import tests.test_store as t\n"
        "store.os.rename = lambda *a: os.kill(os.getpid(), signal.SIGKILL)\n"
        f"store.publish_run({str(tmp_path)!r}, '20260102-000000-bbbb', t._tables(), t._manifest())\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, cwd=root)
    assert proc.returncode == -9
    assert list(runs_dir(tmp_path).glob(".tmp-*")), "the killed writer should have left its temp folder"
    assert latest_run_id(tmp_path) == "20260101-000000-aaaa"
    assert len(load_run(tmp_path).messages) == 3
    publish_run(tmp_path, "20260103-000000-cccc", _tables(4), _manifest())
    assert latest_run_id(tmp_path) == "20260103-000000-cccc"
    assert not list(runs_dir(tmp_path).glob(".tmp-*"))


def test_run_arrays_are_stored_with_the_run_and_memory_mapped(tmp_path):
    import numpy as np

    from pipelines.store import load_run_array

    vectors = np.arange(12, dtype=np.float16).reshape(3, 4)
    publish_run(tmp_path, "20260101-000000-aaaa", _tables(), _manifest(), arrays={"embeddings": vectors})
    run = load_run(tmp_path)
    loaded = load_run_array(run, "embeddings")
    assert isinstance(loaded, np.memmap) and not loaded.flags.writeable
    np.testing.assert_array_equal(loaded, vectors)
    publish_run(tmp_path, "20260102-000000-bbbb", _tables(), _manifest())  # a run from before embeddings were kept
    assert load_run_array(load_run(tmp_path), "embeddings") is None
    with pytest.raises(ValueError):
        publish_run(tmp_path, "20260103-000000-cccc", _tables(), _manifest(), arrays={"other": vectors})
    with pytest.raises(ValueError, match="unknown run table"):
        publish_run(tmp_path, "20260103-000000-cccc", {**_tables(), "other": _tables()["topics"]}, _manifest())
    assert [r["id"] for r in list_runs(tmp_path)] == ["20260102-000000-bbbb", "20260101-000000-aaaa"]


def test_exchange_folders_swaps_two_folders_in_one_step(tmp_path):
    from pipelines.store import exchange_folders

    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "report.html").write_text("new")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "report.html").write_text("old")
    if not exchange_folders(tmp_path / "new", tmp_path / "old"):
        pytest.skip("this file system cannot exchange folders; publishing falls back to two renames")
    assert (tmp_path / "old" / "report.html").read_text() == "new"
    assert (tmp_path / "new" / "report.html").read_text() == "old"

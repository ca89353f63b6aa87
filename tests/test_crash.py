"""SIGKILL at random moments: 20 analyses, 20 snapshots and 20 curation edits killed mid-way.

After every kill, what a reader sees is whole: the previous run (or a complete new one), every
snapshot that existed before, every curation edit either there entirely or not at all. No
temporary folder is ever listed, and the next analysis, snapshot or edit succeeds and sweeps up
what the killed writer left. The moments are drawn from a seeded generator (reproducible),
spread over the length of an uninterrupted run, measured first and again whenever a trial runs to the
end (a busy machine makes the first measure long). Trials go on until 20 writers were killed mid-way,
at most 40 attempts; the ones that finish before their kill are checked too.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pipelines.store import latest_run_id, list_runs, load_run, runs_dir

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "pipelines.cli"]
TRIALS = 20
ATTEMPTS = 2 * TRIALS


def _timed(args: list[str]) -> float:
    t = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return time.perf_counter() - t


def _run_killed_after(args: list[str], delay: float) -> float | None:
    """Start ``args``, SIGKILL it after ``delay`` seconds: None if killed, else the seconds it took to finish."""
    t = time.perf_counter()
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=delay)
        return time.perf_counter() - t
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        return None


def _kill_at_random_moments(args_for: Callable[[int], list[str]], full: float, seed: int,
                            check: Callable[[bool], None]) -> int:
    """Run ``args_for(attempt)`` and kill it at a random moment of its expected length until ``TRIALS`` were killed.

    ``check(was_killed)`` runs after every attempt. The expected length starts at ``full`` and drops to any
    shorter uninterrupted attempt. Returns how many attempts it took (at most ``ATTEMPTS``).
    """
    rnd = random.Random(seed)
    killed = 0
    for attempt in range(ATTEMPTS):
        took = _run_killed_after(args_for(attempt), rnd.uniform(0.2, full * 0.95))
        check(took is None)
        if took is None:
            killed += 1
            if killed == TRIALS:
                return attempt + 1
        else:
            full = min(full, took)
    raise AssertionError(f"only {killed} of {ATTEMPTS} attempts were killed mid-way")


def test_killing_analyses_at_random_moments_never_shows_a_partial_run(real_run_store, sample_frame, tmp_path):
    store = tmp_path / "store"
    shutil.copytree(real_run_store, store)
    inputs = []
    for trial in range(ATTEMPTS + 2):  # new messages every time, so each analysis embeds and fits for real
        path = tmp_path / f"new-{trial}.csv"
        sample_frame.iloc[1 + trial : 4000 : 97].to_csv(path, index=False)
        inputs.append(path)
    full = _timed([*CLI, "analyse", str(inputs[0]), "--store", str(store), "--quiet"])
    published = {r["id"] for r in list_runs(store)}
    before = latest_run_id(store)

    def check(was_killed: bool) -> None:
        nonlocal before, published
        runs = list_runs(store)
        ids = {r["id"] for r in runs}
        new = ids - published
        assert len(new) <= (0 if was_killed and latest_run_id(store) == before else 1)
        assert latest_run_id(store) in ids
        for run_id in ids:  # every listed run is whole
            run = load_run(store, run_id)
            assert len(run.messages) == run.manifest["counts"]["messages"]
        published |= ids
        before = latest_run_id(store)

    _kill_at_random_moments(
        lambda attempt: [*CLI, "analyse", str(inputs[attempt + 1]), "--store", str(store), "--quiet"], full, 9, check)
    proc = subprocess.run([*CLI, "analyse", str(inputs[-1]), "--store", str(store), "--quiet"],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not [p.name for p in runs_dir(store).iterdir() if p.name.startswith(".")]


def test_killing_snapshots_at_random_moments_never_loses_one(real_run_store, tmp_path):
    from pipelines.snapshot import list_snapshots
    from tests.test_e2e_browser import chromium_path

    chromium_path()  # the chart images are drawn in Chromium
    out = tmp_path / "snapshots"
    make = [*CLI, "snapshot", "--store", str(real_run_store), "--out", str(out), "--period", "last-month"]
    _timed(make)  # the first one also starts the chart renderer cold: time the re-make that the kills interrupt
    full = _timed(make)
    first = list_snapshots(out)
    assert len(first) == 1
    name = first[0]["name"]

    def check(was_killed: bool) -> None:
        shots = list_snapshots(out)
        assert [s["name"] for s in shots] == [name], "the snapshot went missing"
        folder = out / name
        for f in shots[0]["files"]:  # the files the manifest lists are there, whole
            assert (folder / f["path"]).stat().st_size == f["bytes"]
        index = json.loads((out / "index.json").read_text("utf-8"))
        assert [s["name"] for s in index["snapshots"]] == [name]

    _kill_at_random_moments(lambda attempt: make, full, 11, check)
    _timed(make)
    assert not [p.name for p in out.iterdir() if p.name.startswith((".tmp-", ".old-"))]


_EDITOR = """
import sys
from pathlib import Path
from pipelines.curation import Curator
from pipelines.store import load_run
cur = Curator(Path(sys.argv[1]))
topics = load_run(Path(sys.argv[1])).topics
keys = list(topics.loc[topics["topic"] >= 0, "key"])[:3]
print("ready", flush=True)
i = 0
while True:
    cur.rename(keys[i % 3], "name %d" % i, user="crash")
    i += 1
"""


def test_killing_an_editor_at_random_moments_keeps_every_edit_whole(real_run_store, tmp_path):
    from pipelines.curation import CurationLog, Curator, derive_state, load_curated_run

    store = tmp_path / "store"
    shutil.copytree(real_run_store, store)
    rnd = random.Random(13)
    for _ in range(TRIALS):
        proc = subprocess.Popen([sys.executable, "-c", _EDITOR, str(store)], cwd=ROOT, stdout=subprocess.PIPE,
                                text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rnd.uniform(0, 0.5))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        proc.stdout.close()
        events = CurationLog(store).events()  # readable, every event whole and in order
        assert [e.id for e in events] == sorted(e.id for e in events)
        if events:
            last = events[-1].payload
            assert derive_state(events).labels[last["key"]] == last["label"]
            topics = load_curated_run(store).run.topics.set_index("key")
            assert topics.at[last["key"], "label"] == last["label"]
    topics = load_run(store).topics
    key = topics.loc[topics["topic"] >= 0, "key"].iloc[0]
    Curator(store).rename(key, "after the crashes", user="ana")  # the log still takes edits
    assert load_curated_run(store).run.topics.set_index("key").at[key, "label"] == "after the crashes"

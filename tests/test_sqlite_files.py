"""SQLite files written by several processes at once (pipelines.sqlite_files)."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3

from pipelines.sqlite_files import connect_wal


def _open_at_once(path: str, barrier, errors) -> None:
    barrier.wait()
    try:
        con = connect_wal(path, 15)
        con.execute("CREATE TABLE IF NOT EXISTS events (x)")
        con.execute("INSERT INTO events VALUES (1)")
        con.close()
    except sqlite3.Error as err:
        errors.put(str(err))


def test_processes_opening_a_new_file_at_the_same_moment_all_get_in(tmp_path):
    # Four processes switching a new file to WAL at once: plain "PRAGMA journal_mode=WAL" failed with
    # "database is locked" in about a third of such rounds here (a deadlock SQLite answers at once).
    ctx = mp.get_context("fork")
    errors = ctx.Queue()
    for round_ in range(12):
        path = str(tmp_path / f"{round_}.db")
        barrier = ctx.Barrier(4)
        workers = [ctx.Process(target=_open_at_once, args=(path, barrier, errors)) for _ in range(4)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout=60)
        assert [w.exitcode for w in workers] == [0, 0, 0, 0]
        con = sqlite3.connect(path)
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert con.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 4
        con.close()
    assert errors.empty()

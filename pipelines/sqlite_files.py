"""SQLite files that several processes write: the curation log, the failed sign-in log.

Owns: opening them in WAL mode (many readers, one writer at a time) so that a writer waits for
another instead of failing.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

_RETRY_S = 0.02


def connect_wal(path: Path | str, timeout_s: float) -> sqlite3.Connection:
    """An autocommit connection to ``path`` in WAL mode that waits up to ``timeout_s`` for other processes.

    Switching a new file to WAL needs an exclusive lock. When two processes try at the same moment
    (two analysts' first edits), SQLite sees a deadlock and answers "database is locked" at once,
    without waiting, so the switch is retried until ``timeout_s``. The mode is stored in the file:
    later connections find it already set and take no exclusive lock.

    Raises:
        sqlite3.OperationalError: the file stayed locked for ``timeout_s``, or cannot be opened.
    """
    con = sqlite3.connect(path, timeout=timeout_s, isolation_level=None)
    try:
        con.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                mode = con.execute("PRAGMA journal_mode").fetchone()[0]
                if str(mode).lower() == "wal" or str(con.execute("PRAGMA journal_mode=WAL").fetchone()[0]).lower() == "wal":
                    return con
                error: sqlite3.OperationalError = sqlite3.OperationalError("database is locked")
            except sqlite3.OperationalError as err:
                if "locked" not in str(err) and "busy" not in str(err):
                    raise
                error = err
            if time.monotonic() >= deadline:
                raise error
            time.sleep(_RETRY_S)
    except BaseException:
        con.close()
        raise

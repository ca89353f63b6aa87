"""The texts of a run's messages, read from disk a page at a time (DuckDB over ``messages.parquet``).

A run of a million complaint narratives holds about a gigabyte of text. The dashboard keeps its
messages in memory without their texts (``load_run(..., texts=False)``) and asks this module for
the texts of the rows it shows (a page of a list, the points of a map, one topic's messages) and
for the rows whose text contains a search's words (whole words, as :func:`pipelines.metrics.search_messages`). Rows are positions in ``messages.parquet``,
which are also the index of the messages as loaded; the file is written in row groups
(:data:`pipelines.store.MESSAGE_ROW_GROUP`), so a page reads only the groups that hold its rows.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.metrics import search_terms, term_pattern
from pipelines.store import TEXT_COLUMNS


class MessageTexts:
    """Read-only access to the text columns of one run's ``messages.parquet``.

    Safe to share between threads (each call runs on its own DuckDB cursor), so one instance can
    serve every dashboard session showing the run.
    """

    def __init__(self, path: Path) -> None:
        import duckdb
        import pyarrow.parquet as pq

        self.path = Path(path)
        self.columns = tuple(c for c in pq.read_schema(self.path).names if c in TEXT_COLUMNS)
        self._db = duckdb.connect(":memory:")
        self._lock = threading.Lock()
        self._source = f"read_parquet('{_quoted(self.path)}', file_row_number = true)"

    def _cursor(self):
        with self._lock:
            return self._db.cursor()

    def fetch(self, rows: Sequence[int] | np.ndarray, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """The text columns (by default all but the short ``preview``) of ``rows``, indexed by row, in the order given.

        Raises:
            KeyError: a row is not in the file.
        """
        rows = np.asarray(rows, dtype=np.int64)
        columns = [c for c in (columns or self.columns) if c in self.columns and (columns or c != "preview")]
        if rows.size == 0:
            return pd.DataFrame({c: pd.Series(dtype=object) for c in columns}, index=pd.Index(rows))
        wanted = ", ".join(f'"{c}"' for c in columns)
        found = self._cursor().execute(
            f"SELECT file_row_number AS row, {wanted} FROM {self._source} "
            "WHERE file_row_number IN (SELECT unnest($rows))", {"rows": np.unique(rows).tolist()}).df()
        found = found.set_index("row").astype({c: object for c in columns})
        missing = np.setdiff1d(rows, found.index.to_numpy())
        if missing.size:
            raise KeyError(f"rows not in {self.path.name}: {missing[:5].tolist()}")
        out = found.loc[rows]
        out.index.name = None
        return out

    def attach(self, messages: pd.DataFrame, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """``messages`` (rows of the run as loaded without texts) with their text columns added."""
        return messages.join(self.fetch(messages.index.to_numpy(), columns))

    def matching(self, query: str, rows: np.ndarray | None = None) -> np.ndarray:
        """Rows (sorted) whose text contains every word (and quoted phrase) of ``query`` as whole words, any case,
        like :func:`pipelines.metrics.search_messages`; only among ``rows`` when given. All rows for an empty query."""
        terms = search_terms(query)
        if not terms:
            return np.arange(self.count()) if rows is None else np.sort(np.asarray(rows, dtype=np.int64))
        # A case-insensitive regex (any apostrophe for any) runs about twice as fast here as contains(lower(text)),
        # which lower-cases every text first.
        where = " AND ".join(f"regexp_matches(text, $t{i}, 'i')" for i in range(len(terms)))
        found = self._cursor().execute(
            f"SELECT file_row_number AS row FROM {self._source} WHERE {where} ORDER BY row",
            {f"t{i}": term_pattern(t, re2=True) for i, t in enumerate(terms)}).fetchnumpy()["row"].astype(np.int64)
        return found if rows is None else found[np.isin(found, rows)]

    def column(self, name: str):
        """All of one text column, in row order, as one Arrow array (compact: no Python string per row).

        Meant for the short ``preview``: a million previews take about 170 MB this way.
        """
        import pyarrow.parquet as pq

        if name not in self.columns:
            raise KeyError(f"{self.path.name} has no text column {name!r}")
        return pq.read_table(self.path, columns=[name]).column(name).combine_chunks()

    def count(self) -> int:
        """How many messages the file holds."""
        return int(self._cursor().execute(f"SELECT count(*) FROM read_parquet('{_quoted(self.path)}')").fetchone()[0])


def _quoted(path: Path) -> str:
    return str(path).replace("'", "''")

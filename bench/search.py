"""Benchmark: keyword search over a run's texts on disk, against the previous query, side by side.

Run by hand (not a test) on a run that ``bench/dashboard.py`` made, e.g. at a million messages::

    .venv/bin/python bench/dashboard.py --sizes 1000000 --runs /tmp/dash   # once: makes /tmp/dash/store-1000000
    .venv/bin/python bench/search.py --store /tmp/dash/store-1000000 [--repeat 5]

Times :meth:`pipelines.message_texts.MessageTexts.matching` (each word as a case-insensitive DuckDB regex,
any apostrophe for any) and the query it replaced (``contains(lower(text), word)`` for each word) on the
same words, alternating, and checks both find the same rows where no apostrophe is involved. Prints a
markdown table (medians); writes nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipelines.message_texts import MessageTexts  # noqa: E402
from pipelines.metrics import search_terms  # noqa: E402
from pipelines.store import latest_run_id, runs_dir  # noqa: E402

QUERIES = ("refund", "late fee", "credit report error", "don't", "zzzz-not-there")


def previous_query(texts: MessageTexts, query: str) -> np.ndarray:
    """The search as it was before: a lower-cased substring test per word (straight apostrophes only)."""
    terms = search_terms(query)
    where = " AND ".join(f"contains(lower(text), $t{i})" for i in range(len(terms)))
    return texts._cursor().execute(
        f"SELECT file_row_number AS row FROM {texts._source} WHERE {where} ORDER BY row",
        {f"t{i}": t.lower() for i, t in enumerate(terms)}).fetchnumpy()["row"].astype(np.int64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", type=Path, required=True, help="a store with a run (e.g. one bench/dashboard.py made)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    run_id = latest_run_id(args.store)
    if run_id is None:
        raise SystemExit(f"No run in {args.store}: make one with bench/dashboard.py --runs (see the docstring).")
    texts = MessageTexts(runs_dir(args.store) / run_id / "messages.parquet")
    n = texts.count()
    print(f"Keyword search over {n:,} messages on disk; {os.cpu_count()} CPU cores, 1-minute load "
          f"{os.getloadavg()[0]:.1f}; medians of {args.repeat}.\n")
    print("| words | found | previous query s | now s | ratio |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for query in QUERIES:
        before, after = [], []
        for _ in range(args.repeat):
            t = time.perf_counter()
            old = previous_query(texts, query)
            before.append(time.perf_counter() - t)
            t = time.perf_counter()
            new = texts.matching(query)
            after.append(time.perf_counter() - t)
        if "'" not in query:
            assert old.tolist() == new.tolist(), query
        b, a = statistics.median(before), statistics.median(after)
        print(f"| {query} | {len(new):,} | {b:.2f} | {a:.2f} | {b / a:.1f}× |")


if __name__ == "__main__":
    main()

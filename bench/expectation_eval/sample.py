"""Draw the messages of the expectation evaluation set, reproducibly, from ``../shared/data``.

Owns: the sampling of ``labels.csv`` (before hand labelling). It reads the four shared data sets,
normalises texts the way the pipeline does (``pipelines.clean.normalise_text``) and writes
``bench/expectation_eval/sampled.csv``; labels were then added by hand (see README.md).

Half of each source's quota comes from a "likely expectation" pool (messages matching a broad word
list: expect, promise, suppose, advertise, describe, claim, told, said, usual, last time, compared,
review, ...), half from all remaining messages at random, so the set has enough positives while the
random half keeps the cue-free paraphrases and true negatives honest. The stratum is recorded.

A second batch (``batch`` 2, all dev) was drawn the same way after the first had been labelled,
excluding the first batch's messages: the cue phrases had been written while reading the first dev
half, so the statement head and its threshold were chosen on messages no rule had been fitted to.
A third batch (``batch`` 3, all dev, 200 messages) was drawn the same way, excluding batches 1 and 2,
and labelled blind; the shipped tagger was scored on it once before it joined the training data.

Run from the repo root; ``--check`` confirms that the draw is exactly the messages of ``labels.csv``
(same ids, texts, strata, splits and batches), which is how the labelled set can be reproduced::

    .venv/bin/python bench/expectation_eval/sample.py --check
    .venv/bin/python bench/expectation_eval/sample.py   # writes sampled.csv (unlabelled) next to this file
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.clean import normalise_text

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA = REPO_ROOT.parent / "shared" / "data"
OUT = Path(__file__).with_name("sampled.csv")
LABELS = Path(__file__).with_name("labels.csv")
SEED = 20240605
# source file -> (id column, quota, max characters); CFPB capped so a labeller can read every word.
QUOTAS = {
    "amazon_fine_food_reviews.csv": ("review_id", 150, 1500),
    "cfpb_complaints.csv": ("complaint_id", 130, 1500),
    "uci_sentiment_sentences.csv": ("sentence_id", 60, 1000),
    "vader_amazon_review_snippets.csv": ("snippet_id", 80, 1000),
}
QUOTAS_BATCH2 = {"amazon_fine_food_reviews.csv": 40, "cfpb_complaints.csv": 30, "uci_sentiment_sentences.csv": 20,
                 "vader_amazon_review_snippets.csv": 30}
QUOTAS_BATCH3 = {"amazon_fine_food_reviews.csv": 60, "cfpb_complaints.csv": 50, "uci_sentiment_sentences.csv": 40,
                 "vader_amazon_review_snippets.csv": 50}
POOL = re.compile(
    r"\b(?:expect\w*|promis\w*|suppos\w*|advertis\w*|describ\w*|description|claim\w*|told|said|says|assur\w*|"
    r"guarante\w*|thought|hoped?|used to|last time|previous\w*|before|usual\w*|normally|compared?|unlike|"
    r"other (?:brand|compan|bank|store)\w*|reviews?|recommend\w*|heard|label\w*|pictured?|surpris\w*|"
    r"disappoint\w*|exceed\w*|lived? up|turn(?:ed|s) out|instead|should have|would have|supposed)\b",
    re.IGNORECASE,
)


def draw(name: str, id_col: str, quota: int, max_chars: int, rng: np.random.Generator,
         exclude: frozenset[str] = frozenset()) -> pd.DataFrame:
    """``quota`` messages of one file: half from the cue-word pool, half from the rest."""
    frame = pd.read_csv(DATA / name)
    frame = frame[~frame[id_col].astype(str).isin(exclude)]
    if name.startswith("uci"):
        frame = frame[frame["source"] != "imdb"]  # movie reviews are not customer feedback
    frame = frame.assign(text=frame["text"].map(normalise_text))
    frame = frame[frame["text"].str.len().between(20, max_chars)]
    in_pool = frame["text"].str.contains(POOL)
    pool, rest = frame[in_pool], frame[~in_pool]
    n_pool = quota // 2
    picked_pool = pool.iloc[rng.choice(len(pool), n_pool, replace=False)]
    picked_rest = rest.iloc[rng.choice(len(rest), quota - n_pool, replace=False)]
    out = pd.concat([picked_pool.assign(stratum="cue-pool"), picked_rest.assign(stratum="random")])
    return pd.DataFrame({"id": out[id_col].astype(str), "source_file": name, "stratum": out["stratum"],
                         "text": out["text"]})


def sample() -> pd.DataFrame:
    """The full draw: batch 1 (dev/test), batch 2 (dev), then batch 3 (dev), in labels.csv order."""
    rng = np.random.default_rng(SEED)
    parts = [draw(name, *spec, rng) for name, spec in QUOTAS.items()]
    sampled = pd.concat(parts, ignore_index=True)
    # Shuffle, then alternate dev/test inside each (file, stratum) so both splits have the same mix.
    sampled = sampled.sample(frac=1.0, random_state=SEED).reset_index(drop=True)
    sampled["split"] = np.where(sampled.groupby(["source_file", "stratum"]).cumcount() % 2 == 0, "dev", "test")
    sampled["batch"] = 1
    rng2 = np.random.default_rng(SEED + 1)
    seen = frozenset(sampled["id"])
    second = pd.concat([draw(name, QUOTAS[name][0], quota, QUOTAS[name][2], rng2, seen)
                        for name, quota in QUOTAS_BATCH2.items()], ignore_index=True)
    second = second.sample(frac=1.0, random_state=SEED + 1).reset_index(drop=True).assign(split="dev", batch=2)
    rng3 = np.random.default_rng(SEED + 2)
    seen = seen | frozenset(second["id"])
    third = pd.concat([draw(name, QUOTAS[name][0], quota, QUOTAS[name][2], rng3, seen)
                       for name, quota in QUOTAS_BATCH3.items()], ignore_index=True)
    third = third.sample(frac=1.0, random_state=SEED + 2).reset_index(drop=True).assign(split="dev", batch=3)
    return pd.concat([sampled, second, third], ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description="Draw the messages of the expectation evaluation set.")
    parser.add_argument("--check", action="store_true", help="compare the draw with labels.csv instead of writing it")
    args = parser.parse_args()
    sampled = sample()
    if args.check:
        labels = pd.read_csv(LABELS, keep_default_na=False, dtype={"id": str})
        columns = ["id", "source_file", "stratum", "split", "batch", "text"]
        same = len(labels) == len(sampled) and (labels[columns].astype(str).values == sampled[columns].astype(str).values).all()
        print(f"{len(sampled)} messages drawn; identical to labels.csv: {bool(same)}")
        raise SystemExit(0 if same else 1)
    sampled.to_csv(OUT, index=False)
    print(sampled.groupby(["batch", "source_file", "stratum", "split"]).size())


if __name__ == "__main__":
    main()

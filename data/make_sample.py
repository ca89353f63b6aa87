"""Build the bundled sample (data/sample/fine_food_reviews.csv) from ../shared/data, reproducibly.

The Amazon Fine Food reviews carry no dates, so this script assigns synthetic ones with a fixed
seed: a year of feedback with a weekly rhythm, slow growth and two planted events that give trend
and emerging-issue features a known ground truth (see data/README.md). Run from the repo root:

    python data/make_sample.py
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT.parent / "shared" / "data" / "amazon_fine_food_reviews.csv"
TARGET = ROOT / "data" / "sample" / "fine_food_reviews.csv"
SEED = 20261123
START, END = pd.Timestamp("2025-11-01", tz="UTC"), pd.Timestamp("2026-10-31 23:59", tz="UTC")
# Planted event 1: delivery / packaging complaints surge in one week.
SURGE_PATTERN = r"\b(?:packag\w*|shipp\w*|arriv\w*|damaged|broken|crushed|leak\w*)\b"
SURGE_WEEK = pd.Timestamp("2026-09-14", tz="UTC")  # a Monday
SURGE_SHARE = 0.35
# Planted event 2: coffee reviews below 5 stars pile up in the last two months.
SLIDE_PATTERN = r"\b(?:coffee|k-cup\w*|espresso|brew\w*)\b"
SLIDE_FROM = pd.Timestamp("2026-09-01", tz="UTC")


def _dates(rng: np.random.Generator, n: int) -> pd.Series:
    days = pd.date_range(START.normalize(), END.normalize(), freq="D")
    weekday_weight = np.array([1.15, 1.1, 1.0, 1.0, 0.95, 0.85, 0.95])[days.day_of_week]
    growth = np.linspace(0.8, 1.2, len(days))
    p = weekday_weight * growth
    chosen = rng.choice(len(days), size=n, p=p / p.sum())
    seconds = rng.integers(7 * 3600, 23 * 3600, size=n)  # daytime submissions
    return pd.Series(days[chosen] + pd.to_timedelta(seconds, unit="s"))


def build(source: Path = SOURCE) -> pd.DataFrame:
    """The sample table: review_id, date (UTC, ISO 8601), rating, text."""
    reviews = pd.read_csv(source)
    rng = np.random.default_rng(SEED)
    dates = _dates(rng, len(reviews))
    surge = reviews["text"].str.contains(SURGE_PATTERN, flags=re.IGNORECASE, regex=True).to_numpy()
    pick = surge & (rng.random(len(reviews)) < SURGE_SHARE)
    dates[pick] = SURGE_WEEK + pd.to_timedelta(rng.integers(0, 7 * 86400, size=pick.sum()), unit="s")
    slide = reviews["text"].str.contains(SLIDE_PATTERN, flags=re.IGNORECASE, regex=True).to_numpy()
    late = slide & (reviews["score_class"] == "other").to_numpy() & (rng.random(len(reviews)) < 0.5)
    span = int((END - SLIDE_FROM).total_seconds())
    dates[late] = SLIDE_FROM + pd.to_timedelta(rng.integers(0, span, size=late.sum()), unit="s")
    out = pd.DataFrame({
        "review_id": reviews["review_id"],
        "date": dates.dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "rating": reviews["score_class"].map({"great": "5 stars", "other": "1-4 stars"}),
        "text": reviews["text"],
    })
    return out.sort_values(["date", "review_id"]).reset_index(drop=True)


if __name__ == "__main__":
    table = build()
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(TARGET, index=False)
    print(f"wrote {len(table):,} reviews to {TARGET.relative_to(ROOT)}")

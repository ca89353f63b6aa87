"""Train expectation tagging on the dev half of the hand-labelled set; measure it on the test half.

Owns: the expectation benchmark and the calibration of everything expectation tagging learns.

- ``--train`` reads only the ``dev`` rows of ``bench/expectation_eval/labels.csv``: it calibrates
  each area's similarity threshold (written into ``data/expectation_areas.yaml``; used for areas the
  area head does not know), trains the area heads (``pipelines/models/expectation_area_head.npz``,
  strength and probability threshold chosen by 5-fold cross-validation on dev for the best
  micro-F1), trains the statement head (``pipelines/models/expectation_head.npz``) on the dev
  sentences (the one holding the labelled quote is positive, the others negative), and picks the
  head's strength and threshold by 5-fold cross-validation on dev (the best F1 among thresholds with
  precision >= 0.85).
- Without ``--train`` it reads only the ``test`` rows, runs the real :func:`tag_expectations`
  next to the cue-phrase baselines in the same run, prints a markdown table and writes it to
  ``bench/results/expectations.md``. It changes nothing else.

Run from the repo root (about 1 minute on 2 CPU cores the first time; message and sentence vectors
are cached in ``/tmp/feedback_lens_expectation_vectors.npz``, so later runs take seconds)::

    .venv/bin/python bench/expectations.py --train
    .venv/bin/python bench/expectations.py

Baselines (cue phrases only, no embeddings):

- statements: a message states an expectation when any cue phrase of
  ``pipelines.expectations.CUE_GROUPS`` matches ("I expected", "was supposed to", "they promised",
  "advertised", "not as described", "unlike", "last time", ...);
- areas: a message is in an area when one of the area's keywords below appears in it.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.embed import SentenceTransformerEncoder
from pipelines.expectations import (
    AREA_HEAD_PATH,
    AREAS_PATH,
    CUE_GROUP_NAMES,
    HEAD_PATH,
    SOURCES,
    AreaHead,
    ExpectationSettings,
    StatementHead,
    Taxonomy,
    area_fingerprint,
    area_prototype_vectors,
    area_similarities,
    assign_areas,
    cue_groups,
    embed_sentences,
    has_cue,
    load_taxonomy,
    sentence_spans,
    tag_expectations,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
LABELS = REPO_ROOT / "bench" / "expectation_eval" / "labels.csv"
RESULTS = REPO_ROOT / "bench" / "results" / "expectations.md"
CACHE = Path(os.environ.get("FEEDBACK_LENS_BENCH_CACHE", "/tmp/feedback_lens_expectation_vectors.npz"))
SEED = 7
TARGETS = {"statement_precision": 0.85, "statement_recall": 0.70, "area_micro_f1": 0.75}
HEAD_C = (0.3, 1.0, 3.0)  # regularisation strengths tried by cross-validation on dev
AREA_HEAD_C = (1.0, 3.0, 10.0)
AREA_PROBABILITY_GRID = np.round(np.arange(0.30, 0.951, 0.025), 3)
THRESHOLD_GRID = np.round(np.arange(0.15, 0.70, 0.01), 2)

AREA_KEYWORDS = {
    "speed_of_service": r"\b(?:fast|slow|quick(?:ly)?|wait(?:ed|ing)?|delay(?:ed|s)?|took|weeks?|days?|late|prompt(?:ly)?|ship(?:ped|ping)|deliver(?:ed|y)|arrived|still)\b",
    "personalised_interaction": r"\b(?:staff|rude|friendly|helpful|representative|rep|agent|customer service|service|waiter|waitress|manager|hung up|harass\w*|polite|listen\w*)\b",
    "accurate_information": r"\b(?:described|description|label\w*|incorrect|inaccurate|wrong|error|picture|listing|listed|report(?:ed|ing)?|information|statement|balance)\b",
    "seamless_digital": r"\b(?:website|site|online|app|log ?in|portal|web|internet|click\w*|email)\b",
    "omnichannel": r"\b(?:store|stores|local|branch|atm|phone|call(?:ed|s)?|voicemail|mail|chat|in person|available|find it)\b",
    "product_quality": r"\b(?:taste[sd]?|tasty|flavou?r|quality|fresh|stale|delicious|works?|broke|broken|sound|picture quality|battery|good|great|bad|love)\b",
    "fair_pricing": r"\b(?:price[sd]?|pricey|expensive|cheap(?:er)?|cost|fees?|charged?|interest|value|deal|\$\d+|money|afford\w*|overpriced)\b",
    "clear_policies": r"\b(?:polic(?:y|ies)|terms|return(?:ed)?|refund|cancel\w*|dispute[sd]?|investigat\w*|contract|rights|law|validat\w*|procedure|agreement)\b",
}
"""Keywords of the area baseline: a fair, hand-written keyword tagger (not tuned on the test half)."""


class CachingEncoder:
    """The packaged MiniLM with a text → vector cache on disk (benchmarks re-embed nothing)."""

    def __init__(self, path: Path = CACHE) -> None:
        self._inner = SentenceTransformerEncoder()
        self.uncached = self._inner
        self.name, self.dimension = self._inner.name, self._inner.dimension
        self.span_method = self._inner.span_method
        self.path = path
        self._cache: dict[str, np.ndarray] = {}
        self.embedded = 0
        if path.exists():
            with np.load(path, allow_pickle=False) as z:
                self._cache = dict(zip(z["texts"].tolist(), z["vectors"], strict=True))

    def encode(self, texts: Sequence[str], progress=None) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            self._cache.update(zip(missing, self._inner.encode(missing), strict=True))
            self.embedded += len(missing)
        out = np.stack([self._cache[t] for t in texts]) if texts else np.empty((0, self.dimension), np.float32)
        if progress:
            progress(len(texts))
        return out

    def encode_spans(self, texts: Sequence[str], spans, progress=None) -> np.ndarray:
        keys = [[f"\0{self.span_method}\0{k}\0{list(sp)}\0{t}" for k in range(len(sp))] for t, sp in zip(texts, spans, strict=True)]
        todo = [i for i, ks in enumerate(keys) if any(k not in self._cache for k in ks)]
        if todo:
            fresh = self._inner.encode_spans([texts[i] for i in todo], [spans[i] for i in todo])
            self._cache.update(zip([k for i in todo for k in keys[i]], fresh, strict=True))
            self.embedded += len(fresh)
        rows = [self._cache[k] for ks in keys for k in ks]
        return np.stack(rows) if rows else np.empty((0, self.dimension), np.float32)

    def save(self) -> None:
        if self.embedded:
            tmp = self.path.with_suffix(".tmp.npz")
            np.savez(tmp, texts=np.array(list(self._cache), dtype=str), vectors=np.stack(list(self._cache.values())))
            os.replace(tmp, self.path)


def load_labels(split: str, batch: int | None = None) -> pd.DataFrame:
    """The labelled rows of one split (``dev`` or ``test``), optionally of one batch only, areas as lists."""
    labels = pd.read_csv(LABELS, keep_default_na=False)
    keep = labels["split"] == split
    if batch is not None:
        keep &= labels["batch"] == batch
    labels = labels[keep].reset_index(drop=True)
    labels["areas"] = labels["areas"].map(lambda a: [x for x in a.split(";") if x])
    labels["expectation"] = labels["expectation"].astype(int).astype(bool)
    return labels


def prf(truth: np.ndarray, pred: np.ndarray) -> tuple[float, float, float]:
    """Precision, recall, F1 of boolean predictions (0 where undefined)."""
    tp = float(np.sum(truth & pred))
    p = tp / pred.sum() if pred.sum() else 0.0
    r = tp / truth.sum() if truth.sum() else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def area_matrix(lists: Sequence[Sequence[str]], keys: Sequence[str]) -> np.ndarray:
    return np.array([[k in row for k in keys] for row in lists], dtype=bool).reshape(len(lists), len(keys))


def keyword_areas(texts: Sequence[str], keys: Sequence[str]) -> np.ndarray:
    patterns = [re.compile(AREA_KEYWORDS.get(k, r"(?!x)x"), re.IGNORECASE) for k in keys]
    return np.array([[bool(p.search(t)) for p in patterns] for t in texts], dtype=bool)


# --------------------------------------------------------------------------------------------
# Training on dev
# --------------------------------------------------------------------------------------------


def calibrate_thresholds(scores: np.ndarray, truth: np.ndarray) -> tuple[float, np.ndarray]:
    """The global threshold with the best micro-F1, and per area the middle of its best-F1 plateau."""
    micro = [prf(truth.ravel(), (scores >= t).ravel())[2] for t in THRESHOLD_GRID]
    global_t = float(THRESHOLD_GRID[int(np.argmax(micro))])
    per_area = []
    for j in range(truth.shape[1]):
        f1 = np.array([prf(truth[:, j], scores[:, j] >= t)[2] for t in THRESHOLD_GRID])
        per_area.append(float(np.median(THRESHOLD_GRID[f1 >= f1.max() - 1e-9])) if truth[:, j].any() else global_t)
    return global_t, np.round(np.array(per_area), 2)


def write_thresholds(path: Path, thresholds: dict[str, float]) -> None:
    """Set ``threshold:`` of each area in the YAML file, keeping its comments and layout."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out, current = [], None
    for line in lines:
        key = re.match(r"^\s*-\s*key:\s*(\S+)\s*$", line)
        if key:
            current = key.group(1)
        if current in thresholds and re.match(r"^\s+threshold:", line):
            continue  # replaced below
        out.append(line)
        if current in thresholds and re.match(r"^\s+name:", line):
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}threshold: {thresholds[current]:.2f}")
    path.write_text("\n".join(out) + "\n", encoding="utf-8")


def sentence_table(texts: Sequence[str], embeddings: np.ndarray, encoder, settings: ExpectationSettings):
    """Sentence spans, owners, vectors and cue features of ``texts``, as tag_expectations makes them."""
    spans = [sentence_spans(t, settings) for t in texts]
    owner = np.array([i for i, sp in enumerate(spans) for _ in sp], dtype=np.int64)
    vectors = embed_sentences(texts, spans, embeddings, encoder)
    sentences = [t[s:e] for t, sp in zip(texts, spans, strict=True) for s, e in sp]
    cues = np.array([cue_groups(s) for s in sentences])
    return spans, owner, vectors, sentences, cues


def statement_sentence_labels(labels: pd.DataFrame, spans) -> np.ndarray:
    """True for each sentence that overlaps its message's labelled quote."""
    out = []
    for (_, row), sp in zip(labels.iterrows(), spans, strict=True):
        qs = row["text"].find(row["quote"]) if row["expectation"] and row["quote"] else -1
        qe = qs + len(row["quote"])
        out.extend(qs >= 0 and s < qe and qs < e for s, e in sp)
    return np.array(out, dtype=bool)


def fit_head(x: np.ndarray, y: np.ndarray, c: float):
    """Logistic regression with balanced class weights (statements are a small minority of sentences)."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=5000, class_weight="balanced").fit(x, y)


def train_area_head(taxonomy: Taxonomy, embeddings: np.ndarray, whole: np.ndarray, best: np.ndarray, truth: np.ndarray,
                    encoder) -> None:
    """Fit one logistic head per area; choose the strength (best micro-F1) and each area's probability
    threshold (the middle of its best-F1 plateau) on 5-fold cross-validated probabilities on dev."""

    def head_of(coef, intercept, thresholds) -> AreaHead:
        return AreaHead(keys=tuple(taxonomy.keys), fingerprints=tuple(area_fingerprint(a) for a in taxonomy.areas),
                        coef=np.array(coef), intercept=np.array(intercept), thresholds=np.asarray(thresholds, np.float64),
                        encoder_name=encoder.name, span_method=encoder.span_method)

    features = head_of(np.zeros((1, 1)), np.zeros(1), np.zeros(1)).features

    def fit(rows: np.ndarray, c: float) -> AreaHead:
        models = [fit_head(features(embeddings[rows], whole[rows, j], best[rows, j]), truth[rows, j], c)
                  for j in range(truth.shape[1])]
        return head_of([m.coef_[0] for m in models], [m.intercept_[0] for m in models], np.full(truth.shape[1], 0.5))

    def plateau_thresholds(prob: np.ndarray, truth: np.ndarray) -> np.ndarray:
        out = []
        for j in range(truth.shape[1]):
            f1 = np.array([prf(truth[:, j], prob[:, j] >= t)[2] for t in AREA_PROBABILITY_GRID])
            out.append(float(np.median(AREA_PROBABILITY_GRID[f1 >= f1.max() - 1e-9])))
        return np.array(out)

    fold = np.random.default_rng(SEED).permutation(len(truth)) % 5
    best_choice = None
    for c in AREA_HEAD_C:
        prob = np.zeros(truth.shape)
        for f in range(5):
            held = fold == f
            prob[held] = fit(np.flatnonzero(~held), c).probabilities(embeddings[held], whole[held], best[held], taxonomy)
        thresholds = plateau_thresholds(prob, truth)
        f1 = prf(truth.ravel(), (prob >= thresholds).ravel())[2]
        print(f"  CV C={c:<4}: micro-F1 {f1:.3f} with per-area thresholds chosen on the same probabilities")
        if best_choice is None or f1 > best_choice[0]:
            best_choice = (f1, c, thresholds)
    f1, c, thresholds = best_choice
    # The similarity thresholds' figure for comparison, calibrated the same way.
    scores = 0.5 * whole + 0.5 * best
    pred = scores >= calibrate_thresholds(scores, truth)[1]
    print(f"Area heads: C={c} (dev 5-fold CV micro-F1 {f1:.3f}; similarity thresholds, in-sample: "
          f"{prf(truth.ravel(), pred.ravel())[2]:.3f}); probability thresholds "
          + ", ".join(f"{k} {t:.3f}" for k, t in zip(taxonomy.keys, thresholds, strict=True)))
    final = fit(np.arange(len(truth)), c)
    head = head_of(final.coef, final.intercept, thresholds)
    head.save(AREA_HEAD_PATH)
    print(f"  -> written to {AREA_HEAD_PATH.relative_to(REPO_ROOT)} ({AREA_HEAD_PATH.stat().st_size:,} bytes)")


def train(encoder: CachingEncoder) -> None:
    settings = ExpectationSettings()
    dev = load_labels("dev")
    texts = dev["text"].tolist()
    embeddings = encoder.encode(texts)
    taxonomy = load_taxonomy(AREAS_PATH)
    spans, owner, vectors, _, cues = sentence_table(texts, embeddings, encoder, settings)

    # Area thresholds (the path for areas the head does not know).
    whole, best_sentence = area_similarities(embeddings, vectors, owner, area_prototype_vectors(taxonomy, encoder))
    scores = (1.0 - settings.sentence_weight) * whole + settings.sentence_weight * best_sentence
    truth = area_matrix(dev["areas"], taxonomy.keys)
    global_t, per_area = calibrate_thresholds(scores, truth)
    write_thresholds(AREAS_PATH, dict(zip(taxonomy.keys, per_area, strict=True)))
    print(f"Area thresholds (dev, n={len(dev)}): default {global_t:.2f}; "
          + ", ".join(f"{k} {t:.2f}" for k, t in zip(taxonomy.keys, per_area, strict=True)))
    print(f"  -> written to {AREAS_PATH.relative_to(REPO_ROOT)}; set ExpectationSettings.area_threshold = {global_t:.2f}")
    train_area_head(load_taxonomy(AREAS_PATH), embeddings, whole, best_sentence, truth, encoder)

    # Statement head: choose C and the threshold by 5-fold cross-validation over dev messages.
    x = np.hstack([vectors, cues])
    y = statement_sentence_labels(dev, spans)
    truth_msg = dev["expectation"].to_numpy()
    fold = np.random.default_rng(SEED).permutation(len(dev)) % 5
    best = None
    for c in HEAD_C:
        prob = np.zeros(len(y))
        for f in range(5):
            train_rows, test_rows = fold[owner] != f, fold[owner] == f
            prob[test_rows] = fit_head(x[train_rows], y[train_rows], c).predict_proba(x[test_rows])[:, 1]
        msg_prob = np.zeros(len(dev))
        np.maximum.at(msg_prob, owner, prob)
        for t in np.round(np.arange(0.30, 0.96, 0.01), 2):
            p, r, f1 = prf(truth_msg, msg_prob >= t)
            if round(t * 100) % 5 == 0:
                print(f"  CV C={c:<4} t={t:.2f}: precision {p:.3f} recall {r:.3f} F1 {f1:.3f}")
            if p >= TARGETS["statement_precision"] and (best is None or f1 > best[0]):
                best = (f1, c, t, p, r)
    if best is None:
        raise SystemExit("No threshold reaches the precision target in cross-validation on dev.")
    f1, c, t, p, r = best
    print(f"Statement head: C={c}, threshold {t:.2f} (dev 5-fold CV: precision {p:.3f}, recall {r:.3f}, F1 {f1:.3f})")
    model = fit_head(x, y, c)
    head = StatementHead(coef=model.coef_[0].astype(np.float64), intercept=float(model.intercept_[0]),
                         encoder_name=encoder.name, cue_names=CUE_GROUP_NAMES, threshold=float(t),
                         span_method=encoder.span_method)
    HEAD_PATH.parent.mkdir(parents=True, exist_ok=True)
    head.save(HEAD_PATH)
    print(f"  -> written to {HEAD_PATH.relative_to(REPO_ROOT)} ({HEAD_PATH.stat().st_size:,} bytes)")


# --------------------------------------------------------------------------------------------
# Evaluation on test
# --------------------------------------------------------------------------------------------


def bootstrap(truth: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, metric, n: int = 2000) -> tuple:
    """95% intervals of ``metric`` for predictions a and b and of a − b, resampling messages."""
    rng = np.random.default_rng(SEED)
    a, b, d = [], [], []
    for _ in range(n):
        idx = rng.integers(0, len(truth), len(truth))
        ma, mb = metric(truth[idx], pred_a[idx]), metric(truth[idx], pred_b[idx])
        a.append(ma)
        b.append(mb)
        d.append(ma - mb)
    q = lambda v: (float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5)))  # noqa: E731
    return q(a), q(b), q(d)


def evaluate(encoder: CachingEncoder, taxonomy: Taxonomy, batch: int | None = None) -> str:
    """The report on the test half, or (``batch``) on one dev batch with the models as shipped."""
    test = load_labels("test") if batch is None else load_labels("dev", batch)
    texts = test["text"].tolist()
    embeddings = encoder.encode(texts)  # message vectors come from the cache, as a run's come from its own
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    tags = tag_expectations(texts, embeddings, encoder.uncached, taxonomy)  # sentences embedded afresh: honest timing
    seconds = time.perf_counter() - t0
    settings = ExpectationSettings()
    n_sentences = sum(len(sentence_spans(t, settings)) for t in texts)
    # The similarity-threshold path alone (what areas a user adds or rewrites get), for comparison.
    spans, owner, vectors, _, _ = sentence_table(texts, embeddings, encoder, settings)
    whole, best = area_similarities(embeddings, vectors, owner, area_prototype_vectors(taxonomy, encoder))
    by_threshold = assign_areas((1 - settings.sentence_weight) * whole + settings.sentence_weight * best, taxonomy, settings)

    keys = taxonomy.keys
    truth_a = area_matrix(test["areas"], keys)
    pred_a = area_matrix(tags["areas"], keys)
    threshold_a = area_matrix(by_threshold, keys)
    base_a = keyword_areas(texts, keys)
    truth_s = test["expectation"].to_numpy()
    pred_s = tags["expectation"].to_numpy(dtype=bool)
    base_s = np.array([has_cue(t) for t in texts])

    if batch is None:
        title, scope = "the held-out test half", "Test split of `bench/expectation_eval/labels.csv` only"
        trained = "everything was trained and calibrated on the dev split (`--train`)"
    else:
        title = f"dev batch {batch}, before training on it"
        scope = f"Dev batch {batch} of `bench/expectation_eval/labels.csv` only"
        trained = (f"the areas, heads and cue phrases are those shipped before batch {batch} was labelled, "
                   "so these messages are as unseen as the test half")
    lines = [f"# Expectation tagging on {title}", "",
             f"Produced by `python bench/expectations.py{'' if batch is None else f' --batch {batch}'}` (do not edit by "
             f"hand). {scope} "
             f"({len(test)} hand-labelled real messages: {int(truth_s.sum())} expectation statements); {trained}. "
             "Baselines use cue phrases / keywords only, in the same run on the same messages.",
             f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, 1-minute load average {load:.1f} before the run. "
             f"`tag_expectations` took {seconds:.1f} s for {len(test)} messages given their embeddings "
             f"({n_sentences} sentences read in context and the taxonomy's examples embedded afresh on CPU; "
             f"{len(test) / seconds:.0f} messages/s).",
             "", "## Expectation statements (message level)", "",
             "| method | precision | recall | F1 | target |", "| --- | ---: | ---: | ---: | --- |"]
    mp, mr, mf = prf(truth_s, pred_s)
    bp, br, bf = prf(truth_s, base_s)
    lines.append(f"| cue phrases only (baseline) | {bp:.3f} | {br:.3f} | {bf:.3f} | |")
    lines.append(f"| cue phrases + embedding head | {mp:.3f} | {mr:.3f} | {mf:.3f} | precision ≥ 0.85, recall ≥ 0.70 |")
    for name, mask in (("random half only", (test["stratum"] == "random").to_numpy()),
                       ("cue-word pool only", (test["stratum"] == "cue-pool").to_numpy())):
        p1, r1, f1 = prf(truth_s[mask], pred_s[mask])
        p0, r0, f0 = prf(truth_s[mask], base_s[mask])
        lines.append(f"| {name} ({int(mask.sum())} msgs, {int(truth_s[mask].sum())} statements): baseline / head "
                     f"| {p0:.3f} / {p1:.3f} | {r0:.3f} / {r1:.3f} | {f0:.3f} / {f1:.3f} | |")
    lines += ["", "95% bootstrap intervals (messages resampled, 2,000 times):", "",
              "| metric | head | baseline | head − baseline |", "| --- | ---: | ---: | ---: |"]
    for name, metric in (("precision", lambda t, p: prf(t, p)[0]), ("recall", lambda t, p: prf(t, p)[1]),
                         ("F1", lambda t, p: prf(t, p)[2])):
        a, b, d = bootstrap(truth_s, pred_s, base_s, metric)
        lines.append(f"| {name} | {a[0]:.2f} … {a[1]:.2f} | {b[0]:.2f} … {b[1]:.2f} | {d[0]:+.2f} … {d[1]:+.2f} |")

    both = truth_s & pred_s
    met_truth = test.loc[both, "met"].to_numpy()
    met_pred = tags.loc[both, "expectation_met"].to_numpy()
    src_truth = test.loc[both, "source"].to_numpy()
    src_pred = tags.loc[both, "expectation_source"].to_numpy()
    span_ok = [row.text.find(row.quote) < e and s < row.text.find(row.quote) + len(row.quote)
               for row, s, e in zip(test[both].itertuples(), tags.loc[both, "expectation_start"],
                                    tags.loc[both, "expectation_end"], strict=True)]
    shown = (tags.loc[both, "expectation_end"] - tags.loc[both, "expectation_start"]).to_numpy()
    whole = tags.loc[both, "expectation_sentence"].str.len().to_numpy()
    majority_met = pd.Series(met_truth).value_counts(normalize=True).max() if len(met_truth) else float("nan")
    majority_src = pd.Series(src_truth).value_counts(normalize=True).max() if len(src_truth) else float("nan")
    lines += ["", f"On the {int(both.sum())} statements found correctly:", "",
              "| what | accuracy | always the majority label |", "| --- | ---: | ---: |",
              f"| met / unmet | {np.mean(met_truth == met_pred):.3f} | {majority_met:.3f} |",
              f"| source (5 classes) | {np.mean(src_truth == src_pred):.3f} | {majority_src:.3f} |",
              f"| highlight overlaps the labelled quote | {np.mean(span_ok):.3f} | – |", "",
              f"Highlights: median {np.median(shown):.0f} characters, longest {np.max(shown, initial=0):.0f} (their "
              f"sentences: median {np.median(whole):.0f}, longest {np.max(whole, initial=0):.0f}); "
              f"{int(np.sum(shown < whole))} long sentences narrowed to the clauses around their cue phrase.", "",
              "Source confusion (rows: label, columns: predicted):", ""]
    confusion = pd.crosstab(pd.Series(src_truth, name="label"), pd.Series(src_pred, name="predicted"))
    confusion = confusion.reindex(index=list(SOURCES), columns=list(SOURCES), fill_value=0)
    lines += ["| label \\ predicted | " + " | ".join(SOURCES) + " |", "| --- |" + " ---: |" * len(SOURCES)]
    lines += [f"| {s} | " + " | ".join(str(int(v)) for v in confusion.loc[s]) + " |" for s in SOURCES]

    lines += ["", "## Expectation areas", "",
              "Feedback Lens decides the shipped areas with the area heads (similarity to the area's description and "
              "examples, of the message and of its best sentence, plus the message embedding); an area a user adds "
              "or rewrites is decided by similarity thresholds alone, shown here for the same eight areas.", "",
              "| area | n | keyword baseline P / R / F1 | similarity thresholds P / R / F1 (threshold) "
              "| Feedback Lens (area heads) P / R / F1 |",
              "| --- | ---: | --- | --- | --- |"]
    for j, area in enumerate(taxonomy.areas):
        b = prf(truth_a[:, j], base_a[:, j])
        s = prf(truth_a[:, j], threshold_a[:, j])
        m = prf(truth_a[:, j], pred_a[:, j])
        t = area.threshold if area.threshold is not None else settings.area_threshold
        lines.append(f"| {area.name} | {int(truth_a[:, j].sum())} | {b[0]:.2f} / {b[1]:.2f} / {b[2]:.2f} "
                     f"| {s[0]:.2f} / {s[1]:.2f} / {s[2]:.2f} ({t:.2f}) | {m[0]:.2f} / {m[1]:.2f} / {m[2]:.2f} |")
    bm, sm, mm = (prf(truth_a.ravel(), x.ravel()) for x in (base_a, threshold_a, pred_a))
    lines.append(f"| **micro average** | {int(truth_a.sum())} | {bm[0]:.2f} / {bm[1]:.2f} / **{bm[2]:.3f}** "
                 f"| {sm[0]:.2f} / {sm[1]:.2f} / **{sm[2]:.3f}** | {mm[0]:.2f} / {mm[1]:.2f} / **{mm[2]:.3f}** |")
    micro = lambda t, p: prf(t.ravel(), p.ravel())[2]  # noqa: E731
    a, b, d = bootstrap(truth_a, pred_a, base_a, micro)
    _, s_int, d_s = bootstrap(truth_a, pred_a, threshold_a, micro)
    lines += ["", f"Target: micro-F1 ≥ 0.75. 95% bootstrap intervals: area heads {a[0]:.2f} … {a[1]:.2f}, "
              f"similarity thresholds {s_int[0]:.2f} … {s_int[1]:.2f}, keywords {b[0]:.2f} … {b[1]:.2f}; "
              f"heads − keywords {d[0]:+.2f} … {d[1]:+.2f}, heads − thresholds {d_s[0]:+.2f} … {d_s[1]:+.2f}."]
    for name, prefixes in (("Fine Food reviews", ("amazon",)), ("CFPB complaints", ("cfpb",)),
                           ("UCI + VADER sentences", ("uci", "vader"))):
        mask = test["source_file"].str.startswith(prefixes).to_numpy()
        mm, sm, bm = (prf(truth_a[mask].ravel(), x[mask].ravel()) for x in (pred_a, threshold_a, base_a))
        lines.append(f"- {name} ({int(mask.sum())} messages): micro-F1 area heads {mm[2]:.3f}, similarity thresholds "
                     f"{sm[2]:.3f}, keywords {bm[2]:.3f}.")

    verdict = [("statement precision", mp, TARGETS["statement_precision"]),
               ("statement recall", mr, TARGETS["statement_recall"]),
               ("area micro-F1", prf(truth_a.ravel(), pred_a.ravel())[2], TARGETS["area_micro_f1"])]
    lines += ["", "## Against the targets of issue 5", "", "| metric | result | target | met? |", "| --- | ---: | ---: | --- |"]
    lines += [f"| {n} | {v:.3f} | {t:.2f} | {'yes' if v >= t else 'no'} |" for n, v, t in verdict]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", action="store_true", help="calibrate and train on the dev split (writes the "
                        "area thresholds and the statement head)")
    parser.add_argument("--batch", type=int, help="report on this dev batch instead of the test half (written to "
                        "bench/results/expectations-batch<N>.md); meant for a newly labelled batch, before --train")
    args = parser.parse_args()
    encoder = CachingEncoder()
    try:
        if args.train:
            train(encoder)
        else:
            report = evaluate(encoder, load_taxonomy(AREAS_PATH), args.batch)
            print(report)
            out = RESULTS if args.batch is None else RESULTS.with_name(f"expectations-batch{args.batch}.md")
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(report, encoding="utf-8")
    finally:
        encoder.save()


if __name__ == "__main__":
    main()

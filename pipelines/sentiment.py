"""Score each message's sentiment in -1..1 and turn scores into negative / neutral / positive labels.

Owns: the :class:`SentimentScorer` interface, its three implementations and the label thresholds.

- ``"embedding-head"`` (default): a logistic-regression head on the MiniLM message embeddings the
  pipeline already computes, trained on the shipped labelled sets by
  ``bench/train_sentiment_head.py``. Its weights are a small array file,
  ``pipelines/models/sentiment_head.npz``, read with ``allow_pickle=False``; inference is plain numpy.
- ``"vader"``: the rule-based VADER compound score (the baseline; needs no embeddings).
- ``"hybrid"``: the same head with VADER's compound score as one extra, learned input.

``bench/sentiment.py`` measures all three on held-out data (``bench/results/sentiment.md``).
This module reads no input files and writes nothing; it never unpickles anything.

Example:
    >>> scorer = make_scorer("vader")
    >>> sentiment_labels(scorer.score(["I love it", "Broken on arrival, awful"], None), 0.25).tolist()
    ['positive', 'negative']
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from pipelines.embed import Encoder
from pipelines.errors import FeedbackLensError
from pipelines.settings import DEFAULT_ENCODER
from pipelines.text_rules import straight_apostrophes

HEAD_PATH = Path(__file__).with_name("models") / "sentiment_head.npz"
"""The trained head shipped with the package (a few KB of arrays)."""

LABELS = ("negative", "neutral", "positive")


class SentimentScorer(Protocol):
    """Anything that scores texts from -1 (very negative) to 1 (very positive), one float per text."""

    name: str

    def score(self, texts: Sequence[str], embeddings: np.ndarray | None) -> np.ndarray:
        """Score ``texts``.

        Args:
            texts: The messages.
            embeddings: Their L2-normalised MiniLM vectors, one row per text, or ``None`` (a scorer
                that needs them then computes them itself).

        Returns:
            float64 scores in -1..1, one per text.
        """
        ...


class VaderScorer:
    """VADER's compound score: fast, rule-based, blind to context; the baseline.

    Example:
        >>> bool(VaderScorer().score(["great value"], None)[0] > 0)
        True
    """

    name = "vader"

    def __init__(self) -> None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self._analyzer = SentimentIntensityAnalyzer()

    def score(self, texts: Sequence[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        """Compound scores in -1..1; ``embeddings`` are ignored. Each distinct text is scored once."""
        texts = [str(t) for t in texts]
        # VADER's negations are spelled with straight apostrophes: "don’t like" would read as "like".
        scores = {t: self._analyzer.polarity_scores(straight_apostrophes(t))["compound"] for t in dict.fromkeys(texts)}
        return np.array([scores[t] for t in texts], dtype=np.float64)


def _load_head(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {key: z[key] for key in z.files}
    except (OSError, ValueError) as err:
        raise FeedbackLensError(
            f"The sentiment head {path} cannot be read ({err}).",
            fix="Reinstall Feedback Lens, or rebuild it with `python bench/train_sentiment_head.py`, "
            'or use `sentiment: "vader"`.',
        ) from None


HEAD_SLICE = 50_000
"""Messages scored per slice by :class:`EmbeddingHeadScorer` (bounds the float64 copy it makes)."""


class EmbeddingHeadScorer:
    """A logistic-regression head on MiniLM embeddings; score = ``tanh(z / 2)`` = 2·P(positive) − 1.

    The head only understands vectors from the encoder it was trained on (``encoder_name``,
    the default MiniLM). Pass ``embeddings=None`` when the run used another encoder: the scorer
    then embeds the texts itself with the right one.

    Args:
        path: The head file; the shipped one by default.
        use_vader: Also feed VADER's compound score to the head (the ``"hybrid"`` scorer).
        encoder: Embeds texts when ``score`` gets no embeddings; must be the head's encoder. The
            packaged MiniLM is loaded on first need when not given.

    Example:
        >>> bool(EmbeddingHeadScorer().score(["The refund never came."], None)[0] < 0)
        True
    """

    def __init__(self, path: Path = HEAD_PATH, use_vader: bool = False, encoder: Encoder | None = None) -> None:
        head = _load_head(path)
        prefix = "hybrid_" if use_vader else ""
        try:
            self._coef = head[f"{prefix}coef"].astype(np.float64)
            self._intercept = float(head[f"{prefix}intercept"])
            self._vader_weight = float(head["hybrid_vader_weight"]) if use_vader else 0.0
            self.encoder_name = str(head["encoder"])
        except KeyError as err:
            raise FeedbackLensError(
                f"The sentiment head {path} lacks the array {err}.",
                fix="Rebuild it with `python bench/train_sentiment_head.py`.",
            ) from None
        self.name = "hybrid" if use_vader else "embedding-head"
        self._vader = VaderScorer() if use_vader else None
        self._encoder = encoder

    def score(self, texts: Sequence[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        """Scores in -1..1 from the head's linear score ``z``, squashed with ``tanh(z / 2)``.

        Raises:
            FeedbackLensError: ``embeddings`` do not match ``texts`` or the head's dimension.
        """
        if embeddings is None:
            embeddings = self._encode(texts)
        if embeddings.ndim != 2 or embeddings.shape != (len(texts), self._coef.shape[0]):
            raise FeedbackLensError(
                f"The sentiment head expects one {self._coef.shape[0]}-d vector per message from "
                f"{self.encoder_name}; got an array of shape {embeddings.shape} for {len(texts)} messages.",
                fix=f"Pass the {self.encoder_name} embeddings of these messages, or None to embed them here.",
            )
        # In slices: a float64 copy of a million messages' vectors at once would take 3 GB.
        z = np.concatenate([embeddings[i:i + HEAD_SLICE].astype(np.float64) @ self._coef
                            for i in range(0, len(embeddings), HEAD_SLICE)] or [np.zeros(0)]) + self._intercept
        if self._vader is not None:
            z += self._vader_weight * self._vader.score(texts)
        return np.tanh(z / 2.0)

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        if self._encoder is None:
            from pipelines.embed import SentenceTransformerEncoder

            self._encoder = SentenceTransformerEncoder(self.encoder_name or DEFAULT_ENCODER)
        return self._encoder.encode(list(texts))


SCORERS = ("embedding-head", "vader", "hybrid")
"""Valid values of ``Settings.sentiment``."""


def make_scorer(name: str) -> SentimentScorer:
    """The scorer called ``name``.

    Args:
        name: One of :data:`SCORERS`.

    Raises:
        FeedbackLensError: ``name`` is not a known scorer.

    Example:
        >>> make_scorer("vader").name
        'vader'
    """
    if name == "embedding-head":
        return EmbeddingHeadScorer()
    if name == "hybrid":
        return EmbeddingHeadScorer(use_vader=True)
    if name == "vader":
        return VaderScorer()
    raise FeedbackLensError(
        f'Unknown sentiment scorer "{name}"; the valid names are: {", ".join(SCORERS)}.',
        fix="Set `sentiment` (or `--sentiment`) to one of them.",
    )


def sentiment_labels(scores: np.ndarray, neutral_band: float) -> np.ndarray:
    """Label each score: ``|score| < neutral_band`` is neutral, otherwise its sign decides.

    A score of exactly 0 is neutral even when the band is 0.

    Args:
        scores: Scores in -1..1.
        neutral_band: Half-width of the neutral band around 0, in 0..1 (``Settings.neutral_band``).

    Returns:
        An array of "negative" / "neutral" / "positive", one per score.

    Raises:
        FeedbackLensError: ``neutral_band`` is outside 0..1.

    Example:
        >>> sentiment_labels(np.array([-0.6, 0.1, 0.25]), 0.25).tolist()
        ['negative', 'neutral', 'positive']
    """
    if not 0.0 <= neutral_band < 1.0:
        raise FeedbackLensError(
            f"The neutral band must be between 0 and 1; got {neutral_band}.",
            fix="Set `neutral_band` to a value such as 0.25 (scores within ±0.25 count as neutral).",
        )
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.where(scores > 0, LABELS[2], LABELS[0])
    labels[(np.abs(scores) < neutral_band) | (scores == 0)] = LABELS[1]
    return labels

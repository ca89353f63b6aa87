"""Which language the messages are in, roughly: enough to warn that the English models will read them poorly.

The default encoder (all-MiniLM-L6-v2) and the sentiment scorers were trained on English. A file of German or
Spanish feedback still runs, but its topics and sentiment are rougher, and nothing on the pages would say why.
Each message is given the language whose common short words it uses most (a sample of messages is enough); no
model or download is needed.
"""

from __future__ import annotations

import re
from collections import Counter

import pandas as pd

from pipelines.settings import DEFAULT_ENCODER

# Short words frequent in each language and rare in the others (words shared by two languages are left out).
COMMON_WORDS = {
    "English": "the and is was it this that with not but my they you have of to for were very would",
    "German": "der die das und ist nicht ich ein eine mit für auf sehr war auch wir bei hat habe wurde schon noch "
              "nur den dem des im zu kein keine",
    "French": "le les et est pas je des pour avec très il mais du ce qui sont été au avons était une dans sur",
    "Spanish": "el los las y es por muy para pero lo mi está fue como sin hay tiene también",
    "Italian": "il gli è non che per molto ma sono ho della questo anche sempre stato",
    "Dutch": "het een en niet ik van met voor op zeer maar wij zijn ook heel geen wel",
    "Portuguese": "os não um com muito mas meu são foi você está também isso",
}
_WORDS = {lang: set(words.split()) for lang, words in COMMON_WORDS.items()}
_SHARED = {w for a in _WORDS for w in _WORDS[a] if sum(w in _WORDS[b] for b in _WORDS) > 1}
_WORDS = {lang: words - _SHARED for lang, words in _WORDS.items()}
_TOKEN = re.compile(r"[^\W\d_]+")

MIN_OTHER_SHARE = 0.2
"""Warn when at least this share of the messages whose language could be told is not English."""


def message_language(text: str) -> str | None:
    """The language whose common words the text uses most (at least two of them, and more than any other
    language's), or None when it cannot be told (short texts, ties, no common words)."""
    words = Counter(_TOKEN.findall(text.lower()))
    hits = sorted(((sum(words[w] for w in vocab), lang) for lang, vocab in _WORDS.items()), reverse=True)
    (best, lang), (second, _) = hits[0], hits[1]
    return lang if best >= 2 and best > second else None


def language_shares(texts: pd.Series, sample: int = 2000, seed: int = 0) -> dict[str, float]:
    """Share of each language among the messages whose language can be told, from a sample of ``sample`` texts;
    largest first. Empty when none can be told."""
    picked = texts.sample(min(sample, len(texts)), random_state=seed) if len(texts) > sample else texts
    found = Counter(lang for lang in map(message_language, picked.astype(str)) if lang)
    total = sum(found.values())
    return {lang: n / total for lang, n in found.most_common()} if total else {}


def reads_english_only(encoder: str) -> bool:
    """Whether the sentence-transformers model ``encoder`` (a name or a folder) was trained on English only: the
    packaged default and the other "all-*" models. A model whose name says multilingual is not."""
    name = encoder.lower()
    return encoder == DEFAULT_ENCODER or any(k in name for k in ("all-minilm", "all-mpnet", "all-distilroberta"))


def language_note(texts: pd.Series, encoder: str) -> str | None:
    """A note for the run when many messages are not English and ``encoder`` reads English only; else None."""
    if not reads_english_only(encoder):
        return None
    shares = language_shares(texts)
    other = 1 - shares.get("English", 0.0)
    if not shares or other < MIN_OTHER_SHARE:
        return None
    top = next(lang for lang in shares if lang != "English")
    model = "all-MiniLM-L6-v2" if encoder == DEFAULT_ENCODER else encoder
    return (f"About {other:.0%} of the messages are not in English (mostly {top}): the model {model} and the "
            "sentiment scorer read English, so topics and sentiment are rougher for them. A multilingual "
            "sentence-transformers model can be chosen with --encoder (its weights must be on this machine).")

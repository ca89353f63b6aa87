"""Text as hand-written rules expect it: the cue phrases of expectation statements, VADER's word lists.

Owns: spelling variants that such rules, written with plain ASCII, would otherwise miss. The stored and
shown text keeps its own spelling; only what a rule reads is changed, one character for one, so match
positions stay those of the original text.
"""

from __future__ import annotations

_STRAIGHT = str.maketrans({"\u2018": "'", "\u2019": "'", "\u02bc": "'", "\u2032": "'"})


def straight_apostrophes(text: str) -> str:
    """``text`` with curly apostrophes (what phones type: "don\u2019t") as straight ones, one character for one.

    For the rules written with straight ones (cue phrases, VADER's negations); the stored text keeps its own.

    Example:
        >>> straight_apostrophes("I don\u2019t")
        "I don't"
    """
    return text if text.isascii() else text.translate(_STRAIGHT)

"""Expectation gaps: which areas a message is about, whether it states an expectation, and the gap metrics.

Owns:

- the expectation-area taxonomy (``data/expectation_areas.yaml``): :func:`load_taxonomy` reads and
  validates it; users edit it;
- sentence vectors: the sentences worth reading, embedded in their context when the encoder can
  (:func:`embed_sentences`; late chunking in the message's own transformer pass, see
  ``SentenceTransformerEncoder.encode_with_spans``: the embedding stage makes them with the message vectors);
- area assignment by semantic similarity of a message and of its best sentence to each area's
  description and examples (:func:`area_similarities`), decided by a small logistic head per area
  over the message embedding and those two similarities (:class:`AreaHead`) for the areas it was
  trained on, and by calibrated similarity thresholds for areas a user added or rewrote
  (:func:`assign_areas`);
- expectation statements: cue patterns plus a small logistic head on sentence embeddings
  (:func:`detect_statements`), whether the expectation was met, the sentence span, and where the
  expectation came from (:func:`expectation_source`);
- :func:`tag_expectations`, the one entry point the analysis pipeline calls;
- gap metrics per area and period as pure functions over a messages DataFrame
  (:func:`area_gap_table`, :func:`ipa_table`, :func:`gap_trend`, :func:`quadrant_name`).

It must not: import Streamlit, write files, read anything but the taxonomy file and the shipped
heads (``pipelines/models/expectation_head.npz`` and ``expectation_area_head.npz`` here, and the
sentiment head through ``pipelines.sentiment``; all read with ``allow_pickle=False``), or unpickle
anything. ``bench/expectations.py --train`` trains the heads and calibrates the thresholds on the
dev half of the hand-labelled set; without ``--train`` it measures everything on the test half.

Example:
    >>> from pipelines.embed import SentenceTransformerEncoder
    >>> enc = SentenceTransformerEncoder()
    >>> texts = ["They promised delivery in 2 days and it took three weeks."]
    >>> tags = tag_expectations(texts, enc.encode(texts), enc, load_taxonomy())
    >>> bool(tags.loc[0, "expectation"]), tags.loc[0, "expectation_met"], tags.loc[0, "expectation_source"]
    (True, 'unmet', 'company')
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.embed import EmbeddingCache, Encoder, embed_with_cache, needs_span_vectors, span_cache_keys
from pipelines.errors import FeedbackLensError
from pipelines.ingest import name_key
from pipelines.settings import yaml_loader
from pipelines.text_rules import straight_apostrophes

AREAS_PATH = Path(__file__).resolve().parents[1] / "data" / "expectation_areas.yaml"
"""The default taxonomy, shipped with the project; users may edit it or pass their own file."""

HEAD_PATH = Path(__file__).with_name("models") / "expectation_head.npz"
"""Weights of the statement head (a few KB of arrays), trained by ``bench/expectations.py --train``."""

AREA_HEAD_PATH = Path(__file__).with_name("models") / "expectation_area_head.npz"
"""Weights of the per-area heads (a few KB of arrays), trained by ``bench/expectations.py --train``."""

SOURCES = ("company", "other_brands", "reviews", "previous", "unknown")
"""Where an expectation came from: the company's own communication, other brands, reviews and word
of mouth, the customer's previous encounters with this company, or not said."""

SOURCE_NAMES = {"company": "Company communication", "other_brands": "Other brands", "reviews": "Reviews & word of mouth",
                "previous": "Previous encounter", "unknown": "Not stated"}

QUADRANTS = ("fix first", "keep it up", "low priority", "possible overkill")
"""Importance–Performance Analysis quadrants (Martilla & James, 1977), in managers' words."""

TAG_COLUMNS = ("areas", "expectation", "expectation_met", "expectation_sentence", "expectation_start",
               "expectation_end", "expectation_source")


@dataclass(frozen=True)
class ExpectationSettings:
    """Tunables of expectation tagging and gap metrics, each with its default and why.

    The thresholds were calibrated on the dev half of ``bench/expectation_eval/labels.csv`` by
    ``bench/expectations.py --train``; the test half was used only to report the results.
    """

    # Areas the shipped area head does not know (added or rewritten by a user), or any area when the
    # encoder is not the head's: the cosine similarity an area needs when its taxonomy entry sets no
    # threshold of its own (calibrated on dev over all areas: the best single threshold for micro-F1).
    area_threshold: float = 0.31
    # Same case: blend of the whole-message and best-sentence similarity. Sentences find an area
    # that one line of a long complaint mentions, the whole message keeps short texts stable (0.3,
    # 0.5 and 0.7 were tried on dev; 0.5 was best, and clearly better than either alone).
    sentence_weight: float = 0.5
    # Probability from the statement head above which a sentence states an expectation; None uses
    # the threshold calibrated with the shipped head (on dev: the best F1 with precision >= 0.85).
    statement_threshold: float | None = None
    # Long messages: only the first sentences are embedded; keeps a 26,000-character complaint
    # from costing as much as 200 short reviews.
    max_sentences: int = 40
    # Beyond this many characters into a message only sentences with a cue phrase are embedded:
    # the message embedding reads about this much too, and without the bound tagging long complaints
    # cost 2.5x the rest of the analysis (CFPB, 5,000 messages: 770 s on 2 cores).
    scan_chars: int = 1200
    # Sentences shorter than this carry no statement ("!", "ok.") and are skipped.
    min_sentence_chars: int = 8
    # A statement's highlight: a sentence longer than this (a complaint typed without full stops) is
    # narrowed to the clauses around its cue phrase, so a reader sees which words state the expectation
    # instead of a highlighted paragraph (CFPB: one statement in ten was over 340 characters).
    highlight_chars: int = 240
    # Gap metrics: an area needs this many mentions in a period before its rates are shown;
    # fewer would make the unmet rate and sentiment swing on one or two messages.
    min_mentions: int = 5
    # Importance never drops below this, so an area that customers mention but whose effect the
    # regression cannot separate still has a place on the IPA chart.
    importance_floor: float = 0.01


# --------------------------------------------------------------------------------------------
# Taxonomy
# --------------------------------------------------------------------------------------------

_KEY = re.compile(r"^[a-z][a-z0-9_]*$")
_REQUIRED = ("key", "name", "description", "examples")


@dataclass(frozen=True)
class ExpectationArea:
    """One expectation area: what customers expect in one part of the experience."""

    key: str
    name: str
    description: str
    examples: tuple[str, ...]
    threshold: float | None = None

    def prototypes(self) -> list[str]:
        """The texts a message is compared with: the description, then each example."""
        return [self.description, *self.examples]


@dataclass(frozen=True)
class Taxonomy:
    """The expectation areas of a run, in file order."""

    areas: tuple[ExpectationArea, ...]
    path: str = ""

    @property
    def keys(self) -> list[str]:
        """Area keys in file order."""
        return [a.key for a in self.areas]

    def name_of(self, key: str) -> str:
        """The display name of area ``key`` (the key itself when unknown)."""
        for area in self.areas:
            if area.key == key:
                return area.name
        return key


def _line(node) -> int:
    return node.start_mark.line + 1


def _fields(node) -> dict:
    """A YAML mapping's entries by key; a key that is not plain text (``? [a, b]``) is no field name."""
    import yaml

    return {k.value: v for k, v in node.value if isinstance(k, yaml.ScalarNode)}


def load_taxonomy(path: str | Path = AREAS_PATH) -> Taxonomy:
    """Read and validate an expectation-area file.

    Args:
        path: A YAML file with a top-level ``areas:`` list; each area has ``key``, ``name``,
            ``description``, ``examples`` (a non-empty list) and optionally ``threshold``.

    Returns:
        The validated taxonomy.

    Raises:
        FeedbackLensError: the file is missing or not valid YAML (the message names the line), or an
            area lacks a field, repeats a key, has no examples or a threshold outside 0..1 (the
            message names the area, its line and the fix).

    Example:
        >>> load_taxonomy().keys[:2]
        ['speed_of_service', 'personalised_interaction']
    """
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise FeedbackLensError(f"The expectation-area file {path} cannot be read ({err}).",
                                fix="Check the path, or delete the setting to use the shipped default.") from None
    try:
        root = yaml.compose(text, Loader=yaml_loader())
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "an unknown line"
        raise FeedbackLensError(
            f"The expectation-area file {path} is not valid YAML at {where}: {err.problem or err.context}.",
            fix="Fix the indentation or quoting on that line (a text containing ': ' or '#' needs quotes).",
        ) from None
    except yaml.YAMLError as err:
        raise FeedbackLensError(f"The expectation-area file {path} is not valid YAML ({err}).",
                                fix="Compare it with the shipped data/expectation_areas.yaml.") from None

    def fail(message: str, fix: str) -> FeedbackLensError:
        return FeedbackLensError(f"{path}: {message}", fix=fix)

    if not isinstance(root, yaml.MappingNode):
        raise fail("the file must be a mapping with an `areas:` list.", "Start the file with `areas:`.")
    top = _fields(root)
    areas_node = top.get("areas")
    if not isinstance(areas_node, yaml.SequenceNode) or not areas_node.value:
        raise fail("`areas:` is missing or empty.", "Add at least one area under `areas:` (see the shipped file).")
    areas: list[ExpectationArea] = []
    seen: dict[str, int] = {}
    for number, node in enumerate(areas_node.value, start=1):
        line = _line(node)
        if not isinstance(node, yaml.MappingNode):
            raise fail(f"area {number} (line {line}) is not a mapping of key, name, description, examples.",
                       "Write each area as `- key: ...` followed by indented `name:`, `description:`, `examples:`.")
        fields = _fields(node)
        label = fields["key"].value if isinstance(fields.get("key"), yaml.ScalarNode) else f"number {number}"
        missing = [f for f in _REQUIRED if f not in fields]
        if missing:
            raise fail(f"area {label} (line {line}) lacks {', '.join(missing)}.",
                       f"Add {', '.join(f'`{m}:`' for m in missing)} to that area.")
        for name in ("key", "name", "description"):
            value = fields[name]
            if not isinstance(value, yaml.ScalarNode) or not str(value.value).strip():
                raise fail(f"area {label} (line {_line(value)}): `{name}` must be a non-empty text.",
                           f"Give the area a one-line `{name}`.")
        key = str(fields["key"].value).strip()
        if not _KEY.match(key):
            raise fail(f"area key {key!r} (line {_line(fields['key'])}) is not a valid key.",
                       "Use lower-case letters, digits and underscores, starting with a letter (e.g. fast_refunds).")
        if key in seen:
            raise fail(f"area key {key!r} appears twice (lines {seen[key]} and {line}).",
                       "Give each area its own key, or merge the two areas.")
        seen[key] = line
        examples_node = fields["examples"]
        if not isinstance(examples_node, yaml.SequenceNode):
            raise fail(f"area {key} (line {_line(examples_node)}): `examples` must be a list.",
                       "Write examples as a list, one `- phrase` per line.")
        examples = tuple(str(e.value).strip() for e in examples_node.value
                         if isinstance(e, yaml.ScalarNode) and str(e.value).strip())
        if not examples:
            raise fail(f"area {key} (line {_line(examples_node)}) has no examples.",
                       "Add a few short customer phrases under `examples:`; areas are found by similarity to them.")
        threshold = None
        if "threshold" in fields:
            raw = fields["threshold"]
            try:
                threshold = float(raw.value)
            except (TypeError, ValueError):
                threshold = -1.0
            if not 0.0 <= threshold <= 1.0:
                raise fail(f"area {key} (line {_line(raw)}): threshold must be a number from 0 to 1.",
                           "Use a cosine similarity such as 0.4, or delete the line to use the default.")
        areas.append(ExpectationArea(key=key, name=str(fields["name"].value).strip(),
                                     description=" ".join(str(fields["description"].value).split()),
                                     examples=examples, threshold=threshold))
    return Taxonomy(areas=tuple(areas), path=str(path))


# --------------------------------------------------------------------------------------------
# Sentences and cue patterns
# --------------------------------------------------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\n+")


def split_sentences(text: str, min_chars: int = 1) -> list[tuple[int, int]]:
    """Sentence spans ``(start, end)`` of ``text``, trimmed of surrounding whitespace.

    Splits after ``.``, ``!`` or ``?`` (and any closing quote or bracket) followed by whitespace, and
    at line breaks. Abbreviations ("Dr. Smith") are split too, which costs little here: a statement
    cut in two is still found in its longer half.

    Example:
        >>> t = "Arrived late. Not as described!"
        >>> [t[s:e] for s, e in split_sentences(t)]
        ['Arrived late.', 'Not as described!']
    """
    spans, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text)))
    out = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e - s >= min_chars:
            out.append((s, e))
    return out


# The modal of a promise or forecast, contractions included ("it won't", "she said it'd", "they'll").
_WILL = r"(?:\b(?:would|will|won'?t|wouldn'?t)\b|'(?:ll|d)\b)"
_VERB_SAY = r"(?:said|says|stated|states|told(?: me| us)?|informed(?: me| us)|advised(?: me| us)?|claimed|claims|assured(?: me| us)?|promised|confirmed)"
_PRODUCT_WORDS = r"(?:good|great|tasty|fresh|fast|nice|strong|effective|sweet|crunchy|smooth|rich|soft|bad|cheap|sturdy|reliable)"
CUE_GROUPS: dict[str, tuple[str, ...]] = {
    # "I expected…", "wasn't expecting", "far from what I anticipated", "I thought it would…"
    "expected": (
        r"\bexpect(?:ed|ing|ation|ations)?\b", r"\banticipat(?:ed|ing)\b",
        rf"\b(?:i|we) (?:had )?(?:thought|assumed|hoped|believed) (?:it|they|this|these|that|i|we|the)\b(?:.{{0,40}}(?:\b(?:could|was|were|had)\b|{_WILL}))",
        r"\bhop(?:ed|ing) (?:it|that|for|to|i|this|these|they|we)\b", r"\bunder the impression\b",
        r"\b(?:was|were) led to believe\b", r"\bnever thought\b", r"\bs[ck]eptical\b", r"\bif (?:i|we) (?:had|would have) know",
        r"\bwould (?:have )?never (?:have )?(?:purchased|bought|ordered)\b", r"\b(?:i|we) would have (?:purchased|bought|chosen)\b",
    ),
    # "they promised", "said it would take 2 days", "I was told it would…", "assured me"
    "told": (
        r"\bpromis(?:e|ed|es|ing)\b", r"\bassur(?:ed|ance|ances)\b", r"\bguarantee(?:d|s)?\b",
        rf"\b(?:they|he|she|rep|representative|agent|manager|employee|company|bank|seller|vendor|staff|it|someone|lender|servicer) {_VERB_SAY}\b"
        rf"(?:.{{0,60}}(?:\b(?:was going to|were going to|within)\b|{_WILL}))",
        rf"\b(?:i|we) (?:was|were) (?:told|informed|advised|promised|assured|instructed)\b.{{0,60}}(?:\b(?:was going to|within|need(?:ed)? to)\b|{_WILL})",
        rf"\b(?:stating|saying|stated|said) (?:that )?(?:my|the|it|they|i|we)\b.{{0,40}}{_WILL}",
        r"\b(?:than|as) (?:they|he|she|it) (?:said|promised|told|quoted|estimated)\b", r"\bthey did so\b",
        r"\boffering\b.{0,40}\b(?:bonus|discount|rate|points|deal)\b",
    ),
    # "advertised as", "not as described", "the label says", "supposedly new"
    "described": (
        r"\badvertis(?:ed|ement|ing|es)\b", r"\b(?:as|not as|not what was) (?:described|pictured|shown|listed|stated|labeled|labelled)\b",
        r"\b(?:product |item )?description\b", r"\bsupposedly\b", r"\bmislead(?:ing)?\b|\bmisled\b", r"\bdeceptive\b",
        r"\bbait and switch\b", r"\bfalse advertising\b", r"\bnot (?:really|real|actually|true)\b",
        r"\b(?:the|its|their) (?:label|package|packaging|box|bag|can|jar|bottle|listing|website|site|ad|title|name|email|letter|offer|receipt) "
        r"(?:says|said|states|stated|claims|claimed|shows|showed|reads|read|promised|indicated)\b",
        r"\bclaim(?:s|ed)? to\b", r"\bas instructed\b|\bper (?:the|their) instructions\b", r"\bused as directed\b",
    ),
    # "was supposed to", "should have received"
    "supposed": (
        r"\bsupposed to\b", r"\bshould (?:have|only)\b", r"\bwould have (?:expected|thought|liked)\b",
        r"\b(?:like|as) (?:it|they) (?:is|are|was|were) supposed to\b", r"\binstead of (?:coming|being|getting|the)\b",
        r"\byou get what you pay for\b",
    ),
    # "unlike [other company]", "better than X", "nowhere near as good as"
    "compared": (
        r"\bunlike\b", r"\bcompared (?:to|with)\b", r"\bin comparison\b", r"\bnowhere near\b",
        r"\b(?:better|worse|cheaper|pricier|fresher|tastier|stronger|weaker|sweeter|smoother|faster|slower|lower|higher|"
        r"more expensive|less expensive) than (?!ever\b)",
        rf"\b(?:not |almost |just )?(?:nearly |quite )?as {_PRODUCT_WORDS} as\b", r"\bas much as (?:the|my|our)\b",
        r"\b(?:not|nowhere) (?:nearly |quite )?as \w+(?: \w+)? as\b",
        r"\bother (?:brands?|companies|company|banks?|lenders?|stores?|sellers?|products?|places?|restaurants?|flavors?|"
        r"energy drinks|mixes|teas?|coffees?)\b",
        r"\b(?:prefer|preferred) (?:the|my)\b", r"\bswitch(?:ed|ing) (?:to|from)\b", r"\bjust like\b", r"\b(?:is|was|are|were|tastes?|tasted|certainly|just|nothing) not like\b|\bnothing like\b",
        r"\b(?:few|most|all|any)(?: of)? (?:the )?(?:ones? |\w+s )?(?:i|we)(?:'ve| have)? (?:ever )?(?:tried|found|had|bought)\b",
        r"\b(?:i|we) (?:usually|normally) (?:don'?t|do not|can'?t)\b", r"\bmost of them\b",
    ),
    # "last time it was…", "used to", "the original lasted a week"
    "previous": (
        r"\blast time\b", r"(?<!getting )(?<!get )(?<!got )\bused to\b", r"\bpreviously\b", r"\bin the past\b",
        r"\b(?:the|my|our) (?:old|original|previous|last) (?:one|formula|version|recipe|batch|order|model|camera|player|phone)\b",
        r"\b(?:never|not) (?:had|have had) (?:a |any )?(?:problem|issue|trouble)s?\b", r"\bbefore (?:they|the|it)\b",
        r"\bnot (?:like|what) it used to\b", r"\b(?:but|and|yet|now) this time\b", r"\bno real improvement\b",
        r"\b(?:been|was) a (?:member|customer|client)\b", r"\b(?:i|we) got in (?:\w+ )?\d{4}\b",
    ),
    # "after all the rave reviews", "I had heard good things"
    "reviews": (
        r"\b(?:the|all the|other|good|great|positive|negative|glowing|many|these|online) reviews\b",
        r"\breviews (?:said|say|were|are|say)\b", r"\bbased on (?:the )?reviews\b",
        r"\bheard (?:about|that|good|great|so much|all|of)\b",
        r"\brecommended (?:by|to me)\b", r"\b(?:friend|friends|family|coworker|co-worker|neighbou?r|sister|brother|mother|mom) "
        r"(?:told|recommended|said|raved|swears)\b", r"\bword of mouth\b", r"\b(?:i|we|i've|i'd|i had|i have|we have) read (?:that|about|online)\b|\bread (?:about|online)\b",
        r"\b(?:everything|all) (?:i'd|i had|i have) read\b",
        r"\bcomplaints (?:have been|were) made\b", r"\b(?:others|other people|people|reviewers) (?:have )?(?:said|say|complained|mentioned)\b",
    ),
    # "pleasantly surprised", "exceeded", "lived up to", "disappointed that…", "far from"
    "surprise": (
        r"\bpleasantly surprised\b", r"\bsurpris(?:ed|ingly|e)\b", r"\bexceed(?:ed|s)?\b", r"\bli(?:ve|ved|ves) up to\b",
        r"\bfell short\b|\bfalls short\b", r"\bdisappoint(?:ed|ing|ment)\b.{0,30}\b(?:that|given|after|since|because|especially)\b",
        r"\bfar from what\b", r"\bnot what (?:i|we)\b", r"\bturn(?:ed|s) out\b",
    ),
}
"""Cue phrases of expectation statements, grouped. Any hit is the cue-phrase baseline's "yes"; for
the statement head a hit is a strong hint, weighed together with the hint groups below and the
sentence's meaning (so "better than ever" alone is not enough, and a paraphrase without a listed
cue can still be found)."""

HINT_GROUPS: dict[str, tuple[str, ...]] = {
    # any comparison: "firmer than", "my favourite of all I tried", "I prefer"
    "comparative": (
        r"\b(?!other\b|rather\b|over\b|under\b|never\b|ever\b|after\b|either\b|whether\b|order\b|number\b)\w{2,}er (?:\w+ )?than\b(?! \d)",
        r"\b(?:a little|a bit|much|far|way|a lot|even) (?:better|worse)\b",
        r"\b(?:more|less) \w+ than\b(?! \d)", r"\bfavou?rite\b", r"\bprefer(?:red|s)?\b", r"\bthe best\b.{0,40}\b(?:ever|tried|had)\b",
        r"\bthe (?:only|few) (?:one|ones)\b", r"\bsame as\b", r"\bas (?:good|well|much|fresh|fast) as\b", r"\bbrands?\b",
    ),
    # something said, sent or shown by the company
    "communication": (
        r"\b(?:they|he|she|rep|representative|agent|manager|company|bank|seller|it) (?:said|says|stated|claimed|told|informed|advised)\b",
        r"\baccording to\b", r"\b(?:an |the |their )?(?:email|e-mail|letter|notice|offer|receipt|label|package|packaging|listing|website)\b",
        r"\bconfirm(?:ed|ation)\b", r"\bquoted\b",
    ),
    # time before this encounter
    "past": (
        r"\bbefore\b", r"\bagain\b", r"\banymore\b", r"\bno longer\b", r"\balways\b", r"\bremember(?:ed)?\b", r"\boriginal(?:ly)?\b",
        r"\b(?:first|second|third) time\b", r"\bfor (?:over |about )?(?:\d+|many|several|two|three|ten) years\b", r"\busually\b|\bnormally\b",
    ),
    # a turn: what was expected against what happened
    "contrast": (r"\bbut\b", r"\bhowever\b", r"\byet\b", r"\binstead\b", r"\balthough\b|\bthough\b", r"\bstill\b", r"\bnot even\b"),
    # what the customer was told, without the "…would / will" the "told" cues need (issue 5's "was told",
    # "according to their website")
    "reported": (
        r"\b(?:i|we) (?:was|were|had been|have been) (?:told|informed|assured|promised|quoted)\b", r"\bwhat (?:i|we) (?:was|were) told\b",
        r"\baccording to (?:the|their|your|its|his|her) (?:website|site|ads?|advertisement|listing|label|description|rep|representative|"
        r"agent|terms|agreement|contract|letter|email|polic(?:y|ies))\b",
    ),
    # a norm stated as one: "it should be", "it normally takes"
    "norm": (
        r"\b(?:normally|usually) (?:takes?|took|costs?|is|are|was|were|comes?|came|arrives?|arrived|gets?|get)\b",
        r"\bshould (?:be|get|take|arrive|work|last|have been)\b",
    ),
}
"""Weaker hints, common outside expectation statements too: features of the statement head only."""

_CUES = {group: re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)
         for group, patterns in CUE_GROUPS.items()}
_HINTS = {group: re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)
          for group, patterns in HINT_GROUPS.items()}
CUE_GROUP_NAMES = (*CUE_GROUPS, *(f"hint_{g}" for g in HINT_GROUPS))
"""Names of the cue features, in the order :func:`cue_groups` returns them."""

_MET_CUES = re.compile(
    r"\b(?:as|just as|exactly as|exactly what was) (?:described|advertised|pictured|shown|promised|expected|stated|listed)\b|"
    r"\bpleasantly surprised\b|\bexceed(?:ed|s)\b|\bli(?:ve|ved|ves) up to\b|\bbetter than (?:i|we|expected|i'd|what)\b|"
    r"\b(?:faster|sooner|quicker|earlier) than (?:i|we|expected|promised|estimated)\b|\bon time\b",
    re.IGNORECASE)
_UNMET_CUES = re.compile(
    r"\bnot (?:as|what was|what is|exactly as) (?:described|advertised|pictured|shown|promised|expected|stated|listed)\b|"
    r"\bsupposed(?:ly)? (?:to )?\b|\bfell short\b|\bfalls short\b|\bnowhere near\b|\bnot (?:nearly |quite )?as \w+ as\b|"
    r"\bmislead|\bmisled\b|\bdeceptive\b|\bbait and switch\b|\bfalse advertising\b|\bshould have\b|\bstill (?:have )?not\b|"
    r"\bnever (?:received|got|arrived|came|showed)\b|\bworse than\b|\bdisappoint|\bused to be\b|\bnot like it used to\b|"
    r"\bwould have (?:purchased|bought|chosen)\b|\bif (?:i|we) had know|\bwould (?:have )?never (?:have )?(?:purchased|bought)\b",
    re.IGNORECASE)

_SOURCE_RULES: tuple[tuple[str, str], ...] = (
    # (source, pattern), most specific first; the first rule that matches the sentence decides.
    ("reviews", r"\breviews?\b|\breviewers?\b|(?<!never )(?<!not )\bheard\b|\bword of mouth\b|\brecommend(?:ed|ation)s? (?:by|from)\b|"
                r"\b(?:i'd|i had|i have|i) read\b|\badvice (?:from|of)\b|\bcomplaints (?:have been|were) made\b|\brefer(?:r)?ed me\b|"
                r"\b(?:friend|friends|family|coworkers?|co-workers?|neighbou?rs?|sister|brother|mother|mom|dad)\b.{0,30}"
                r"\b(?:told|recommended|said|raved|swears|swore|introduced|gave|got)\b|\beveryone (?:says|said)\b|\bratings?\b|"
                r"\b(?:others|other people|people) (?:have )?(?:said|say|complained|mentioned)\b"),
    ("company", r"\bpromis|\badvertis|\bdescri(?:bed|ption)\b|\bas (?:pictured|shown|listed|stated)\b|\bpicture\b|\bmislead|\bmisled\b|"
                r"\bdeceptive\b|\bsupposedly\b|\bassur|\bcontradict|\bnot (?:really|real)\b|\bweren'?t really\b|\bin stock\b|"
                r"\b(?:label|package|box|listing|website|site|offer|email|letter|receipt)\b.{0,20}\b(?:says|said|states|stated|claims|shows|showed)\b|"
                r"\b(?:they|he|she|rep|representative|agent|manager|employee|staff|company|bank|it)\b.{0,15}\b(?:said|says|stated|claimed|claim|"
                r"told|informed|advised|committed|agreed|confirmed|asked for|offered)\b|\b(?:was|were) (?:told|informed|advised|instructed)\b|"
                r"\bwhat i was told\b|\btimeline\b|\b(?:member )?benefits\b|\bfree checking\b|\bwarranty\b|\bguarantee|"
                r"\bon time\b|\bas instructed\b|\binstructions\b"),
    ("other_brands", r"\bunlike\b|\bcompared? (?:to|with)\b|\bcomparable\b|\bother (?:brands?|companies|company|banks?|lenders?|stores?|"
                     r"sellers?|products?|places?|restaurants?|sites?|websites?|\w+s)\b|(?<!this )(?<!the )(?<!that )\bbrand\b|\bbrands\b|"
                     r"\bswitch(?:ed|ing)\b|\bprefer\b|\b\w+er (?:\w+ )?than\b(?! (?:(?:i|we) (?:had |'d )?(?:expected|thought|anticipated|imagined|hoped)|"
                     r"it (?:looked|looks)|expected|anticipated|advertised|described|pictured|shown|listed|stated)\b)|\b(?:more|less) \w+ than\b|\bas (?:good|much|well|fresh|tasty) as\b|\bnot like\b|\bjust like\b|"
                     r"\bbeats?\b|\b(?:i|we) usually\b|\bwhat (?:i|we) usually\b|\b(?:the )?(?:few|most|all|any)(?: of)? (?:the )?(?:ones? )?(?:i|we)(?:'ve| have)? "
                     r"(?:ever )?(?:tried|found|had|bought)\b|\bmost of them\b|\b(?:was|were|am|are|get|got) used to\b|"
                     r"\b(?:store|stores|supermarket|grocery|market)\b"),
    ("previous", r"\blast time\b|\bused to\b|\bpreviously\b|\bin the past\b|\boriginal\b|\bas usual\b|\bfor years\b|"
                 r"\bprevious (?:purchase|order|batch|shipment|one)s?\b|\balways (?:liked|loved|bought|used|enjoyed|ordered)\b|"
                 r"\b(?:the|my|our) (?:old|previous|last|first) (?:one|formula|version|recipe|batch|order|model|purchase|shipment)\b|"
                 r"\bbefore (?:they|the|it)\b|\bthis time\b|\bnever (?:had|have had) (?:a |any )?(?:problem|issue)|"
                 r"\b(?:been|was|am) a (?:customer|member|\w+ (?:freak|fan|lover|addict))\b|\bfor (?:over )?\d+ years\b|\b(?:second|third) (?:time|order)\b|"
                 r"\bremember(?:ed)?\b|\bno (?:real )?improvement\b|\b(?:have|had|i've) (?:been )?(?:buying|using|ordering|tried)\b|"
                 r"\bother flavors\b|\bgot in (?:\w+ )?\d{4}\b|\bno longer\b|\banymore\b"),
)
_SOURCE_PATTERNS = tuple((source, re.compile(pattern, re.IGNORECASE)) for source, pattern in _SOURCE_RULES)


def cue_groups(sentence: str) -> np.ndarray:
    """Which cue and hint groups (in :data:`CUE_GROUP_NAMES` order) match ``sentence``, as 0/1 floats.

    Example:
        >>> dict(zip(CUE_GROUP_NAMES, cue_groups("They promised it would arrive by Friday.").tolist()))["told"]
        1.0
    """
    sentence = straight_apostrophes(sentence)
    return np.array([1.0 if rx.search(sentence) else 0.0 for rx in (*_CUES.values(), *_HINTS.values())])


_LOOKAROUND = re.compile(r"\(\?<?[!=][^()]*\)")


def _re2_group(patterns: Sequence[str]) -> tuple[str, bool]:
    """A group's patterns as one RE2 pattern, and whether it decides alone. RE2 has no lookarounds: a
    group with any runs without them (it then matches a superset) and Python's ``re`` decides its hits."""
    joined = "|".join(f"(?:{p})" for p in patterns)
    stripped = _LOOKAROUND.sub("", joined)
    return stripped, stripped == joined


_RE2_GROUPS = tuple(_re2_group(patterns) for patterns in (*CUE_GROUPS.values(), *HINT_GROUPS.values()))


def cue_matrix(sentences: Sequence[str]) -> np.ndarray:
    """:func:`cue_groups` of many sentences, one row each: the same values, about fifty times as fast.

    Each group runs as one RE2 pattern over all sentences at once (Arrow's regex kernels: linear time
    however many alternatives a group has, where Python's ``re`` tries each at every position). For
    exactly the same result: a group with lookarounds runs without them and Python's ``re`` decides
    its hits; sentences with non-ASCII characters, where RE2's ``\\b`` and ``\\w`` are narrower than
    Python's, are read by Python's ``re`` alone.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(sentences)
    out = np.zeros((n, len(CUE_GROUP_NAMES)))
    if n == 0:
        return out
    column = pa.array(sentences, type=pa.large_string())
    ascii_only = pc.string_is_ascii(column).to_numpy(zero_copy_only=False)
    other = np.flatnonzero(~ascii_only)
    for j, (rx, (pattern, alone)) in enumerate(zip((*_CUES.values(), *_HINTS.values()), _RE2_GROUPS, strict=True)):
        hit = pc.match_substring_regex(column, pattern, ignore_case=True).to_numpy(zero_copy_only=False) & ascii_only
        if not alone:
            rows = np.flatnonzero(hit)
            hit[rows] = [rx.search(sentences[i]) is not None for i in rows]
        hit[other] = [rx.search(straight_apostrophes(sentences[i])) is not None for i in other]
        out[:, j] = hit
    return out


def has_cue(sentence: str) -> bool:
    """True when any expectation cue phrase matches: the cue-phrase-only baseline's decision."""
    sentence = straight_apostrophes(sentence)
    return any(rx.search(sentence) for rx in _CUES.values())


def cue_polarity(sentence: str) -> str | None:
    """"met" or "unmet" when a cue phrase says so ("as described", "not as described"), else None."""
    sentence = straight_apostrophes(sentence)
    unmet = _UNMET_CUES.search(sentence)
    met = _MET_CUES.search(sentence)
    if unmet and not (met and met.start() < unmet.start() and "not" not in sentence[met.start():unmet.start()]):
        return "unmet"
    if met:
        return "met"
    return None


_CLAUSE_BREAK = re.compile(r"[,;:)\u2013\u2014]\s+|\s+-+\s+|\s+\((?=\w)")


def focus_span(text: str, start: int, end: int, max_chars: int = 240) -> tuple[int, int]:
    """The words of ``text[start:end]`` to highlight as the expectation statement.

    A sentence up to ``max_chars`` long is highlighted whole. A longer one (a complaint typed without
    full stops) is narrowed to the clause holding its first cue phrase, widened by its neighbouring
    clauses while they fit in ``max_chars``; a clause longer than that is cut at words around the cue.
    Without a cue phrase a hint phrase ("they told me") takes its place; a long sentence with neither
    (found by the head alone) stays whole: nothing says where in it the expectation is.

    Example:
        >>> t = "I called them on Monday, then again on Tuesday and on Wednesday, and every time I was on hold, " * 3
        >>> t += "they promised the refund would be in my account within 5 days, and still nothing arrived"
        >>> s, e = focus_span(t, 0, len(t), max_chars=120)
        >>> t[s:e]
        'and every time I was on hold, they promised the refund would be in my account within 5 days, and still nothing arrived'
    """
    if end - start <= max_chars:
        return start, end
    sentence = straight_apostrophes(text[start:end])
    # a cue phrase marks the statement; failing one, a hint ("they told me") the head read it by
    hits = ([m for rx in _CUES.values() if (m := rx.search(sentence))]
            or [m for rx in _HINTS.values() if (m := rx.search(sentence))])
    if not hits:
        return start, end
    cue = min(hits, key=lambda m: m.start())
    cuts = [0, *(m.end() for m in _CLAUSE_BREAK.finditer(sentence)), len(sentence)]
    # the clause holding the cue: from the last cut at or before it to the first cut after it
    lo = max(c for c in cuts if c <= cue.start())
    hi = min((c for c in cuts if c >= cue.end()), default=len(sentence))
    lo_i, hi_i = cuts.index(lo), cuts.index(hi)
    while True:  # widen by whole clauses, the shorter side first, while the highlight fits
        options = [(cuts[hi_i + 1] - hi, "after") if hi_i + 1 < len(cuts) else None,
                   (lo - cuts[lo_i - 1], "before") if lo_i > 0 else None]
        options = sorted(o for o in options if o is not None and hi - lo + o[0] <= max_chars)
        if not options:
            break
        if options[0][1] == "after":
            hi_i += 1
            hi = cuts[hi_i]
        else:
            lo_i -= 1
            lo = cuts[lo_i]
    if hi - lo > max_chars:  # one clause too long: words around the cue, more after it than before
        lo = max(lo, cue.start() - max_chars // 3)
        hi = min(hi, lo + max_chars)
        if lo > 0 and not sentence[lo - 1].isspace():
            lo = sentence.find(" ", lo, cue.start()) + 1 or cue.start()
        if hi < len(sentence) and not sentence[hi].isspace():
            space = sentence.rfind(" ", cue.end(), hi)
            hi = space if space > 0 else hi
    piece = sentence[lo:hi]
    lo += len(piece) - len(piece.lstrip())
    hi -= len(piece) - len(piece.rstrip(" ,;:-\u2013\u2014"))
    return start + lo, start + hi


def cue_source(sentence: str) -> str | None:
    """The expectation source a cue phrase names in ``sentence``, or None when none does.

    Example:
        >>> cue_source("After all the rave reviews I was let down.")
        'reviews'
    """
    sentence = straight_apostrophes(sentence)
    for source, rx in _SOURCE_PATTERNS:
        if rx.search(sentence):
            return source
    return None


# --------------------------------------------------------------------------------------------
# Area assignment
# --------------------------------------------------------------------------------------------


def _float64_product(vectors: np.ndarray, weights: np.ndarray, chunk: int = 65_536) -> np.ndarray:
    """``vectors @ weights`` in float64, converting ``vectors`` a chunk of rows at a time (not all at once)."""
    out = np.empty((len(vectors), *weights.shape[1:]), dtype=np.float64)
    for start in range(0, len(vectors), chunk):
        out[start : start + chunk] = vectors[start : start + chunk].astype(np.float64) @ weights
    return out


def _top_mean(sims: np.ndarray, k: int) -> np.ndarray:
    """Mean of the ``k`` largest values in each row (all of them when a row is shorter)."""
    k = min(k, sims.shape[1])
    return np.sort(sims, axis=1)[:, -k:].mean(axis=1)


def area_prototype_vectors(taxonomy: Taxonomy, encoder: Encoder, cache: EmbeddingCache | None = None) -> list[np.ndarray]:
    """Embeddings of each area's description and examples, one array per area, in taxonomy order
    (through ``cache`` when given: a re-run then embeds only what the areas file changed)."""
    from pipelines.clean import text_hash

    texts = [t for area in taxonomy.areas for t in area.prototypes()]
    vectors = (encoder.encode(texts) if cache is None else
               embed_with_cache(texts, [text_hash(t) for t in texts], encoder, cache)[0])
    out, start = [], 0
    for area in taxonomy.areas:
        n = len(area.prototypes())
        out.append(vectors[start : start + n])
        start += n
    return out


def area_similarities(message_vectors: np.ndarray, sentence_vectors: np.ndarray, sentence_owner: np.ndarray,
                      prototypes: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Cosine similarity of each message, and of its best sentence, to each area.

    Each similarity is the mean of the two best matches among the area's description and examples.
    A message without sentences gets its whole-message similarity as its best sentence's.

    Args:
        message_vectors: L2-normalised message embeddings, one row per message.
        sentence_vectors: L2-normalised sentence embeddings.
        sentence_owner: For each sentence, the row of its message.
        prototypes: Per area, the embeddings of its description and examples.

    Returns:
        ``(whole, best)``, each of shape ``(messages, areas)``.
    """
    n = len(message_vectors)
    whole = np.zeros((n, len(prototypes)))
    best = np.zeros((n, len(prototypes)))
    for j, proto in enumerate(prototypes):
        whole[:, j] = _top_mean(message_vectors @ proto.T, 2)
        top = np.full(n, -np.inf)
        if len(sentence_vectors):
            np.maximum.at(top, sentence_owner, _top_mean(sentence_vectors @ proto.T, 2))
        best[:, j] = np.where(np.isfinite(top), top, whole[:, j])
    return whole, best


def area_scores(message_vectors: np.ndarray, sentence_vectors: np.ndarray, sentence_owner: np.ndarray,
                prototypes: Sequence[np.ndarray], settings: ExpectationSettings | None = None) -> np.ndarray:
    """Similarity of each message to each area, shape ``(messages, areas)``: the threshold path's score.

    Blends the whole-message and the best-sentence similarity of :func:`area_similarities` with
    ``settings.sentence_weight`` on the sentence.
    """
    settings = settings or ExpectationSettings()
    whole, best = area_similarities(message_vectors, sentence_vectors, sentence_owner, prototypes)
    return (1.0 - settings.sentence_weight) * whole + settings.sentence_weight * best


def area_fingerprint(area: ExpectationArea) -> str:
    """Identifies an area's key, description and examples: a head trained on them applies only while they stay so."""
    from pipelines.clean import text_hash

    return text_hash("\n".join([area.key, *area.prototypes()]))


@dataclass(frozen=True)
class AreaHead:
    """One logistic head per area: P(the message is about the area).

    Features: the message embedding and the area's own whole-message and best-sentence similarity
    (times ``similarity_scale``, so that the two numbers are not drowned by the regularisation of
    384 embedding weights). Only the area's own similarities are used, so one area's head still
    applies after a user edits, adds or removes other areas. Each area has its own probability
    threshold (calibrated by cross-validation on dev, as the similarity thresholds are).
    """

    keys: tuple[str, ...]
    fingerprints: tuple[str, ...]
    coef: np.ndarray
    intercept: np.ndarray
    thresholds: np.ndarray
    encoder_name: str
    span_method: str
    similarity_scale: float = 3.0

    def features(self, message_vectors: np.ndarray, whole: np.ndarray, best: np.ndarray) -> np.ndarray:
        """Feature rows of one area: ``whole`` and ``best`` are that area's similarities, one per message."""
        return np.hstack([message_vectors.astype(np.float64, copy=False),
                          self.similarity_scale * np.column_stack([whole, best])])

    def _rows(self, taxonomy: Taxonomy) -> list[int | None]:
        """For each area of ``taxonomy``, its row in the head, or None when the head does not know it
        (an area it was not trained on, or one whose key, description or examples changed since)."""
        trained = {f: k for k, f in enumerate(self.fingerprints)}
        return [trained.get(area_fingerprint(area)) for area in taxonomy.areas]

    def probabilities(self, message_vectors: np.ndarray, whole: np.ndarray, best: np.ndarray,
                      taxonomy: Taxonomy) -> np.ndarray:
        """P(area) per message and area of ``taxonomy``; NaN in the columns of areas the head does not know."""
        out = np.full(whole.shape, np.nan)
        known = [(j, k) for j, k in enumerate(self._rows(taxonomy)) if k is not None]
        if not known:
            return out
        d = message_vectors.shape[1]
        # What features() @ coef gives, without building the (messages x 386) feature rows of every area.
        base = _float64_product(message_vectors, self.coef[[k for _, k in known], :d].T)
        for col, (j, k) in enumerate(known):
            z = (base[:, col] + self.similarity_scale * (whole[:, j] * self.coef[k, d] + best[:, j] * self.coef[k, d + 1])
                 + self.intercept[k])
            out[:, j] = 1.0 / (1.0 + np.exp(-z))
        return out

    def thresholds_for(self, taxonomy: Taxonomy) -> np.ndarray:
        """The probability threshold of each area of ``taxonomy``; NaN for areas the head does not know."""
        return np.array([np.nan if k is None else self.thresholds[k] for k in self._rows(taxonomy)], dtype=np.float64)

    def save(self, path: Path) -> None:
        """Write the heads as plain arrays (``np.savez``; no pickled objects)."""
        np.savez(path, keys=np.array(self.keys, dtype=str), fingerprints=np.array(self.fingerprints, dtype=str),
                 coef=self.coef, intercept=self.intercept, thresholds=self.thresholds, encoder=np.str_(self.encoder_name),
                 span_method=np.str_(self.span_method), similarity_scale=np.float64(self.similarity_scale))


def load_area_head(path: Path = AREA_HEAD_PATH) -> AreaHead:
    """Read the area heads written by ``bench/expectations.py --train`` (``allow_pickle=False``).

    Raises:
        FeedbackLensError: the file is missing, unreadable or lacks an array.
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            return AreaHead(keys=tuple(str(k) for k in z["keys"]), fingerprints=tuple(str(f) for f in z["fingerprints"]),
                            coef=z["coef"].astype(np.float64), intercept=z["intercept"].astype(np.float64),
                            thresholds=z["thresholds"].astype(np.float64), encoder_name=str(z["encoder"]),
                            span_method=str(z["span_method"]), similarity_scale=float(z["similarity_scale"]))
    except (OSError, ValueError, KeyError) as err:
        raise FeedbackLensError(f"The expectation area head {path} cannot be read ({err}).",
                                fix="Reinstall Feedback Lens, or rebuild it with `python bench/expectations.py --train`.") from None


def assign_areas(scores: np.ndarray, taxonomy: Taxonomy, settings: ExpectationSettings | None = None,
                 head: AreaHead | None = None, probabilities: np.ndarray | None = None) -> list[list[str]]:
    """Area keys per message.

    An area the ``head`` knows is assigned where its probability (``probabilities``, from
    :meth:`AreaHead.probabilities`) reaches the head's threshold for it; any other area where its
    similarity score (:func:`area_scores`) reaches its threshold (the area's own, else
    ``settings.area_threshold``).
    """
    settings = settings or ExpectationSettings()
    thresholds = np.array([a.threshold if a.threshold is not None else settings.area_threshold for a in taxonomy.areas])
    found = scores >= thresholds
    if head is not None and probabilities is not None:
        head_thresholds = head.thresholds_for(taxonomy)
        by_head = ~np.isnan(head_thresholds)
        found[:, by_head] = probabilities[:, by_head] >= head_thresholds[by_head]
    keys = taxonomy.keys
    return [[keys[j] for j in np.flatnonzero(row)] for row in found]


# --------------------------------------------------------------------------------------------
# Expectation statements
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatementHead:
    """Logistic head over ``[sentence embedding, cue groups]``: P(sentence states an expectation).

    ``span_method`` says how the sentence vectors it was trained on were made (the encoder's
    ``span_method``, e.g. read in context), so that it is never fed vectors of another kind.
    """

    coef: np.ndarray
    intercept: float
    encoder_name: str
    cue_names: tuple[str, ...]
    threshold: float = 0.5
    span_method: str = ""

    def probability(self, sentence_vectors: np.ndarray, cue_matrix: np.ndarray) -> np.ndarray:
        """P(statement) for each sentence."""
        d = sentence_vectors.shape[1]
        z = _float64_product(sentence_vectors, self.coef[:d]) + cue_matrix @ self.coef[d:] + self.intercept
        return 1.0 / (1.0 + np.exp(-z))

    def save(self, path: Path) -> None:
        """Write the head as plain arrays (``np.savez``; no pickled objects)."""
        np.savez(path, coef=self.coef, intercept=np.float64(self.intercept), encoder=np.str_(self.encoder_name),
                 cue_names=np.array(self.cue_names, dtype=str), threshold=np.float64(self.threshold),
                 span_method=np.str_(self.span_method))


def load_statement_head(path: Path = HEAD_PATH) -> StatementHead:
    """Read the statement head written by ``bench/expectations.py --train`` (``allow_pickle=False``).

    Raises:
        FeedbackLensError: the file is missing, unreadable, lacks an array, or was trained with
            cue groups that differ from this version's.
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            head = StatementHead(coef=z["coef"].astype(np.float64), intercept=float(z["intercept"]),
                                 encoder_name=str(z["encoder"]), cue_names=tuple(str(c) for c in z["cue_names"]),
                                 threshold=float(z["threshold"]), span_method=str(z["span_method"]))
    except (OSError, ValueError, KeyError) as err:
        raise FeedbackLensError(f"The expectation statement head {path} cannot be read ({err}).",
                                fix="Reinstall Feedback Lens, or rebuild it with `python bench/expectations.py --train`.") from None
    if head.cue_names != CUE_GROUP_NAMES:
        raise FeedbackLensError(f"The expectation statement head {path} was trained with other cue groups.",
                                fix="Rebuild it with `python bench/expectations.py --train`.")
    return head


@dataclass
class Statements:
    """Per message: the best sentence's P(statement), its span, its text, and its row among all sentences (-1: none)."""

    probability: np.ndarray
    start: np.ndarray
    end: np.ndarray
    sentence: list[str | None]
    row: np.ndarray


def detect_statements(texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]], sentence_vectors: np.ndarray,
                      head: StatementHead | None) -> Statements:
    """Score every sentence and keep each message's most likely expectation statement.

    Args:
        texts: The messages.
        spans: Per message, its sentence spans (as :func:`split_sentences` gives them).
        sentence_vectors: Embeddings of the sentences, in message then span order.
        head: The statement head; ``None`` scores by cue phrases only (1.0 on a cue, else 0.0).
    """
    sentences = [text[s:e] for text, sp in zip(texts, spans, strict=True) for s, e in sp]
    cues = cue_matrix(sentences)
    if head is None:
        prob = cues[:, : len(CUE_GROUPS)].max(axis=1) if len(sentences) else np.zeros(0)
    else:
        prob = head.probability(sentence_vectors, cues) if len(sentences) else np.zeros(0)
    n = len(texts)
    out = Statements(probability=np.zeros(n), start=np.full(n, -1), end=np.full(n, -1), sentence=[None] * n,
                     row=np.full(n, -1))
    k = 0
    for i, sp in enumerate(spans):
        if sp:
            best = k + int(np.argmax(prob[k : k + len(sp)]))
            out.probability[i] = prob[best]
            out.start[i], out.end[i] = sp[best - k]
            out.sentence[i] = sentences[best]
            out.row[i] = best
        k += len(sp)
    return out


def expectation_source(sentence: str) -> str:
    """Where the expectation in ``sentence`` came from: one of :data:`SOURCES`.

    Cue phrases decide ("they promised" → company, "after the rave reviews" → reviews, "unlike my
    old bank" → other brands, "last time" → previous); without one the source is "unknown".
    Embedding similarity to source prototypes was measured too and did worse than "unknown" on the
    dev set (it forces a source onto statements that name none), so it is not used.

    Example:
        >>> expectation_source("Unlike my old bank, they answered right away.")
        'other_brands'
    """
    return cue_source(sentence) or "unknown"


def expectation_met(sentence: str, sentence_sentiment: float, message_sentiment: float) -> str:
    """"met" or "unmet": a cue phrase decides when there is one, else the sign of the sentiment.

    The sentiment is 0.3 × the sentence's + 0.7 × the whole message's (on the dev set the message
    said more than the sentence: "It's not the 7 buck deal I got in 2012" reads neutral alone).
    """
    cue = cue_polarity(sentence)
    if cue:
        return cue
    return "unmet" if 0.3 * sentence_sentiment + 0.7 * message_sentiment < 0 else "met"


def tag_expectations(texts: Sequence[str], embeddings: np.ndarray, encoder: Encoder, taxonomy: Taxonomy, *,
                     sentiment: np.ndarray | None = None, settings: ExpectationSettings | None = None,
                     head: StatementHead | None = None, area_head: AreaHead | None = None,
                     cache: EmbeddingCache | None = None) -> pd.DataFrame:
    """Tag each message with its expectation areas and its expectation statement, if any.

    This is the pipeline's one entry point. It needs vectors of the messages' sentences (those near
    the start of each message and, further in, those with a cue phrase; a message of one sentence
    reuses its message vector; see :func:`embed_sentences`). In a run the embedding stage has already
    made them, in the same transformer pass as the message vectors, and put them in the run's
    embedding ``cache``: pass it, and tagging runs no transformer. Without them in the cache they are
    embedded here, which costs about as much as embedding the messages again.

    Args:
        texts: The cleaned messages.
        embeddings: Their L2-normalised embeddings from ``encoder``, one row per text.
        encoder: The run's encoder; embeds the sentences and the taxonomy's descriptions and examples.
        taxonomy: The expectation areas (:func:`load_taxonomy`).
        sentiment: The messages' sentiment scores in -1..1, when the run has them (used to tell a
            met expectation from an unmet one when no cue phrase says which); computed with the
            shipped sentiment head when None.
        settings: Thresholds and limits; :class:`ExpectationSettings` defaults when None.
        head: The statement head; the shipped one when None. If the run's encoder is not the one
            the head was trained on (or cannot embed sentences in context as it was trained), statements
            are found by cue phrases only.
        area_head: The area heads; the shipped ones when None. Areas they were not trained on, and
            every area when the encoder is not theirs, are assigned by similarity thresholds.
        cache: The run's embedding cache (for ``encoder``); sentence vectors are read from and added
            to it. None embeds every sentence.

    Returns:
        A DataFrame aligned with ``texts`` (same length, RangeIndex) with columns

        - ``areas``: list of area keys (possibly empty),
        - ``expectation``: True when the message states a met or unmet expectation,
        - ``expectation_met``: "met", "unmet", or None when there is no statement,
        - ``expectation_sentence``: the sentence that states it, or None,
        - ``expectation_start`` / ``expectation_end``: the characters to highlight (``text[start:end]``): the
          sentence, or in a long sentence the clauses around its cue phrase (:func:`focus_span`); -1 if none,
        - ``expectation_source``: one of :data:`SOURCES`, or None when there is no statement.

    Raises:
        FeedbackLensError: ``embeddings`` do not have one row per text.
    """
    settings = settings or ExpectationSettings()
    texts = [str(t) for t in texts]
    n = len(texts)
    if embeddings.ndim != 2 or embeddings.shape[0] != n:
        raise FeedbackLensError(f"tag_expectations got {n} texts but embeddings of shape {embeddings.shape}.",
                                fix="Pass one embedding row per message, from the same encoder.")
    if n == 0:
        empty = {c: pd.Series(dtype=object) for c in TAG_COLUMNS}
        empty.update(expectation=pd.Series(dtype=bool), expectation_start=pd.Series(dtype=np.int64),
                     expectation_end=pd.Series(dtype=np.int64))
        return pd.DataFrame(empty)
    spans = [sentence_spans(t, settings) for t in texts]
    owner = np.array([i for i, sp in enumerate(spans) for _ in sp], dtype=np.int64)
    sentence_vectors = embed_sentences(texts, spans, embeddings, encoder, cache)

    # The heads read the vectors they were trained on only: MiniLM's, sentences read in context.
    vectors_kind = (getattr(encoder, "name", None), span_method(encoder))
    prototypes = area_prototype_vectors(taxonomy, encoder, cache)
    whole, best = area_similarities(embeddings, sentence_vectors, owner, prototypes)
    scores = (1.0 - settings.sentence_weight) * whole + settings.sentence_weight * best
    if area_head is None:
        area_head = load_area_head()
    if (area_head.encoder_name, area_head.span_method) == vectors_kind and area_head.coef.shape[1] == embeddings.shape[1] + 2:
        areas = assign_areas(scores, taxonomy, settings, area_head,
                             area_head.probabilities(embeddings, whole, best, taxonomy))
    else:
        areas = assign_areas(scores, taxonomy, settings)

    if head is None:
        head = load_statement_head()
    if (head.encoder_name, head.span_method) != vectors_kind or head.coef.shape[0] != embeddings.shape[1] + len(CUE_GROUP_NAMES):
        head = None  # another encoder gets the cue-phrase detector
    found = detect_statements(texts, spans, sentence_vectors, head)
    if head is None:
        threshold = 0.5  # cue-phrase scores are 0 or 1
    else:
        threshold = head.threshold if settings.statement_threshold is None else settings.statement_threshold
    is_statement = found.probability >= threshold

    rows = np.flatnonzero(is_statement)
    start, end = np.full(n, -1, dtype=np.int64), np.full(n, -1, dtype=np.int64)
    for i in rows:
        start[i], end[i] = focus_span(texts[i], int(found.start[i]), int(found.end[i]), settings.highlight_chars)
    met: list[str | None] = [None] * n
    source: list[str | None] = [None] * n
    if len(rows):
        sentences = [found.sentence[i] or "" for i in rows]
        sentence_sentiment, message_sentiment = _statement_sentiment(
            texts, sentences, sentence_vectors[found.row[rows]], rows, embeddings, encoder, sentiment)
        for r, i in enumerate(rows):
            met[i] = expectation_met(sentences[r], sentence_sentiment[r], message_sentiment[r])
            source[i] = expectation_source(sentences[r])
    # object columns keep None as None (pandas 3 would otherwise infer a string dtype with NaN)
    return pd.DataFrame({
        "areas": pd.Series(areas, dtype=object),
        "expectation": is_statement.astype(bool),
        "expectation_met": pd.Series(met, dtype=object),
        "expectation_sentence": pd.Series([found.sentence[i] if is_statement[i] else None for i in range(n)], dtype=object),
        "expectation_start": start,
        "expectation_end": end,
        "expectation_source": pd.Series(source, dtype=object),
    })


def sentence_spans(text: str, settings: ExpectationSettings | None = None) -> list[tuple[int, int]]:
    """The sentences of ``text`` that tagging reads: all near the start, later ones only when a cue phrase is in them.

    Example:
        >>> t = "Arrived late. ok. Not as described!"
        >>> [t[s:e] for s, e in sentence_spans(t)]
        ['Arrived late.', 'Not as described!']
    """
    settings = settings or ExpectationSettings()
    kept = [(s, e) for s, e in split_sentences(text, settings.min_sentence_chars)
            if s < settings.scan_chars or has_cue(text[s:e])]
    return kept[: settings.max_sentences]


def span_method(encoder: Encoder) -> str | None:
    """How ``encoder`` embeds sentences in their context (its ``span_method``), or None when it cannot."""
    return getattr(encoder, "span_method", None) if callable(getattr(encoder, "encode_spans", None)) else None


def embed_sentences(texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]], embeddings: np.ndarray,
                    encoder: Encoder, cache: EmbeddingCache | None = None) -> np.ndarray:
    """Embeddings of all sentences, in message then span order.

    A sentence that is its whole message reuses the message's vector. An encoder that can embed
    spans in context (``encode_spans``, see :class:`pipelines.embed.SpanEncoder`) reads each other
    message's sentences together, in one pass; any other encoder embeds each sentence alone
    (repeated sentences once).

    With ``cache``, vectors are read from and added to the run's embedding cache: a sentence read
    alone under the hash of its text, a sentence read in context under :func:`pipelines.embed.span_cache_keys`.
    The embedding stage puts the latter there already when it embeds a message with its sentences
    (``embed_with_cache(..., sentences=sentence_spans)``), so that tagging then runs no transformer at all.
    """
    from pipelines.clean import text_hash

    total = sum(len(sp) for sp in spans)
    out = np.empty((total, embeddings.shape[1]), dtype=np.float32)
    method = span_method(encoder)
    todo: list[int] = []  # messages whose sentences need vectors
    first = np.cumsum([0, *(len(sp) for sp in spans)])
    for i, (text, sp) in enumerate(zip(texts, spans, strict=True)):
        if needs_span_vectors(text, sp):
            todo.append(i)
        elif sp:
            out[first[i]] = embeddings[i]
    if not todo:
        return out
    if method is None:
        rows = [k for i in todo for k in range(first[i], first[i + 1])]
        pieces = [texts[i][s:e] for i in todo for s, e in spans[i]]
        unique = list(dict.fromkeys(pieces))
        if cache is None:
            vectors = encoder.encode(unique)
        else:
            vectors, _ = embed_with_cache(unique, [text_hash(t) for t in unique], encoder, cache)
        where = {t: j for j, t in enumerate(unique)}
        out[rows] = vectors[[where[t] for t in pieces]]
        return out
    keys = {}
    if cache is not None:
        for i in todo:
            keys[i] = span_cache_keys(method, texts[i], spans[i])
        found, _ = cache.lookup([h for i in todo for h in keys[i]], out.shape[1], into=out,
                                rows=np.concatenate([np.arange(first[i], first[i + 1]) for i in todo]))
        at = np.cumsum([0, *(len(keys[i]) for i in todo)])
        todo = [i for k, i in enumerate(todo) if not found[at[k] : at[k + 1]].all()]  # these are embedded below
    if todo:
        vectors = encoder.encode_spans([texts[i] for i in todo], [spans[i] for i in todo])
        out[[k for i in todo for k in range(first[i], first[i + 1])]] = vectors
        if cache is not None:
            cache.add([h for i in todo for h in keys[i]], vectors)
    return out


def _statement_sentiment(texts: Sequence[str], sentences: Sequence[str], sentence_vectors: np.ndarray, rows: np.ndarray,
                         embeddings: np.ndarray, encoder: Encoder,
                         sentiment: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Sentiment of the statement sentences (from their vectors, already made) and of their messages
    (the run's scores when given). On dev, sentences read in context gave the same met / unmet
    accuracy as sentences embedded alone (0.845), so nothing is embedded again here."""
    from pipelines.sentiment import EmbeddingHeadScorer

    scorer = EmbeddingHeadScorer()
    same_encoder = getattr(encoder, "name", None) == scorer.encoder_name
    sentence_sentiment = scorer.score(list(sentences), sentence_vectors if same_encoder else None)
    if sentiment is not None:
        message_sentiment = np.asarray(sentiment, dtype=np.float64)[rows]
    else:
        message_sentiment = scorer.score([texts[i] for i in rows], embeddings[rows] if same_encoder else None)
    return sentence_sentiment, message_sentiment


# --------------------------------------------------------------------------------------------
# Gap metrics: pure functions over a messages DataFrame
# --------------------------------------------------------------------------------------------


def _area_lists(values: pd.Series) -> list[list[str]]:
    """Area keys per message from lists, arrays (Parquet), ``;``-separated text, or missing values."""
    out = []
    for v in values:
        if isinstance(v, str):
            out.append([a for a in v.split(";") if a])
        elif v is None or (isinstance(v, float) and np.isnan(v)):
            out.append([])
        else:
            out.append([str(a) for a in v])
    return out


def _area_pairs(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Every mention in ``values`` as (message position, area value), in message order then list order.

    Columns of lists (the dashboard's) or of arrays (Parquet's) are read without a Python step per
    mention; other columns (``;``-separated text, missing values, a mix) through :func:`_area_lists`.
    """
    cells = values.to_numpy(dtype=object)
    kinds = set(map(type, cells))
    if kinds and kinds <= {list, tuple}:
        counts = np.fromiter(map(len, cells), np.int64, len(cells))
        flat = np.array([a for row in cells for a in row] or [], dtype=object)
    elif kinds and kinds <= {np.ndarray}:
        counts = np.fromiter(map(len, cells), np.int64, len(cells))
        flat = np.concatenate(list(cells)).astype(object) if counts.sum() else np.array([], dtype=object)
    else:
        lists = _area_lists(values)
        counts = np.fromiter(map(len, lists), np.int64, len(lists))
        flat = np.array([a for row in lists for a in row] or [], dtype=object)
    return np.repeat(np.arange(len(cells)), counts), flat


def mention_matrix(messages: pd.DataFrame, area_keys: Sequence[str] | None = None, areas_col: str = "areas") -> pd.DataFrame:
    """One boolean column per area: does the message mention it. Columns in ``area_keys`` order
    (default: order of first appearance).

    Vectorised: each distinct area value is looked up once, not once per message (about 30 ms for
    100,000 messages).
    """
    owner, flat = _area_pairs(messages[areas_col])
    codes, uniques = pd.factorize(flat, use_na_sentinel=False)  # uniques in order of first appearance
    names = [str(u) for u in uniques]  # areas are keys (text), however the column stores them
    keys = list(area_keys) if area_keys is not None else list(dict.fromkeys(names))
    column = {k: j for j, k in enumerate(keys)}
    where = np.array([column.get(name, -1) for name in names], dtype=np.int64)[codes] if len(flat) else codes
    on = np.zeros((len(keys), len(messages)), dtype=bool)
    on[where[where >= 0], owner[where >= 0]] = True
    return pd.DataFrame(dict(zip(keys, on, strict=True)), index=messages.index, columns=keys, dtype=bool)


def _rating_text_numbers(ratings: pd.Series) -> pd.Series:
    """Text ratings as numbers: the mean of the numbers in each ("1-4 stars" → 2.5); NaN without one or missing."""
    numbers = ratings.astype(str).str.findall(r"-?\d+(?:\.\d+)?")
    # Missing values stay missing through astype(str) in pandas 3 (not the text "None"), and find no list.
    return numbers.map(lambda ns: float(np.mean([abs(float(x)) for x in ns])) if isinstance(ns, list) and ns else np.nan)


def rating_outcome(ratings: pd.Series) -> pd.Series:
    """Ratings as numbers scaled to -1..1 over their observed range.

    Text ratings are read by their numbers ("4 stars" → 4; a range such as "1-4 stars" → its middle,
    2.5); values without a number are missing. A constant rating gives 0.

    Example:
        >>> rating_outcome(pd.Series(["5 stars", "1-4 stars", "5 stars"])).tolist()
        [1.0, -1.0, 1.0]
    """
    numeric = pd.to_numeric(ratings, errors="coerce")
    if numeric.isna().all() and ratings.notna().any():
        numeric = _rating_text_numbers(ratings)
    return pd.Series(_scaled_ratings(numeric.to_numpy(dtype=np.float64, na_value=np.nan)), index=ratings.index,
                     name=ratings.name)


def _scaled_ratings(values: np.ndarray) -> np.ndarray:
    """Ratings (numbers, NaN where missing) scaled to -1..1 over their observed range; 0 when it has no width."""
    known = values[~np.isnan(values)]
    lo, hi = (known.min(), known.max()) if len(known) else (np.nan, np.nan)
    if not np.isfinite(lo) or hi == lo:
        return values * 0.0
    return 2.0 * (values - lo) / (hi - lo) - 1.0


IMPORTANCE_RIDGE = 1.0
"""L2 penalty of the importance regression: keeps rarely mentioned areas from getting wild coefficients."""


def area_importance(mentions: pd.DataFrame, outcome: pd.Series, floor: float = 0.01,
                    ridge: float = IMPORTANCE_RIDGE) -> pd.Series:
    """How strongly mentioning each area moves the outcome: |coefficient| of a joint linear regression.

    The outcome (sentiment, or the rating scaled to -1..1) is regressed on all areas' mention
    indicators at once, with an intercept and a small ridge penalty, so an area that is often
    mentioned together with a painful one does not inherit its effect. The absolute value is used:
    an area whose mention lifts the outcome matters as much as one that drags it. Areas nobody (or
    everybody) mentions have no measurable effect and get the floor, as does any smaller value.

    Args:
        mentions: Boolean mention matrix (:func:`mention_matrix`).
        outcome: One number per message, same index; rows where it is missing are left out.
        floor: The smallest importance (``ExpectationSettings.importance_floor``).
        ridge: L2 penalty; keeps rarely mentioned areas from getting wild coefficients.
    """
    y = outcome.to_numpy(dtype=np.float64, na_value=np.nan)
    keep = ~np.isnan(y)
    on = mentions.to_numpy(dtype=bool)
    if not keep.all():
        on, y = on[keep], y[keep]
    importance = pd.Series(floor, index=mentions.columns, dtype=np.float64)
    n = len(y)
    counts = on.sum(axis=0)
    varies = (counts > 0) & (counts < n)
    if not varies.any():
        return importance  # nobody (or everybody) mentions each area: no effect can be measured
    # The centred normal equations (centring = an unpenalised intercept) from sums, without centred copies:
    # at a million messages that is one pass over the mentions instead of several. The co-mention counts are
    # whole numbers, exact in float32 below 2**24 messages (half the memory of float64); the sums of the
    # outcome over each area's messages are taken one area at a time, in float64.
    by_area = np.ascontiguousarray(on[:, varies].T)
    exact = np.float32 if n < 2**24 else np.float64
    x = by_area.astype(exact)
    co_mentions = (x @ x.T).astype(np.float64)
    del x
    row = np.empty(n)
    sums = np.empty(len(by_area))
    for j, mentioned in enumerate(by_area):
        np.copyto(row, mentioned)
        sums[j] = row @ y
    importance[varies] = _importance_from_sums(co_mentions, sums, counts[varies], n, y.sum(), floor, ridge)
    return importance


def _importance_from_sums(co_mentions: np.ndarray, sums: np.ndarray, counts: np.ndarray, n: float, total: float,
                          floor: float, ridge: float) -> np.ndarray:
    """|coefficients| of the ridge regression of the outcome on the areas' mention indicators, with an unpenalised
    intercept, at least ``floor``: solved from the centred normal equations, made from sums (co-mention counts,
    the outcome summed over each area's messages, mentions per area, messages, the outcome's total)."""
    mean_x = counts / n
    sxx = co_mentions - n * np.outer(mean_x, mean_x)
    sxy = sums - n * mean_x * (total / n)
    beta, *_ = np.linalg.lstsq(sxx + ridge * np.eye(len(mean_x)), sxy, rcond=None)
    return np.maximum(np.abs(beta), floor)


def _given_mentions(messages: pd.DataFrame, area_keys: Sequence[str] | None,
                    mentions: pd.DataFrame | None) -> pd.DataFrame:
    """The messages' mention matrix: ``mentions`` when the caller found it already (one row per message,
    same index), with the ``area_keys`` columns; else :func:`mention_matrix`."""
    if mentions is None:
        return mention_matrix(messages, area_keys)
    if not mentions.index.equals(messages.index):
        raise ValueError("mentions must have one row per message, with the messages' index")
    if area_keys is None or list(mentions.columns) == list(area_keys):
        return mentions
    return mentions.reindex(columns=list(area_keys), fill_value=False)


def _met_flags(messages: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per message: does it state an unmet expectation, a met one."""
    if "expectation_met" not in messages:
        return np.zeros(len(messages), dtype=bool), np.zeros(len(messages), dtype=bool)
    met = messages["expectation_met"]
    return ((met == "unmet").to_numpy(dtype=bool, na_value=False),
            (met == "met").to_numpy(dtype=bool, na_value=False))


def _met_codes(messages: pd.DataFrame) -> np.ndarray:
    """Per message: 1 = states an unmet expectation, 2 = a met one, 0 = neither (from :func:`_met_flags`)."""
    unmet, met = _met_flags(messages)
    return np.where(unmet, 1, np.where(met, 2, 0)).astype(np.int8)


def _mean(values: np.ndarray) -> float:
    """Mean of the values that are not NaN (NaN when none), summed as ``pandas.Series.mean`` sums them
    (missing values as zeros, numpy's pairwise sum), so results match it to the last bit."""
    missing = np.isnan(values)
    count = len(values) - int(missing.sum())
    if count == len(values):  # nothing missing: the same sum of the same array, without the copy
        return float(values.sum() / count) if count else np.nan
    return float(np.where(missing, 0.0, values).sum() / count) if count else np.nan


_GAP_COLUMNS = ["area", "mentions", "share", "statements", "unmet", "met", "unmet_rate", "mean_sentiment"]


def _gap_columns(area, mentions: np.ndarray, unmet: np.ndarray, met: np.ndarray, messages: np.ndarray,
                 mean_sentiment: np.ndarray, min_mentions: int, min_statements: int = 1) -> dict[str, object]:
    """The gap metrics of :data:`_GAP_COLUMNS` from counts, one value per area (and period): messages mentioning
    the area, its unmet and met statements, the messages of the set, and the mean sentiment of the mentions.
    Rates and mean sentiment are NaN below ``min_mentions`` mentions; the unmet rate also below ``min_statements``
    statements."""
    statements = unmet + met
    enough = mentions >= min_mentions
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(messages > 0, mentions / messages, np.nan)
        unmet_rate = np.where(enough & (statements >= max(min_statements, 1)), unmet / statements, np.nan)
    return {"area": area, "mentions": mentions, "share": share, "statements": statements, "unmet": unmet, "met": met,
            "unmet_rate": unmet_rate, "mean_sentiment": np.where(enough, mean_sentiment, np.nan)}


def _gap_counts(on: np.ndarray, keys: Sequence[str], unmet: np.ndarray, met: np.ndarray, sentiment: np.ndarray,
                min_mentions: int) -> pd.DataFrame:
    """Volume, share, statements, unmet rate and mean sentiment per area for one set of messages.

    ``on`` is their mention matrix as a boolean array (messages × areas, columns ``keys``); ``unmet``,
    ``met`` (:func:`_met_flags`) and ``sentiment`` (float64) have one value per message.
    """
    mentioned = on.sum(axis=0)
    enough = mentioned >= min_mentions
    mean = np.array([_mean(sentiment[on[:, j]]) if ok else np.nan for j, ok in enumerate(enough)], dtype=np.float64)
    by_area = on.T  # contiguous when the mentions came as a frame: counting along it needs no row copies
    return pd.DataFrame(_gap_columns(list(keys), mentioned, np.count_nonzero(by_area & unmet, axis=1),
                                     np.count_nonzero(by_area & met, axis=1),
                                     np.full(len(mentioned), len(on)), mean, min_mentions), columns=_GAP_COLUMNS)


def area_gap_table(messages: pd.DataFrame, area_keys: Sequence[str] | None = None, rating_col: str | None = None,
                   settings: ExpectationSettings | None = None, mentions: pd.DataFrame | None = None) -> pd.DataFrame:
    """Expectation-gap metrics per area over all ``messages``.

    Args:
        messages: One row per message with ``sentiment`` (-1..1), ``areas`` (list of keys) and
            ``expectation_met`` ("met" / "unmet" / None); ``date`` is not needed here.
        area_keys: Areas to report, in this order (default: those mentioned, in order of appearance).
            Areas nobody mentions get a row of zeros.
        rating_col: A rating column, when the data has one: importance and performance then use the
            rating (scaled to -1..1, see :func:`rating_outcome`) instead of sentiment.
        settings: ``min_mentions`` and ``importance_floor``; defaults when None.
        mentions: The messages' :func:`mention_matrix` when the caller has it already (same index);
            found from ``areas`` when None.

    Returns:
        One row per area: ``area``, ``mentions`` (messages mentioning it), ``share`` (of all
        messages), ``statements`` (expectation statements among them), ``unmet``, ``met``,
        ``unmet_rate`` (unmet / statements), ``mean_sentiment``, ``importance`` (see
        :func:`area_importance`) and ``performance`` (mean outcome of the messages that mention the
        area, -1..1). Rates and performance are NaN below ``min_mentions`` mentions.

    Example:
        >>> m = pd.DataFrame({"areas": [["speed_of_service"], [], ["speed_of_service"]],
        ...                   "sentiment": [-0.8, 0.5, -0.4], "expectation_met": ["unmet", None, "met"]})
        >>> area_gap_table(m, settings=ExpectationSettings(min_mentions=1))[["area", "mentions", "unmet_rate"]].values.tolist()
        [['speed_of_service', 2, 0.5]]
    """
    settings = settings or ExpectationSettings()
    mentions = _given_mentions(messages, area_keys, mentions)
    on = mentions.to_numpy(dtype=bool)
    sentiment = messages["sentiment"].to_numpy(dtype=np.float64, na_value=np.nan)
    table = _gap_counts(on, mentions.columns, *_met_flags(messages), sentiment, settings.min_mentions)
    outcome, rated = messages["sentiment"].astype(np.float64), None
    if rating_col is not None and rating_col in messages:
        rated = rating_outcome(messages[rating_col])
        if rated.notna().any():
            outcome = rated
        else:
            rated = None
    table["importance"] = area_importance(mentions, outcome, settings.importance_floor).to_numpy()
    if rated is None:  # performance is the mean sentiment: the same values, kept from the same mentions
        table["performance"] = table["mean_sentiment"]
        return table
    enough = table["mentions"].to_numpy() >= settings.min_mentions
    values = outcome.to_numpy(dtype=np.float64, na_value=np.nan)
    table["performance"] = [_mean(values[on[:, j]]) if ok else np.nan for j, ok in enumerate(enough)]
    return table


def quadrant_name(importance: float, performance: float, importance_cut: float, performance_cut: float) -> str:
    """The Importance–Performance quadrant of one area, in managers' words.

    High importance and low performance: "fix first"; high and high: "keep it up"; low and low:
    "low priority"; low importance, high performance: "possible overkill". A value on a cut counts
    as high.

    Example:
        >>> quadrant_name(0.3, -0.2, 0.1, 0.0)
        'fix first'
    """
    high_importance = importance >= importance_cut
    high_performance = performance >= performance_cut
    if high_importance:
        return "keep it up" if high_performance else "fix first"
    return "possible overkill" if high_performance else "low priority"


MIN_MENTIONS_TO_RANK = 10
"""Fewest messages mentioning an area for it to get a quadrant: "fix first" on 5 mentions (one unhappy customer) would
read as a finding, on the dashboard as in a snapshot put before leadership."""
NOT_RANKED = "not ranked"
"""The quadrant of an area with fewer than :data:`MIN_MENTIONS_TO_RANK` mentions."""


def ipa_table(gaps: pd.DataFrame, importance_cut: float | None = None, performance_cut: float | None = None) -> pd.DataFrame:
    """Importance–Performance Analysis (Martilla & James, 1977) of the areas in ``gaps``.

    Args:
        gaps: Output of :func:`area_gap_table`; areas with no performance (too few mentions) are left out.
        importance_cut: Where importance counts as high; default: the mean over the areas shown
            (the data-centred cross-hairs, which always splits the areas).
        performance_cut: Where performance counts as high; default: the mean over the areas shown, but never
            below 0 (neutral sentiment, or the middle of the rating scale). Among areas that all disappoint,
            the least bad one is still delivered badly: a manager reads "keep it up" as "customers are
            content here", not "less unhappy than elsewhere" (a review found "keep it up" on an area with
            100% unmet expectations and mean sentiment -0.26).

    Returns:
        The rows of ``gaps`` that have a performance, with ``quadrant`` added (:data:`NOT_RANKED` for areas with
        fewer than :data:`MIN_MENTIONS_TO_RANK` mentions, which the cuts leave out too), plus the cuts used
        in ``importance_cut`` and ``performance_cut`` (the same on every row, for drawing cross-hairs), and
        ``performance_cut_rule``: "average", "neutral" (the average was below it) or "given".
    """
    table = gaps[gaps["performance"].notna()].copy()
    ranked = (table["mentions"] >= MIN_MENTIONS_TO_RANK).to_numpy() if "mentions" in table else np.ones(len(table), bool)
    basis = table[ranked] if ranked.any() else table
    i_cut = float(basis["importance"].mean()) if importance_cut is None else float(importance_cut)
    average = float(basis["performance"].mean())
    p_cut = max(average, 0.0) if performance_cut is None else float(performance_cut)
    rule = "given" if performance_cut is not None else "neutral" if average < 0.0 else "average"
    table["quadrant"] = [quadrant_name(i, p, i_cut, p_cut) if rank else NOT_RANKED
                         for i, p, rank in zip(table["importance"], table["performance"], ranked, strict=True)]
    table["importance_cut"] = i_cut
    table["performance_cut"] = p_cut
    table["performance_cut_rule"] = rule
    return table.reset_index(drop=True)


def _periods(dates: pd.Series, freq: str) -> pd.Series:
    dates = pd.to_datetime(dates, utc=True).dt.tz_convert(None)
    if freq in ("M", "W"):  # the same starts as to_period(freq).start_time, by date arithmetic (20x faster)
        days = dates.to_numpy().astype("datetime64[D]")
        if freq == "M":
            starts = days.astype("datetime64[M]").astype("datetime64[D]")
        else:  # weeks from Monday; 1 Jan 1970 was a Thursday
            starts = days - ((days.astype("int64") + 3) % 7).astype("timedelta64[D]")
        return pd.Series(starts.astype("datetime64[us]"), index=dates.index)  # the unit start_time gives
    return dates.dt.to_period(freq).dt.start_time


def _period_codes(dates: pd.Series, freq: str) -> tuple[np.ndarray, np.ndarray]:
    """Each date's period as a code into the sorted period starts (-1: no date), and those starts: what
    ``pd.factorize(_periods(dates, freq), sort=True)`` gives, for months and weeks without hashing a date per
    message (months and weeks are numbered, and the numbers in use are found with one bincount)."""
    if freq not in ("M", "W"):
        codes, starts = pd.factorize(_periods(dates, freq), sort=True)
        return codes, np.asarray(starts)
    ns = pd.to_datetime(dates, utc=True).dt.tz_convert(None).to_numpy().astype("datetime64[ns]").astype(np.int64)
    dated = ns != np.iinfo(np.int64).min  # NaT
    if not dated.any():
        return np.full(len(ns), -1, dtype=np.int64), np.array([], dtype="datetime64[us]")
    # Days since 1970 by integer division (floor: dates before 1970 too); a day's month or week (from Monday:
    # 1 Jan 1970 was a Thursday) is worked out for the days in use only, then the periods in use are numbered.
    day_codes, days = _number_used(np.where(dated, ns // 86_400_000_000_000, 0), dated)
    days = days.astype("datetime64[D]")
    period_of_day = (days.astype("datetime64[M]").astype(np.int64) if freq == "M"
                     else (days.astype(np.int64) + 3) // 7)
    codes, numbers = _number_used(period_of_day[np.where(dated, day_codes, 0)], dated)
    starts = (numbers.astype("datetime64[M]").astype("datetime64[D]") if freq == "M"
              else (numbers * 7 - 3).astype("datetime64[D]"))
    return codes, starts.astype("datetime64[us]")


def _number_used(values: np.ndarray, present: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes 0, 1, ... for the distinct integer ``values`` where ``present`` (in sorted order; -1 elsewhere) and
    those values: what ``pd.factorize(sort=True)`` gives, by one bincount over the range instead of hashing."""
    first = values[present].min()
    offset = np.where(present, values - first, 0)
    used = np.bincount(offset[present]) > 0
    return np.where(present, (np.cumsum(used) - 1)[offset], -1), np.flatnonzero(used) + first


def gap_trend(messages: pd.DataFrame, freq: str = "M", area_keys: Sequence[str] | None = None,
              settings: ExpectationSettings | None = None, mentions: pd.DataFrame | None = None) -> pd.DataFrame:
    """The gap metrics of :func:`area_gap_table` (without importance) per period and area.

    Args:
        messages: As for :func:`area_gap_table`, plus ``date`` (UTC).
        freq: A pandas period frequency: "W" (weeks from Monday), "M" (months), "Q".
        area_keys: Areas to report (default: all mentioned); every period gets a row per area.
        settings: ``min_mentions`` per period; defaults when None.
        mentions: As for :func:`area_gap_table`.

    Returns:
        Columns ``period`` (the period's start, naive UTC), ``area``, ``mentions``, ``share`` (of
        the period's messages), ``statements``, ``unmet``, ``met``, ``unmet_rate``, ``mean_sentiment``;
        rates are NaN where the period has fewer than ``min_mentions`` mentions of the area, and the unmet
        rate also where it has fewer than ``min_mentions`` statements (0% or 50% of two is no trend).
    """
    settings = settings or ExpectationSettings()
    mentions = _given_mentions(messages, area_keys, mentions)
    on = mentions.to_numpy(dtype=bool)
    sentiment = messages["sentiment"].to_numpy(dtype=np.float64, na_value=np.nan)
    # Counted with bincounts keyed by period, not a pass per period. Messages without a date are in no period,
    # as groupby would have them.
    codes, starts = _period_codes(messages["date"], freq)
    columns = ["period", *_GAP_COLUMNS]
    n_periods, n_areas = len(starts), on.shape[1]
    if n_periods == 0:
        return pd.DataFrame(columns=columns)
    # Per area, the messages that mention it (positions, in message order) and their periods; bincounts over
    # them give mentions, unmet and met statements and the sentiment sums (added in message order).
    flags = _met_codes(messages)
    counts = np.zeros((n_periods, n_areas, 3), dtype=np.int64)
    sentiment_sum = np.zeros((n_periods, n_areas))
    sentiment_n = np.zeros((n_periods, n_areas), dtype=np.int64)
    by_area = np.ascontiguousarray(on.T)  # a view when the mentions came as a frame (pandas keeps them so)
    all_dated, all_scored = bool((codes >= 0).all()), not np.isnan(sentiment).any()  # the usual case: no masks
    for j in range(n_areas):
        about = np.flatnonzero(by_area[j])
        period = codes[about]
        if not all_dated:
            dated = period >= 0
            about, period = about[dated], period[dated]
        counts[:, j] = np.bincount(period * 3 + flags[about], minlength=3 * n_periods).reshape(n_periods, 3)
        score = sentiment[about]
        if not all_scored:
            scored = ~np.isnan(score)
            score, period = score[scored], period[scored]
        sentiment_sum[:, j] = np.bincount(period, weights=score, minlength=n_periods)
        sentiment_n[:, j] = np.bincount(period, minlength=n_periods)
    counts = counts.reshape(n_periods * n_areas, 3)
    mentions_n = counts.sum(axis=1)
    per_period = np.repeat(np.bincount(codes[codes >= 0], minlength=n_periods), n_areas)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_sentiment = np.where(sentiment_n > 0, sentiment_sum / sentiment_n, np.nan).ravel()
    area = np.tile(np.asarray(mentions.columns, dtype=object), n_periods)
    return pd.DataFrame({"period": np.repeat(np.asarray(starts), n_areas),
                         **_gap_columns(area, mentions_n, counts[:, 1], counts[:, 2], per_period,
                                        mean_sentiment, settings.min_mentions, settings.min_mentions)},
                        columns=columns)


def source_table(messages: pd.DataFrame, area_keys: Sequence[str] | None = None,
                 mentions: pd.DataFrame | None = None) -> pd.DataFrame:
    """Expectation statements per area and source: where the expectations behind each gap came from.

    ``mentions``: as for :func:`area_gap_table`.

    Returns:
        Columns ``area``, ``source`` (every one of :data:`SOURCES`), ``statements``, ``unmet``.
    """
    mentions = _given_mentions(messages, area_keys, mentions)
    stated = messages["expectation"].fillna(False).astype(bool).to_numpy()
    unmet = (messages["expectation_met"] == "unmet").to_numpy(dtype=bool, na_value=False)
    origin = {src: (messages["expectation_source"] == src).to_numpy(dtype=bool, na_value=False) for src in SOURCES}
    rows = []
    for key, on in zip(mentions.columns, mentions.to_numpy(dtype=bool).T, strict=True):
        on = on & stated
        for src in SOURCES:
            hit = on & origin[src]
            rows.append({"area": key, "source": src, "statements": int(hit.sum()), "unmet": int((hit & unmet).sum())})
    return pd.DataFrame(rows, columns=["area", "source", "statements", "unmet"])


def topic_area_table(messages: pd.DataFrame, topic_col: str = "topic", area_keys: Sequence[str] | None = None,
                     mentions: pd.DataFrame | None = None) -> pd.DataFrame:
    """Messages per discovered topic and expectation area (topics as rows, areas as columns).

    ``mentions``: as for :func:`area_gap_table`.
    """
    mentions = _given_mentions(messages, area_keys, mentions)
    return mentions.astype(int).groupby(messages[topic_col]).sum()


RATING_WORDS = ("rating", "stars", "score", "nps", "csat",
                # German, French, Spanish, Italian, Portuguese, Dutch (accents dropped before matching)
                "bewertung", "sterne", "evaluation", "etoiles", "valoracion", "puntuacion", "estrellas",
                "valutazione", "punteggio", "stelle", "avaliacao", "estrelas", "beoordeling", "sterren")
"""A metadata column whose name holds one of these reads as a rating."""


def _reads_as_rating(column: str) -> bool:
    plain = name_key(column)
    return any(w in plain for w in RATING_WORDS)


MIN_RATED_SHARE = 0.5
"""Importance and performance are measured on a rating only when at least this share of the messages in view
carry one; else on sentiment, which every message has. A review mixed chat (never rated) with app-store reviews:
an area's "performance" then stood on 6 of its 30 messages, with nothing on the page to say so."""


def rating_column(messages: pd.DataFrame, columns: Sequence[str]) -> str | None:
    """A metadata column that reads as a rating, is a scale among ``messages`` (three values or more) and is given
    for at least :data:`MIN_RATED_SHARE` of them: importance and performance are then measured on it (else on
    sentiment). Two values ("5 stars" and "1-4 stars") are a split, not a scale: their "mean rating" would only be
    the share of one minus the other, and would rank a 4-star review with a 1-star one.
    Shared by the dashboard and snapshots."""
    for column in columns:
        if column in messages and _reads_as_rating(column) and messages[column].notna().any():
            ratings = rating_outcome(messages[column])
            if ratings.notna().mean() >= MIN_RATED_SHARE and ratings.nunique() >= 3:
                return column
    return None


def area_names(messages: pd.DataFrame, manifest: dict) -> dict[str, str] | None:
    """Area key → name in taxonomy order for a run; ``None`` when it has no expectation tags (analysed before them)."""
    # The stated sentence is a text column, which a run loaded without its texts leaves on disk.
    if not set(TAG_COLUMNS) - {"expectation_sentence"} <= set(messages.columns):
        return None
    names = {a["key"]: a.get("name") or a["key"] for a in manifest.get("expectation_areas") or []}
    for key in mention_matrix(messages).columns:  # areas tagged but missing from the manifest
        names.setdefault(key, key)
    return names


# --------------------------------------------------------------------------------------------
# Gap metrics of any filter from a per-run index (the dashboard at a million messages)
# --------------------------------------------------------------------------------------------


@dataclass
class GapIndex:
    """A run's messages reduced to what the gap metrics count, built once per run (:func:`gap_index`).

    Every message's set of areas is one of a few distinct *patterns*; the gap metrics are sums over
    messages, so a filter's metrics are bincounts over its messages keyed by pattern (and period, topic,
    outcome of the statement), then one small product with the patterns' area matrix. At a million
    messages a filter then costs a few passes over its rows instead of one per area and metric. The
    ``indexed_*`` functions give the tables the frame functions give for the same messages (counts
    exactly; sums of sentiment to float rounding, as they are added in another order).
    """

    keys: tuple[str, ...]
    """The areas: the columns of ``patterns``."""
    patterns: np.ndarray
    """(patterns × areas) booleans: the distinct sets of areas messages mention."""
    pattern: np.ndarray
    """Per message: its row in ``patterns``."""
    flag: np.ndarray
    """Per message: 1 = states an unmet expectation, 2 = a met one, 0 = neither (:func:`_met_codes`)."""
    stated: np.ndarray
    """Per message: states an expectation (the ``expectation`` column)."""
    source: np.ndarray
    """Per message: its expectation's source as a position in :data:`SOURCES`, -1 for none or another."""
    sentiment: np.ndarray
    """Per message: sentiment, float64, NaN where missing."""
    topic: np.ndarray
    """Per message: its topic's position in ``topics``, -1 without one."""
    topics: np.ndarray
    """The run's topics, sorted."""
    dates: pd.Series | None
    """The messages' dates (for the periods of the trend), ``None`` without a date column."""
    ratings: dict[str, tuple[np.ndarray, np.ndarray | None]]
    """Per rating-like metadata column: its values read as numbers, and as text with numbers (``None`` when
    every value is a number), NaN where missing (see :func:`_subset_ratings`)."""
    _periods: dict = field(default_factory=dict, repr=False)

    def period_codes(self, freq: str) -> tuple[np.ndarray, np.ndarray]:
        """:func:`_period_codes` of all messages' dates (found once per frequency)."""
        if freq not in self._periods:
            dates = self.dates if self.dates is not None else pd.Series(pd.NaT, index=range(len(self.pattern)))
            self._periods[freq] = _period_codes(dates, freq)
        return self._periods[freq]


def _rating_readings(values: pd.Series) -> tuple[np.ndarray, np.ndarray | None]:
    """A rating column read both ways :func:`rating_outcome` may read a set of its values: as numbers, and
    (only when some value is not a number) as text with numbers; NaN where missing or unreadable."""
    numeric = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    present = values.notna().to_numpy()
    if not (present & np.isnan(numeric)).any():
        return numeric, None
    return numeric, np.where(present, _rating_text_numbers(values).to_numpy(dtype=np.float64, na_value=np.nan), np.nan)


def _subset_ratings(index: GapIndex, column: str, rows: np.ndarray | None) -> np.ndarray:
    """The ratings of the messages ``rows`` selects as :func:`rating_outcome` reads them before scaling: as
    numbers, unless none of them is one (then as text with numbers)."""
    numeric, text = index.ratings[column]
    values = _take(numeric, rows)
    if text is not None and np.isnan(values).all():
        return _take(text, rows)  # missing ones are NaN either way
    return values


def gap_index(messages: pd.DataFrame, area_keys: Sequence[str] | None = None, columns: Sequence[str] = (),
              mentions: pd.DataFrame | None = None) -> GapIndex:
    """The :class:`GapIndex` of a run's messages (the columns :func:`area_gap_table` and :func:`gap_trend`
    read, plus ``topic`` and the statements' ``expectation`` and ``expectation_source`` when present).

    Args:
        area_keys: As for :func:`area_gap_table`.
        columns: Metadata columns that may be ratings (as :func:`rating_column` takes them).
        mentions: The messages' :func:`mention_matrix` when the caller has it already.
    """
    on = _given_mentions(messages, area_keys, mentions)
    patterns, pattern = _area_patterns(on.to_numpy(dtype=bool))
    n = len(messages)
    stated = (messages["expectation"].fillna(False).astype(bool).to_numpy() if "expectation" in messages
              else np.zeros(n, dtype=bool))
    source = np.full(n, -1, dtype=np.int8)
    if "expectation_source" in messages:
        codes, values = pd.factorize(messages["expectation_source"])  # each distinct value looked up once
        where = np.array([SOURCES.index(v) if v in SOURCES else -1 for v in values] + [-1], dtype=np.int8)
        source = where[codes]  # code -1 (missing) takes the last entry
    if "topic" in messages:
        topic, topics = pd.factorize(messages["topic"], sort=True)
        topics = np.asarray(topics)
    else:
        topic, topics = np.full(n, -1), np.array([], dtype=np.int64)
    ratings = {column: _rating_readings(messages[column]) for column in columns
               if column in messages and _reads_as_rating(column)}
    return GapIndex(keys=tuple(on.columns), patterns=patterns, pattern=pattern.reshape(-1).astype(np.int32),
                    flag=_met_codes(messages), stated=stated, source=source,
                    sentiment=messages["sentiment"].to_numpy(dtype=np.float64, na_value=np.nan),
                    topic=np.asarray(topic, dtype=np.int32), topics=topics,
                    dates=messages["date"] if "date" in messages else None, ratings=ratings)


def _area_patterns(on: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of a mention matrix (patterns × areas) and each message's pattern."""
    n, k = on.shape
    if k > 62:  # more areas than bits in a number: compare the rows' bytes
        uniques, pattern = np.unique(np.packbits(on, axis=1), axis=0, return_inverse=True)
        return np.unpackbits(uniques, axis=1, count=k).astype(bool), pattern.reshape(-1)
    code = np.zeros(n, dtype=np.int64)  # a message's areas as the bits of one number
    for j in range(k):
        code |= on[:, j].astype(np.int64) << j
    if n and (1 << k) <= 4 * n + 1024:  # few possible numbers: those in use are found with one bincount
        pattern, used = _number_used(code, np.ones(n, dtype=bool))
    else:
        used, pattern = np.unique(code, return_inverse=True)
    return ((used[:, None] >> np.arange(k)) & 1).astype(bool), pattern.reshape(-1)


def _take(values: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
    return values if rows is None else values[rows]


def _by_area(per_pattern: np.ndarray, patterns: np.ndarray) -> np.ndarray:
    """Sums per pattern (patterns first, any further axes) to sums per area: each area's patterns added up."""
    return np.tensordot(patterns.T.astype(per_pattern.dtype), per_pattern, axes=(1, 0))


def indexed_rating_column(index: GapIndex, rows: np.ndarray | None, columns: Sequence[str]) -> str | None:
    """:func:`rating_column` of the messages ``rows`` selects (a boolean mask over the run; ``None`` = all)."""
    for column in columns:
        if column in index.ratings:
            outcome = _scaled_ratings(_subset_ratings(index, column, rows))
            known = outcome[~np.isnan(outcome)]
            # As rating_column: given for enough of these messages, and a scale (a value between the lowest and
            # the highest: three values or more)
            if len(known) and len(known) >= MIN_RATED_SHARE * len(outcome) and (
                    (known > known.min()) & (known < known.max())).any():
                return column
    return None


def _pattern_sums(pattern: np.ndarray, values: np.ndarray, n_patterns: int) -> tuple[np.ndarray, np.ndarray]:
    """Per pattern: the sum of the values that are not NaN, and how many there are."""
    known = ~np.isnan(values)
    if not known.all():
        pattern, values = pattern[known], values[known]
    return (np.bincount(pattern, weights=values, minlength=n_patterns),
            np.bincount(pattern, minlength=n_patterns).astype(np.float64))


def indexed_gap_table(index: GapIndex, rows: np.ndarray | None = None, rating_col: str | None = None,
                      settings: ExpectationSettings | None = None) -> pd.DataFrame:
    """:func:`area_gap_table` of the messages ``rows`` selects (a boolean mask over the run; ``None`` = all)."""
    settings = settings or ExpectationSettings()
    patterns, n_patterns = index.patterns, len(index.patterns)
    pattern, flag = _take(index.pattern, rows), _take(index.flag, rows)
    counts = np.bincount(pattern.astype(np.int64) * 3 + flag, minlength=3 * n_patterns).reshape(n_patterns, 3)
    per_area = _by_area(counts, patterns)
    mentioned = per_area.sum(axis=1)
    enough = mentioned >= settings.min_mentions
    sentiment = _take(index.sentiment, rows)
    total, known = _pattern_sums(pattern, sentiment, n_patterns)
    area_total, area_known = _by_area(total, patterns), _by_area(known, patterns)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(enough & (area_known > 0), area_total / area_known, np.nan)
    table = pd.DataFrame(_gap_columns(list(index.keys), mentioned, per_area[:, 1], per_area[:, 2],
                                      np.full(len(index.keys), len(pattern)), mean, settings.min_mentions),
                         columns=_GAP_COLUMNS)
    outcome = _scaled_ratings(_subset_ratings(index, rating_col, rows)) if rating_col in index.ratings else None
    rated = outcome is not None and not np.isnan(outcome).all()  # else sentiment, as area_gap_table falls back
    if rated:
        total, known = _pattern_sums(pattern, outcome, n_patterns)
        area_total, area_known = _by_area(total, patterns), _by_area(known, patterns)
    # Importance (area_importance) from the same sums.
    n = known.sum()
    importance = np.full(len(index.keys), settings.importance_floor)
    varies = (area_known > 0) & (area_known < n)
    if varies.any():
        x = patterns[:, varies].astype(np.float64)
        importance[varies] = _importance_from_sums(x.T @ (x * known[:, None]), area_total[varies], area_known[varies],
                                                   n, total.sum(), settings.importance_floor, IMPORTANCE_RIDGE)
    table["importance"] = importance
    if not rated:
        table["performance"] = table["mean_sentiment"]
        return table
    with np.errstate(divide="ignore", invalid="ignore"):
        table["performance"] = np.where(enough & (area_known > 0), area_total / area_known, np.nan)
    return table


def indexed_gap_trend(index: GapIndex, rows: np.ndarray | None = None, freq: str = "M",
                      settings: ExpectationSettings | None = None) -> pd.DataFrame:
    """:func:`gap_trend` of the messages ``rows`` selects (a boolean mask over the run; ``None`` = all)."""
    settings = settings or ExpectationSettings()
    columns = ["period", *_GAP_COLUMNS]
    all_codes, all_starts = index.period_codes(freq)
    codes = _take(all_codes, rows)
    dated = codes >= 0
    per_period = np.bincount(codes[dated], minlength=len(all_starts))
    used = np.flatnonzero(per_period)  # the periods of these messages, as gap_trend finds them
    if not len(used):
        return pd.DataFrame(columns=columns)
    patterns, n_patterns, n_areas = index.patterns, len(index.patterns), len(index.keys)
    pattern, flag, sentiment = _take(index.pattern, rows), _take(index.flag, rows), _take(index.sentiment, rows)
    if not dated.all():
        codes, pattern, flag, sentiment = codes[dated], pattern[dated], flag[dated], sentiment[dated]
    cell = codes * n_patterns + pattern  # (period, pattern)
    n_cells = len(all_starts) * n_patterns
    counts = np.bincount(cell * 3 + flag, minlength=3 * n_cells).reshape(len(all_starts), n_patterns, 3)[used]
    total, known = _pattern_sums(cell, sentiment, n_cells)
    total, known = total.reshape(-1, n_patterns)[used], known.reshape(-1, n_patterns)[used]
    # (periods, patterns, ...) -> (periods, areas, ...)
    counts = np.einsum("tpk,pa->tak", counts, patterns.astype(np.int64)).reshape(len(used) * n_areas, 3)
    total, known = total @ patterns.astype(np.float64), known @ patterns.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_sentiment = np.where(known > 0, total / known, np.nan).ravel()
    area = np.tile(np.asarray(index.keys, dtype=object), len(used))
    return pd.DataFrame({"period": np.repeat(np.asarray(all_starts)[used], n_areas),
                         **_gap_columns(area, counts.sum(axis=1), counts[:, 1], counts[:, 2],
                                        np.repeat(per_period[used], n_areas), mean_sentiment, settings.min_mentions,
                                        settings.min_mentions)},
                        columns=columns)


def indexed_source_table(index: GapIndex, rows: np.ndarray | None = None) -> pd.DataFrame:
    """:func:`source_table` of the messages ``rows`` selects (a boolean mask over the run; ``None`` = all)."""
    n_sources, n_patterns = len(SOURCES), len(index.patterns)
    keep = index.stated & (index.source >= 0) if rows is None else rows & index.stated & (index.source >= 0)
    key = (index.pattern[keep].astype(np.int64) * n_sources + index.source[keep]) * 2 + (index.flag[keep] == 1)
    counts = np.bincount(key, minlength=n_patterns * n_sources * 2).reshape(n_patterns, n_sources, 2)
    per_area = _by_area(counts, index.patterns)  # (areas, sources, [other, unmet])
    return pd.DataFrame({"area": np.repeat(np.asarray(index.keys, dtype=object), n_sources),
                         "source": np.tile(np.asarray(SOURCES, dtype=object), len(index.keys)),
                         "statements": per_area.sum(axis=2).ravel(), "unmet": per_area[:, :, 1].ravel()},
                        columns=["area", "source", "statements", "unmet"])


def indexed_topic_areas(index: GapIndex, rows: np.ndarray | None = None, unmet_only: bool = False) -> pd.DataFrame:
    """:func:`topic_area_table` of the messages ``rows`` selects (a boolean mask over the run; ``None`` = all),
    or of those among them that state an unmet expectation (``unmet_only``)."""
    keep = index.topic >= 0
    if rows is not None:
        keep &= rows
    if unmet_only:
        keep &= index.flag == 1
    n_patterns = len(index.patterns)
    topic = index.topic[keep].astype(np.int64)
    counts = np.bincount(topic * n_patterns + index.pattern[keep], minlength=len(index.topics) * n_patterns)
    present = np.bincount(topic, minlength=len(index.topics)) > 0  # groupby keeps the topics present only
    table = counts.reshape(len(index.topics), n_patterns) @ index.patterns.astype(np.int64)
    return pd.DataFrame(table[present], index=pd.Index(index.topics[present], name="topic"), columns=list(index.keys))


def indexed_totals(index: GapIndex, rows: np.ndarray | None = None) -> tuple[int, int, int]:
    """Of the messages ``rows`` selects (a boolean mask over the run; ``None`` = all): how many mention at least
    one area, state an expectation, and state an unmet one."""
    per_pattern = np.bincount(_take(index.pattern, rows), minlength=len(index.patterns))
    stated = int(np.count_nonzero(_take(index.stated, rows)))
    return int(per_pattern[index.patterns.any(axis=1)].sum()), stated, int(np.count_nonzero(_take(index.flag, rows) == 1))

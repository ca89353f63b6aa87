"""Topic keywords: letters of every language kept, redaction placeholders and contractions never keywords."""

from __future__ import annotations

import re

import pytest

from pipelines.redact import PLACEHOLDERS
from pipelines.topics import _vectorizer, fit_topics, preprocess_for_keywords

# Complaints to a German bank, as customers write them: a failed transfer (Überweisung) and a refund (Rückerstattung).
GERMAN = [
    "Meine Überweisung an Herrn Müller ist seit drei Tagen nicht angekommen.",
    "Die Überweisung wurde abgelehnt, obwohl genügend Geld auf dem Konto war.",
    "Überweisung fehlgeschlagen, und niemand im Kundenservice kann mir sagen, warum.",
    "Warum dauert eine Überweisung ins Ausland über eine Woche?",
    "Die Echtzeit-Überweisung hat wieder nicht funktioniert, das Geld ist weg.",
    "Ich habe die Überweisung zweimal ausgeführt und beide wurden zurückgebucht.",
    "Nach dem Update der App schlägt jede Überweisung mit einem Fehler fehl.",
    "Die Überweisung an meinen Vermieter ist verschwunden, die Miete ist jetzt überfällig.",
    "Seit Montag hängt meine Überweisung im Status 'in Bearbeitung' fest.",
    "Die Bank hat meine Überweisung ohne Begründung storniert.",
    "Eine Überweisung über 500 Euro wurde doppelt von meinem Konto abgebucht.",
    "Die TAN für die Überweisung kommt nie an, ich kann nichts überweisen.",
    "Meine Rückerstattung ist nach vier Wochen immer noch nicht gutgeschrieben.",
    "Die Rückerstattung der Kontoführungsgebühren wurde mir zugesagt, aber nie ausgezahlt.",
    "Ich warte seit Monaten auf die Rückerstattung einer doppelten Abbuchung.",
    "Der Kundenservice verspricht eine Rückerstattung und meldet sich dann nicht mehr.",
    "Für die fehlerhafte Lastschrift habe ich bis heute keine Rückerstattung bekommen.",
    "Rückerstattung abgelehnt, obwohl der Händler die Ware zurückgenommen hat.",
    "Wann bekomme ich endlich die Rückerstattung für die falsch berechneten Zinsen?",
    "Die versprochene Rückerstattung wurde mit der nächsten Gebühr verrechnet.",
    "Die Überweisung kam zurück mit dem Hinweis, die IBAN sei ungültig, sie ist aber richtig.",
    "Mein Geld aus der Überweisung ist weder bei mir noch beim Empfänger.",
    "Für eine einfache Überweisung verlangt die Bank plötzlich Gebühren.",
    "Die Rückerstattung für die abgelehnte Karte ist nie auf meinem Konto erschienen.",
]


def _vocabulary(texts: list[str]) -> set[str]:
    return set(_vectorizer(len(texts)).fit(texts).get_feature_names_out())


def test_letters_outside_ascii_stay_in_keywords():
    words = _vocabulary(["Die Überweisung an Müller ist fehlgeschlagen", "Überweisung fehlgeschlagen: Straße gesperrt",
                         "Le remboursement a été refusé", "Возврат денег не пришёл"])
    assert {"überweisung", "müller", "fehlgeschlagen", "straße", "remboursement", "été", "возврат", "пришёл"} <= words
    assert not words & {"berweisung", "mller", "stra", "ete", "pришл"}


@pytest.mark.parametrize("placeholder", sorted(PLACEHOLDERS.values()))
def test_redaction_placeholders_are_never_keywords(placeholder):
    kind = placeholder.strip("[]")
    texts = [f"Please reach me at {placeholder} about my refund", f"My {placeholder.upper()} and {placeholder} again",
             f"{placeholder}{placeholder}, refund still missing"]
    assert kind not in preprocess_for_keywords(texts[1])
    words = _vocabulary(texts)
    assert "refund" in words
    assert not [w for w in words if kind in w.split()]


def test_plain_words_that_name_a_placeholder_stay():
    # Only the bracketed mark is ours: "email" written by the customer is a word about the issue.
    assert {"email", "phone", "card"} <= _vocabulary(["I sent an email and called the phone line", "card declined",
                                                       "email never answered, card blocked, phone dead"])


def test_contractions_leave_no_fragments_and_amounts_no_numbers():
    texts = ["I don't like it, it's broken and I can't get a refund of $5",
             "They couldn't say why; we've waited, I'm done, you're ignoring [email]",
             "Amazon's refund didn’t come, won't buy again, shouldn't be hard",
             "the refund isn't here and they'd said it'll be here, do n't trust them",
             "didnt get my refund, it wasnt sent, thats not ok, I've asked Amazon twice"]
    words = _vocabulary(texts)
    assert {"refund", "amazon", "broken", "waited", "ignoring", "trust", "asked"} <= words
    fragments = {"t", "s", "d", "ll", "ve", "re", "m", "don", "didn", "couldn", "shouldn", "isn", "won", "ca", "it",
                 "didnt", "wasnt", "thats", "ive", "amazons", "email"}
    assert not words & fragments
    assert not [w for w in words if "'" in w or "’" in w or re.search(r"\d|\$", w)]


def test_hyphenated_words_and_cfpb_dates_stay_readable():
    words = _vocabulary(["Gluten-free K-Cups arrived onXX/XX/XXXX", "my e-mail about the gluten-free k-cups",
                         "on XX/XX/2021 the follow-up letter came"])
    assert {"gluten-free", "k-cups", "e-mail", "follow-up", "letter"} <= words
    assert not [w for w in words if "xx" in w or w in {"cups", "mail", "glutenfree"}]


@pytest.mark.slow
def test_real_fit_keeps_umlauts_and_leaves_out_placeholders(sample_frame, encoder, tmp_path):
    from pipelines.settings import Settings

    # Under 100 messages, so that a word of one topic only can be a keyword (from 100 on, the vectorizer's
    # min_df=2 counts topics: BERTopic counts words per topic, and a word must then be in two topics).
    english = sample_frame["text"].iloc[::40].head(66).tolist()
    # As the redactor leaves a support message: contact details replaced, in a fifth of the messages.
    marks = ["You can reach me at [email] or [phone].", "Charged twice on [card], call [phone].",
             "Write to [email], I live at [address]."]
    english = [f"{t} {marks[i % 3]}" if i % 5 == 0 else t for i, t in enumerate(english)]
    texts = english + GERMAN
    kinds = {"email", "phone", "card", "address"}
    assert not [t for t in texts if kinds & set(re.findall(r"(?<!\[)\b[a-z]+\b(?!\])", t.lower()))]
    result = fit_topics(texts, encoder.encode(texts), Settings(store_dir=tmp_path))

    keywords = [w for words in result.topics["keywords"] for w in words]
    assert len(result.topics) >= 3
    assert not [w for w in keywords if kinds & set(w.split())]
    german = {int(result.assignments[len(english) + i]) for i in range(len(GERMAN))} - {-1}
    german_words = {w for t in german for w in result.topics.set_index("topic").loc[t, "keywords"]}
    assert {"überweisung", "rückerstattung"} & german_words
    assert not [w for w in keywords if re.search(r"(?<!ü)berweisung|(?<!ü)ckerstattung|\bfr\b", w)]


def test_messages_without_a_word_to_name_a_topic_are_a_clear_error_not_a_traceback():
    """scikit-learn's vectorizer raised "empty vocabulary" out of the BERTopic fit."""
    import numpy as np

    from pipelines.errors import NotEnoughMessagesError
    from pipelines.settings import Settings

    vectors = np.random.default_rng(0).normal(size=(60, 16)).astype("float32")
    vectors[:30] += 3  # two clear clusters, so that topics are found and only their names fail
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    with pytest.raises(NotEnoughMessagesError, match="No words to name topics with: the 60 messages hold only"):
        fit_topics(["the and"] * 30 + ["of it"] * 30, vectors, Settings())

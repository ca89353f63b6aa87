"""Texts read from the run on disk a page at a time (pipelines.message_texts), as the dashboard reads them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.message_texts import MessageTexts
from pipelines.metrics import search_messages
from pipelines.store import MESSAGE_ROW_GROUP, TEXT_COLUMNS, load_run, message_preview, publish_run


def test_a_run_loads_without_its_texts_and_fetches_the_rows_it_shows(real_run_store):
    full = load_run(real_run_store)
    lean = load_run(real_run_store, texts=False)
    assert not set(TEXT_COLUMNS) & set(lean.messages.columns)
    pd.testing.assert_frame_equal(lean.messages, full.messages.drop(columns=list(TEXT_COLUMNS)))

    texts = MessageTexts(lean.path / "messages.parquet")
    assert set(texts.columns) == set(TEXT_COLUMNS) & set(full.messages.columns)
    rows = np.random.default_rng(0).permutation(len(full.messages))[:25]  # any order: the order given comes back
    fetched = texts.fetch(rows)
    assert fetched.index.tolist() == rows.tolist()
    shown = [c for c in texts.columns if c != "preview"]
    pd.testing.assert_frame_equal(fetched, full.messages.loc[rows, shown].astype(object))
    # The stored preview is what a map's hover shows of the text.
    assert texts.fetch(rows, ["preview"])["preview"].tolist() == [message_preview(t) for t in full.messages.loc[rows, "text"]]
    page = lean.messages.iloc[10:20]
    pd.testing.assert_frame_equal(texts.attach(page, ["text"]), page.assign(text=full.messages["text"].iloc[10:20]
                                                                              .astype(object)))
    assert texts.fetch([]).empty
    with pytest.raises(KeyError):
        texts.fetch([len(full.messages)])


@pytest.mark.parametrize("query", ["coffee", "not GOOD", "tea bag", "price. ", "zzzz-not-there", ""])
def test_search_on_disk_finds_what_the_in_memory_search_finds(real_run_store, query):
    messages = load_run(real_run_store).messages
    texts = MessageTexts(load_run(real_run_store, texts=False).path / "messages.parquet")
    assert texts.matching(query).tolist() == search_messages(messages, query).index.tolist()
    some = messages.index.to_numpy()[::3]
    assert texts.matching(query, some).tolist() == search_messages(messages.loc[some], query).index.tolist()


def test_rows_across_row_groups(tmp_path):
    n = 2 * MESSAGE_ROW_GROUP + 123
    messages = pd.DataFrame({"message_id": [f"m{i}" for i in range(n)], "text": [f"message number {i}" for i in range(n)],
                             "topic": np.arange(n) % 7})
    empty = pd.DataFrame({"topic": [0]})
    run_path = publish_run(tmp_path, "20260101-000000-abcd", {"messages": messages, "topics": empty, "keywords": empty},
                           {"messages": n})
    texts = MessageTexts(run_path / "messages.parquet")
    assert texts.count() == n
    rows = np.array([n - 1, 0, MESSAGE_ROW_GROUP, MESSAGE_ROW_GROUP - 1, 2 * MESSAGE_ROW_GROUP + 5])
    assert texts.fetch(rows)["text"].tolist() == [f"message number {i}" for i in rows]
    assert texts.matching(f"number {n - 1}").tolist() == [n - 1]


def test_search_on_disk_takes_any_apostrophe_for_any(tmp_path):
    said = ["They said it won\u2019t take long", "It won't close", "It wont", "Café (won't) [x]", "nothing"]
    messages = pd.DataFrame({"message_id": [f"m{i}" for i in range(5)], "text": said, "topic": 0})
    empty = pd.DataFrame({"topic": [0]})
    run_path = publish_run(tmp_path, "20260101-000000-abcd", {"messages": messages, "topics": empty, "keywords": empty},
                           {"messages": 5})
    texts = MessageTexts(run_path / "messages.parquet")
    for query in ("won't", "WON\u2019T", "won't CAFÉ", "(won't)", "[x]", "wont", "it"):
        assert texts.matching(query).tolist() == search_messages(messages, query).index.tolist(), query
    assert texts.matching("won't").tolist() == [0, 1, 3]


def test_search_on_disk_matches_whole_words_as_the_in_memory_search_does(tmp_path):
    """DuckDB's regular expressions (RE2) know ASCII word characters only: "caf" must not match "café" there either."""
    said = ["Look at this", "It was OK!", "okay then", "ok", "Took weeks to arrive", "took \u00a0two\nweeks",
            "café closed", "cafés", "naïve ok", "I love c++ and $5 deals", "a.b matters", "axb matters", "日本 ok",
            "x_ok", "ok2", "(ok)"]
    messages = pd.DataFrame({"message_id": [f"m{i}" for i in range(len(said))], "text": said, "topic": 0})
    empty = pd.DataFrame({"topic": [0]})
    run_path = publish_run(tmp_path, "20260101-000000-abcd", {"messages": messages, "topics": empty, "keywords": empty},
                           {"messages": len(said)})
    texts = MessageTexts(run_path / "messages.parquet")
    for query in ("ok", "OK", "caf", "café", "CAFÉS", "naïve", "na", "\"took weeks\"", "\"took two weeks\"", "c++",
                  "$5", "a.b", "日本", "x_ok", "ok2", "(ok)", "took weeks", "*", "[", "\\"):
        assert texts.matching(query).tolist() == search_messages(messages, query).index.tolist(), query
    assert texts.matching("ok").tolist() == [1, 3, 8, 12, 15]
    assert texts.matching("caf").tolist() == [] and texts.matching("café").tolist() == [6]
    assert texts.matching("\"took two weeks\"").tolist() == [5]
    assert texts.matching("a.b").tolist() == [10]

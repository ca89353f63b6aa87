"""Metrics on small hand-made runs, checked to the exact number."""

from __future__ import annotations

import re
from datetime import date

import numpy as np
import pandas as pd
import pytest

from pipelines import metrics as m
from pipelines.metrics import MessageFilter, Window


def frame(rows: list[tuple]) -> pd.DataFrame:
    """Messages from (date, topic, sentiment, label, rating, text) tuples; a date of None is undated."""
    out = pd.DataFrame(rows, columns=["date", "topic", "sentiment", "sentiment_label", "rating", "text"])
    out["date"] = pd.to_datetime(out["date"], utc=True)
    out["message_id"] = [f"m{i}" for i in range(len(out))]
    return out


TOPICS = pd.DataFrame({"topic": [0, 1, 2], "label": ["refund · delay", "login · password", "app · crash"],
                       "keywords": [["refund", "delay"], ["login", "password"], ["app", "crash"]]})


@pytest.fixture
def messages() -> pd.DataFrame:
    return frame([
        ("2026-03-02 09:00", 0, -0.8, "negative", "1 star", "Refund took weeks"),      # Monday
        ("2026-03-04 12:00", 0, -0.4, "negative", "2 stars", "Still no refund"),
        ("2026-03-08 23:59", 1, 0.6, "positive", "5 stars", "Login is easy"),          # Sunday
        ("2026-03-09 00:00", 1, 0.0, "neutral", "5 stars", "Password reset email"),    # next Monday
        ("2026-04-01 10:00", 2, -0.6, "negative", None, "The app crashes (again)"),
        ("2026-04-02 10:00", -1, 0.2, "neutral", "5 stars", "Hello"),
        (None, 0, -0.2, "neutral", "1 star", "Refund, no date"),
    ])


# ------------------------------------------------------------------------------------------------ filters


def test_date_filter_includes_both_days_and_drops_undated(messages):
    kept = m.filter_messages(messages, MessageFilter(start=date(2026, 3, 4), end=date(2026, 3, 8)))
    assert kept["text"].tolist() == ["Still no refund", "Login is easy"]


def test_empty_filter_keeps_everything_including_undated(messages):
    assert MessageFilter().is_empty
    assert len(m.filter_messages(messages, MessageFilter())) == 7


def test_topic_sentiment_and_metadata_filters_combine(messages):
    f = MessageFilter(topics=(0, 2), sentiments=("negative",), metadata=(("rating", ("1 star", m.BLANK)),))
    kept = m.filter_messages(messages, f)
    assert kept["text"].tolist() == ["Refund took weeks", "The app crashes (again)"]
    assert not f.is_empty


def test_metadata_options_skip_free_text_columns(messages):
    options = m.metadata_options(messages, ["rating", "text", "missing"], max_values=5)
    assert options == {"rating": ["1 star", "2 stars", "5 stars", m.BLANK]}


def test_keyword_search_needs_every_word_any_case_and_is_literal(messages):
    assert m.search_messages(messages, "REFUND weeks")["text"].tolist() == ["Refund took weeks"]
    assert m.search_messages(messages, "(again)")["text"].tolist() == ["The app crashes (again)"]
    assert len(m.search_messages(messages, "  ")) == 7
    assert m.search_terms("refund Refund late") == ["refund", "late"]


def test_keyword_search_takes_any_apostrophe_for_any():
    phone = pd.DataFrame({"text": ["I don\u2019t like it", "I don't mind", "I dont care", "It\u2018s fine"]})
    for query in ("don't", "DON\u2019T", "don\u2018t"):
        assert m.search_messages(phone, query)["text"].tolist() == ["I don\u2019t like it", "I don't mind"]
    assert m.search_messages(phone, "it's")["text"].tolist() == ["It\u2018s fine"]
    assert m.search_messages(phone, "(don't)").empty  # still literal


def test_whole_number_metadata_reads_without_decimals_everywhere():
    """Ratings read as floats showed "rating: 4.0"; filters, breakdowns and cards now all write "4"."""
    ratings = pd.Series([4.0, 4.5, np.nan, -2.0, 1e20, 0.0])
    expected = ["4", "4.5", m.BLANK, "-2", "1e+20", "0"]
    assert m.metadata_as_text(ratings).tolist() == expected
    assert m.metadata_as_text(ratings.astype("category")).tolist() == expected
    assert m.metadata_as_text(pd.Series([" 4.0 ", "a", None])).tolist() == ["4.0", "a", m.BLANK]  # text stays
    assert [m.metadata_value_text(v) for v in (4.0, 4.5, 5)] == ["4", "4.5", "5"]
    rows = pd.DataFrame({"rating": ratings})
    for column in (rows, rows.astype({"rating": "category"})):
        f = m.MessageFilter(metadata=(("rating", ("4", m.BLANK)),))
        assert m.filter_mask(column, f).tolist() == [True, False, True, False, False, False]
    cube = m.message_cube(rows.assign(topic=0, sentiment_label="neutral", sentiment=0.0), ["rating"])
    assert set(cube["rating"]) == set(expected)


def test_keyword_search_matches_whole_words_and_quoted_phrases():
    """A search for "ok" found "look" (48 hits on a real run): words match whole, any case, never inside a word."""
    said = pd.DataFrame({"text": ["Look at this", "It was OK!", "okay then", "ok", "Took weeks to arrive",
                                  "took  two weeks", "weeks took", "café closed", "caf\u00e9s", "I love c++ and $5 deals",
                                  "a.b matters", "axb matters", "Ünïcode ok_ish"]})

    def found(query: str) -> list[str]:
        return m.search_messages(said, query)["text"].tolist()

    assert found("ok") == ["It was OK!", "ok"]
    assert found("OK") == found("ok")
    assert found("caf") == [] and found("CAFÉ") == ["café closed"]
    assert found('"took weeks"') == ["Took weeks to arrive"]  # a phrase: its words together, in order
    assert found('"took two weeks"') == ["took  two weeks"]  # any run of spaces between them
    assert found("took weeks") == ["Took weeks to arrive", "took  two weeks", "weeks took"]  # words: each anywhere
    assert found("c++") == ["I love c++ and $5 deals"] and found("$5") == found("c++")  # escaped, literal
    assert found("a.b") == ["a.b matters"]  # "." is not "any character"
    assert found("ok_ish") == ["Ünïcode ok_ish"] and found("ünÏcode") == ["Ünïcode ok_ish"]
    assert m.search_terms('"took  Weeks" refund "TOOK weeks" ok') == ["took Weeks", "refund", "ok"]
    assert m.search_terms('"unclosed phrase') == ["unclosed phrase"] and m.search_terms('""') == []
    # The highlight uses the same pattern: only the whole word is found in the text.
    assert [x.group() for x in re.finditer(m.term_pattern("ok"), "ok, look OK okay", re.IGNORECASE)] == ["ok", "OK"]


# ------------------------------------------------------------------------------------- periods and windows


def test_periods_start_on_monday_and_the_first_of_the_month(messages):
    weeks = m.period_start(messages["date"], "week").dt.strftime("%Y-%m-%d").tolist()
    assert weeks[:5] == ["2026-03-02", "2026-03-02", "2026-03-02", "2026-03-09", "2026-03-30"]
    assert pd.isna(m.period_start(messages["date"], "week").iloc[6])
    months = m.period_start(messages["date"], "month").dt.strftime("%Y-%m-%d").tolist()
    assert months[:5] == ["2026-03-01"] * 4 + ["2026-04-01"]
    with pytest.raises(ValueError):
        m.period_start(messages["date"], "year")


def test_period_labels_and_ends_are_for_people():
    start = pd.Timestamp("2026-03-02", tz="UTC")
    assert m.period_label(start, "day") == "2 Mar 2026"
    assert m.period_label(start, "week") == "Week of 2 Mar 2026"
    assert m.period_label(pd.Timestamp("2026-03-01", tz="UTC"), "month") == "Mar 2026"
    assert m.period_end(pd.Timestamp("2026-02-01", tz="UTC"), "month") == pd.Timestamp("2026-03-01", tz="UTC")
    assert m.period_end(start, "week") == pd.Timestamp("2026-03-09", tz="UTC")


def test_the_default_time_step_suits_the_span():
    assert m.default_granularity(date(2026, 3, 1), date(2026, 3, 21)) == "day"
    assert m.default_granularity(date(2026, 1, 1), date(2026, 4, 30)) == "week"
    assert m.default_granularity(date(2025, 11, 1), date(2026, 10, 31)) == "month"
    assert m.default_granularity(None, None) == "month"


def test_comparison_windows_are_whole_days_back_to_back():
    current, previous = m.comparison_windows(date(2026, 3, 31), days=7)
    assert (current.first_day, current.last_day) == (date(2026, 3, 25), date(2026, 3, 31))
    assert (previous.first_day, previous.last_day) == (date(2026, 3, 18), date(2026, 3, 24))
    assert current.label == "25–31 Mar 2026" and current.days == 7
    assert Window(pd.Timestamp("2025-12-30", tz="UTC"), pd.Timestamp("2026-01-02", tz="UTC")).label == \
        "30 Dec 2025 – 1 Jan 2026"
    dates = pd.Series(pd.to_datetime(["2026-03-24 23:59", "2026-03-25 00:00", "2026-04-01 00:00", None], utc=True))
    assert current.contains(dates).tolist() == [False, True, False, False]
    assert m.last_day(frame([(None, 0, 0.0, "neutral", None, "x")])) is None


def test_a_span_of_days_is_written_one_way_everywhere():
    """``Window.label`` and snapshots (``snapshot.day_span``) write days with the one formatter, ``metrics.day_span``."""
    assert m.day_span(date(2026, 10, 19), date(2026, 10, 25)) == "19–25 Oct 2026"
    assert m.day_span(date(2026, 9, 28), date(2026, 10, 4)) == "28 Sep – 4 Oct 2026"
    assert m.day_span(date(2025, 12, 29), date(2026, 1, 4)) == "29 Dec 2025 – 4 Jan 2026"
    assert m.day_span(date(2026, 3, 3), date(2026, 3, 3)) == "3 Mar 2026"
    for first, days in ((date(2026, 10, 19), 7), (date(2026, 9, 28), 7), (date(2025, 12, 29), 7), (date(2026, 3, 3), 1)):
        start = pd.Timestamp(first, tz="UTC")
        window = Window(start, start + pd.Timedelta(days=days))
        assert window.label == m.day_span(window.first_day, window.last_day)


def test_periods_are_counted_in_words():
    assert m.periods_in_words(8, 7) == "8 weeks" and m.periods_in_words(1, 7) == "1 week"
    assert m.periods_in_words(8, 1) == "8 days"
    assert m.periods_in_words(6, 31, months=True) == "6 months"
    assert m.periods_in_words(8, 30) == "8 periods of 30 days"  # 30 days are not a month


# ------------------------------------------------------------------------------------------------ headline


def test_headline_figures_and_changes(messages):
    current, previous = m.comparison_windows(date(2026, 3, 9), days=4)  # 6–9 Mar vs 2–5 Mar
    many = pd.concat([messages] * 5, ignore_index=True)  # 10 messages a window: enough to compare their rates
    h = m.headline(many, current, previous)
    assert (h.messages.current, h.messages.previous) == (10, 10)
    assert h.share_negative.current == 0.0 and h.share_negative.previous == 1.0
    assert h.mean_sentiment.current == pytest.approx(0.3)
    assert h.mean_sentiment.previous == pytest.approx(-0.6)
    assert h.mean_sentiment.delta == pytest.approx(0.9)
    assert (h.active_topics.current, h.active_topics.previous) == (1, 1)
    assert h.messages.relative == 0.0


def test_no_change_is_given_against_days_before_the_data_or_rates_of_a_few_messages(messages):
    current, previous = m.comparison_windows(date(2026, 3, 9), days=4)  # 6–9 Mar vs 2–5 Mar
    few = m.headline(messages, current, previous)  # 2 messages before: "-100 pts" of negative would be noise
    assert few.messages.previous == 2 and few.active_topics.previous == 1
    assert few.share_negative.previous is None and few.mean_sentiment.delta is None
    first = m.headline(messages, current, previous, history_start=pd.Timestamp("2026-03-06"))  # data starts on 6 Mar
    assert first.messages.previous is None and first.messages.delta is None and first.active_topics.delta is None
    same = m.headline(messages, current, previous, history_start=pd.Timestamp("2026-03-05"))  # 5 Mar has data
    assert same.messages.previous == 2


def test_an_empty_window_has_no_rates_and_no_relative_change(messages):
    current, previous = m.comparison_windows(date(2026, 3, 20), days=10)  # 11–20 Mar vs 1–10 Mar
    h = m.headline(messages, current, previous)
    assert h.messages.current == 0 and h.messages.previous == 4
    assert h.share_negative.current is None and h.mean_sentiment.delta is None
    assert h.messages.relative == -1.0
    assert m.Change(3, 0).relative is None and m.Change(None, 2).delta is None


# ------------------------------------------------------------------------------------------ topic volumes


def test_volume_over_time_fills_empty_periods_and_shares_add_up(messages):
    volume = m.volume_over_time(messages, "week")
    weeks = sorted(volume["period"].dt.strftime("%Y-%m-%d").unique())
    assert weeks == ["2026-03-02", "2026-03-09", "2026-03-16", "2026-03-23", "2026-03-30"]
    first = volume[volume["period"] == pd.Timestamp("2026-03-02", tz="UTC")].set_index("topic")
    assert first["count"].to_dict() == {-1: 0, 0: 2, 1: 1, 2: 0}
    assert first["share"][0] == pytest.approx(2 / 3)
    empty_week = volume[volume["period"] == pd.Timestamp("2026-03-16", tz="UTC")]
    assert empty_week["count"].sum() == 0 and empty_week["share"].sum() == 0
    assert volume.groupby("period")["share"].sum().isin([0.0, 1.0]).all()
    assert volume["count"].sum() == 6  # the undated message is not on a time axis


def test_volume_by_metadata_counts_blank_values(messages):
    volume = m.volume_over_time(messages, "month", by="rating")
    april = volume[volume["period"] == pd.Timestamp("2026-04-01", tz="UTC")].set_index("rating")["count"]
    assert april.to_dict() == {"1 star": 0, "2 stars": 0, "5 stars": 1, m.BLANK: 1}
    assert m.period_totals(messages, "month")["count"].tolist() == [4, 2]


def test_topic_table_counts_tone_and_change(messages):
    current, previous = m.comparison_windows(date(2026, 4, 30), days=30)  # 1–30 Apr vs 2–31 Mar
    table = m.topic_table(messages, TOPICS, current, previous, trend="month").set_index("topic")
    assert table.index.tolist() == [0, 1, 2]  # largest first, no-topic left out
    assert table.loc[0, "messages"] == 3 and table.loc[0, "share"] == pytest.approx(3 / 7)
    assert table.loc[0, "mean_sentiment"] == pytest.approx(-1.4 / 3)
    assert table.loc[0, "share_negative"] == pytest.approx(2 / 3)
    assert table.loc[0, "keywords"] == "refund, delay"
    assert (table.loc[2, "current"], table.loc[2, "previous"], table.loc[2, "change"]) == (1, 0, 1)
    assert np.isnan(table.loc[2, "change_pct"])
    assert table.loc[1, "change_pct"] == -1.0
    assert table.loc[0, "trend"] == [2, 0]
    with_outliers = m.topic_table(messages, TOPICS, include_no_topic=True)
    assert with_outliers["topic"].tolist()[-1] == m.NO_TOPIC
    assert with_outliers["label"].tolist()[-1] == m.NO_TOPIC_LABEL


def test_movers_leave_out_topics_too_small_to_matter():
    rows = [("2026-03-05", 0, -0.5, "negative", None, "x")] * 2 + [("2026-03-12", 0, -0.5, "negative", None, "x")] * 9
    rows += [("2026-03-05", 1, 0.5, "positive", None, "y")] * 6 + [("2026-03-12", 1, 0.5, "positive", None, "y")] * 1
    rows += [("2026-03-05", 2, 0.0, "neutral", None, "z")] * 1 + [("2026-03-12", 2, 0.0, "neutral", None, "z")] * 2
    current, previous = m.comparison_windows(date(2026, 3, 14), days=7)
    moved = m.biggest_movers(frame(rows), TOPICS, current, previous, min_messages=3)
    assert moved.rising[["topic", "change"]].values.tolist() == [[0, 7]]
    assert moved.falling[["topic", "change"]].values.tolist() == [[1, -5]]
    assert moved.rising.loc[0, "change_pct"] == pytest.approx(3.5)


# ------------------------------------------------------------------------------------------ emerging issues


def weekly(topic: int, counts: list[int], start: str = "2026-01-05") -> list[tuple]:
    """``counts[i]`` messages of ``topic`` on the Wednesday of week ``i`` after Monday ``start``."""
    rows = []
    for week, n in enumerate(counts):
        day = pd.Timestamp(start) + pd.Timedelta(days=7 * week + 2)
        rows += [(day.isoformat(), topic, -0.5, "negative", None, "t")] * n
    return rows


def week(i: int, start: str = "2026-01-05") -> Window:
    """Week ``i`` after Monday ``start`` as a window."""
    first = pd.Timestamp(start, tz="UTC") + pd.Timedelta(days=7 * i)
    return Window(first, first + pd.Timedelta(days=7))


def test_a_planted_surge_is_flagged_and_a_tiny_or_steady_topic_is_not():
    rows = weekly(0, [3, 4, 2, 3, 4, 3, 2, 3, 15])   # surge in the last week
    rows += weekly(1, [0, 0, 0, 0, 0, 0, 0, 0, 3])   # new, but only 3 messages: below the floor
    rows += weekly(2, [20, 22, 19, 21, 20, 18, 22, 20, 23])  # big and steady
    found = m.emerging_issues(frame(rows), TOPICS, week(8), history_start=pd.Timestamp("2026-01-05"))
    assert found.note is None and found.baseline_windows == 8
    assert found.issues["topic"].tolist() == [0]
    issue = found.issues.iloc[0]
    assert issue["count"] == 15 and issue["baseline"] == pytest.approx(3.0) and issue["ratio"] == pytest.approx(5.0)
    assert issue["p_value"] < 1e-5
    assert issue["reason"] == "15 messages in 2–8 Mar 2026, 5.0× the usual 3.0 per 7 days."


def test_a_surge_of_one_product_spread_over_topics_is_flagged_as_that_product():
    """A bank's card complaints triple (6 a week to 18), spread over three topics that each grow only by half (no
    topic passes the test); the product column shows it, by its share of all messages (25% to 50%), and the steady
    product does not."""
    rows, products = [], []
    for topic in (0, 1, 2):
        for product, counts in (("Credit card", [2] * 8 + [6]), ("Loan", [6] * 9)):
            part = weekly(topic, counts)
            rows += part
            products += [product] * len(part)
    messages = frame(rows).assign(product=products)
    found = m.emerging_issues(messages, TOPICS, week(8), columns=["product", "missing"])
    assert found.issues.empty
    assert found.values[["column", "value", "count"]].values.tolist() == [["product", "Credit card", 18]]
    assert found.values.iloc[0]["reason"] == ("18 of the 36 messages in 2–8 Mar 2026 (50%), against its usual 25%, "
                                              "which would have given 9.0: 2.0× as many.")
    # A value never seen before has no usual share to multiply: "inf× the 0.0 that share would give" said nothing.
    new = frame(rows + weekly(0, [0] * 8 + [6])).assign(product=products + ["Crypto"] * 6)
    crypto = m.emerging_issues(new, TOPICS, week(8), columns=["product"]).values.set_index("value")
    assert crypto.loc["Crypto", "reason"] == "6 of the 42 messages in 2–8 Mar 2026 (14%); none before."
    # When every value grows alike (all messages doubled), none is news.
    doubled = m.emerging_issues(frame(weekly(0, [5] * 8 + [10]) + weekly(1, [5] * 8 + [10])).assign(
        channel=["app", "web"] * 50), TOPICS, week(8), columns=["channel"])
    assert doubled.values.empty
    # The cube counts the same (the dashboard reads the cube).
    cube = m.message_cube(messages, ["product"])
    assert m.emerging_issues(cube, TOPICS, week(8), columns=["product"]).values.equals(found.values)


def test_topics_that_only_grew_with_all_messages_are_not_emerging_issues():
    """September's messages doubled (a busier month): every topic doubled with them, and none is news; a topic that
    grew five-fold while the rest doubled is, and its reason says the rest grew."""
    steady = [(t, [8] * 8 + [16]) for t in (1, 2, 3, 4)]
    rows = [r for t, counts in steady for r in weekly(t, counts)]
    doubled = m.emerging_issues(frame(rows + weekly(0, [4] * 8 + [8])), TOPICS, week(8))
    assert doubled.issues.empty
    found = m.emerging_issues(frame(rows + weekly(0, [4] * 8 + [20])), TOPICS, week(8))
    assert found.issues["topic"].tolist() == [0]
    assert found.issues.iloc[0]["reason"] == ("20 messages in 2–8 Mar 2026, 5.0× the usual 4.0 per 7 days, while the "
                                              "other topics grew 2.0×.")
    # The surge itself is not "the rest": with one other, steady topic, a surge is measured against its own past.
    two = m.emerging_issues(frame(weekly(1, [8] * 9) + weekly(0, [4] * 8 + [20])), TOPICS, week(8))
    assert two.issues["topic"].tolist() == [0] and two.issues.iloc[0]["reason"].endswith("per 7 days.")


def test_a_topic_new_in_the_window_is_flagged_once_above_the_floor():
    rows = weekly(0, [5] * 9) + weekly(1, [0] * 8 + [6])
    found = m.emerging_issues(frame(rows), TOPICS, week(8))
    assert found.issues["topic"].tolist() == [1]
    assert found.issues.iloc[0]["reason"].startswith("6 messages in 2–8 Mar 2026; almost none before")


def test_a_month_is_compared_with_the_calendar_months_before_it():
    """A monthly snapshot's baseline is months (28 to 31 days), said as "8 months", not "periods of 31 days"."""
    rows = []
    for month, n in zip(pd.date_range("2025-07-01", "2026-03-01", freq="MS"), [3, 4, 2, 3, 4, 3, 2, 3, 15], strict=True):
        rows += [((month + pd.Timedelta(days=9)).isoformat(), 0, -0.5, "negative", None, "t")] * n
    march = Window(pd.Timestamp("2026-03-01", tz="UTC"), pd.Timestamp("2026-04-01", tz="UTC"))
    found = m.emerging_issues(frame(rows), TOPICS, march, history_start=pd.Timestamp("2025-07-01"), months=True)
    assert found.baseline_windows == 8 and found.baseline_in_words == "8 months"
    issue = found.issues.iloc[0]
    assert issue["baseline"] == pytest.approx(3.0)  # July to February, each month whole
    by_days = m.emerging_issues(frame(rows), TOPICS, march, history_start=pd.Timestamp("2025-07-01"))
    assert by_days.baseline_in_words == "7 periods of 31 days"  # 8 steps of 31 days reach back before July
    assert issue["reason"] == "15 messages in 1–31 Mar 2026, 5.0× the usual 3.0 per month."
    short = m.emerging_issues(frame(rows[-17:]), TOPICS, march, months=True)  # only February before March
    assert short.note == ("Not enough history to spot emerging issues: they need 3 months before 1–31 Mar 2026, "
                          "with data from the start of each.")
    weekly_found = m.emerging_issues(frame(weekly(0, [3, 4, 2, 3, 4, 3, 2, 3, 15])), TOPICS, week(8))
    assert weekly_found.baseline_in_words == "7 weeks"  # the first week is not fully covered


def test_only_periods_after_the_first_message_form_the_baseline():
    rows = weekly(0, [2, 3, 2, 12])
    found = m.emerging_issues(frame(rows), TOPICS, week(3))
    # The first message is on the Wednesday of week 0, so week 0 is not fully covered: 2 baseline weeks.
    assert found.issues.empty and found.baseline_windows == 2
    assert "Not enough history" in found.note
    relaxed = m.emerging_issues(frame(rows), TOPICS, week(3), min_baseline_windows=2)
    assert relaxed.note is None and relaxed.issues["topic"].tolist() == [0]
    assert relaxed.issues.iloc[0]["baseline"] == pytest.approx(2.5)


# ---------------------------------------------------------------------------------------------- sentiment


def test_sentiment_over_time_with_volume_and_a_weighted_rolling_mean(messages):
    series = m.sentiment_over_time(messages, "week", rolling=2).set_index("period")
    first, second, third = (pd.Timestamp(d, tz="UTC") for d in ("2026-03-02", "2026-03-09", "2026-03-16"))
    assert series.loc[first, "messages"] == 3
    assert series.loc[first, "mean_sentiment"] == pytest.approx(-0.2)
    assert series.loc[first, "share_negative"] == pytest.approx(2 / 3)
    assert series.loc[second, "smoothed"] == pytest.approx(-0.6 / 4)  # (-0.8-0.4+0.6+0.0) / 4 messages
    assert series.loc[third, "messages"] == 0 and np.isnan(series.loc[third, "mean_sentiment"])
    assert series.loc[third, "smoothed"] == pytest.approx(0.0)


def test_sentiment_per_topic_has_every_topic_in_every_period(messages):
    series = m.sentiment_over_time(messages, "month", by_topic=True)
    assert len(series) == 2 * 4
    march_refunds = series[(series["topic"] == 0) & (series["period"] == pd.Timestamp("2026-03-01", tz="UTC"))]
    assert march_refunds["mean_sentiment"].item() == pytest.approx(-0.6)


def test_sentiment_drivers_add_up_to_the_overall_change():
    rows = [("2026-03-03", 0, -0.5, "negative", None, "a")] * 2 + [("2026-03-03", 1, 0.5, "positive", None, "b")] * 2
    rows += [("2026-03-10", 0, -0.9, "negative", None, "a")] * 3 + [("2026-03-10", 1, 0.5, "positive", None, "b")] * 1
    messages = frame(rows * 3)  # 12 messages a week: enough for a mean to compare
    current, previous = m.comparison_windows(date(2026, 3, 15), days=7)
    drivers = m.sentiment_drivers(messages, TOPICS, current, previous)
    h = m.headline(messages, current, previous)
    assert drivers["contribution"].sum() == pytest.approx(h.mean_sentiment.delta)
    fall = drivers[drivers["contribution"] < 0].iloc[0]
    assert fall["topic"] == 0 and fall["contribution"] == pytest.approx(0.75 * -0.9 - 0.5 * -0.5)
    assert m.sentiment_counts(messages) == {"negative": 15, "neutral": 0, "positive": 9}


def test_sentiment_drivers_show_the_largest_falls_beside_larger_rises():
    """Six topics lifted the mean a little more than two pulled it down: the five largest by size were all rises,
    and the chart hid what dragged sentiment down. The largest each way are given, rises first."""
    rows = []
    for topic in range(6):  # each rises from -0.5 to +0.5 on 3 messages a week
        rows += [("2026-03-03", topic, -0.5, "negative", None, "a")] * 3 + [("2026-03-10", topic, 0.5, "positive", None, "a")] * 3
    for topic in (6, 7):  # each falls from +0.5 to -0.3
        rows += [("2026-03-03", topic, 0.5, "positive", None, "a")] * 3 + [("2026-03-10", topic, -0.3, "negative", None, "a")] * 3
    topics = pd.DataFrame({"topic": range(8), "label": [f"t{t}" for t in range(8)]})
    current, previous = m.comparison_windows(date(2026, 3, 15), days=7)
    drivers = m.sentiment_drivers(frame(rows), topics, current, previous)
    assert (drivers["contribution"] > 0).sum() == 4 and drivers["topic"].tolist()[-2:] == [6, 7]
    assert drivers["contribution"].tolist()[-1] < 0 and drivers["contribution"].tolist()[0] > 0


def test_an_emerging_issues_usual_volume_is_written_precisely_enough_to_give_its_ratio():
    rows = weekly(0, [2, 3, 2, 2, 2, 3, 2, 2, 11])  # a usual 2.25 a week: '4.9× the usual 2.25', not '2.2' (= 5.0×)
    rows += weekly(2, [20, 22, 19, 21, 20, 18, 22, 20, 23])
    found = m.emerging_issues(frame(rows), TOPICS, week(8), history_start=pd.Timestamp("2026-01-05"))
    assert found.issues.iloc[0]["reason"] == "11 messages in 2–8 Mar 2026, 4.9× the usual 2.25 per 7 days."

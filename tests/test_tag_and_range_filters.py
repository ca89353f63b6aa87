"""Metadata columns that hold tags ("shipping, price"): found, offered and filtered tag by tag, counted per tag;
numeric columns of many values (an amount, a length), filtered by a range.

Unit tests on small frames, then the real path: a real analysis of real reviews tagged by keyword rules, read by
the dashboard (sidebar filters, Trends breakdown, Messages, Overview) and by a snapshot's ``--filter``.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import streamlit as st

from pipelines import metrics
from pipelines.metrics import MessageFilter, Window

TICKETS = ["billing, urgent", "billing", "urgent", "refund, billing", "refund", "app", "app, urgent", None, "billing"]


def _frame(values: list, dates: pd.DatetimeIndex | None = None) -> pd.DataFrame:
    days = dates if dates is not None else pd.date_range("2026-01-01", periods=len(values), freq="D", tz="UTC")
    return pd.DataFrame({"tags": values, "topic": 0, "sentiment_label": "neutral", "sentiment": 0.0, "date": days})


# ---------------------------------------------------------------------------------------------- finding tags


@pytest.mark.parametrize("separator", [",", ";", "|"])
def test_a_column_of_tag_lists_is_found_with_its_separator(separator):
    values = [v.replace(",", separator) if v else v for v in TICKETS * 3]
    assert metrics.tag_separator(pd.Series(values)) == separator
    assert metrics.tag_separator(pd.Series(values, dtype="category")) == separator


@pytest.mark.parametrize("values", [
    # A product whose name holds commas: its parts occur nowhere else.
    ["Credit reporting, credit repair services, or other personal consumer reports", "Mortgage", "Debt collection",
     "Checking or savings account"] * 10,
    # Places: as many cities as values.
    [f"Town {i}, TX" for i in range(40)],
    ["Austin, TX", "Dallas, TX", "Portland, OR", "Salem, OR", "Austin, TX"] * 8,
    # Product variants: a few kinds, each variant found once.
    ["Coffee, decaf", "Coffee, regular", "Tea, green", "Tea, black", "Tea, mint", "Cocoa"] * 8,
    # A few commas among plain values (under a tenth of the messages).
    ["email"] * 40 + ["phone"] * 40 + ["chat, then phone"] * 3,
    # Free text.
    [f"The parcel came late, and the box was torn open number {i}" for i in range(30)],
])
def test_values_that_only_contain_commas_are_not_tags(values):
    assert metrics.tag_separator(pd.Series(values)) is None


def test_numbers_are_never_tags():
    assert metrics.tag_separator(pd.Series([1.5, 2.0, 3.0] * 10)) is None


def test_tags_with_a_long_tail_are_still_tags():
    # Twelve common tags in many combinations, and eight rare ones each seen in a single combination.
    rng = np.random.default_rng(2)
    common = [f"tag{i}" for i in range(12)]
    values = [", ".join(sorted(rng.choice(common, size=rng.integers(1, 3), replace=False))) for _ in range(300)]
    values += [f"tag0, rare{i}" for i in range(8)]
    assert metrics.tag_separator(pd.Series(values)) == ","


def test_a_tag_column_offers_its_tags_even_with_more_than_50_combinations():
    tags = [f"tag{i}" for i in range(12)]
    rng = np.random.default_rng(0)
    values = [", ".join(sorted(rng.choice(tags, size=rng.integers(1, 4), replace=False))) for _ in range(600)]
    assert len(set(values)) > 50  # as plain values, not filterable at all
    assert metrics.metadata_options(pd.DataFrame({"tags": values}), ["tags"])["tags"] == sorted(tags)
    assert metrics.tag_separators(pd.DataFrame({"tags": values, "other": "x"}), ["tags", "other"]) == {"tags": ","}


# ---------------------------------------------------------------------------------------------- filtering


def test_a_tag_filter_keeps_every_message_carrying_one_of_the_chosen_tags():
    frame = _frame(TICKETS * 2)
    urgent = MessageFilter(metadata=(("tags", ("urgent",)),), tags=(("tags", ","),))
    kept = metrics.filter_messages(frame, urgent)["tags"].tolist()
    assert kept == ["billing, urgent", "urgent", "app, urgent"] * 2
    either = MessageFilter(metadata=(("tags", ("refund", metrics.BLANK)),), tags=(("tags", ","),))
    assert metrics.filter_messages(frame, either)["tags"].fillna("").tolist() == ["refund, billing", "refund", ""] * 2
    # Categories (how the dashboard reads the run) and the message cube (what its figures count) agree.
    as_categories = frame.assign(tags=frame["tags"].astype("category"))
    for f in (urgent, either):
        assert metrics.filter_mask(as_categories, f).tolist() == metrics.filter_mask(frame, f).tolist()
        cube = metrics.message_cube(frame, ["tags"])
        assert metrics.message_count(metrics.filter_messages(cube, f)) == int(metrics.filter_mask(frame, f).sum())
    # Without the separator the same value is matched whole, as for any other column.
    whole = MessageFilter(metadata=(("tags", ("urgent",)),))
    assert metrics.filter_messages(frame, whole)["tags"].tolist() == ["urgent", "urgent"]


# ---------------------------------------------------------------------------------------------- counting


def test_the_breakdown_by_a_tag_column_counts_a_message_under_each_of_its_tags():
    frame = _frame(TICKETS * 3)
    volume = metrics.volume_over_time(metrics.message_cube(frame, ["tags"]), "month", "tags", ",")
    january = volume[volume["period"] == pd.Timestamp("2026-01-01", tz="UTC")].set_index("tags")
    # 27 messages: billing in 4 of each 9, urgent in 3, refund 2, app 2, one blank.
    assert january["count"].to_dict() == {metrics.BLANK: 3, "app": 6, "billing": 12, "refund": 6, "urgent": 9}
    assert january.loc["billing", "share"] == pytest.approx(12 / 27)  # of the messages, not of the tags
    plain = metrics.volume_over_time(frame, "month", "tags")
    assert "billing, urgent" in set(plain["tags"])


def test_a_surging_tag_is_an_emerging_issue_even_spread_over_tag_lists():
    # Eight weeks of steady tickets, then a week where "outage" rides along with every other tag.
    days = pd.date_range("2026-01-05", "2026-03-01", freq="6h", tz="UTC")
    rng = np.random.default_rng(1)
    values = [rng.choice(["billing", "app", "refund, billing", "app, refund"]) for _ in days]
    base = _frame(values, days)
    last = pd.date_range("2026-03-02", "2026-03-08 23:00", freq="6h", tz="UTC")
    surge = _frame([f"{rng.choice(['billing', 'app', 'refund'])}, outage" for _ in last], last)
    frame = pd.concat([base, surge, _frame(["app, outage"], pd.DatetimeIndex(["2026-01-20"], tz="UTC"))],
                      ignore_index=True)
    window = Window(pd.Timestamp("2026-03-02", tz="UTC"), pd.Timestamp("2026-03-09", tz="UTC"))
    topics = pd.DataFrame({"topic": [0], "label": ["tickets"], "size": [len(frame)]})
    found = metrics.emerging_issues(frame, topics, window, columns=["tags"], tag_columns={"tags": ","})
    rising = found.values.set_index("value")
    assert "outage" in rising.index and rising.loc["outage", "count"] == len(last)
    # Its share is of the messages of the week (28), not of the tags counted (56).
    assert f"{len(last)} of the {len(last)} messages" in rising.loc["outage", "reason"]
    assert not any("," in v for v in rising.index)
    as_lists = metrics.emerging_issues(frame, topics, window, columns=["tags"])
    assert "outage" not in set(as_lists.values["value"])


# ---------------------------------------------------------------------------------------------- the real path

RULES = {"shipping": r"ship|deliver|arriv|package", "price": r"price|expensive|cheap|\$", "taste": r"tast|flavo",
         "coffee": r"coffee|\btea\b"}


@pytest.fixture(scope="module")
def tagged_store(tmp_path_factory, sample_frame, encoder) -> Path:
    """A real run of 166 real reviews whose "labels" column holds tags given by keyword rules, and "words" their
    number of words."""
    from pipelines.analyse import analyse_file
    from pipelines.settings import ColumnMapping, Settings

    rows = sample_frame.iloc[::30].copy()
    rows["labels"] = rows["text"].map(lambda t: ", ".join(k for k, p in RULES.items() if re.search(p, t, re.I)))
    rows["words"] = rows["text"].str.split().str.len()
    path = tmp_path_factory.mktemp("tagged") / "tagged_reviews.csv"
    rows.to_csv(path, index=False)
    store = tmp_path_factory.mktemp("tagged_store")
    analyse_file(path, ColumnMapping(metadata=("rating", "labels", "words")), Settings(store_dir=store), encoder=encoder)
    return store


def _numbers(values: list | dict) -> np.ndarray:
    """A figure's numbers as its JSON holds them: a list, or a typed array (``{"dtype": "i4", "bdata": …}``)."""
    if isinstance(values, dict):
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"])
    return np.asarray(values)


@pytest.fixture
def served_store(monkeypatch, tagged_store, tmp_path) -> Path:
    """A copy of the tagged run's store that the dashboard reads, with the caches cleared."""
    store = tmp_path / "store"
    shutil.copytree(tagged_store, store)
    monkeypatch.setenv("FEEDBACK_LENS_STORE", str(store))
    st.cache_data.clear()
    st.cache_resource.clear()
    return store


def _with_tag(messages: pd.DataFrame, tag: str) -> pd.Series:
    return messages["labels"].fillna("").str.split(", ").map(lambda tags: tag in tags)


@pytest.mark.slow
def test_the_dashboard_filters_and_breaks_down_a_real_run_by_tag(served_store):
    from pipelines.store import load_run
    from tests.test_dashboard_pages import chart_titles, open_app, shown_messages

    store = served_store
    messages = load_run(store).messages
    price = int(_with_tag(messages, "price").sum())
    assert 0 < price < len(messages)

    # The figures read the cube stored with the run, its tag lists whole (not counted again on every open).
    from dashboard import data
    from pipelines.store import load_run_table

    stored = load_run_table(load_run(store), "cube")
    assert "labels" in stored
    assert data._cube(data.current_ref()).equals(stored)

    at = open_app("messages")
    box = at.sidebar.multiselect(key="filter_meta:labels")
    assert box.options == ["coffee", "price", "shipping", "taste", metrics.BLANK]
    assert box.help == "Messages with any of the chosen tags."
    box.set_value(["price"]).run()
    assert shown_messages(at) == price
    assert at.query_params["labels"] in ("price", ["price"])

    # A link with a tag opens on the same messages; Trends breaks the run down tag by tag.
    linked = open_app("trends", labels="price")
    assert linked.sidebar.multiselect(key="filter_meta:labels").value == ["price"]
    linked.selectbox(key="trends_breakdown").set_value("labels").run()
    assert "Messages by labels tag, per month" in chart_titles(linked)
    spec = next(json.loads(c.proto.spec) for c in linked.get("plotly_chart")
                if json.loads(c.proto.spec)["layout"]["title"]["text"].startswith("Messages by labels"))
    assert spec["layout"]["barmode"] == "group"
    # Filtered to "price", its bars count every such message, and another tag's only the ones beside it.
    drawn = {trace["name"]: int(np.sum(_numbers(trace["y"]))) for trace in spec["data"]}
    assert drawn["price"] == price
    assert drawn["taste"] == int((_with_tag(messages, "price") & _with_tag(messages, "taste")).sum()) > 0
    assert any("holds tags: a message with several counts under each of them" in c.value for c in linked.caption)
    # The Data page says how each column is filtered.
    facts = open_app("runs").dataframe[0].value.set_index("About this run")[""]
    assert facts["Metadata columns"] == "rating, labels (tags), words (range)"


@pytest.mark.slow
def test_a_snapshot_filter_on_a_tag_keeps_the_messages_carrying_it(tagged_store):
    from pipelines.snapshot import parse_filters
    from pipelines.store import load_run

    run = load_run(tagged_store)
    f = parse_filters(["labels=Shipping"], run)  # case forgiven, as for other values
    assert f.metadata == (("labels", ("shipping",)),) and f.tags == (("labels", ","),)
    kept = metrics.filter_messages(run.messages, f)
    assert len(kept) == int(_with_tag(run.messages, "shipping").sum()) > 0
    assert (kept["labels"].str.contains("shipping")).all()


# ---------------------------------------------------------------------------------------------- ranges


def test_numeric_columns_of_many_values_are_filtered_by_a_range_and_few_values_one_by_one():
    frame = pd.DataFrame({"amount": np.arange(120) * 2.5, "rating": [1, 2, 3, 4, 5] * 24,
                          "flag": [True, False] * 60, "channel": ["app", "web"] * 60})
    assert metrics.numeric_ranges(frame, ["amount", "rating", "flag", "channel"]) == {"amount": (0.0, 297.5)}
    assert set(metrics.metadata_options(frame, ["amount", "rating", "flag", "channel"])) == {"rating", "flag",
                                                                                            "channel"}
    f = MessageFilter(ranges=(("amount", 10.0, 20.0),))
    assert not f.is_empty
    assert metrics.filter_messages(frame, f)["amount"].tolist() == [10.0, 12.5, 15.0, 17.5, 20.0]
    with_gap = frame.assign(amount=frame["amount"].where(frame.index != 5))  # no number: left out
    assert metrics.filter_messages(with_gap, f)["amount"].tolist() == [10.0, 15.0, 17.5, 20.0]
    assert [w for w, _ in metrics.without_each_filter(f)] == ["the amount filter"]


def test_numbers_that_identify_messages_get_no_range():
    n = 200
    frame = pd.DataFrame({"order_id": np.arange(n), "orderId": np.arange(n) * 1.0, "customerID": np.arange(n),
                          "Ticket No": np.arange(n), "serial": np.arange(n) + 10_000,  # each on one message only
                          "paid": np.arange(n) % 90, "wait": np.arange(n) % 120, "price": np.arange(n) * 1.25})
    assert set(metrics.numeric_ranges(frame, frame.columns)) == {"paid", "wait", "price"}


def test_a_message_cube_refuses_a_range_it_cannot_apply():
    # The cube counts messages by value; ignoring the range there would give the figures of all messages.
    cube = metrics.message_cube(_frame(TICKETS).assign(amount=1.0), ["tags"])
    with pytest.raises(ValueError, match="amount"):
        metrics.filter_mask(cube, MessageFilter(ranges=(("amount", 0.0, 2.0),)))


@pytest.mark.slow
def test_the_dashboard_filters_a_real_run_by_a_range_of_numbers(served_store):
    from dashboard import components
    from pipelines.store import load_run
    from tests.test_dashboard_pages import open_app, shown_messages

    store = served_store
    words = load_run(store).messages["words"]
    low, high = int(words.min()), int(words.max())
    between = int(words.between(20, 60).sum())
    assert 0 < between < len(words)

    at = open_app("messages")
    slider = at.sidebar.slider(key="filter_meta:range:words")
    assert slider.value == (low, high) and (slider.min, slider.max) == (low, high)
    assert "words" not in at.query_params  # the whole span filters nothing
    slider.set_value((20, 60)).run()
    assert not at.exception
    assert shown_messages(at) == between
    assert at.query_params["words"] in ("20..60", ["20..60"])
    assert any(components.escape_markdown("Filtered to words: 20–60") in c.value for c in at.caption)

    # A link with the range opens on the same messages, and the Overview's figures count them (not the cube).
    linked = open_app("overview", words="20..60")
    assert linked.sidebar.slider(key="filter_meta:range:words").value == (20, 60)
    dates = load_run(store).messages["date"]
    last_30_days = dates >= dates.max().floor("D") - pd.Timedelta(days=29)  # the Overview's default period
    assert 0 < int((last_30_days & words.between(20, 60)).sum()) < int(last_30_days.sum())
    shown = next(m for m in linked.metric if m.label == "Messages").value
    assert shown == f"{int((last_30_days & words.between(20, 60)).sum()):,}"
    bad = open_app("overview", words="lots")
    assert f"words=lots is not a range like words={low}..{high}" in bad.warning[0].value
    assert bad.sidebar.slider(key="filter_meta:range:words").value == (low, high)
    wide = open_app("messages", words=f"{low - 100}..{high + 100}")  # clamped to the run's span: no filter
    assert shown_messages(wide) == len(words)


@pytest.mark.slow
def test_a_snapshot_filter_takes_a_range_of_numbers(tagged_store):
    from pipelines.errors import InputError
    from pipelines.snapshot import filter_words, parse_filters, snapshot_name, week_period
    from pipelines.store import load_run

    run = load_run(tagged_store)
    words = run.messages["words"]
    f = parse_filters(["words=20..60"], run)
    assert f.ranges == (("words", 20.0, 60.0),)
    assert len(metrics.filter_messages(run.messages, f)) == int(words.between(20, 60).sum())
    assert filter_words(f, {}) == ["words: 20–60"]
    up_to = parse_filters(["words=..60"], run)  # a bound left out is the run's own
    assert up_to.ranges == (("words", float(words.min()), 60.0),)
    assert "words-20-to-60" in snapshot_name(week_period(2026, 10), f)
    with pytest.raises(InputError) as refused:
        parse_filters(["words=long"], run)
    assert "Write --filter words=LOW..HIGH" in refused.value.fix


# ---------------------------------------------------------------------------------------------- named tag columns


def test_columns_named_as_tags_are_read_as_tags_and_only_they():
    few = pd.DataFrame({"labels": ["billing, urgent", "billing", "app; ios", "refund, billing"] * 5,
                        "kinds": ["a;b", "a", "b;c", "c"] * 5, "tags": TICKETS[:4] * 5})
    # Found by their values, "labels" is listed whole: its tags seldom recur.
    assert metrics.tag_separators(few, few.columns) == {"kinds": ";", "tags": ","}
    assert metrics.tag_separators(few, few.columns, named=["labels", "kinds"]) == {"labels": ",", "kinds": ";"}
    assert metrics.tag_separators(few, few.columns, named=[]) == {}  # tags: [] reads no column as tags
    options = metrics.metadata_options(few, few.columns, tags={"labels": ","})
    assert options["labels"] == ["app; ios", "billing", "refund", "urgent"]
    assert options["tags"] == sorted(set(TICKETS[:4]))  # not named: its values whole


def test_a_tags_key_or_option_naming_no_metadata_column_is_refused_before_embedding(tmp_path, capsys):
    from tests.test_cli import _analyse, _small_csv

    csv, path = _small_csv(tmp_path), tmp_path / "m.yaml"
    path.write_text("text: text\ntags: labels\n")
    assert _analyse(tmp_path, str(csv), "--mapping", str(path), "--quiet") == 1
    assert "m.yaml: 'tags' must be a list of column names (or [] for none)." in capsys.readouterr().err
    path.write_text("text: text\ntags: [labls]\n")
    assert _analyse(tmp_path, str(csv), "--mapping", str(path), "--quiet") == 1
    assert 'there is no column "labls" (asked for by tags in m.yaml, line 2)' in capsys.readouterr().err
    assert _analyse(tmp_path, str(csv), "--tags", "labls", "--quiet") == 1
    assert '(asked for by --tags)' in capsys.readouterr().err
    assert _analyse(tmp_path, str(csv), "--meta", "date", "--tags", "review_id", "--quiet") == 1
    err = capsys.readouterr().err
    assert 'few.csv: "review_id" is named as tags (--tags) but is not a metadata column' in err
    assert 'Add "review_id" to the metadata columns' in err
    assert not (tmp_path / "store" / "latest").exists()


@pytest.mark.slow
def test_a_column_named_as_tags_stays_tags_when_a_file_is_added(tmp_path, sample_frame, encoder):
    from dashboard import data
    from pipelines.analyse import analyse_file
    from pipelines.settings import ColumnMapping, Settings
    from pipelines.snapshot import parse_filters
    from pipelines.store import load_run

    rows = sample_frame.iloc[::60].copy()  # 83 real reviews
    # Two combinations only: found by their values, this column would be listed whole.
    rows["labels"] = np.where(rows["rating"] == "5 stars", "happy, keep", "unhappy")
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    rows.iloc[:60].to_csv(first, index=False)
    rows.iloc[60:].to_csv(second, index=False)
    settings = Settings(store_dir=tmp_path / "store")
    analyse_file(first, ColumnMapping(tags=("labels",)), settings, encoder=encoder)
    analyse_file(second, ColumnMapping(), settings, encoder=encoder, add=True)  # names no tags: keeps the run's
    run = load_run(settings.store_dir)
    assert run.manifest["columns"]["tags"] == ["labels"] and len(run.messages) == len(rows)
    st.cache_data.clear()
    st.cache_resource.clear()
    info = data.info(data.RunRef(str(settings.store_dir), run.id))
    assert info.tags == {"labels": ","} and info.metadata["labels"] == ["happy", "keep", "unhappy"]
    f = parse_filters(["labels=keep"], run)
    assert len(metrics.filter_messages(run.messages, f)) == int((rows["rating"] == "5 stars").sum())

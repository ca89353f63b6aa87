"""Every dashboard page through Streamlit's AppTest: on a real run, with filters, empty states and drill-down.

The pages run exactly as served (``dashboard/app.py`` and its router); the store comes from
``FEEDBACK_LENS_STORE``. Tests marked ``slow`` use the real analysed run from ``conftest.py``.
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from dashboard import components, filters
from dashboard.filters import Drill
from pipelines import charts, metrics
from pipelines.store import load_run

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "dashboard" / "app.py"
PAGES = {"overview": "Overview", "trends": "Trends", "sentiment": "Sentiment", "topics": "Topics",
         "messages": "Messages", "runs": "Data"}
NOTE = "Test run: real reviews, synthetic dates."


def open_app(page: str = "overview", **params: str | list[str]) -> AppTest:
    """Run the app on ``page`` with a link's query parameters; fail on any exception shown."""
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params.update(params)
    at.run()
    if page != "overview":
        at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def shown_cells(table) -> pd.DataFrame:
    """What a styled ``st.dataframe`` writes in its cells (the Styler's display values), as strings."""
    import pyarrow as pa

    return pa.ipc.open_stream(table.proto.arrow_data.styler.display_values).read_pandas()


def shown_messages(at: AppTest) -> int:
    """The N of "**N messages** · showing …" on the Messages page."""
    match = next(re.match(r"\*\*([\d,]+) messages?\*\*", md.value) for md in at.markdown
                 if re.match(r"\*\*[\d,]+ messages?\*\*", md.value))
    return int(match.group(1).replace(",", ""))


def chart_titles(at: AppTest) -> list[str]:
    return [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]


def captions(at: AppTest) -> str:
    return "\n".join(c.value for c in at.caption)


@pytest.fixture
def run_store(monkeypatch, real_run_store) -> Path:
    monkeypatch.setenv("FEEDBACK_LENS_STORE", str(real_run_store))
    return real_run_store


@pytest.fixture
def run(run_store):
    return load_run(run_store)


# ------------------------------------------------------------------------------------- pieces, no run needed

def test_message_times_say_they_are_utc_and_whole_ratings_show_no_decimals():
    """A message sent 23:30+02:00 is counted on the UTC day of 21:30 UTC: the card says so ("21:30 UTC", not a bare
    "21:30" read as local time). A rating read as 4.0 shows as "rating: 4", as the filters write it; 4.5 stays."""
    sent = pd.Timestamp("2026-10-14 23:30", tz="+02:00")
    row = pd.Series({"date": sent.tz_convert("UTC"), "topic": 0, "sentiment_label": "negative", "sentiment": -0.5,
                     "rating": 4.0, "stars": 4.5, "channel": " app "})
    meta = components.message_meta(row, {0: "refund"}, ["rating", "stars", "channel"], True)
    assert meta.startswith(components.escape_markdown("14 Oct 2026, 21:30 UTC · “refund” · "))
    assert meta.endswith(components.escape_markdown(" · rating: 4 · stars: 4.5 · channel: app"))
    # An aware time in another zone is shown in UTC too.
    aware = row.copy()
    aware["date"] = sent
    assert components.message_meta(aware, {0: "refund"}, [], True).startswith(
        components.escape_markdown("14 Oct 2026, 21:30 UTC · "))
    # In a run whose time zone is Los Angeles, the card shows that clock's time, and says so.
    local = row.copy()
    local["date"] = metrics.on_the_clock(pd.Series([sent]), "America/Los_Angeles")[0]
    assert components.message_meta(local, {0: "refund"}, [], True, "America/Los_Angeles").startswith(
        components.escape_markdown("14 Oct 2026, 14:30 Los Angeles time · "))
    # The value shown is the value a filter (sidebar or ?rating=4) selects.
    rows = pd.DataFrame({"rating": [4.0, 4.5, None, 4.0]})
    assert metrics.metadata_options(rows, ["rating"])["rating"] == ["4", "4.5", metrics.BLANK]
    shown = metrics.metadata_value_text(rows["rating"][0])
    assert metrics.filter_mask(rows, metrics.MessageFilter(metadata=(("rating", (shown,)),))).tolist() == [
        True, False, False, True]



def test_message_text_is_escaped_so_markdown_shows_it_literally():
    text = "[click](http://x.example) ![i](y.png) <b>hi</b> $x$ :red[a] **b** # h\n  next line"
    out = components.escape_markdown(text)
    assert re.search(r"(?<!\\)[\[\]()!<>$*#:]", out) is None
    assert "://" not in out and out.endswith("  \nnext line")
    # Whole words, as the search finds them: "refund" is not bold inside "REFUNDED".
    assert components.highlight("A refund, REFUND", ["refund"]) == "A **refund**\\, **REFUND**"
    assert components.highlight("A refund, REFUNDED", ["refund"]) == "A **refund**\\, REFUNDED"
    assert components.highlight("I don\u2019t know", ["don't"]) == "I **don\u2019t** know"
    assert components.escape_markdown("mail bob@example.com or www.example.com") == \
        f"mail bob\\@{components.WORD_JOINER}example\\.com or www{components.WORD_JOINER}\\.example\\.com"


def test_csv_cells_cannot_run_as_spreadsheet_formulas():
    table = pd.DataFrame({"text": ["=HYPERLINK(\"x\")", "+1", "fine", "@SUM(A1)"], "score": [-0.5, 0.1, 0.2, 0.3]})
    lines = components.csv_bytes(table).decode("utf-8").splitlines()
    assert lines == ["text,score", "\"'=HYPERLINK(\"\"x\"\")\",-0.5", "'+1,0.1", "fine,0.2", "'@SUM(A1),0.3"]


def test_csv_escapes_formulas_after_spaces_and_in_headers_like_snapshots():
    table = pd.DataFrame({"=cmd|x": ["  -2+3", "\tx", None], "score": [-1.0, 2.0, 3.0]})
    lines = components.csv_bytes(table).decode("utf-8").splitlines()
    assert lines == ["'=cmd|x,score", "'  -2+3,-1.0", "'\tx,2.0", ",3.0"]


def test_dates_without_a_time_of_day_are_shown_without_one():
    """A file of dates alone reads as midnight: '25 Nov 2025, 00:00' showed a time nobody wrote. Decided for the
    whole list, so one message at midnight among messages with times keeps its '00:00'."""
    days = pd.Series(pd.to_datetime(["2025-11-25", "2025-11-26", None], utc=True))
    timed = pd.Series(pd.to_datetime(["2025-11-25 00:00", "2025-11-26 14:05"], utc=True))
    assert not components.has_times(days) and components.has_times(timed)
    assert not components.has_times(pd.Series([pd.NaT, pd.NaT], dtype="datetime64[ns, UTC]"))
    assert not components.has_times(None) and not components.has_times(pd.Series(["2025-11-25"]))
    row = pd.Series({"date": days[0], "topic": 0, "sentiment_label": "negative", "sentiment": -0.5})
    assert components.message_meta(row, {0: "refund"}, [], components.has_times(days)).startswith("25 Nov 2025 · ")
    assert components.message_meta(row, {0: "refund"}, [], components.has_times(timed)).startswith(
        components.escape_markdown("25 Nov 2025, 00:00 UTC · "))
    undated = pd.Series({**row, "date": pd.NaT})
    assert components.message_meta(undated, {0: "refund"}, [], True).startswith("no date · ")
    assert components.message_meta(undated, {0: "refund"}, [], True, dated=False).startswith("“refund” · ")
    rows = pd.DataFrame({"date": days, "topic": 0, "sentiment_label": "neutral", "sentiment": 0.0, "text": "x",
                         "message_id": ["a", "b", "c"]})
    assert components.export_table(rows, {}, [])["date"].tolist() == ["2025-11-25", "2025-11-26", ""]
    assert components.export_table(rows.assign(date=timed.reindex(range(3))), {}, [])["date"].tolist() == [
        "2025-11-25 00:00:00", "2025-11-26 14:05:00", ""]


def test_drill_downs_merge_and_periods_cover_whole_days():
    a = Drill(topics=(2,), dates=(date(2026, 3, 2), date(2026, 3, 8)))
    b = Drill(topics=(1, 2), dates=(date(2026, 3, 9), date(2026, 3, 15)), metadata=(("rating", ("5 stars",)),))
    assert a.merged(b) == Drill(topics=(1, 2), dates=(date(2026, 3, 2), date(2026, 3, 15)),
                                metadata=(("rating", ("5 stars",)),))
    assert filters.period_dates("2026-02-01", "month") == (date(2026, 2, 1), date(2026, 2, 28))
    assert filters.period_dates("2026-03-02", "week") == (date(2026, 3, 2), date(2026, 3, 8))
    points = [{"customdata": [3, "2026-03-02"]}, {"customdata": [5, "2026-03-09"]}, {"x": 1}]
    drill = components.drill_from_points(points, lambda c: Drill(topics=(int(c[0]),),
                                                                 dates=filters.period_dates(c[1], "week")))
    assert drill == Drill(topics=(3, 5), dates=(date(2026, 3, 2), date(2026, 3, 15)))
    assert components.drill_from_points([{"x": 1}], lambda c: Drill()) is None
    assert filters.meta_param("rating") == "rating" and filters.meta_param("topic") == "meta.topic"


@pytest.mark.parametrize("page", PAGES)
def test_an_empty_store_says_how_to_create_a_run(page, monkeypatch, tmp_path):
    monkeypatch.setenv("FEEDBACK_LENS_STORE", str(tmp_path / "store"))
    at = open_app(page)
    assert any("No analysed run to show yet" in i.value and "feedback-lens analyse FILE" in i.value
               and "Or upload a file under **Analyse a new file** on the **Data** page." in i.value
               for i in at.info)


def test_an_empty_store_tells_a_non_admin_that_an_admin_can_upload(monkeypatch, tmp_path):
    # Only an admin sees the upload form (dashboard.upload.section): others are not pointed at a form they lack.
    monkeypatch.setenv("FEEDBACK_LENS_STORE", str(tmp_path / "store"))
    monkeypatch.setattr("dashboard.auth.allowed", lambda action: action != "admin")
    at = open_app("overview")
    shown = [i.value for i in at.info if "No analysed run to show yet" in i.value]
    assert shown and all("An admin can also upload a file under **Analyse a new file** on the **Data** page." in v
                         and "Or upload" not in v for v in shown)


# ------------------------------------------------------------------------------------------ every page


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES)
def test_every_page_shows_the_real_run(page, run_store, run):
    at = open_app(page)
    assert [t.value for t in at.title] == [PAGES[page]]
    assert components.escape_markdown(NOTE) in captions(at)  # the run's note, on every page
    assert "Filters" in [h.value for h in at.sidebar.header]
    if page == "overview":
        assert [m.label for m in at.metric] == ["Messages", "Negative", "Mean sentiment", "Active topics"]
        assert all(m.value not in ("", "–") for m in at.metric)
        assert any(t.startswith("Top topics") for t in chart_titles(at))
        assert "Emerging issues" in [s.value for s in at.subheader]
    elif page == "trends":
        assert "Messages per topic, by month" in chart_titles(at)  # a year of data: months read best
        # The toggles at their own widths and the topics on a row of their own: in columns, "Share of messages"
        # was cut off and only two of five topic chips showed (at 1400 px; checked on a screenshot).
        assert not any(c.get("segmented_control") or c.get("multiselect") for c in at.columns)
        assert len(at.multiselect(key="trends_topics").value) == 5
    elif page == "sentiment":
        assert {"Messages by sentiment", "Sentiment by topic", "Sentiment and volume, by month",
                "Sentiment per topic, by month"} <= set(chart_titles(at))
    elif page == "topics":
        table = at.dataframe[0].value
        assert table["messages"].sum() == len(run.messages)
        assert set(table["label"]) == set(metrics.topic_labels(run.topics).values())
        assert "Map of messages by topic" in chart_titles(at)
        # No "+500%" from 1 message to 6: a percentage only on 10 messages before, as everywhere else.
        assert table.loc[table["previous"] < 10, "change_pct"].isna().all()
        assert table.loc[table["previous"] >= 10, "change_pct"].notna().all()
        # Signed numbers are written with the minus sign, as on the charts; the cells keep their values to sort by.
        written = shown_cells(at.dataframe[0])
        assert table["mean_sentiment"].dtype.kind == "f"
        assert written["mean_sentiment"].tolist() == [charts.format_sentiment(v) for v in table["mean_sentiment"]]
        falls = table["change"] < 0
        assert falls.any() and written.loc[falls, "change"].str.startswith("\u2212").all()
        assert (written["change_pct"] == "–").tolist() == table["change_pct"].isna().tolist()
    elif page == "messages":
        assert shown_messages(at) == len(run.messages)
        assert len(at.get("download_button")) == 1 and at.get("pagination")
    elif page == "runs":
        assert at.metric[0].value == f"{len(run.messages):,}"
        assert "small_reviews.csv" in at.dataframe[0].value.iloc[:, 1].tolist()


@pytest.mark.slow
def test_overview_compares_the_last_30_days_with_the_30_before(run_store, run):
    at = open_app()
    current, previous = metrics.comparison_windows(metrics.last_day(run.messages), 30)
    h = metrics.headline(run.messages, current, previous)
    assert at.metric[0].value == f"{h.messages.current:,.0f}"
    assert at.metric[0].delta.startswith(charts.signed(h.messages.delta, "+,.0f"))
    assert f"{current.label}" in "\n".join(c.value for c in at.caption)


@pytest.mark.slow
def test_a_calendar_month_in_the_date_filter_is_compared_with_the_month_before_as_its_snapshot_is(run_store, run):
    from datetime import timedelta

    from pipelines.snapshot import month_period

    month_end = metrics.last_day(run.messages).replace(day=1) - timedelta(days=1)  # the last complete month
    period = month_period(month_end.year, month_end.month)
    h = metrics.headline(run.messages, period.window, period.previous_window)  # what the snapshot's headline reads
    at = open_app(**{"from": period.first.isoformat(), "to": period.last.isoformat()})
    captions = "\n".join(c.value for c in at.caption)
    assert f"**{period.label}** compared with {period.previous_label}." in captions
    assert at.metric[0].value == f"{h.messages.current:,.0f}"
    assert at.metric[0].delta.startswith(charts.signed(h.messages.delta, "+,.0f"))
    assert f"Biggest movers vs {period.previous_label}" in chart_titles(at)
    # The run's first days: nothing before them, so no change is shown (not "+900" against empty days).
    first = metrics._dates(run.messages).min().date()
    at = open_app(**{"from": first.isoformat(), "to": (first + timedelta(days=6)).isoformat()})
    assert all(m.delta in (None, "") for m in at.metric), [m.delta for m in at.metric]
    assert any("so there is nothing before to compare with" in c.value for c in at.caption)
    at.switch_page("app_pages/sentiment.py").run()
    assert any("cannot be shown: the run's messages start on" in i.value for i in at.info)
    at.switch_page("app_pages/topics.py").run()  # no "+28 (none before)" changes against days without data
    assert any("so there is nothing before to compare with" in c.value for c in at.caption)
    assert at.dataframe[0].value["change"].isna().all()


def test_the_overview_leaves_a_change_that_rounds_to_zero_uncoloured(tmp_path, monkeypatch):
    """The page takes the change as the formatter rounds it (``shown_change``) rather than reading the text it
    wrote: a fall is written with the minus sign, which Streamlit does not read as one."""
    import numpy as np

    from pipelines.store import publish_run
    from tests.test_snapshot import tiny_run

    run = tiny_run()
    m = pd.concat([run.messages.iloc[[0]]] * 20, ignore_index=True)
    m["date"] = [pd.Timestamp("2026-02-10 10:00", tz="UTC")] * 10 + [pd.Timestamp("2026-03-20 10:00", tz="UTC")] * 10
    m["topic"] = [0, 1] * 10
    # Mean sentiment -0.0005 before and +0.0005 now: a change of +0.001 that shows as "0.00".
    m["sentiment"] = [-0.5] * 4 + [0.3325] * 6 + [-0.5] * 5 + [0.501] * 5
    m["sentiment_label"] = np.where(m["sentiment"] < 0, "negative", "positive")
    m["message_id"] = [f"m{i}" for i in range(len(m))]
    store = tmp_path / "store"
    keywords = pd.DataFrame({"topic": [0], "rank": [1], "word": ["late"], "weight": [1.0]})
    publish_run(store, run.id, {"messages": m, "topics": run.topics, "keywords": keywords}, run.manifest)
    monkeypatch.setenv("FEEDBACK_LENS_STORE", str(store))
    at = open_app()
    shown = {x.label: x for x in at.metric}
    grey = type(shown["Messages"].proto).MetricColor.GRAY
    for label in ("Messages", "Mean sentiment", "Active topics"):
        assert shown[label].delta in ("0", "0.00") and shown[label].proto.color == grey, label
    proto = type(shown["Messages"].proto)
    negative = shown["Negative"]  # 40% → 50%: bad news
    assert negative.delta == "+10.0 pts" and negative.proto.color == proto.MetricColor.RED
    assert negative.proto.direction == proto.MetricDirection.UP
    # The other way round, a fall is written with the minus sign, which Streamlit does not read as one: the page
    # sets the arrow and colour itself.
    m["date"] = m["date"].iloc[::-1].to_numpy()
    publish_run(store, "20991231-235959-abcd", {"messages": m, "topics": run.topics, "keywords": keywords}, run.manifest)
    negative = {x.label: x for x in open_app().metric}["Negative"]
    assert negative.delta == "−10.0 pts" and negative.proto.color == proto.MetricColor.GREEN
    assert negative.proto.direction == proto.MetricDirection.DOWN


def test_a_date_range_nobody_set_follows_new_messages_into_an_open_page(tmp_path, monkeypatch):
    """A page open while a week is added: its dates were the run's whole span, not a filter, so the new run's
    messages are counted; a start the user chose stays."""
    from pipelines.store import publish_run
    from tests.test_snapshot import tiny_run

    run = tiny_run()
    store = tmp_path / "store"
    keywords = pd.DataFrame({"topic": [0], "rank": [1], "word": ["late"], "weight": [1.0]})
    publish_run(store, "20261101-000000-aaaa", {"messages": run.messages, "topics": run.topics, "keywords": keywords},
                run.manifest)
    monkeypatch.setenv("FEEDBACK_LENS_STORE", str(store))
    at = open_app()
    assert at.date_input(key=filters.DATES).value == (date(2026, 8, 3), date(2026, 10, 24))
    week = run.messages.iloc[-3:].assign(date=pd.Timestamp("2026-11-03 10:00", tz="UTC"), message_id=["n1", "n2", "n3"])
    publish_run(store, "20261104-000000-bbbb", {"messages": pd.concat([run.messages, week], ignore_index=True),
                                                "topics": run.topics, "keywords": keywords}, run.manifest)
    at.run()
    assert at.date_input(key=filters.DATES).value == (date(2026, 8, 3), date(2026, 11, 3))
    assert not any("Period:" in c.value for c in at.caption)  # no filter: the last 30 days, up to 3 Nov
    at.date_input(key=filters.DATES).set_value((date(2026, 9, 1), date(2026, 11, 3))).run()
    week2 = week.assign(date=pd.Timestamp("2026-11-10 10:00", tz="UTC"), message_id=["o1", "o2", "o3"])
    publish_run(store, "20261111-000000-cccc", {"messages": pd.concat([run.messages, week, week2], ignore_index=True),
                                                "topics": run.topics, "keywords": keywords}, run.manifest)
    at.run()
    assert at.date_input(key=filters.DATES).value == (date(2026, 9, 1), date(2026, 11, 10))


# ------------------------------------------------------------------------------------------------ filters


@pytest.mark.slow
def test_filters_in_the_link_apply_to_the_pages_and_stay_in_the_link(run_store, run):
    topic = int(run.topics["topic"].iloc[0])
    link = {"from": "2026-01-01", "to": "2026-06-30", "topic": str(topic), "sentiment": ["neutral", "positive"],
            "rating": "5 stars"}
    at = open_app("messages", **link)
    f = metrics.MessageFilter(start=date(2026, 1, 1), end=date(2026, 6, 30), topics=(topic,),
                              sentiments=("neutral", "positive"), metadata=(("rating", ("5 stars",)),))
    expected = metrics.filter_messages(run.messages, f)
    assert 0 < shown_messages(at) == len(expected)
    assert at.query_params == link
    assert not at.warning
    at.switch_page("app_pages/topics.py").run()
    assert at.dataframe[0].value["messages"].sum() == len(expected)
    assert at.query_params == link


@pytest.mark.slow
def test_invalid_link_values_are_ignored_with_a_notice(run_store, run):
    at = open_app(topic=["999", str(run.topics["topic"].iloc[0])], sentiment="angry", to="not-a-date",
                  colour="red")
    notice = at.warning[0].value
    for part in ("topic=999", "sentiment=angry", "to=not-a-date", '"colour"'):
        assert part in notice
    assert at.query_params == {"topic": str(run.topics["topic"].iloc[0])}
    at.run()
    assert not at.warning  # said once


@pytest.mark.slow
def test_a_sidebar_filter_narrows_every_page_and_goes_into_the_link(run_store, run):
    at = open_app("messages")
    at.sidebar.pills[0].set_value(["negative"]).run()
    negatives = int((run.messages["sentiment_label"] == "negative").sum())
    assert shown_messages(at) == negatives
    assert at.query_params == {"sentiment": "negative"}
    at.switch_page("app_pages/overview.py").run()
    assert "Filtered to negative" in captions(at)
    at.sidebar.button[0].click().run()  # Clear filters
    assert at.query_params == {}


@pytest.mark.slow
def test_no_matching_messages_is_an_empty_state_not_an_error(run_store, run):
    days = set(run.messages["date"].dt.date)
    quiet = next(d for d in pd.date_range("2026-01-01", "2026-10-30").date if d not in days)
    for page in ("overview", "trends", "sentiment", "topics", "messages"):
        at = open_app(page, **{"from": quiet.isoformat(), "to": quiet.isoformat()})
        assert any("No messages match these filters" in i.value for i in at.info), page
    # Which filter empties the view, and how many messages there are without it (a hint to widen dates that already
    # covered the run helped nobody).
    said = " ".join(i.value for i in at.info)
    assert f"Without the dates, {len(run.messages):,} messages would." in said
    rows = run.messages.assign(rating=run.messages["rating"].astype(str))
    counts = rows.groupby(["topic", "rating"])["sentiment_label"].agg(lambda s: ((s == "negative").sum(), len(s)))
    topic, rating = next(k for k, (neg, n) in counts.items() if neg == 0 and n >= 3 and k[0] >= 0)
    at = open_app(topic=str(topic), sentiment="negative", rating=rating)
    said = " ".join(i.value for i in at.info).replace("\\", "")
    n_rating = int(((rows["topic"] == topic) & (rows["rating"] == rating)).sum())
    assert said.startswith("**No messages match these filters together.**")
    assert f"without the sentiment filter, {n_rating:,} messages would" in said.lower()


@pytest.mark.slow
def test_a_run_without_dates_shows_totals_instead_of_trends(monkeypatch, real_run_store, tmp_path):
    store = tmp_path / "store"
    shutil.copytree(real_run_store / "runs", store / "runs")
    run_dir = next(p for p in (store / "runs").iterdir() if not p.name.startswith("."))
    messages = pd.read_parquet(run_dir / "messages.parquet")
    messages["date"] = pd.Series(pd.NaT, index=messages.index, dtype="datetime64[ns, UTC]")
    messages.to_parquet(run_dir / "messages.parquet", index=False)
    manifest = json.loads((run_dir / "run.json").read_text())
    manifest["date_range"] = {"min": None, "max": None}
    (run_dir / "run.json").write_text(json.dumps(manifest))
    monkeypatch.setenv("FEEDBACK_LENS_STORE", str(store))

    at = open_app("overview", **{"from": "2026-01-01"})
    assert any("no dates" in i.value for i in at.info)
    assert "from= is ignored: this run has no dates." in at.warning[0].value
    assert chart_titles(at) == ["Top topics by messages"]
    negative = (messages["sentiment_label"] == "negative").mean()
    assert [(x.label, x.value) for x in at.metric] == [
        ("Messages", f"{len(messages):,}"), ("Negative", f"{negative:.1%}"),
        ("Mean sentiment", charts.signed(messages['sentiment'].mean())),
        ("Active topics", f"{messages.loc[messages['topic'] >= 0, 'topic'].nunique():,}")]
    assert all(not x.delta for x in at.metric)
    for page, says in (("trends", "no trends"), ("sentiment", "cannot be shown over time"),
                       ("expectations", "gaps cannot be shown over time")):
        assert any(says in i.value for i in open_app(page).info), page
    assert not any("per area, by" in title for title in chart_titles(open_app("expectations")))
    assert "Map of messages by topic" in chart_titles(open_app("topics"))
    listed = open_app("messages")
    assert shown_messages(listed) == len(messages)
    assert listed.selectbox(key="messages_order").options == ["As in the file", "Most negative first",
                                                               "Most positive first"]
    assert not any("Dates and times are in" in c.value for c in listed.caption)


@pytest.mark.slow
def test_messages_keyword_search_pages_and_highlights(run_store, run):
    at = open_app("messages")
    at.text_input(key="messages_query").input("coffee").run()
    expected = metrics.search_messages(run.messages, "coffee")
    assert shown_messages(at) == len(expected) > 0
    assert any("**coffee**" in md.value.lower() for md in at.markdown)
    at.text_input(key="messages_query").input("zzzqqq nothing").run()
    assert any("No message within these filters contains all of" in i.value for i in at.info)


@pytest.mark.slow
def test_messages_semantic_search_finds_meaning_within_the_filters(run_store, run):
    at = open_app("messages", sentiment="positive")
    at.segmented_control(key="messages_mode").set_value("meaning").run()
    at.text_input(key="messages_semantic").input("my puppy loves it").run()
    assert not at.exception, [e.message for e in at.exception]
    head = next(md.value for md in at.markdown if "messages closest in meaning" in md.value)
    assert int(re.match(r"\*\*([\d,]+) ", head).group(1).replace(",", "")) > 0
    cards = [c.value for c in at.caption if "similarity" in c.value]
    sims = [float(re.search(r"similarity (\d)\\?\.(\d\d)", c).expand(r"\1.\2")) for c in cards]
    assert len(sims) == min(20, len(sims)) > 0 and sims == sorted(sims, reverse=True)
    assert all("Positive" in c for c in cards)  # the sentiment filter from the link still applies
    # The top matches are about pets, though few say "puppy".
    texts = [md.value.lower() for md in at.markdown if md.value and "similarity" not in md.value][:40]
    pets = [t for t in texts if any(w in t for w in ("dog", "cat", "pup", "pet"))]
    assert len(pets) >= 10 and sum("puppy" in t for t in texts) < len(pets), texts[:10]


def test_semantic_search_on_a_run_without_embeddings_explains_how_to_enable_it(monkeypatch, real_run_store, tmp_path):
    store = tmp_path / "store"
    shutil.copytree(real_run_store, store)
    for f in (store / "runs").glob("*/embeddings.npy"):
        f.unlink()
    monkeypatch.setenv("FEEDBACK_LENS_STORE", str(store))
    at = open_app("messages")
    at.segmented_control(key="messages_mode").set_value("meaning").run()
    assert any("Analyse the file again to search by meaning" in i.value for i in at.info)
    assert shown_messages(at) == len(load_run(store).messages)


# ---------------------------------------------------------------------------------------------- drill-down


@pytest.mark.slow
def test_a_date_filter_is_the_period_the_figures_compare(run_store, run):
    link = {"from": "2026-09-14", "to": "2026-09-20"}
    at = open_app(**link)
    days = run.messages["date"].dt.strftime("%Y-%m-%d")
    in_week = int(days.between(link["from"], link["to"]).sum())
    assert 0 < in_week < len(days)
    assert at.metric[0].label == "Messages" and at.metric[0].value == f"{in_week:,}"
    assert "the date filter, 14–20 Sep 2026 (7 days)" in captions(at)
    # Monday to Sunday: an ISO week, compared with the week before, as its snapshot is
    assert "**Week 38, 2026 (14–20 Sep 2026)** compared with week 37 (7–13 Sep 2026)." in captions(at)
    assert not at.get("segmented_control") or "overview_days" not in [c.key for c in at.get("segmented_control")]
    for page in ("topics", "trends", "sentiment"):
        at.switch_page(f"app_pages/{page}.py").run()
        assert not at.exception, [e.message for e in at.exception]
        assert "the date filter, 14–20 Sep 2026 (7 days)" in captions(at), page
        assert f"{page}_days" not in [c.key for c in at.get("segmented_control")], page


@pytest.mark.slow
def test_an_emerging_issue_opens_its_messages_and_back_restores_the_view(run_store, run):
    at = open_app(to="2026-09-20")
    at.segmented_control(key="overview_days").set_value(7).run()
    buttons = [b for b in at.button if b.key and b.key.startswith("emerging_")]
    assert buttons, "the planted surge in the week of 14 Sep 2026 should show as an emerging issue"
    topic = int(buttons[0].key.removeprefix("emerging_"))
    count = int(re.search(r"Read ([\d,]+) messages?", buttons[0].label).group(1).replace(",", ""))

    buttons[0].click().run()
    assert [t.value for t in at.title] == ["Messages"]
    assert any("behind your selection on **Overview**" in md.value for md in at.markdown)
    assert shown_messages(at) == count
    assert at.query_params == {"from": "2026-09-14", "to": "2026-09-20", "topic": str(topic)}

    at.button(key="messages_back").click().run()
    assert [t.value for t in at.title] == ["Overview"]
    assert at.query_params == {"to": "2026-09-20"}


# ---------------------------------------------------------------------------------------------- runs


@pytest.mark.slow
def test_the_data_page_switches_to_another_run(monkeypatch, real_run_store, tmp_path):
    store = tmp_path / "store"
    shutil.copytree(real_run_store / "runs", store / "runs")
    shutil.copy(real_run_store / "latest", store / "latest")
    latest = (store / "latest").read_text().strip()
    older = "20250101-000000-0000"
    shutil.copytree(store / "runs" / latest, store / "runs" / older)
    manifest = json.loads((store / "runs" / older / "run.json").read_text())
    (store / "runs" / older / "run.json").write_text(json.dumps({**manifest, "id": older, "note": None}))
    monkeypatch.setenv("FEEDBACK_LENS_STORE", str(store))

    at = open_app("runs")
    assert at.dataframe[1].value["Run"].tolist() == [latest, older]
    at.selectbox(key="runs_choice").set_value(older).run()
    [b for b in at.button if b.label == "Show this run"][0].click().run()
    assert any(f"Showing run **{older}**" in md.value for md in at.markdown)
    assert at.query_params == {"run": older}
    # Shown from elsewhere (the upload box's "Show it"): the box follows, not staying on the run picked before.
    at.session_state[filters.RUN_KEY] = latest
    assert at.run().selectbox(key="runs_choice").value == latest
    at.session_state[filters.RUN_KEY] = older
    at.run()
    assert components.escape_markdown(NOTE) not in captions(at)

    linked = open_app("overview", run=older)
    assert f"Run {older}" in "\n".join(c.value for c in linked.sidebar.caption)
    missing = open_app("overview", run="19990101-000000-dead")
    assert 'run "19990101-000000-dead" does not exist' in missing.warning[0].value


def _fresh_ref():
    """The current run's ref, read afresh (caches cleared) from ``FEEDBACK_LENS_STORE``, and one of its ratings."""
    from dashboard import data

    st.cache_data.clear()
    st.cache_resource.clear()
    ref = data.current_ref()
    return ref, data.info(ref).metadata["rating"][-1]


@pytest.mark.parametrize("stored_previews", [True, False])
def test_the_map_and_filters_read_the_messages_they_stand_for(monkeypatch, real_run_store, tmp_path, stored_previews):
    """Map hovers are the start of each point's text, from the stored previews or (older runs) the texts; the
    filter columns read from the run's file give the masks the loaded messages give."""
    import pyarrow.parquet as pq

    from dashboard import data
    from pipelines import charts

    store = tmp_path / "store"
    shutil.copytree(real_run_store / "runs", store / "runs")
    shutil.copy(real_run_store / "latest", store / "latest")
    path = store / "runs" / (store / "latest").read_text().strip() / "messages.parquet"
    if not stored_previews:  # a run from before previews were stored
        pq.write_table(pq.read_table(path).drop_columns(["preview"]), path)
    monkeypatch.setenv("FEEDBACK_LENS_STORE", str(store))
    full = load_run(store).messages
    ref, rating = _fresh_ref()
    for f in (metrics.MessageFilter(), metrics.MessageFilter(sentiments=("negative",)),
              metrics.MessageFilter(topics=(0,), metadata=(("rating", (rating,)),))):
        points = data.map_points(ref, f)
        expected = full[metrics.filter_mask(full, f)]
        assert 0 < len(points) == min(len(expected), charts.MAP_POINTS)
        assert set(points.index) <= set(expected.index)
        assert points["hover"].tolist() == [charts.hover_safe(t) for t in full.loc[points.index, "text"]]
        assert (data._mask(ref, f) == metrics.filter_mask(full, f)).all()


def test_one_found_message_reads_1_message_and_the_page_says_times_are_utc(run_store, run):
    """ "1 messages · showing 1–1" read wrong; the page also says its days and times are UTC."""
    words = run.messages["text"].str.lower().str.findall(r"\b[a-z]{6,}\b").explode().dropna()
    counts = words.groupby(words.index).first().value_counts()  # per message once: a word in one message only
    once = next(w for w in words.value_counts()[lambda c: c == 1].index if counts.get(w) == 1)
    assert len(metrics.search_messages(run.messages, once)) == 1
    at = open_app("messages")
    at.text_input(key="messages_query").input(once).run()
    assert shown_messages(at) == 1
    assert any(md.value == "**1 message** · showing 1" for md in at.markdown), [md.value for md in at.markdown]
    assert "Dates and times are in UTC" in captions(at)


def test_message_lists_are_the_filtered_searched_messages_in_order(run_store, run):
    from dashboard import data

    full = run.messages
    ref, rating = _fresh_ref()
    orders = {"newest": ("date", False), "oldest": ("date", True), "negative": ("sentiment", True),
              "positive": ("sentiment", False)}
    for f in (metrics.MessageFilter(), metrics.MessageFilter(sentiments=("negative",)),
              metrics.MessageFilter(topics=(0, 1), metadata=(("rating", (rating,)),))):
        for query in ("", "coffee", "not good"):
            wanted = metrics.search_messages(full[metrics.filter_mask(full, f)], query)
            for order, (column, ascending) in orders.items():
                # Missing values last, then the key, ties in run order.
                expected = wanted.sort_values(column, ascending=ascending, na_position="last", kind="stable")
                listed = data.search(ref, f, query, order)
                assert listed.order.tolist() == expected.index.tolist(), (f, query, order)
                assert listed.page(0, 5).index.tolist() == expected.index[:5].tolist()


def test_page_scripts_hold_no_bare_strings_that_streamlit_magic_would_show():
    """Streamlit shows any bare expression in a page script ("magic"): a constant's docstring would appear on the page."""
    import ast

    root = Path(__file__).resolve().parents[1] / "dashboard"
    shown = []
    for script in [root / "app.py", *sorted((root / "app_pages").glob("*.py"))]:
        for node in ast.parse(script.read_text("utf-8")).body[1:]:
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
                shown.append(f"{script.name}:{node.lineno}")
    assert shown == []


def test_a_message_cut_when_analysed_says_so_on_its_card(tmp_path, monkeypatch):
    """A 10,114-character complaint kept its first 10,000: 'Read the whole message' presented them as all of it."""
    from pipelines.store import publish_run
    from tests.test_snapshot import tiny_run

    run = tiny_run()
    m = run.messages.copy()
    m.loc[0, "text"] = ("My loan servicer lost the promissory note. " * 30)[:900]  # cut at the run's 900
    m.loc[1, "text"] = ("The payment was late again this month. " * 20)[:700]  # long, but whole
    manifest = {**run.manifest, "settings": {"max_message_chars": 900}}
    keywords = pd.DataFrame({"topic": [0], "rank": [1], "word": ["late"], "weight": [1.0]})
    publish_run(tmp_path / "store", run.id, {"messages": m, "topics": run.topics, "keywords": keywords}, manifest)
    monkeypatch.setenv("FEEDBACK_LENS_STORE", str(tmp_path / "store"))
    at = open_app("messages")
    labels = [e.label for e in at.expander]
    assert "Read the message as analysed: its first 900 characters (the rest was cut when the file was analysed)" \
        in labels
    assert "Read the whole message (700 characters)" in labels


def test_a_link_whose_dates_are_all_outside_the_run_is_told_so_not_answered_with_its_last_day(tmp_path, monkeypatch):
    """from=2027-01-01&to=2027-02-01 on a run ending 24 Oct 2026 became 24 Oct alone, which read as the answer."""
    from pipelines.store import publish_run
    from tests.test_snapshot import tiny_run

    run = tiny_run()
    keywords = pd.DataFrame({"topic": [0], "rank": [1], "word": ["late"], "weight": [1.0]})
    publish_run(tmp_path / "store", run.id, {"messages": run.messages, "topics": run.topics, "keywords": keywords},
                run.manifest)
    monkeypatch.setenv("FEEDBACK_LENS_STORE", str(tmp_path / "store"))
    at = open_app(**{"from": "2027-01-01", "to": "2027-02-01"})  # the link's notes show on the page it opens
    said = " ".join(w.value for w in at.warning).replace("\\", "")
    assert "the link's dates (1 Jan – 1 Feb 2027) are outside this run's, 3 Aug – 24 Oct 2026; they are ignored." in said
    at.switch_page("app_pages/messages.py").run()
    assert shown_messages(at) == len(run.messages)  # the whole run, said to be so, not one day
    partly = open_app(**{"from": "2026-10-20", "to": "2027-02-01"})  # partly inside: cut to the run
    said = " ".join(w.value for w in partly.warning).replace("\\", "")
    assert "to=2027-02-01 is outside this run's dates; using 24 Oct 2026." in said
    partly.switch_page("app_pages/messages.py").run()
    assert shown_messages(partly) == int((run.messages["date"] >= "2026-10-20").sum())


@pytest.mark.slow
def test_a_pages_own_choices_stay_while_another_page_is_read(run_store, run):
    """A manager sets Trends to weeks with a breakdown by rating and three topics, reads the Sentiment and Messages
    pages, and comes back: Trends is as they left it (Streamlit forgets a widget's value while its page is not drawn,
    so they came back to months and no breakdown). Another run starts afresh."""
    at = open_app("trends")
    topics = run.topics["topic"].tolist()[2:5]
    at.segmented_control(key="trends_granularity").set_value("week")
    at.selectbox(key="trends_breakdown").set_value("rating")
    at.multiselect(key="trends_topics").set_value(topics).run()
    at.switch_page("app_pages/sentiment.py").run()
    at.slider(key="sentiment_rolling").set_value(3).run()
    for page in ("messages", "overview", "trends"):
        at.switch_page(f"app_pages/{page}.py").run()
        assert not at.exception, [e.message for e in at.exception]
    assert at.segmented_control(key="trends_granularity").value == "week"
    assert at.selectbox(key="trends_breakdown").value == "rating"
    assert at.multiselect(key="trends_topics").value == topics
    assert any("by week" in t.lower() for t in chart_titles(at)), chart_titles(at)
    at.switch_page("app_pages/sentiment.py").run()
    assert at.slider(key="sentiment_rolling").value == 3
    # A topic filter that leaves out the topics drawn: the page draws what the filter leaves, without an error.
    at.switch_page("app_pages/overview.py").run()
    at.multiselect(key="filter_topics").set_value([run.topics["topic"].iloc[0]]).run()
    at.switch_page("app_pages/trends.py").run()
    assert not at.exception, [e.message for e in at.exception]

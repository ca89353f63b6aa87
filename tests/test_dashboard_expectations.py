"""The Expectation gaps page through Streamlit's AppTest: on the real run, with filters, and its empty states.

The page runs exactly as served (``dashboard/app.py`` and its router); the store comes from
``FEEDBACK_LENS_STORE``. Tests marked ``slow`` use the real analysed run from ``conftest.py``; the
empty states use tiny stores of real sample reviews written with ``publish_run``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from dashboard import components
from pipelines import expectations as ex
from pipelines.charts import format_count, format_share
from pipelines.store import load_run, publish_run

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "dashboard" / "app.py"
PAGE = "app_pages/expectations.py"
AREA = "expectations_area"
HIGHLIGHT = re.compile(r":orange-background\[\*\*(.+?)\*\*\]")


def open_page(**params: str | list[str]) -> AppTest:
    """Run the app with a link's query parameters and switch to the page; fail on any exception shown."""
    at = AppTest.from_file(str(APP), default_timeout=90)
    at.query_params.update(params)
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def chart_specs(at: AppTest) -> dict[str, dict]:
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    return {s["layout"]["title"]["text"]: s for s in specs}


def metric_values(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def highlighted(at: AppTest) -> list[str]:
    """The highlighted spans of the statement cards, in order."""
    return [m for md in at.markdown for m in HIGHLIGHT.findall(md.value)]


def statements_of(messages: pd.DataFrame, area: str) -> pd.DataFrame:
    on = ex.mention_matrix(messages, [area])[area] & messages["expectation"].astype(bool)
    return messages[on.to_numpy()]


def spans(rows: pd.DataFrame) -> set[str]:
    """The escaped expectation span of each row (per line, as the page shows it)."""
    out = set()
    for text, s, e in zip(rows["text"], rows["expectation_start"], rows["expectation_end"], strict=True):
        out.update(components.escape_markdown(line.strip()) for line in str(text)[s:e].split("\n") if line.strip())
    return out


@pytest.fixture
def run_store(monkeypatch, real_run_store) -> Path:
    monkeypatch.setenv("FEEDBACK_LENS_STORE", str(real_run_store))
    return real_run_store


def tiny_store(path: Path, sample_frame: pd.DataFrame, tags: bool, areas: list | None = None) -> Path:
    """A store with one small run of real sample reviews; with ``tags``, expectation columns (``areas`` given)."""
    n = 12
    rows = sample_frame.head(n)
    messages = pd.DataFrame({
        "message_id": [f"m{i}" for i in range(n)], "text": rows["text"].astype(str).to_numpy(),
        "date": pd.date_range("2026-01-01", periods=n, freq="7D", tz="UTC"), "rating": ["5 stars"] * n,
        "topic": [0] * n, "sentiment": np.linspace(-0.5, 0.8, n), "sentiment_label": ["neutral"] * n,
        "x": np.zeros(n, dtype=np.float32), "y": np.zeros(n, dtype=np.float32),
    })
    manifest = {"counts": {"messages": n, "topics": 1}, "input": {"name": "tiny.csv"},
                "columns": {"metadata": ["rating"]}}
    if tags:
        messages["areas"] = areas if areas is not None else [[] for _ in range(n)]
        messages["expectation"] = False
        messages["expectation_met"] = None
        messages["expectation_sentence"] = None
        messages["expectation_start"] = -1
        messages["expectation_end"] = -1
        messages["expectation_source"] = None
        manifest["expectation_areas"] = [{"key": "speed_of_service", "name": "Speed of service"}]
    topics = pd.DataFrame({"topic": [0], "label": ["snack · taste"], "keywords": [["snack", "taste"]], "size": [n]})
    keywords = pd.DataFrame({"topic": [0], "rank": [1], "word": ["snack"], "weight": [1.0]})
    publish_run(path, "20260101-000000-aaaa", {"messages": messages, "topics": topics, "keywords": keywords},
                manifest)
    return path


# ------------------------------------------------------------------------------------------ pieces


def test_the_highlighted_span_is_escaped_and_only_the_span_is_marked():
    text = "Nice box. I was told [it] would be <b>here</b> by :red[Monday]! **Never** came.\nSigned, me"
    start, end = text.index("I was told"), text.index("!") + 1
    out = components.highlight_span(text, start, end)
    assert HIGHLIGHT.findall(out) == [components.escape_markdown(text[start:end])]
    assert out.startswith("Nice box\\. :orange-background[**I was told \\[it\\]")
    assert out.endswith("\\*\\*Never\\*\\* came\\.  \nSigned\\, me")
    assert re.search(r"(?<!\\)[<>]|(?<!\\):red", out) is None  # no live HTML or colour directive from the text
    assert components.highlight_span(text, -1, -1) == components.escape_markdown(text)
    two_lines = components.highlight_span("First part\nsecond part. Rest", 6, 23)
    assert HIGHLIGHT.findall(two_lines) == ["part", "second part\\."]
    long = "Filler words here. " * 60 + "They promised two days. " + "More filler. " * 60
    shown, s, e = components.excerpt(long, long.index("They"), long.index("days.") + 5)
    assert shown[s:e] == "They promised two days." and shown.startswith("… Filler") and shown.endswith(" …")
    assert len(shown) < len(long)


# ------------------------------------------------------------------------------------------ empty states


def test_an_empty_store_says_how_to_create_a_run(monkeypatch, tmp_path):
    monkeypatch.setenv("FEEDBACK_LENS_STORE", str(tmp_path / "store"))
    at = open_page()
    assert any("No analysed run to show yet" in i.value and "feedback-lens analyse FILE" in i.value for i in at.info)


def test_a_run_without_expectation_tags_asks_to_reanalyse(monkeypatch, tmp_path, sample_frame):
    monkeypatch.setenv("FEEDBACK_LENS_STORE", str(tiny_store(tmp_path / "store", sample_frame, tags=False)))
    at = open_page()
    assert [t.value for t in at.title] == ["Expectation gaps"]
    assert any("re-analyse to see expectation gaps" in i.value.lower() for i in at.info)
    assert not at.get("plotly_chart")


def test_no_mention_of_any_area_is_an_empty_state(monkeypatch, tmp_path, sample_frame):
    monkeypatch.setenv("FEEDBACK_LENS_STORE", str(tiny_store(tmp_path / "store", sample_frame, tags=True)))
    at = open_page()
    assert any("No message within these filters mentions an expectation area" in i.value for i in at.info)
    assert not at.get("plotly_chart")


def test_an_area_with_too_few_messages_is_listed_but_not_placed(monkeypatch, tmp_path, sample_frame):
    areas = [["speed_of_service"]] * 3 + [[]] * 9  # fewer than min_mentions
    monkeypatch.setenv("FEEDBACK_LENS_STORE", str(tiny_store(tmp_path / "store", sample_frame, True, areas)))
    at = open_page()
    specs = chart_specs(at)
    ipa = specs["Which expectations to fix first"]
    assert ipa["layout"]["annotations"][0]["text"] == "No expectation area has enough mentions to place it."
    assert specs["Expectation gaps by area"]["data"][2]["text"] == ["3 (25%)"]
    assert at.selectbox(key=AREA).value == "speed_of_service"
    assert any("No message about this area states an expectation" in i.value for i in at.info)


# ------------------------------------------------------------------------------------------ the real run


@pytest.mark.slow
def test_the_page_shows_the_gaps_of_the_real_run(run_store):
    run = load_run(run_store)
    messages = run.messages
    at = open_page()
    assert [t.value for t in at.title] == ["Expectation gaps"]
    specs = chart_specs(at)
    assert set(specs) == {"Which expectations to fix first", "Expectation gaps by area",
                          "Unmet expectations per area, by month", "Where the expectations came from"}

    # The IPA chart: one bubble per area with enough mentions, in its named quadrant, as the pipeline computes it.
    # The sample's rating has two values, "5 stars" and "1-4 stars": a split, not a scale, so sentiment is measured.
    assert ex.rating_column(messages, ["rating"]) is None
    ipa = ex.ipa_table(ex.area_gap_table(messages, [a["key"] for a in run.manifest["expectation_areas"]],
                                         rating_col=None).query("mentions > 0"))
    ipa = ipa.sort_values("mentions", ascending=False, kind="stable")  # drawn biggest first
    chart = specs["Which expectations to fix first"]
    assert [c[0] for c in chart["data"][0]["customdata"]] == ipa["area"].tolist()
    assert [c[5].lower() for c in chart["data"][0]["customdata"]] == ipa["quadrant"].tolist()
    corners = " ".join(a["text"] for a in chart["layout"]["annotations"])
    assert all(q.upper() in corners for q in ex.QUADRANTS)
    assert "moves the sentiment" in "\n".join(c.value for c in at.caption)

    stated = messages["expectation"].astype(bool)
    unmet = int((messages["expectation_met"] == "unmet").sum())
    assert metric_values(at) == {
        "About an area": format_count(int(ex.mention_matrix(messages).any(axis=1).sum())),
        "Statements": format_count(int(stated.sum())), "Unmet": format_share(unmet / stated.sum())}
    names = {a["key"]: a["name"] for a in run.manifest["expectation_areas"]}
    fix = [names[a] for a in ipa.loc[ipa["quadrant"] == "fix first", "area"]]
    assert any(md.value.startswith("**:red[Fix first]**") and all(components.escape_markdown(f) in md.value
                                                                  for f in fix) for md in at.markdown)

    # Statements of the chosen area, unmet first, with the stated expectation highlighted.
    area = at.selectbox(key=AREA).value
    shown = highlighted(at)
    assert shown and set(shown) <= spans(statements_of(messages, area))
    assert any(":red-badge[:material/close: Unmet]" in md.value for md in at.markdown)

    at.selectbox(key=AREA).set_value("product_quality").run()
    at.segmented_control(key="expectations_shown").set_value("all").run()
    assert not at.exception
    quality = statements_of(messages, "product_quality")
    assert any(f"1–10 of {len(quality)} statements" in c.value for c in at.caption)
    assert set(highlighted(at)) <= spans(quality) and len(highlighted(at)) >= 10
    # Every statement can be read, ten at a time (only the first ten could be).
    assert at.get("pagination")
    pager = next(k for k in at.session_state.keys() if str(k).startswith("expectations_page_"))
    first_page = highlighted(at)
    at.session_state[pager] = 2
    at.run()
    assert any(f"11–20 of {len(quality)} statements" in c.value for c in at.caption)
    assert set(highlighted(at)) <= spans(quality) and not set(highlighted(at)) & set(first_page)
    topics = at.dataframe[0].value
    assert topics["mentions"].sum() == int(ex.mention_matrix(messages, ["product_quality"])["product_quality"].sum())

    at.segmented_control(key="expectations_measure").set_value("mentions").run()
    assert "Messages per area, by month" in chart_specs(at)


@pytest.mark.slow
def test_the_global_filters_in_the_link_apply(run_store):
    messages = load_run(run_store).messages
    five = messages[messages["rating"] == "5 stars"]
    at = open_page(rating="5 stars")
    assert at.query_params["rating"] == "5 stars"  # the filter stays in the link
    assert any("Filtered to" in c.value and components.escape_markdown("rating: 5 stars") in c.value
               for c in at.caption)
    assert metric_values(at)["Statements"] == format_count(int(five["expectation"].sum()))
    # One rating value left: importance falls back to sentiment instead of a constant rating.
    assert "moves the sentiment" in "\n".join(c.value for c in at.caption)
    area = at.selectbox(key=AREA).value
    assert set(highlighted(at)) <= spans(statements_of(five, area))

    days = set(messages["date"].dt.date)
    quiet = next(d for d in pd.date_range("2025-11-01", "2026-10-30").date if d not in days)
    empty = open_page(**{"from": quiet.isoformat(), "to": quiet.isoformat()})
    assert any("No messages match these filters" in i.value for i in empty.info)


def test_a_filter_that_leaves_the_chosen_area_without_statements_moves_to_one_that_has_them(
        monkeypatch, tmp_path, sample_frame):
    """Speed's statements are all negative, pricing's positive: filtered to positive, the picker had stayed on speed
    ('No message about this area states an expectation')."""
    areas = [["speed_of_service"]] * 6 + [["speed_of_service", "fair_pricing"]] * 3 + [["fair_pricing"]] * 3
    store = tiny_store(tmp_path / "store", sample_frame, True, areas)
    run = load_run(store)
    m = run.messages
    m["sentiment_label"] = ["negative"] * 6 + ["positive"] * 6
    m["sentiment"] = [-0.6] * 6 + [0.6] * 6
    m["expectation"] = [True] * 3 + [False] * 6 + [True] * 3
    m["expectation_met"] = ["unmet"] * 3 + [None] * 6 + ["met"] * 3
    m["expectation_start"], m["expectation_end"] = np.where(m["expectation"], 0, -1), np.where(m["expectation"], 10, -1)
    m["expectation_source"] = np.where(m["expectation"], "company", None)
    manifest = {**run.manifest, "expectation_areas": [{"key": "speed_of_service", "name": "Speed of service"},
                                                      {"key": "fair_pricing", "name": "Fair pricing"}]}
    publish_run(tmp_path / "store", "20260102-000000-bbbb", {"messages": m, "topics": run.topics,
                                                             "keywords": run.keywords}, manifest)
    monkeypatch.setenv("FEEDBACK_LENS_STORE", str(store))
    at = open_page()
    at.selectbox(key=AREA).set_value("speed_of_service").run()
    assert at.selectbox(key=AREA).value == "speed_of_service" and not at.info
    at.pills(key="filter_sentiments").set_value(["positive"]).run()
    assert at.selectbox(key=AREA).value == "fair_pricing"  # speed has no positive statement
    at.selectbox(key=AREA).set_value("speed_of_service").run()  # picked under these filters: it stays
    assert at.selectbox(key=AREA).value == "speed_of_service"
    said = " ".join(i.value for i in at.info)
    assert "No message about this area states an expectation. Areas with statements: Fair pricing (3 statements)." in said

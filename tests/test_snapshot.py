"""Snapshots: periods and filters, the report offline in Chromium, the workbook, CSV, images and slides read back,
what changed between two snapshots, idempotency, the CLI and the Snapshots page.

The real path: the real analysed run from ``conftest.py``, copied into a run whose topic labels, messages and
metadata carry hostile text (formulas, tabs, a script tag), then snapshotted twice with real Chromium images.
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import re
import struct
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from pipelines import charts, snapshot
from pipelines.cli import main
from pipelines.errors import InputError
from pipelines.metrics import MessageFilter
from pipelines.settings import SnapshotSettings
from pipelines.snapshot_files import cell_value, escape_formula
from pipelines.store import Run, load_run, new_run_id, publish_run

ROOT = Path(__file__).resolve().parents[1]
HOSTILE_LABEL = '=HYPERLINK("http://evil.example","click")'
HOSTILE_TEXTS = ["  -2+3 is what I paid twice", "\tTAB-led complaint about the order",
                 "@SUM(1+1) never arrived <script>window.pwned = 1</script>"]
HOSTILE_META = "=cmd|' /C calc'!A0"
SHEETS = ["Summary", "Changes", "Topics", "Emerging issues", "Trends", "Sentiment", "Expectation gaps", "Examples"]


# --------------------------------------------------------------------------------------- no run needed


def test_periods_resolve_relative_to_the_last_message_and_name_their_folder():
    sunday, wednesday = date(2026, 3, 29), date(2026, 4, 1)
    assert snapshot.parse_period("last-week", sunday).name == "2026-W13"  # the week that ends that Sunday
    assert snapshot.parse_period("last-week", wednesday).name == "2026-W13"  # the last complete week
    assert snapshot.parse_period("last-month", date(2026, 3, 31)).name == "2026-03"
    assert snapshot.parse_period("last-month", wednesday).name == "2026-03"
    march = snapshot.parse_period("2026-03", None)
    assert (march.first, march.last, march.previous_first, march.previous_last) == (
        date(2026, 3, 1), date(2026, 3, 31), date(2026, 2, 1), date(2026, 2, 28))
    assert march.label == "March 2026" and march.previous_label == "February 2026"
    week = snapshot.parse_period("2026-w9", None)
    assert (week.name, week.first, week.last, week.previous_first) == (
        "2026-W09", date(2026, 2, 23), date(2026, 3, 1), date(2026, 2, 16))
    span = snapshot.parse_period("2026-03-01..2026-03-10", None)
    assert (span.kind, span.days, span.previous_first, span.previous_last) == (
        "range", 10, date(2026, 2, 19), date(2026, 2, 28))


@pytest.mark.parametrize("text", ["yesterday", "2026-13", "2026-W54", "2026-02-30..2026-03-01", "03/2026", ""])
def test_a_bad_period_names_the_value_and_the_accepted_forms(text):
    with pytest.raises(InputError) as info:
        snapshot.parse_period(text, date(2026, 3, 31))
    message = str(info.value)
    assert f'"{text}"' in message
    assert "last-week" in message and "YYYY-MM" in message and "YYYY-Www" in message and "FROM..TO" in message


@pytest.mark.parametrize(("last_day", "name"), [
    (date(2026, 10, 31), "2026-Q3"), (date(2026, 9, 30), "2026-Q3"), (date(2026, 12, 31), "2026-Q4"),
    (date(2026, 2, 3), "2025-Q4"), (date(2026, 1, 1), "2025-Q4"),
])
def test_last_quarter_is_the_last_complete_quarter(last_day, name):
    assert snapshot.parse_period("last-quarter", last_day).name == name


def test_a_quarter_is_compared_with_the_quarter_before_and_trended_by_month(tmp_path, capsys):
    """"--period 2026-Q3" was refused; a range of its days compared with 31 Mar – 30 Jun (17 March messages in)."""
    q3 = snapshot.parse_period("2026-q3", None)
    assert (q3.name, q3.kind, q3.first, q3.last) == ("2026-Q3", "quarter", date(2026, 7, 1), date(2026, 9, 30))
    assert (q3.previous_first, q3.previous_last) == (date(2026, 4, 1), date(2026, 6, 30))
    assert (q3.label, q3.previous_label) == ("Q3 2026 (Jul – Sep 2026)", "Q2 2026 (Apr – Jun 2026)")
    with pytest.raises(InputError, match="there is no quarter 5; quarters go from Q1 to Q4"):
        snapshot.parse_period("2026-Q5", None)
    store, out = tmp_path / "store", tmp_path / "snaps"
    _publish_tiny(store, "20261101-000000-aaaa")
    assert main(["snapshot", "--period", "2026-Q3", "--store", str(store), "--out", str(out), "--no-images"]) == 0
    assert "snapshot 2026-Q3 written to" in capsys.readouterr().out
    made = snapshot.build_snapshot(tiny_run(), q3, settings=SnapshotSettings(images=False))
    trends = _section(made, "trends")
    assert trends.text[0].startswith("The 12 months up to the end of Q3 2026")
    assert set(pd.to_datetime(trends.table["Period"]).dt.day) == {1}  # monthly


@pytest.mark.parametrize(("text", "says"), [
    ("2026-W54", "2026 has weeks W01 to W53."), ("2025-W53", "2025 has weeks W01 to W52."),
    ("2026-13", "there is no month 13; months go from 01 to 12."),
    ("2026-02-30..2026-03-05", "2026-02-30 is not a day of the calendar."),
])
def test_a_period_that_does_not_exist_is_named_in_words_not_pythons(text, says):
    """'(Invalid week: 54)' and '(day is out of range for month)' were Python's words."""
    with pytest.raises(InputError) as info:
        snapshot.parse_period(text, None)
    assert str(info.value).splitlines()[0] == f'--period "{text}": {says}'


def test_a_reversed_range_and_a_run_without_dates_say_what_to_do():
    with pytest.raises(InputError, match="Write the earlier day first: 2026-03-01..2026-03-10"):
        snapshot.parse_period("2026-03-10..2026-03-01", None)
    with pytest.raises(InputError, match="no dates"):
        snapshot.parse_period("last-week", None)


@pytest.mark.parametrize(("value", "escaped"), [
    ('=HYPERLINK("x")', '\'=HYPERLINK("x")'), ("+1", "'+1"), ("-2", "'-2"), ("@SUM(A1)", "'@SUM(A1)"),
    ("  -2+3", "'  -2+3"), ("\tTAB", "'\tTAB"), ("\rCR", "'\rCR"), ("\n =1", "'\n =1"), ("fine - really", "fine - really"),
    ("", ""), ("e=mc2", "e=mc2")])
def test_formula_like_text_is_escaped_and_nothing_else(value, escaped):
    assert escape_formula(value) == escaped


def test_cells_keep_numbers_as_numbers_and_defuse_text():
    assert cell_value(-2) == -2 and cell_value(-0.5) == -0.5 and cell_value(float("nan")) is None
    assert cell_value("-0.5") == "'-0.5"  # text that looks like a negative number stays text, escaped
    assert cell_value("bad\x00byte") == "badbyte"  # XML cannot hold control characters
    assert cell_value(["a", "b"]) == "a, b"
    assert cell_value(pd.Timestamp("2026-03-01 10:00", tz="UTC")).tzinfo is None


def test_periods_in_words_have_no_brackets_inside_brackets():
    assert snapshot.parse_period("2026-W43", None).in_words == "week 43, 2026 (19–25 Oct 2026)"
    assert snapshot.parse_period("2026-W40", None).in_words == "week 40, 2026 (28 Sep – 4 Oct 2026)"
    assert snapshot.parse_period("2026-03", None).in_words == "March 2026"
    assert snapshot.parse_period("2025-12-29..2026-01-04", None).in_words == "29 Dec 2025 – 4 Jan 2026"
    assert snapshot.parse_period("2026-03-05..2026-03-05", None).in_words == "5 Mar 2026"


def _bracket_depth(text: str) -> int:
    depth = deepest = 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        deepest = max(deepest, depth)
    return deepest


def tiny_run(areas: Sequence[str] = ()) -> Run:
    """A small run in memory, no model: topic 0 (2 messages in week 42 of 2026, 3 in week 43, one a week before),
    topic 1 (2 messages, new in week 43), topic 2 (1 message in week 43); each of ``areas`` mentioned by 6 messages
    of week 43, half of their expectations unmet."""
    rows = []

    def add(day, topic, sentiment, mentioned=(), met=None):
        rows.append({"date": pd.Timestamp(day, tz="UTC") + pd.Timedelta(hours=10), "topic": topic,
                     "sentiment": sentiment, "areas": list(mentioned), "expectation": met is not None,
                     "expectation_met": met})

    for day in pd.date_range("2026-08-03", "2026-10-05", freq="7D"):
        add(day, 0, -0.5)
    add("2026-10-13", 0, -0.6)
    add("2026-10-14", 0, -0.4)
    for day in ("2026-10-19", "2026-10-20", "2026-10-21"):
        add(day, 0, -0.7)
    add("2026-10-22", 1, -0.8)
    add("2026-10-23", 1, -0.9)
    add("2026-10-24", 2, -0.3)
    for k, area in enumerate(areas):
        for j in range(6):
            add(f"2026-10-{19 + j}", 0, -0.9 + 0.3 * k + 0.05 * j, [area], "unmet" if j % 2 == 0 else "met")
    m = pd.DataFrame(rows)
    m["sentiment_label"] = np.where(m["sentiment"] < -0.25, "negative", "neutral")
    m["message_id"] = [f"m{i}" for i in range(len(m))]
    m["text"] = [f"Message number {i}." for i in range(len(m))]
    m["x"] = m["y"] = np.zeros(len(m), dtype=np.float32)
    m["expectation_sentence"] = None
    m["expectation_start"] = m["expectation_end"] = -1
    m["expectation_source"] = np.where(m["expectation"], "company", None)
    topics = pd.DataFrame({"topic": [0, 1, 2], "label": ["delivery · late", "refund · money", "app · crash"],
                           "keywords": [["delivery", "late"], ["refund", "money"], ["app", "crash"]], "size": [14, 2, 1]})
    manifest = {"counts": {"messages": len(m), "topics": 3}, "input": {"name": "tiny.csv"}, "columns": {"metadata": []},
                "expectation_areas": [{"key": k, "name": k.title()} for k in ("speed", "price", "policy")]}
    return Run("20261101-000000-aaaa", Path("."), manifest, m, topics, pd.DataFrame())


def _tiny_snapshot(areas: Sequence[str] = ()) -> snapshot.Snapshot:
    return snapshot.build_snapshot(tiny_run(areas), snapshot.parse_period("2026-W43", None),
                                   settings=SnapshotSettings(images=False))


def _section(made: snapshot.Snapshot, key: str) -> snapshot.Section:
    return next(s for s in made.sections if s.key == key)


def test_snapshot_texts_count_in_words_and_titles_nest_no_brackets():
    made = _tiny_snapshot()
    reasons = {issue: reason for issue, reason, _ in _section(made, "examples").quotes}
    assert reasons["delivery · late"].startswith("3 messages, ") and reasons["refund · money"].startswith("2 messages, ")
    assert "app · crash" not in reasons  # one negative message is no issue to quote
    assert _section(made, "top_topics").display.set_index("Topic").at["app · crash", "Messages"] == "1"
    assert _section(made, "top_topics").text[0].startswith("3 topics had messages")
    trends = dict(_section(made, "trends").figures)["trends"].layout.title.text
    assert trends == "Messages per topic, by week: the largest topics of week 43, 2026 (19–25 Oct 2026)"
    titles = [fig.layout.title.text for s in made.sections for _, fig in s.figures]
    assert all(_bracket_depth(t) <= 1 for t in titles), titles
    assert snapshot.day_span(date(2026, 10, 19), date(2026, 10, 25)) == "19–25 Oct 2026"


def test_days_are_written_as_in_the_dashboard():
    """One formatter for a span of days: the snapshot's titles and subtitle, and the comparison windows' labels."""
    made = _tiny_snapshot()
    assert snapshot.day_span is snapshot.metrics.day_span
    assert made.period.window.label == made.period.in_words.split("(")[1].rstrip(")") == "19–25 Oct 2026"
    assert made.period.label == "Week 43, 2026 (19–25 Oct 2026)"
    assert made.period.previous_label == "week 42 (12–18 Oct 2026)"
    assert made.subtitle.startswith("19–25 Oct 2026 · compared with week 42 (12–18 Oct 2026) · ")


def test_periods_are_said_in_months_weeks_and_days():
    """"compared with its last 8 weeks", not "8 periods of 7 days"; a month is compared with months."""
    week = _tiny_snapshot(["speed"])  # the speed messages make topic 0 an emerging issue in week 43
    texts = [line for s in week.sections for line in [*s.text, s.empty or ""]]
    assert not [t for t in texts if "periods of" in t]
    assert _section(week, "emerging_issues").text == [
        "Topics far above their own usual volume, compared with their last 8 weeks."]
    month = snapshot.build_snapshot(tiny_run(), snapshot.parse_period("2026-10", None),
                                    settings=SnapshotSettings(images=False))
    emerging = _section(month, "emerging_issues")
    assert emerging.empty == ("Not enough history to spot emerging issues: they need 3 months before 1–31 Oct 2026, "
                              "with data from the start of each.")  # the run starts on 3 Aug: September only
    assert not [t for s in month.sections for t in [*s.text, s.empty or ""] if "31 days" in t]


def test_the_sentiment_split_adds_up_to_100_percent():
    """5 negative, 5 neutral and 2 positive messages: 41.7% + 41.7% + 16.7% rounded one by one make 101%."""
    run = tiny_run(["speed"])
    m = run.messages
    week = m.index[m["date"] >= pd.Timestamp("2026-10-19", tz="UTC")]
    assert len(week) == 12
    m.loc[week, "sentiment_label"] = ["negative"] * 5 + ["neutral"] * 5 + ["positive"] * 2
    made = snapshot.build_snapshot(run, snapshot.parse_period("2026-W43", None), settings=SnapshotSettings(images=False))
    line = _section(made, "sentiment").text[1]
    assert line == "In Week 43, 2026 (19–25 Oct 2026): 42% negative, 42% neutral, 16% positive."
    assert sum(int(x) for x in re.findall(r"(\d+)%", line)) == 100


def test_the_summary_has_one_unit_per_row_and_numbers_only(tmp_path):
    """summary.csv: Figure, This period, Previous period, Change, Unit; a share as a percentage with its change in
    points, so that no column mixes a fraction with points or numbers with text."""
    from openpyxl import load_workbook

    from pipelines.snapshot_files import csv_bytes, write_xlsx

    made = _tiny_snapshot(["speed"])
    headline = _section(made, "headline")
    rows = list(csv.reader(io.StringIO(csv_bytes(headline.table).decode("utf-8-sig"))))
    assert rows == [["Figure", "This period", "Previous period", "Change", "Unit"],
                    ["Messages", "12", "2", "10", "count"],
                    # 2 messages the week before: too few for a share or a mean to compare with
                    ["Share negative", "100.0", "", "", "percent"],
                    ["Mean sentiment", "-0.729167", "", "", "score"],
                    ["Active topics", "3", "1", "2", "count"]]
    assert set(headline.table["Unit"]) <= set(snapshot.SUMMARY_UNITS)
    write_xlsx(made, tmp_path / "s.xlsx")
    ws = load_workbook(tmp_path / "s.xlsx")["Summary"]
    cells = {r[0].value: r for r in ws.iter_rows() if r[0].value}
    assert [c.value for c in cells["Figure"]] == ["Figure", "This period", "Previous period", "Change", "Unit"]
    share = cells["Share negative"]
    assert (share[1].value, share[1].number_format, share[3].number_format) == (100, '0.0"%"', snapshot.CHANGE_PTS)
    assert cells["Messages"][1].value == 12 and "percent: 0 to 100" in cells["Units"][1].value
    assert cells["Days counted in"][1].value == "UTC"  # as on the dashboard: a reader in another zone knows
    from pipelines.snapshot_files import report_html

    assert "days, weeks and months are counted in UTC" in " ".join(report_html(made).split())


def test_sections_with_nothing_to_show_say_so_in_one_line_in_the_report_and_the_slides(tmp_path):
    """No message (a filter nothing matches), no earlier snapshot: each section says so once, the same way in the
    report and on its slide, instead of an empty chart or table."""
    from pptx import Presentation

    from pipelines.snapshot_files import report_html, write_pptx

    made = snapshot.build_snapshot(tiny_run(["speed"]), snapshot.parse_period("2026-W43", None),
                                   MessageFilter(sentiments=("positive",)), SnapshotSettings(images=False))
    empty = {s.key: s.empty for s in made.sections if s.empty}
    assert set(empty) == {"changes", "top_topics", "movers", "emerging_issues", "trends", "sentiment",
                          "expectation_gaps", "examples"}
    assert empty["changes"] == "Nothing to compare with: there is no earlier snapshot of this kind."
    assert empty["top_topics"] == "No message in week 43, 2026 (19–25 Oct 2026) matches the filters."
    assert empty["emerging_issues"] == ("No emerging issue in week 43, 2026 (19–25 Oct 2026): no topic is far above "
                                        "its usual volume.")
    assert not [s.key for s in made.sections if s.empty and s.figures]  # no empty chart anywhere
    page = report_html(made)
    for line in empty.values():
        assert f'<p class="empty">{html.escape(line)}</p>' in page
    write_pptx(made, tmp_path / "slides.pptx", {})
    slides = [[sh.text_frame.text for sh in s.shapes if sh.has_text_frame] for s in Presentation(tmp_path / "slides.pptx").slides]
    by_title = {texts[0]: texts[1:] for texts in slides[2:]}  # after the title and headline slides
    for s in made.sections:
        if s.empty:
            assert by_title[s.title][0] == s.empty, s.key  # the title, then the one line
    assert len(slides) == 2 + len(empty)  # nothing else: no near-empty slide

    plain = _tiny_snapshot(["speed"])  # messages, an emerging issue, quotes; only "what changed" has nothing yet
    assert [s.key for s in plain.sections if s.empty] == ["changes"]


def test_a_period_without_negative_topics_says_there_is_no_issue_to_quote():
    run = tiny_run()
    run.messages["sentiment_label"] = "neutral"
    made = snapshot.build_snapshot(run, snapshot.parse_period("2026-W43", None), settings=SnapshotSettings(images=False))
    examples = _section(made, "examples")
    assert not examples.quotes and examples.empty == ("No issue to quote: no emerging issue, and no topic with 2 or "
                                                      "more negative messages.")


def test_quotes_under_a_negative_heading_are_negative_and_plain_text():
    run = tiny_run()
    m = run.messages
    late = m.index[(m["topic"] == 0) & (m["date"] >= pd.Timestamp("2026-10-19", tz="UTC"))]
    m.loc[late[0], ["sentiment", "sentiment_label"]] = [0.9, "positive"]  # a glowing review in the topic
    m.loc[late[1], "text"] = 'Late again. <a href="http://www.example.com/gp/B0">Coffee Bean Direct</a> was faster.'
    made = snapshot.build_snapshot(run, snapshot.parse_period("2026-W43", None), settings=SnapshotSettings(images=False))
    quotes = {issue: q for issue, _, q in _section(made, "examples").quotes}
    assert [q.sentiment for q in quotes["delivery · late"]] == [-0.7, -0.7]
    assert "Late again. Coffee Bean Direct was faster." in [q.text for q in quotes["delivery · late"]]
    assert snapshot.quote_text("Nice <b>tea</b>.<br/>I <3 it; <script>x</script>", 400) == \
        "Nice tea. I <3 it; <script>x</script>"  # only formatting tags go: other text stays as written
    assert charts.format_sentiment(-0.001) == "0.00"  # a quote's score, not "−0.00"


def test_an_emerging_issue_of_praise_says_its_tone_beside_its_quotes():
    """Its quotes are the topic's own messages; a reader must not take praise for the problem."""
    run = tiny_run(["speed"])
    m = run.messages
    m.loc[(m["topic"] == 0) & (m["date"] >= pd.Timestamp("2026-10-19", tz="UTC")), ["sentiment", "sentiment_label"]] = \
        [0.6, "positive"]
    made = snapshot.build_snapshot(run, snapshot.parse_period("2026-W43", None), settings=SnapshotSettings(images=False))
    examples = _section(made, "examples")
    issue, reason, quotes = examples.quotes[0]
    assert issue == "delivery · late" and [q.sentiment for q in quotes] == [0.6, 0.6, 0.6]
    assert reason.startswith("Emerging issue: 9 messages") and reason.endswith("0% negative, mean sentiment +0.60.")
    assert "emerge with praise" in examples.text[0]


def test_chart_images_of_a_filtered_snapshot_name_the_filter():
    from pipelines.snapshot_files import image_figures

    period = snapshot.parse_period("2026-W43", None)
    plain = image_figures(snapshot.build_snapshot(tiny_run(), period, settings=SnapshotSettings(images=False)))
    assert not any("Filtered to" in (fig.layout.title.subtitle.text or "") for _, fig in plain)
    negative = snapshot.build_snapshot(tiny_run(), period, MessageFilter(sentiments=("negative",)),
                                       SnapshotSettings(images=False))
    figures = image_figures(negative)
    assert figures and all(fig.layout.title.subtitle.text.startswith("Filtered to negative") for _, fig in figures)


def test_the_report_writes_a_topics_change_as_the_dashboard_does():
    """'+2 (none before)' for a topic without messages in the period before, as on the dashboard's movers chart; '+1' (no
    percentage) from 2 messages before."""
    made = _tiny_snapshot()
    display = _section(made, "top_topics").display.set_index("Topic")
    change = display[f"vs {made.period.previous_label}"]
    assert change.to_dict() == {"delivery · late": "+1", "refund · money": "+2 (none before)", "app · crash": "+1 (none before)"}
    sheet = _section(made, "top_topics").table  # the spreadsheet: no "+50%" on 2 messages before either
    assert sheet["Change"].tolist() == [1, 2, 1] and sheet["Change %"].isna().all()
    run = tiny_run()
    table = snapshot.metrics.topic_table(run.messages, run.topics, made.period.window, made.period.previous_window)
    movers = charts.movers_chart(snapshot.metrics.biggest_movers(run.messages, run.topics, made.period.window,
                                                                 made.period.previous_window, min_messages=1))
    label = {r.label: charts.format_topic_change(r.change, r.change_pct) for r in table.itertuples()}
    assert {a.text for a in movers.layout.annotations} == {label[t] for t in ("delivery · late", "refund · money",
                                                                              "app · crash")}


def test_a_lone_expectation_area_is_not_put_in_a_quadrant():
    """One area sits on the averages of the areas shown, so it would always read "keep it up" (even at -0.8)."""
    gaps = _section(_tiny_snapshot(["speed"] * 2), "expectation_gaps")  # 12 messages: enough to rank, alone
    assert gaps.table["Quadrant"].tolist() == [""]
    assert "too few to compare" in gaps.text[0] and "Fix first" not in gaps.text[0]
    ipa = dict(gaps.figures)["ipa"]
    notes = [a.text for a in ipa.layout.annotations]
    assert notes == [charts.TOO_FEW_AREAS] and not ipa.layout.shapes
    assert ipa.data[0].marker.color == charts.ACCENT and "customdata[5]" not in ipa.data[0].hovertemplate
    three = _section(_tiny_snapshot(["speed", "price", "policy"] * 2), "expectation_gaps")  # 12 messages each
    assert all(q in snapshot.expectations.QUADRANTS for q in three.table["Quadrant"])
    assert "KEEP IT UP" in " ".join(a.text for a in dict(three.figures)["ipa"].layout.annotations)


def test_an_area_of_one_message_reads_not_ranked_as_the_note_says():
    """An area without a performance (one mention) is not in the chart's table: its Quadrant cell was blank."""
    run = tiny_run(["speed", "price", "policy"] * 2)
    run.manifest["expectation_areas"].append({"key": "digital", "name": "Digital"})
    run.messages.at[run.messages.index[-1], "areas"] = ["policy", "digital"]
    made = snapshot.build_snapshot(run, snapshot.parse_period("2026-W43", None), settings=SnapshotSettings(images=False))
    table = _section(made, "expectation_gaps").table.set_index("Expectation area")
    assert table.loc["Digital", "Quadrant"] == snapshot.NOT_RANKED and table.loc["Digital", "Messages"] == 1
    assert all(q in snapshot.expectations.QUADRANTS for q in table.drop("Digital")["Quadrant"])


def test_an_unmet_share_on_few_statements_reads_as_counts_and_small_areas_are_not_ranked(tmp_path):
    """Three areas of 6 messages (3 of 6 statements unmet): no "50%", no "fix first" in the report, the slides or the
    spreadsheet, and the small print says why; with 12 messages and statements each, shares and quadrants are back."""
    from openpyxl import load_workbook
    from pptx import Presentation

    from pipelines.snapshot_files import report_html, write_pptx, write_xlsx

    small = _tiny_snapshot(["speed", "price", "policy"])
    gaps = _section(small, "expectation_gaps")
    assert gaps.display["Unmet expectations"].tolist() == ["3 of 6 statements unmet"] * 3
    assert gaps.display["Quadrant"].tolist() == [snapshot.NOT_RANKED] * 3
    assert gaps.text[0] == "No expectation area stands out as 'fix first'."
    assert gaps.text[2].startswith("Areas mentioned in fewer than 10 messages are 'not ranked', never named 'fix first'")
    page = report_html(small)
    table = page[page.index('<section id="expectation_gaps"'):]
    table = table[table.index("<table>"):table.index("</table>")]
    assert table.count("<td>3 of 6 statements unmet</td>") == 3 and "%" not in table and "fix first" not in table
    write_pptx(small, tmp_path / "slides.pptx", {})
    slides = [" | ".join(sh.text_frame.text if sh.has_text_frame else " | ".join(c.text for c in sh.table.iter_cells())
                         for sh in s.shapes if sh.has_text_frame or sh.has_table)
              for s in Presentation(tmp_path / "slides.pptx").slides]
    slide = next(s for s in slides if s.startswith("Expectation gaps"))
    assert "Speed | 6 | 3 of 6 statements unmet | not ranked" in slide and "Fix first:" not in slide
    write_xlsx(small, tmp_path / "small.xlsx")
    rows = {r[0].value: r for r in load_workbook(tmp_path / "small.xlsx")["Expectation gaps"].iter_rows()}
    header = [c.value for c in rows["Expectation area"]]
    speed = {h: c for h, c in zip(header, rows["Speed"], strict=False)}
    assert (speed["Unmet"].value, speed["Expectation statements"].value, speed["Unmet rate (%)"].value) == (3, 6, None)
    assert speed["Quadrant"].value == "not ranked" and "fewer than 10 statements" in rows["Unmet rate"][1].value

    enough = _section(_tiny_snapshot(["speed", "price", "policy"] * 2), "expectation_gaps")
    assert enough.display["Unmet expectations"].tolist() == ["50% unmet (6 of 12 statements)"] * 3
    fix = enough.table.loc[enough.table["Quadrant"] == "fix first", "Expectation area"].tolist()
    assert enough.text[0] == (f"Fix first: {', '.join(fix)}." if fix else "No expectation area stands out as 'fix first'.")
    assert enough.table["Unmet rate"].tolist() == [0.5] * 3


def test_metadata_values_read_as_on_the_dashboard(tmp_path):
    """A rating stored as 1.0 reads "1" in the quotes' meta lines (report and slides), the CSV and the filter words."""
    from pptx import Presentation

    from pipelines.snapshot_files import csv_bytes, report_html, write_pptx

    run = tiny_run()
    run.messages["rating"] = np.where(run.messages["topic"] == 1, 1.0, 4.5)
    run.manifest["columns"]["metadata"] = ["rating"]
    f = MessageFilter(metadata=(("rating", (1.0,)),))
    assert snapshot.filter_words(f, {}) == ["rating: 1"]
    # A topic's name is quoted: its keywords are joined with "·", and "negative" after them read as a fourth one.
    both = MessageFilter(topics=(3, 1), sentiments=("negative",), metadata=(("rating", (1.0,)),))
    labels = {1: "tea · green · black", 3: "a very long topic name · with many · keywords in it"}
    assert snapshot.filter_words(both, labels) == ["topics “tea · green · black”, “a very long topic name · with many · "
                                                   "keywords in it”", "negative", "rating: 1"]
    assert snapshot.filter_words(MessageFilter(topics=(1,)), labels, longest=12)[0].startswith("topic “tea · green")
    made = snapshot.build_snapshot(run, snapshot.parse_period("2026-W43", None), settings=SnapshotSettings(images=False))
    quotes = {issue: q for issue, _, q in _section(made, "examples").quotes}
    assert [q.metadata for q in quotes["refund · money"]] == [{"rating": "1"}] * 2
    assert "· rating: 1 · message" in report_html(made) and "rating: 1.0" not in report_html(made)
    examples = list(csv.DictReader(io.StringIO(csv_bytes(_section(made, "examples").table).decode("utf-8-sig"))))
    assert {r["rating"] for r in examples} == {"1", "4.5"}
    write_pptx(made, tmp_path / "slides.pptx", {})
    texts = [sh.text_frame.text for s in Presentation(tmp_path / "slides.pptx").slides for sh in s.shapes
             if sh.has_text_frame]
    assert any("· rating: 1 · sentiment" in t for t in texts) and not any("rating: 1.0" in t for t in texts)


def test_dates_without_times_are_written_as_days_in_the_workbook(tmp_path):
    """Messages with only a day: the Examples sheet shows 2026-10-22, not 2026-10-22 00:00; with times, the time."""
    from openpyxl import load_workbook

    from pipelines.snapshot_files import write_xlsx

    def date_cell(run: Run, name: str):
        made = snapshot.build_snapshot(run, snapshot.parse_period("2026-W43", None), settings=SnapshotSettings(images=False))
        write_xlsx(made, tmp_path / name)
        ws = load_workbook(tmp_path / name)["Examples"]
        return ws.cell(2, [c.value for c in ws[1]].index("Date") + 1)

    days = tiny_run()
    days.messages["date"] = days.messages["date"].dt.normalize()
    cell = date_cell(days, "days.xlsx")
    assert (cell.is_date, cell.number_format, cell.value.hour) == (True, snapshot.DAY, 0)
    cell = date_cell(tiny_run(), "times.xlsx")  # 10:00 each
    assert (cell.number_format, cell.value.hour) == (snapshot.DATETIME, 10)


def test_snapshots_go_into_the_store_unless_a_folder_is_chosen(tmp_path, monkeypatch):
    monkeypatch.delenv("FEEDBACK_LENS_SNAPSHOTS", raising=False)
    monkeypatch.chdir(tmp_path)
    assert snapshot.snapshot_folder("store") == tmp_path / "store" / "snapshots"  # absolute, from the store
    assert snapshot.snapshot_folder("store", "mine") == tmp_path / "mine"
    assert snapshot.snapshot_folder("store", settings=SnapshotSettings(out_dir=Path("/srv/x"))) == Path("/srv/x")
    monkeypatch.setenv("FEEDBACK_LENS_SNAPSHOTS", "/srv/reports")
    assert snapshot.snapshot_folder("store") == Path("/srv/reports")
    assert snapshot.snapshot_folder("store", tmp_path / "out") == tmp_path / "out"


def test_the_command_line_and_the_page_share_the_store_folder_by_default(tmp_path, monkeypatch, capsys):
    """A snapshot made by the CLI from another folder lands in <store>/snapshots, where the Snapshots page looks."""
    from streamlit.testing.v1 import AppTest

    run = tiny_run()
    store = tmp_path / "store"
    publish_run(store, run.id, {"messages": run.messages, "topics": run.topics,
                                "keywords": pd.DataFrame({"topic": [0], "rank": [1], "word": ["late"], "weight": [1.0]})},
                run.manifest)
    monkeypatch.delenv("FEEDBACK_LENS_SNAPSHOTS", raising=False)
    monkeypatch.setenv("FEEDBACK_LENS_STORE", str(store))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    def page() -> AppTest:
        at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=120)
        at.run()
        at.switch_page("app_pages/snapshots.py").run()
        assert not at.exception, [e.message for e in at.exception]
        return at

    assert any(f"No snapshots in `{store / 'snapshots'}` yet." in i.value for i in page().info)
    assert main(["snapshot", "--period", "2026-W43", "--store", str(store), "--no-images"]) == 0
    assert f"written to {store / 'snapshots' / '2026-W43'} " in capsys.readouterr().out
    assert list(elsewhere.iterdir()) == []
    at = page()
    listed = at.dataframe[0].value
    assert listed["Folder"].tolist() == ["2026-W43"]
    assert re.fullmatch(r"\d{1,2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2} UTC", listed["Made"][0])  # '6 Dec 2026, 15:28 UTC'
    assert [b.label for b in at.get("download_button")] == ["Report", "Spreadsheet", "Slides", "Everything (ZIP)"]


def _summary(topics, messages=100, negative=0.2, sentiment=0.3, areas=()):
    return {"messages": messages, "share_negative": negative, "mean_sentiment": sentiment,
            "topics": [{"label": label, "keywords": kw, "messages": n, "share": n / messages, "mean_sentiment": s}
                       for label, kw, n, s in topics], "areas": list(areas)}


def test_what_changed_between_two_known_summaries():
    before = _summary([("refund · money", ["refund", "money", "back"], 30, -0.5),
                       ("delivery · late", ["delivery", "late", "days"], 20, -0.2),
                       ("coupon · code", ["coupon", "code"], 10, 0.1),
                       ("tiny · topic", ["tiny"], 2, 0.0)],
                      areas=[{"area": "speed", "name": "Speed of service", "mentions": 40, "unmet_rate": 0.25,
                              "mean_sentiment": -0.1}])
    # "delivery · slow" is the same topic re-labelled by a new run (shared keywords); "app · crash" is new.
    now = _summary([("refund · money", ["refund", "money", "back"], 10, 0.2),
                    ("delivery · slow", ["delivery", "slow", "days"], 40, -0.3),
                    ("app · crash", ["app", "crash"], 25, -0.8)], messages=100, negative=0.3, sentiment=0.1,
                   areas=[{"area": "speed", "name": "Speed of service", "mentions": 50, "unmet_rate": 0.5,
                           "mean_sentiment": -0.3}])
    c = snapshot.compare(before, now, min_messages=5)
    assert c.new["topic"].tolist() == ["app · crash"]
    assert c.vanished["topic"].tolist() == ["coupon · code"]  # "tiny · topic" has too few messages to matter
    assert c.rises["topic"].tolist() == ["delivery · slow"] and c.rises["share_change"].round(2).tolist() == [0.2]
    assert c.falls["topic"].tolist() == ["refund · money"] and c.falls["share_change"].round(2).tolist() == [-0.2]
    assert c.sentiment["topic"].tolist() == ["refund · money", "delivery · slow"]
    assert c.sentiment["sentiment_change"].round(2).tolist() == [0.7, -0.1]
    assert c.gaps["unmet_change"].round(2).tolist() == [0.25]
    few = [{**now["areas"][0], "statements": 3}]  # 0% → 100% of a few statements is no news
    assert snapshot.compare({**before, "areas": [{**before["areas"][0], "statements": 40}]},
                            {**now, "areas": few}).gaps.empty
    assert c.overall["messages"] == (100, 100) and c.overall["share_negative"] == (0.2, 0.3)
    # A mean of 7 messages against one of 5 swings by itself: no sentiment shift below 10 on either side.
    small = snapshot.compare(_summary([("crackers · thins", ["crackers", "thins"], 5, 0.83)]),
                             _summary([("crackers · thins", ["crackers", "thins"], 7, 0.22)]), min_messages=5)
    assert small.sentiment.empty


def test_a_rise_or_fall_in_share_against_the_counts_is_neither():
    """Of 100 messages then 400: a topic going 10 → 20 lost share (10% → 5%) while its messages doubled, and one going
    40 → 120 did the same; listed as falls they read as the opposite of the counts beside them."""
    before = _summary([("refund · money", ["refund", "money"], 10, -0.5), ("delivery · late", ["delivery", "late"], 40, -0.2),
                       ("coupon · code", ["coupon", "code"], 50, 0.1)], messages=100)
    now = _summary([("refund · money", ["refund", "money"], 20, -0.5), ("delivery · late", ["delivery", "late"], 120, -0.2),
                    ("coupon · code", ["coupon", "code"], 260, 0.1)], messages=400)
    c = snapshot.compare(before, now, min_messages=5)
    assert c.falls.empty and c.rises["topic"].tolist() == ["coupon · code"]
    # Per day, not per period: 31 messages in a 31-day month and 30 in a 30-day one are the same rate, no fall.
    same = snapshot.compare(_summary([("a · b", ["a", "b"], 31, 0.0), ("c · d", ["c", "d"], 69, 0.0)]),
                            _summary([("a · b", ["a", "b"], 30, 0.0), ("c · d", ["c", "d"], 60, 0.0)], messages=90),
                            min_messages=5, days=(31, 30))
    assert same.rises["topic"].tolist() == [] and same.falls["topic"].tolist() == ["c · d"]


def test_what_changed_compares_like_with_like_and_says_when_a_period_was_skipped(tmp_path, capsys):
    """A 15-day range was compared with a quarter (1,631 → 212 messages), and August with June without a word."""
    store, out = tmp_path / "store", tmp_path / "snaps"
    _publish_tiny(store, "20261101-000000-aaaa")
    for period in ("2026-08-01..2026-09-30", "2026-10-01..2026-10-15", "2026-08", "2026-10"):
        assert main(["snapshot", "--period", period, "--store", str(store), "--out", str(out), "--no-images"]) == 0
    capsys.readouterr()
    made = {m["name"]: m for m in snapshot.list_snapshots(out)}
    assert made["2026-10-01..2026-10-15"]["previous_snapshot"] is None  # 15 days against 61: not of a kind
    assert made["2026-10"]["previous_snapshot"] == "2026-08"
    report = (out / "2026-10" / "report.html").read_text()
    assert "That is not the period just before this one: 30 days lie between them" in report
    assert "That is not the period just before" not in (out / "2026-08" / "report.html").read_text()

def snapshot_csv_lines(made: snapshot.Snapshot, folder: Path) -> list[str]:
    from pipelines.snapshot_files import write_csv

    write_csv(made, folder)
    return (folder / "csv" / "changes.csv").read_text(encoding="utf-8-sig").splitlines()


def test_the_changes_sheet_shows_shares_as_percentages_and_differences_in_points(tmp_path):
    """Before and Now of a share are fractions shown as 37.5%, its Difference points shown as +5.6 pts: read alike."""
    from openpyxl import load_workbook

    from pipelines.snapshot_files import write_xlsx

    made = _tiny_snapshot()
    previous = {"name": "2026-W42", "period": {"label": "Week 42, 2026"}, "run": {"id": "r0"},
                "summary": _summary([("delivery · late", ["delivery", "late"], 3, -0.5)], messages=8, negative=0.375,
                                    sentiment=-0.5)}
    made.sections[1] = snapshot.changes_section(previous, made.summary, made.period, made.settings)
    display = _section(made, "changes").display.set_index("What")
    assert display.loc["Share negative"].tolist()[1:] == ["37.5%", "100.0%", "+62.5 pts"]
    write_xlsx(made, tmp_path / "s.xlsx")
    rows = {r[1].value: r for r in load_workbook(tmp_path / "s.xlsx")["Changes"].iter_rows()}
    before, now, difference = rows["Share negative"][2:5]
    assert (before.value, before.number_format, now.value, now.number_format) == (37.5, '0.0"%"', 100.0, '0.0"%"')
    assert rows["Share negative"][5].value == "percent" and rows["Messages"][5].value == "count"
    csv = snapshot_csv_lines(made, tmp_path)
    assert "Overall,Messages,8,6,-2,count" in csv  # whole numbers, not 8.0
    assert (difference.value, difference.number_format) == (62.5, '+0.0" pts";-0.0" pts";0.0" pts"')
    messages = rows["Messages"][2:5]
    assert [c.number_format for c in messages] == ["#,##0", "#,##0", "+#,##0;-#,##0;0"]


def _publish_tiny(store: Path, run_id: str, extra: Sequence[str] = ()) -> None:
    """Publish the tiny run as ``run_id``, with one more message of topic 0 on each of the ``extra`` days."""
    run = tiny_run()
    messages = run.messages
    if extra:
        more = messages.iloc[[0] * len(extra)].copy()
        more["date"] = [pd.Timestamp(day, tz="UTC") + pd.Timedelta(hours=9) for day in extra]
        more["message_id"] = [f"{run_id}-{i}" for i in range(len(extra))]
        more["text"] = [f"A later message {i}." for i in range(len(extra))]
        messages = pd.concat([messages, more], ignore_index=True)
    publish_run(store, run_id, {"messages": messages, "topics": run.topics,
                                "keywords": pd.DataFrame({"topic": [0], "rank": [1], "word": ["late"], "weight": [1.0]})},
                run.manifest)


def test_a_snapshot_from_another_run_keeps_the_earlier_one_beside_it(tmp_path, capsys):
    """Re-making a period from the same run replaces its snapshot; from a newer run, the earlier one stays where it was
    (its folder, its files, its index entry), the new one is written beside it, and the log line says so."""
    store, out = tmp_path / "store", tmp_path / "snaps"
    first_run, second_run = "20261101-000000-aaaa", "20261102-000000-bbbb"
    common = ["--store", str(store), "--out", str(out), "--no-images"]

    def make(*args: str) -> str:
        assert main(["snapshot", *args, *common]) == 0
        lines = capsys.readouterr().out.strip().splitlines()
        assert len(lines) == 1
        return lines[0]

    def index() -> dict[str, dict]:
        return {e["name"]: e for e in json.loads((out / "index.json").read_text())["snapshots"]}

    _publish_tiny(store, first_run)
    make("--period", "2026-W42")
    line = make("--period", "2026-W43")
    assert "kept" not in line
    assert "kept" not in make("--period", "2026-W43")  # a retried job: the same run replaces its own
    sent = {p.relative_to(out / "2026-W43"): _sha(p) for p in (out / "2026-W43").rglob("*") if p.is_file()}
    assert sorted(index()) == ["2026-W42", "2026-W43"]

    _publish_tiny(store, second_run, ["2026-10-20", "2026-10-27"])  # one more message in week 43, one in week 44
    newer = f"2026-W43--run-{second_run}"
    line = make("--period", "2026-W43")
    assert f"snapshot {newer} written to {out / newer} " in line
    week = snapshot.parse_period("2026-W43", None).label
    assert line.endswith(f"; the earlier snapshot of {week} from run {first_run} is kept in "
                         f"{out / '2026-W43'}")
    # The snapshot already sent is untouched, file for file, and both are listed.
    kept = {p.relative_to(out / "2026-W43"): _sha(p) for p in (out / "2026-W43").rglob("*") if p.is_file()}
    assert kept == sent
    listed = index()
    assert sorted(listed) == ["2026-W42", "2026-W43", newer]
    assert (listed["2026-W43"]["run_id"], listed[newer]["run_id"]) == (first_run, second_run)
    assert listed[newer]["counts"]["messages_in_period"] == listed["2026-W43"]["counts"]["messages_in_period"] + 1
    assert [m["name"] for m in snapshot.list_snapshots(out)][:2] == [newer, "2026-W43"]  # the latest made first
    # Each compares with the week before, never with its sibling of the same week.
    manifests = {m["name"]: m for m in snapshot.list_snapshots(out)}
    assert manifests[newer]["previous_snapshot"] == manifests["2026-W43"]["previous_snapshot"] == "2026-W42"
    assert f"Snapshot {newer} of run {second_run}" in (out / newer / "report.html").read_text()

    assert "kept in" in make("--period", "2026-W43")  # the newer run again: replaces its own, no third copy
    assert sorted(index()) == ["2026-W42", "2026-W43", newer]
    # The next week compares with the latest snapshot of week 43: the newer run's.
    make("--period", "2026-W44")
    assert snapshot.list_snapshots(out)[0]["previous_snapshot"] == newer

    # Made again from the first run, the plain folder is that run's to replace; the newer run's stays.
    line = make("--period", "2026-W43", "--run", first_run)
    assert f"snapshot 2026-W43 written to {out / '2026-W43'} " in line
    assert line.endswith(f"from run {second_run} is kept in {out / newer}")
    assert sorted(index()) == sorted(["2026-W42", "2026-W43", "2026-W44", newer])

    # Filtered snapshots follow the same rule, their run tag after the filter's.
    filtered = make("--period", "2026-W43", "--filter", "sentiment=negative", "--run", first_run)
    name = re.search(r" snapshot (\S+) written", filtered).group(1)
    assert name.startswith("2026-W43--negative-") and "kept" not in filtered
    line = make("--period", "2026-W43", "--filter", "sentiment=negative")
    assert f"snapshot {name}--run-{second_run} written" in line
    assert line.endswith(f"of {week}, filtered to negative, from run {first_run} is kept in {out / name}")
    assert len(index()) == 6


def test_a_snapshot_of_another_run_is_never_replaced_even_in_a_race(tmp_path):
    """Two writers that both chose the plain folder for different runs: the second is refused, the first kept."""
    store, out = tmp_path / "store", tmp_path / "snaps"
    _publish_tiny(store, "20261101-000000-aaaa")
    settings = SnapshotSettings(images=False)
    first = snapshot.make_snapshot(store, out, "2026-W43", settings=settings)
    _publish_tiny(store, "20261102-000000-bbbb", ["2026-10-20"])
    late = snapshot.build_snapshot(load_run(store), snapshot.parse_period("2026-W43", None), settings=settings)
    assert late.name == first.name  # chosen before the first one was written
    with pytest.raises(snapshot.SnapshotError, match="is kept and this one was not written"):
        snapshot.publish(late, out)
    assert [m["run"]["id"] for m in snapshot.list_snapshots(out)] == ["20261101-000000-aaaa"]
    assert not [p.name for p in out.iterdir() if p.name.startswith((".tmp-", ".old-"))]
    again = snapshot.make_snapshot(store, out, "2026-W43", settings=settings)
    assert again.name == "2026-W43--run-20261102-000000-bbbb" and [k["name"] for k in again.kept] == [first.name]



def test_the_snapshots_page_lists_both_and_says_the_earlier_one_is_kept(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    store, out = tmp_path / "store", tmp_path / "snaps"
    _publish_tiny(store, "20261101-000000-aaaa")
    snapshot.make_snapshot(store, out, "2026-W43", settings=SnapshotSettings(images=False))
    _publish_tiny(store, "20261102-000000-bbbb", ["2026-10-20", "2026-10-27"])  # its last week is week 43
    monkeypatch.setenv("FEEDBACK_LENS_STORE", str(store))
    monkeypatch.setenv("FEEDBACK_LENS_SNAPSHOTS", str(out))
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("app_pages/snapshots.py").run()
    at.segmented_control(key="snapshots_period").set_value("last-week").run()
    next(b for b in at.button if b.label == "Export this view").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    newer = "2026-W43--run-20261102-000000-bbbb"
    done = " ".join(s.value for s in at.success).replace("\\", "")
    assert f"Snapshot **{newer}** is ready below. The earlier snapshot of " in done
    assert f"from run 20261101-000000-aaaa is kept in {out / '2026-W43'}." in done
    listed = at.dataframe[0].value
    assert listed["Folder"].tolist() == [newer, "2026-W43"]  # the latest made first
    assert listed["Run"].tolist() == ["20261102-000000-bbbb", "20261101-000000-aaaa"]


# --------------------------------------------------------------------------------------- the real path


@pytest.fixture(scope="module")
def hostile_store(real_run_store, tmp_path_factory) -> Path:
    """A copy of the real run whose largest topic, some of its messages and a metadata column are hostile."""
    run = load_run(real_run_store)
    messages, topics = run.messages.copy(), run.topics.copy()
    last = snapshot.parse_period("last-month", messages["date"].max().date())
    in_last = last.window.contains(messages["date"])
    # An emerging issue, whatever the run's topics: 12 of last month's messages move to the topic that was
    # quietest before it, so that the Emerging issues sheet is made (and escaped) too.
    before = messages.loc[messages["date"] < last.window.start, "topic"]
    spike = int(min(topics["topic"], key=lambda t: ((before == t).sum(), t)))
    messages.loc[messages[in_last & (messages["topic"] != spike)].index[:12], "topic"] = spike
    # The largest topic of the last month: the first row of that snapshot's Topics sheet and CSV.
    counts = messages.loc[in_last & (messages["topic"] >= 0), "topic"].value_counts()
    top = int(min(counts.index, key=lambda t: (-counts[t], t)))
    topics.loc[topics["topic"] == top, "label"] = HOSTILE_LABEL
    in_month = messages[(messages["topic"] == top) & in_last].index[:len(HOSTILE_TEXTS)]
    assert len(in_month) == len(HOSTILE_TEXTS), "the largest topic needs messages in the last month"
    messages.loc[in_month, "text"] = HOSTILE_TEXTS
    messages.loc[in_month, "sentiment"] = -0.99
    messages.loc[in_month, "sentiment_label"] = "negative"
    messages["=region"] = "north"
    messages.loc[in_month, "=region"] = HOSTILE_META
    manifest = {**run.manifest}
    manifest["columns"] = {**manifest["columns"], "metadata": [*manifest["columns"]["metadata"], "=region"]}
    store = tmp_path_factory.mktemp("hostile_store")
    publish_run(store, new_run_id(), {"messages": messages, "topics": topics, "keywords": run.keywords}, manifest)
    return store


@pytest.fixture(scope="module")
def made(hostile_store, tmp_path_factory) -> dict:
    """Two monthly snapshots (the month before last, then last month) of the hostile run, with real images."""
    from tests.test_e2e_browser import chromium_path

    chromium_path()  # kaleido draws the images in it: skip (fail on CI) with how to install it when missing
    out = tmp_path_factory.mktemp("snapshots")
    first = snapshot.make_snapshot(hostile_store, out, _month_before_last(hostile_store))
    second = snapshot.make_snapshot(hostile_store, out, "last-month")
    return {"out": out, "first": first, "second": second}


def _month_before_last(store: Path) -> str:
    last = snapshot.parse_period("last-month", load_run(store).messages["date"].max().date())
    return f"{last.previous_first:%Y-%m}"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_a_snapshot_holds_every_file_with_its_hash(made, hostile_store):
    m, folder = made["second"].manifest, made["second"].path
    names = {f["path"] for f in m["files"]}
    assert {"report.html", "snapshot.xlsx", "slides.pptx"} <= names
    assert {f"csv/{s.lower().replace(' ', '_')}.csv" for s in SHEETS} <= names
    assert {"charts/top_topics.png", "charts/movers.png", "charts/trends.png", "charts/sentiment.png",
            "charts/sentiment_by_topic.png", "charts/ipa.png", "charts/gaps.png"} <= names
    for f in m["files"]:
        assert _sha(folder / f["path"]) == f["sha256"] and (folder / f["path"]).stat().st_size == f["bytes"]
    assert m["period"]["name"] == folder.name == made["second"].name
    assert m["run"]["id"] == load_run(hostile_store).id
    assert m["settings"] == SnapshotSettings().to_dict() and m["filters"] == {"topics": [], "sentiments": [],
                                                                              "metadata": {}}
    assert m["counts"]["messages_in_period"] > 0 and pd.Timestamp(m["created"]).tzinfo is not None
    index = json.loads((made["out"] / "index.json").read_text())
    assert [s["name"] for s in index["snapshots"]] == [made["second"].name, made["first"].name]
    assert not [p for p in made["out"].iterdir() if p.name.startswith((".tmp-", ".old-"))]


@pytest.mark.slow
@pytest.mark.browser
def test_the_report_renders_offline_in_chromium(made, tmp_path):
    from playwright.sync_api import sync_playwright

    from tests.test_e2e_browser import CHROMIUM_ARGS, chromium_path

    report = made["second"].path / "report.html"
    asked: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))

        def route(r):  # the network is blocked: only the file itself may load
            if r.request.url.startswith("file:"):
                r.continue_()
            else:
                asked.append(r.request.url)
                r.abort()

        page.route("**/*", route)
        page.goto(report.as_uri())
        charts = page.locator(".chart").count()
        page.wait_for_function(f"document.querySelectorAll('.chart .main-svg').length >= {charts}", timeout=60_000)
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
        ids = page.eval_on_selector_all("main section", "s => s.map(e => e.id)")
        text = page.inner_text("body")
        pwned = page.evaluate("window.pwned")
        bars = page.locator("#chart-top_topics .bars .point").count()
        browser.close()
    print(f"\nReport screenshot: {shot}")
    assert asked == [] and errors == []
    assert charts == 7 and bars > 0  # sentiment by topic beside sentiment over time
    assert ids == ["headline", "changes", "top_topics", "movers", "emerging_issues", "trends", "sentiment",
                   "expectation_gaps", "examples"]
    assert "What changed since the last snapshot" in text and "Example quotes per top issue" in text
    assert HOSTILE_LABEL in text and "<script>window.pwned = 1</script>" in text and pwned is None
    assert shot.stat().st_size > 100_000
    html = report.read_text()
    assert html.count("<script>") >= 1 and "cdn.plot.ly" not in html.split("</script>", 1)[1]
    assert "https://" not in html.split("</script>", 1)[1].replace("http://evil.example", "")


@pytest.mark.slow
def test_the_workbook_reads_back_with_formats_and_no_formula(made):
    from openpyxl import load_workbook

    wb = load_workbook(made["second"].path / "snapshot.xlsx")
    assert wb.sheetnames == SHEETS
    texts = []
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for c in row:
                assert c.data_type != "f", (ws.title, c.coordinate, c.value)
                if isinstance(c.value, str):
                    texts.append(c.value)
                    if c.value.startswith(("\t", "\r")) or c.value.lstrip()[:1] in ("=", "+", "-", "@"):
                        pytest.fail(f"unescaped formula-like cell {ws.title}!{c.coordinate}: {c.value!r}")
    assert "'" + HOSTILE_LABEL in texts  # topic label, in the Topics sheet
    for hostile in HOSTILE_TEXTS:
        assert "'" + hostile in texts  # whole messages in the Examples sheet, leading spaces and tab kept
    assert "'" + HOSTILE_META in texts and "'=region" in texts  # a metadata value and a header

    trends = wb["Trends"]
    header = [c.value for c in trends[1]]
    assert header[:2] == ["Period", "All messages"] and "'" + HOSTILE_LABEL in header
    assert trends["A2"].is_date and trends["A2"].number_format == "mmm yyyy"
    topics = wb["Topics"]
    header = [c.value for c in topics[1]]
    # Shares in one unit on every sheet and in every CSV: percentages, as the Summary sheet gives them.
    share = header.index("Share of messages (%)") + 1
    assert topics.cell(2, share).number_format == snapshot.PERCENT and 1 < topics.cell(2, share).value <= 100
    topics_csv = pd.read_csv(made["second"].path / "csv" / "topics.csv", encoding="utf-8-sig")
    assert [c.value for c in topics[1]] == list(topics_csv.columns)
    change = header.index("Change (%)") + 1  # a change in percent too: 27, not 0.27, under "Change %"
    changes = [(r, topics.cell(r, change).value) for r in range(2, topics.max_row + 1)]
    assert all(topics.cell(r, change).number_format == snapshot.CHANGE_PERCENT for r, _ in changes)
    assert [np.nan if v is None else v for _, v in changes] == pytest.approx(topics_csv["Change (%)"].tolist(),
                                                                             nan_ok=True)
    in_sheet = [topics.cell(r, share).value for r in range(2, topics.max_row + 1)]
    assert in_sheet == pytest.approx(topics_csv["Share of messages (%)"].tolist())
    examples = wb["Examples"]
    header = [c.value for c in examples[1]]
    sentiments = [examples.cell(r, header.index("Sentiment") + 1).value for r in range(2, examples.max_row + 1)]
    assert all(isinstance(v, float) for v in sentiments) and -0.99 in sentiments  # real negatives stay numbers
    assert examples.cell(2, header.index("Date") + 1).is_date
    summary = wb["Summary"]
    rows = {r[0].value: [c.value for c in r[1:]] for r in summary.iter_rows() if r[0].value}
    assert rows["Period"][0] == made["second"].manifest["period"]["label"]
    assert isinstance(rows["Messages"][0], int) and rows["Messages"][0] == made["second"].manifest["counts"][
        "messages_in_period"]


@pytest.mark.slow
def test_the_csv_files_are_escaped_too(made):
    folder = made["second"].path / "csv"
    examples = list(csv.reader(io.StringIO((folder / "examples.csv").read_text("utf-8-sig"))))
    header, rows = examples[0], examples[1:]
    assert "'=region" in header
    whole = [r[header.index("Message")] for r in rows]
    assert "'" + HOSTILE_TEXTS[0] in whole and "'" + HOSTILE_TEXTS[1] in whole
    assert "-0.99" in [r[header.index("Sentiment")] for r in rows]  # a number, not escaped text
    topics = list(csv.reader(io.StringIO((folder / "topics.csv").read_text("utf-8-sig"))))
    assert topics[1][0] == "'" + HOSTILE_LABEL


@pytest.mark.slow
def test_chart_images_have_the_configured_size(made):
    s = SnapshotSettings()
    for png in sorted((made["second"].path / "charts").glob("*.png")):
        data = png.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = struct.unpack(">II", data[16:24])
        assert (width, height) == (int(s.image_width * s.image_scale), int(s.image_height * s.image_scale)), png.name
        assert len(data) > 30_000, png.name  # a drawn chart, not an empty frame


@pytest.mark.slow
def test_the_slides_read_back(made):
    from pptx import Presentation
    from pptx.util import Inches

    prs = Presentation(str(made["second"].path / "slides.pptx"))
    assert (prs.slide_width, prs.slide_height) == (Inches(13.333), Inches(7.5))
    slides = list(prs.slides)
    texts = [" ".join(sh.text_frame.text for sh in s.shapes if sh.has_text_frame) for s in slides]
    pictures = [sum(sh.shape_type == 13 for sh in s.shapes) for s in slides]
    tables = [sum(sh.has_table for sh in s.shapes) for s in slides]
    assert "FEEDBACK SNAPSHOT" in texts[0] and made["second"].manifest["period"]["label"] in texts[0]
    assert "Headline figures" in texts[1] and "Messages" in texts[1]
    assert sum(pictures) == 7 and all(p + t <= 1 for p, t in zip(pictures, tables, strict=True))
    assert any(t and "What changed since the last snapshot" in x for t, x in zip(tables, texts, strict=True))
    assert any(HOSTILE_TEXTS[2] in x for x in texts)  # a quote slide, text kept as written


@pytest.mark.slow
def test_what_changed_compares_with_the_previous_snapshot(made):
    from openpyxl import load_workbook

    first, second = made["first"].manifest, made["second"].manifest
    assert first["previous_snapshot"] is None and second["previous_snapshot"] == first["name"]
    ws = load_workbook(made["second"].path / "snapshot.xlsx")["Changes"]
    rows = {(r[0], r[1]): r[2:5] for r in ws.iter_rows(min_row=2, values_only=True)}
    before, now, difference = rows[("Overall", "Messages")]
    assert (before, now, difference) == (first["summary"]["messages"], second["summary"]["messages"],
                                         second["summary"]["messages"] - first["summary"]["messages"])
    expected = snapshot.compare(first["summary"], second["summary"])
    rises = [r[1] for r in ws.iter_rows(min_row=2, values_only=True) if r[0] == "Rise"]
    assert rises == ["'" + t if t.startswith("=") else t for t in expected.rises["topic"]]
    html = (made["second"].path / "report.html").read_text()
    assert f"Compared with the snapshot of {first['period']['label']}" in html


@pytest.mark.slow
def test_remaking_a_snapshot_gives_the_same_files(made, hostile_store):
    again = snapshot.make_snapshot(hostile_store, made["out"], "last-month")
    assert again.path == made["second"].path
    assert again.manifest["files"] == made["second"].manifest["files"]  # same bytes, file by file
    strip = ("created", "files")
    assert {k: v for k, v in again.manifest.items() if k not in strip} == \
        {k: v for k, v in made["second"].manifest.items() if k not in strip}
    assert len(json.loads((made["out"] / "index.json").read_text())["snapshots"]) == 2


@pytest.mark.slow
def test_the_command_line_exit_codes_and_log_line(hostile_store, tmp_path, capsys):
    out = tmp_path / "snaps"
    common = ["--store", str(hostile_store), "--out", str(out), "--no-images"]
    assert main(["snapshot", "--period", "2026-13", *common]) == 1
    assert '"2026-13"' in capsys.readouterr().err
    assert main(["snapshot", "--period", "last-month", "--filter", "colour=red", *common]) == 1
    err = capsys.readouterr().err
    assert '"colour" is not a column' in err and "rating" in err and "Traceback" not in err
    assert main(["snapshot", "--period", "1999-01", *common]) == 1
    assert "has none" in capsys.readouterr().err
    rating = load_run(hostile_store).messages["rating"].astype(str).iloc[0]
    assert main(["snapshot", "--period", "last-month", "--filter", f"rating={rating}", *common]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and " snapshot " in lines[0] and "written to" in lines[0]
    made = snapshot.list_snapshots(out)
    assert len(made) == 1 and made[0]["filters"]["metadata"] == {"rating": [rating]}
    assert made[0]["name"].startswith(made[0]["period"]["name"] + "--rating-")
    assert not any(f["path"].endswith(".png") for f in made[0]["files"])


@pytest.mark.slow
def test_the_snapshots_page_lists_downloads_and_exports_the_view(made, hostile_store, monkeypatch, tmp_path):
    from streamlit.testing.v1 import AppTest

    from dashboard import components

    out = tmp_path / "page_snapshots"
    for p in made["out"].iterdir():  # start from the two snapshots made above
        if p.is_dir() and not p.name.startswith("."):
            (out / p.name).mkdir(parents=True)
            for f in p.rglob("*"):
                if f.is_file():
                    (out / p.name / f.relative_to(p)).parent.mkdir(parents=True, exist_ok=True)
                    (out / p.name / f.relative_to(p)).write_bytes(f.read_bytes())
    monkeypatch.setenv("FEEDBACK_LENS_STORE", str(hostile_store))
    monkeypatch.setenv("FEEDBACK_LENS_SNAPSHOTS", str(out))
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=180)
    at.query_params.update({"sentiment": "negative"})
    at.run()
    at.switch_page("app_pages/snapshots.py").run()
    assert not at.exception, [e.message for e in at.exception]
    assert [t.value for t in at.title] == ["Snapshots"]
    listed = at.dataframe[0].value
    assert listed["Folder"].tolist() == [made["second"].name, made["first"].name]
    assert len(at.get("download_button")) == 4
    periods = at.segmented_control(key="snapshots_period").options  # the windows the other pages show, too
    assert {"Last 7 days", "Last 30 days"} <= set(periods)
    last = load_run(hostile_store).messages["date"].max().date()
    month = snapshot.parse_period("last-month", last)
    assert f"Last month ({month.label})" in periods  # which month it is, not left to be worked out
    assert any(p.startswith("Last week (") for p in periods)
    next(b for b in at.button if b.label == "Export this view").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    found = snapshot.list_snapshots(out)
    assert len(found) == 3
    new = next(m for m in found if m["filters"]["sentiments"] == ["negative"])
    assert any(components.escape_markdown(new["name"]) in s.value for s in at.success)
    assert at.dataframe[0].value["Folder"].tolist().count(new["name"]) == 1


@pytest.mark.slow
def test_no_password_or_hash_reaches_output_runs_or_snapshots(real_run_store, tmp_path):
    """Users' secrets live in the users file only: not in what commands print, runs, the log or snapshots."""
    import shutil
    import subprocess
    import sys

    from pipelines.auth import SignInError, Users

    store = tmp_path / "store"
    shutil.copytree(real_run_store, store)
    password = "Correct-Horse-Battery-Staple-42"
    cli = [sys.executable, "-m", "pipelines.cli"]
    added = subprocess.run([*cli, "users", "add", "ana", "--role", "analyst", "--password-stdin", "--store", str(store)],
                           input=password + "\n", capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert added.returncode == 0, added.stderr
    users = Users(store / "users.json")
    with pytest.raises(SignInError):
        users.authenticate("ana", password + "-wrong")
    secrets = [password, users.get("ana").password_hash, "$argon2"]
    listed = subprocess.run([*cli, "users", "list", "--store", str(store)], capture_output=True, text=True, cwd=ROOT,
                            timeout=120)
    shot = subprocess.run([*cli, "snapshot", "--store", str(store), "--out", str(tmp_path / "snaps"), "--period",
                           "last-month", "--no-images"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert shot.returncode == 0, shot.stderr
    printed = added.stdout + added.stderr + listed.stdout + listed.stderr + shot.stdout + shot.stderr
    assert "ana" in listed.stdout and not [s for s in secrets if s in printed]
    files = [p for p in [*store.rglob("*"), *(tmp_path / "snaps").rglob("*")]
             if p.is_file() and p.name != "users.json" and not p.name.endswith(".npz") and p.suffix != ".npy"]
    assert len(files) > 10
    leaked = [str(p) for p in files for s in secrets if s.encode() in p.read_bytes()]
    assert leaked == []


def test_slide_titles_and_table_headers_keep_their_room():
    """A week's title takes two lines at 44 pt (the subtitle goes below both); a header such as "Messages" gets the
    width it needs on one line beside a long "Why" column."""
    from pipelines.snapshot_files import BOLD_CHAR_WIDTH, table_column_widths, text_lines

    assert text_lines("Week 9, 2026 (23 Feb – 1 Mar 2026)", 44, 11.7) == 2 and text_lines("March 2026", 44, 11.7) == 1
    shown = pd.DataFrame({"Topic": ["mortgage · property · foreclosure"], "Messages": ["7"],
                          "Why": ["9 messages in 1–30 Nov 2026; almost none before (0.4 per month on average)." * 2]})
    widths = table_column_widths(shown, 12.3)
    assert abs(sum(widths) - 12.3) < 1e-9 and widths[1] >= len("Messages") * BOLD_CHAR_WIDTH * 14 / 72 + 0.2


def test_a_card_value_keeps_to_one_line_on_its_slide():
    from pipelines.snapshot_files import CARD_VALUE_SIZES, card_value_size

    box = 2.35  # a quarter-width card's text box, in inches
    assert card_value_size("+0.12", box) == CARD_VALUE_SIZES[0]  # short figures keep the largest size
    for value in ("100.0%", "12,345", "1,234,567"):
        size = card_value_size(value, box)
        assert size < CARD_VALUE_SIZES[0] and len(value) * 0.7 * size <= (box - 0.2) * 72, value


def test_a_folder_that_cannot_be_written_says_why_and_only_a_full_disk_asks_for_space(tmp_path, capsys):
    import errno

    from pipelines.errors import write_failure

    store, blocking = tmp_path / "store", tmp_path / "afile"
    _publish_tiny(store, "20261101-000000-aaaa")
    blocking.write_text("not a folder")
    for out in (blocking, blocking / "sub"):
        assert main(["snapshot", "--period", "2026-W43", "--store", str(store), "--out", str(out), "--no-images"]) == 1
        assert capsys.readouterr().err == (f"Error: Could not write the snapshot to {out}: {blocking} is a file, not a "
                                           "folder.\n  How to fix: Choose a folder with --out, or move that file away.\n")
    assert write_failure(OSError(errno.EROFS, "Read-only file system", "/mnt/ro"), "--out") == (
        "the disk is read-only (/mnt/ro)", "Choose a folder on a writable disk with --out.")
    assert write_failure(OSError(errno.EACCES, "Permission denied", "/srv/r"), "--out")[0] == \
        "no permission to write there (/srv/r)"
    assert write_failure(OSError(errno.ENOSPC, "No space left on device"), "--out")[1].startswith("Free disk space")


def test_the_top_topics_say_how_many_messages_have_no_clear_topic():
    """October's topics added up to 462 of 482 messages (95.9%), and the 20 others were mentioned nowhere."""
    run = tiny_run()
    week43 = run.messages.index[(run.messages["date"] >= pd.Timestamp("2026-10-19", tz="UTC"))
                                & (run.messages["date"] < pd.Timestamp("2026-10-26", tz="UTC"))]
    run.messages.loc[week43[0], "topic"] = -1
    made = snapshot.build_snapshot(run, snapshot.parse_period("2026-W43", None), settings=SnapshotSettings(images=False))
    assert _section(made, "top_topics").text[0] == ("3 topics had messages in Week 43, 2026 (19–25 Oct 2026). "
                                                    "1 message (17%) has no clear topic and is not among them.")
    assert _section(_tiny_snapshot(), "top_topics").text[0].endswith("(19–25 Oct 2026).")


def test_a_deck_without_chart_images_keeps_every_section(tmp_path):
    """With --no-images the Top topics, Biggest movers, Trends and Sentiment slides were simply missing."""
    from pptx import Presentation

    from pipelines.snapshot_files import write_pptx

    made = snapshot.build_snapshot(tiny_run(), snapshot.parse_period("2026-W43", None),
                                   settings=SnapshotSettings(images=False))
    write_pptx(made, tmp_path / "slides.pptx", {})
    slides = [[sh for sh in s.shapes] for s in Presentation(tmp_path / "slides.pptx").slides]
    titles = [next(sh.text_frame.text for sh in s if sh.has_text_frame and sh.text_frame.text) for s in slides[1:]]
    for section in (s for s in made.sections if s.figures and not s.empty):
        assert section.title in titles, section.title
    top = slides[1 + titles.index("Top topics")]
    assert any(sh.has_table for sh in top)  # its table stands in for the chart
    trends = slides[1 + titles.index("Trends")]
    assert any("without chart images (--no-images)" in sh.text_frame.text for sh in trends if sh.has_text_frame)


def test_a_date_filter_of_one_week_exports_that_weeks_snapshot(tmp_path, monkeypatch):
    """The dashboard compares a filter of exactly week 43 with week 42; its export must be the week's snapshot
    (the same folder, figures and 'what changed' as `--period 2026-W43`), not a range compared with 7 days."""
    from streamlit.testing.v1 import AppTest

    store, out = tmp_path / "store", tmp_path / "snaps"
    _publish_tiny(store, "20261101-000000-aaaa", ["2026-10-25"])  # the run ends on week 43's Sunday
    monkeypatch.setenv("FEEDBACK_LENS_STORE", str(store))
    monkeypatch.setenv("FEEDBACK_LENS_SNAPSHOTS", str(out))
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=120)
    at.query_params.update({"from": "2026-10-19", "to": "2026-10-25"})
    at.run()
    at.switch_page("app_pages/snapshots.py").run()
    control = at.segmented_control(key="snapshots_period")
    assert control.options[0] == "Week 43, 2026 (19–25 Oct 2026) (the dates filter)"
    assert control.value == "2026-W43"
    next(b for b in at.button if b.label == "Export this view").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert [m["name"] for m in snapshot.list_snapshots(out)] == ["2026-W43"]
    assert not any("replaces" in s.value for s in at.success)
    next(b for b in at.button if b.label == "Export this view").click().run()  # again: the user is told
    done = " ".join(s.value for s in at.success)
    assert "is ready below. It replaces the one made on " in done and " UTC." in done, done


def test_the_runs_first_month_has_no_topic_changes_against_the_days_before_it():
    """August is the tiny run's first month: its topics are not '+5 (none before)' or movers against July, which the
    run knows nothing of; September's are compared with August."""
    made = snapshot.build_snapshot(tiny_run(), snapshot.parse_period("2026-08", None),
                                   settings=SnapshotSettings(images=False))
    change = _section(made, "top_topics").display.set_index("Topic")["vs July 2026"]
    assert change.tolist() == ["–"]
    movers = _section(made, "movers")
    assert movers.empty == "The run's messages start on 3 Aug 2026, so there is nothing before to compare with."
    sheet = _section(made, "top_topics").table
    assert sheet["Messages in July 2026"].isna().all() and sheet["Change"].isna().all()
    later = snapshot.build_snapshot(tiny_run(), snapshot.parse_period("2026-09", None),
                                    settings=SnapshotSettings(images=False))
    assert _section(later, "top_topics").display[f"vs {later.period.previous_label}"].tolist() == ["−1"]  # 4 Mondays vs 5


def test_a_topic_missing_from_the_last_snapshot_that_the_data_had_before_is_back_not_new():
    before = _summary([("refund · money", ["refund", "money"], 30, -0.5)])
    now = _summary([("refund · money", ["refund", "money"], 30, -0.5), ("dressing · salad", ["dressing", "salad"], 8, 0.2),
                    ("app · crash", ["app", "crash"], 9, -0.8)])
    now["topics"][1]["seen_before"] = True  # it had messages in months before the last snapshot's, none in it
    now["topics"][2]["seen_before"] = False
    c = snapshot.compare(before, now, min_messages=5)
    assert c.new["topic"].tolist() == ["app · crash"] and c.returned["topic"].tolist() == ["dressing · salad"]
    section = snapshot.changes_section({"name": "2026-08", "summary": before, "period": {}}, now,
                                       snapshot.parse_period("2026-09", None), SnapshotSettings(images=False))
    assert section.table.loc[section.table["Change"] == "Back again", "What"].tolist() == ["dressing · salad"]
    assert "1 new topic, 1 topic back again after a snapshot without it and 0 vanished topics" in " ".join(section.text)


def test_a_range_snapshots_trends_say_the_span_they_draw_and_start_on_whole_months():
    """'1–15 Oct' trends were captioned '12 months' over 7, starting mid-April (half a month drawn as a fall)."""
    period = snapshot.parse_period("2026-10-10..2026-10-24", None)
    start, step = snapshot._trend_span(period, 12)
    assert (start, step) == (date(2026, 4, 1), "month")  # 165 days before 10 Oct is 28 Apr: the whole of April
    made = snapshot.build_snapshot(tiny_run(), period, settings=SnapshotSettings(images=False))
    assert _section(made, "trends").text == ["From 3 Aug 2026 to 24 Oct 2026, by month; the last month may be partial."]
    month = snapshot.build_snapshot(tiny_run(), snapshot.parse_period("2026-10", None), settings=SnapshotSettings(images=False))
    assert _section(month, "trends").text == ["The 12 months up to the end of October 2026; the last month may be partial."]


def test_a_long_quote_is_cut_at_a_sentence_end_so_it_never_says_the_opposite():
    text = "My dogs love these treats and they are healthy. " * 8 + "We will never use another kind!"
    quote = snapshot.quote_text(text, 400)
    assert quote.endswith("they are healthy. …") and "never use" not in quote and len(quote) <= 402
    assert snapshot.quote_text("word " * 100, 60) == "word " * 11 + "word …"  # no sentence end: cut at a word


@pytest.mark.parametrize("n, chars", [(3, 400), (3, 150), (4, 400), (1, 2000)])
def test_quotes_stay_on_their_slide(n, chars):
    """Three quotes of 400 characters at 15 pt ran 0.41 cm below the slide's edge."""
    from pptx import Presentation
    from pptx.util import Inches

    from pipelines import snapshot_files

    prs = Presentation()
    prs.slide_width, prs.slide_height = Inches(13.333), Inches(7.5)
    text = ("These treats arrived stale and the bag was half empty. " * 40)[:chars].strip()
    quotes = [SimpleNamespace(text=text, date=date(2026, 10, 3), metadata={}, sentiment=-0.5) for _ in range(n)]
    snapshot_files._quotes_slide(prs, "Stale treats", "12 messages", quotes)
    slide = prs.slides[0]
    assert all(shape.top + shape.height <= prs.slide_height for shape in slide.shapes)
    said = " ".join(shape.text_frame.text for shape in slide.shapes if shape.has_text_frame)
    assert said.count("These treats arrived stale") >= n  # every quote is there, shortened if need be


def test_a_period_that_starts_before_the_data_says_how_much_of_it_has_none():
    made = snapshot.build_snapshot(tiny_run(), snapshot.parse_period("2026-Q3", None), settings=SnapshotSettings(images=False))
    assert "The run has no data for this period's first 33 days (before 3 Aug 2026)." in _section(made, "headline").text
    later = snapshot.build_snapshot(tiny_run(), snapshot.parse_period("2026-09", None), settings=SnapshotSettings(images=False))
    assert not any("no data for this period" in line for line in _section(later, "headline").text)


def test_a_filtered_period_without_messages_says_so_in_every_section_without_contradicting_itself():
    """Topic 2's one message is in week 43: week 44 filtered to it has none. Trends had said 'No message…' over a
    caption of 12 weeks, and the gaps 'no message mentions an expectation area'."""
    made = snapshot.build_snapshot(tiny_run(["speed"]), snapshot.parse_period("2026-W44", None),
                                   MessageFilter(topics=(2,)), settings=SnapshotSettings(images=False))
    nothing = "No message in week 44, 2026 (26 Oct – 1 Nov 2026) matches the filters."
    trends, sentiment, gaps = (_section(made, k) for k in ("trends", "sentiment", "expectation_gaps"))
    assert trends.empty == nothing and trends.text == []
    assert gaps.empty == nothing
    assert sentiment.figures and f"{nothing} The chart shows the 12 weeks up to the end of week 44" in " ".join(sentiment.text)



def test_every_csv_gives_shares_as_percentages_as_the_summary_does(tmp_path):
    """topics.csv had 0.75 where summary.csv had 75.0 (its Unit says percent): read together, 100× apart."""
    from pipelines.snapshot_files import write_csv

    made = _tiny_snapshot()
    write_csv(made, tmp_path)
    topics = list(csv.DictReader(io.StringIO((tmp_path / "csv" / "topics.csv").read_text("utf-8-sig"))))
    table = _section(made, "top_topics").table
    assert float(topics[0]["Share of messages (%)"]) == pytest.approx(100 * table["Share of messages"].iloc[0])
    assert "Share of messages" not in topics[0]
    summary = {r["Figure"]: r for r in csv.DictReader(io.StringIO((tmp_path / "csv" / "summary.csv").read_text("utf-8-sig")))}
    assert summary["Share negative"]["Unit"] == "percent" and float(summary["Share negative"]["This period"]) > 1


def test_a_column_with_underscores_is_written_in_words_in_the_filter_line():
    """The sidebar says "Company response"; the filter line and message cards had said "company_response"."""
    f = MessageFilter(metadata=(("company_response", ("Untimely response",)),))
    assert snapshot.filter_words(f, {}) == ["company response: Untimely response"]


def test_shares_and_changes_in_percent_are_written_as_percentages_headed_so() -> None:
    from pipelines.snapshot_files import percent_columns

    section = snapshot.Section("topics", "Topics", table=pd.DataFrame({
        "Topic": ["Refunds", "Delivery"], "Share of messages": [0.129, 0.5], "Change %": [0.27, None]}),
        sheet="Topics", formats={"Share of messages": snapshot.SHARE, "Change %": snapshot.CHANGE_SHARE})
    out = percent_columns(section)
    assert list(out.columns) == ["Topic", "Share of messages (%)", "Change (%)"]
    assert out["Share of messages (%)"].tolist() == pytest.approx([12.9, 50.0])
    assert out["Change (%)"].tolist()[0] == pytest.approx(27.0) and pd.isna(out["Change (%)"].tolist()[1])

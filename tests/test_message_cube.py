"""The message cube gives every volume and sentiment figure the messages give (real analysed run)."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from pipelines import metrics as m
from pipelines.store import load_run


@pytest.fixture(scope="module")
def run(real_run_store):
    run = load_run(real_run_store, texts=False)
    messages = run.messages.copy()
    messages.loc[messages.index[::37], "date"] = pd.NaT  # undated messages are counted apart
    return messages, run.topics


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_dtype=False,
                                  check_exact=False, rtol=1e-9, atol=1e-12)


FILTERS = [m.MessageFilter(), m.MessageFilter(sentiments=("negative",)), m.MessageFilter(topics=(0, 1, -1)),
           m.MessageFilter(metadata=(("rating", ("5", "1")),)), "last 60 days"]


@pytest.mark.parametrize("which", range(len(FILTERS)))
def test_every_figure_is_the_same_on_the_cube(run, which):
    messages, topics = run
    cube = m.message_cube(messages, ["rating"])
    assert len(cube) < len(messages) and cube[m.COUNT].sum() == len(messages)
    last = m.last_day(messages)
    f = FILTERS[which]
    if f == "last 60 days":
        f = m.MessageFilter(start=last - timedelta(days=59), end=last)
    rows, cells = m.filter_messages(messages, f), m.filter_messages(cube, f)
    assert cells[m.COUNT].sum() == len(rows)
    current, previous = m.comparison_windows(last, 30)
    for trend in (None, "week"):
        _same(m.topic_table(cells, topics, current, previous, include_no_topic=True, trend=trend),
              m.topic_table(rows, topics, current, previous, include_no_topic=True, trend=trend))
    a, b = m.headline(cells, current, previous), m.headline(rows, current, previous)
    for k in ("messages", "share_negative", "mean_sentiment", "active_topics"):
        for when in ("current", "previous"):
            expected = getattr(getattr(b, k), when)  # None: no message in the window
            assert getattr(getattr(a, k), when) == (expected if expected is None else pytest.approx(expected, rel=1e-12))
    moved_c, moved_r = m.biggest_movers(cells, topics, current, previous), m.biggest_movers(rows, topics, current, previous)
    _same(moved_c.rising, moved_r.rising)
    _same(moved_c.falling, moved_r.falling)
    for granularity in ("day", "week", "month"):
        _same(m.volume_over_time(cells, granularity), m.volume_over_time(rows, granularity))
        _same(m.volume_over_time(cells, granularity, by="rating"), m.volume_over_time(rows, granularity, by="rating"))
        _same(m.period_totals(cells, granularity), m.period_totals(rows, granularity))
        for by_topic in (False, True):
            _same(m.sentiment_over_time(cells, granularity, by_topic, rolling=3),
                  m.sentiment_over_time(rows, granularity, by_topic, rolling=3))
    week, _ = m.comparison_windows(last, 7)
    for window in (week, current):
        found_c, found_r = m.emerging_issues(cells, topics, window), m.emerging_issues(rows, topics, window)
        assert found_c.note == found_r.note
        _same(found_c.issues, found_r.issues)
    _same(m.sentiment_drivers(cells, topics, current, previous), m.sentiment_drivers(rows, topics, current, previous))
    assert m.sentiment_counts(cells) == m.sentiment_counts(rows)



def test_a_filter_reads_categorical_metadata_as_it_reads_the_values():
    values = pd.Series(["a", " b", None, "", "a", 5, "c ", float("nan")], dtype=object)
    plain, coded = pd.DataFrame({"p": values}), pd.DataFrame({"p": values.astype("category")})
    for wanted in (("a", "b", m.BLANK), ("5", "c"), ("nothing",), (m.BLANK,)):
        f = m.MessageFilter(metadata=(("p", wanted),))
        assert m.filter_mask(coded, f).tolist() == m.filter_mask(plain, f).tolist()


def test_a_run_stores_its_cube_and_the_dashboard_counts_again_after_topic_edits(monkeypatch, real_run_store, tmp_path):
    """The published cube is the one the messages give; once analysts move messages between topics, the
    dashboard's cube follows the curated messages instead."""
    import shutil

    import streamlit as st

    from dashboard import data
    from pipelines.curation import Curator
    from pipelines.lineage import keys_of
    from pipelines.store import load_run_table

    store = tmp_path / "store"
    shutil.copytree(real_run_store / "runs", store / "runs")
    shutil.copy(real_run_store / "latest", store / "latest")
    run = load_run(store, texts=False)
    metadata = list(m.metadata_options(run.messages, run.manifest["columns"]["metadata"]))
    assert metadata == ["rating"]
    stored = load_run_table(run, "cube")
    pd.testing.assert_frame_equal(stored, m.message_cube(run.messages, metadata))

    monkeypatch.setenv("FEEDBACK_LENS_STORE", str(store))
    st.cache_data.clear()
    st.cache_resource.clear()
    ref = data.current_ref()
    counted = m.message_cube
    with monkeypatch.context() as patch:  # the stored cube is read, not counted again
        patch.setattr(m, "message_cube", lambda *a, **k: pytest.fail("counted again"))
        pd.testing.assert_frame_equal(data.figure_cube(ref, m.MessageFilter()), stored)
    assert m.message_cube is counted

    keys = keys_of(run.topics, run.id)
    Curator(store).merge([keys[0], keys[1]], into=keys[0])
    ref = data.current_ref()  # a new curation version: the run is read again
    curated = data.load(ref).messages
    assert (curated["topic"] == 1).sum() == 0 and not curated["topic"].equals(run.messages["topic"])
    pd.testing.assert_frame_equal(data.figure_cube(ref, m.MessageFilter()), m.message_cube(curated, metadata))


def test_a_stored_cube_written_with_other_value_texts_is_counted_again(monkeypatch, real_run_store, tmp_path):
    """A run published before whole numbers were written without ".0" stored "4.0" where filters now say "4":
    its cube would count nothing for "rating = 4", so the dashboard counts the cube again from the messages."""
    import shutil

    import streamlit as st

    from dashboard import data
    from pipelines.store import load_run_table

    store = tmp_path / "store"
    shutil.copytree(real_run_store / "runs", store / "runs")
    shutil.copy(real_run_store / "latest", store / "latest")
    run = load_run(store, texts=False)
    stale = load_run_table(run, "cube")
    old = stale["rating"].astype(str)
    stale["rating"] = old.where(old != old.iloc[0], old.iloc[0] + ".0")  # one value as an older run wrote it
    stale.to_parquet(run.path / "cube.parquet")
    monkeypatch.setenv("FEEDBACK_LENS_STORE", str(store))
    st.cache_data.clear()
    st.cache_resource.clear()
    fresh = m.message_cube(run.messages, ["rating"])
    pd.testing.assert_frame_equal(data.figure_cube(data.current_ref(), m.MessageFilter()), fresh)


def test_a_cube_stored_in_utc_days_is_counted_again_in_the_runs_zone(monkeypatch, real_run_store, tmp_path):
    """A run analysed in Los Angeles time before the stored cube followed the run's zone holds a cube of UTC days;
    shown as is, late-evening messages would count on the next day while the cards say Los Angeles. The dashboard
    counts such a cube again from the messages on the run's clock."""
    import json
    import shutil

    import streamlit as st

    from dashboard import data
    from pipelines.curation import load_curated_run
    from pipelines.store import load_run_table

    store = tmp_path / "store"
    shutil.copytree(real_run_store / "runs", store / "runs")
    shutil.copy(real_run_store / "latest", store / "latest")
    run = load_run(store, texts=False)
    assert run.manifest["cube_time_zone"] == "UTC"
    manifest = {**run.manifest, "settings": {**run.manifest["settings"], "assume_timezone": "America/Los_Angeles"}}
    del manifest["cube_time_zone"]  # as runs made before it was recorded
    (run.path / "run.json").write_text(json.dumps(manifest), "utf-8")
    monkeypatch.setenv("FEEDBACK_LENS_STORE", str(store))
    st.cache_data.clear()
    st.cache_resource.clear()
    clock = load_curated_run(store, texts=False).run.messages
    shown = data.figure_cube(data.current_ref(), m.MessageFilter())
    pd.testing.assert_frame_equal(shown, m.message_cube(clock, ["rating"]))
    assert not shown["date"].equals(load_run_table(run, "cube")["date"])

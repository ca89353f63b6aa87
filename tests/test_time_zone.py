"""The run's time zone: dates are stored in UTC, and the pages and snapshots count the days of the zone the user named."""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines import metrics
from pipelines.store import load_run


def test_an_evening_ticket_in_los_angeles_counts_on_its_own_day():
    """11:40 pm on 31 Mar in Los Angeles is 06:40 UTC on 1 Apr: on the clock of Los Angeles it is still 31 Mar."""
    sent = pd.Series(pd.to_datetime(["2026-04-01 06:40", "2026-04-01 08:00"], utc=True))
    clock = metrics.on_the_clock(sent, "America/Los_Angeles")
    assert [f"{t:%Y-%m-%d %H:%M}" for t in clock] == ["2026-03-31 23:40", "2026-04-01 01:00"]
    assert metrics.last_day(pd.DataFrame({"date": clock})) == pd.Timestamp("2026-04-01").date()
    assert metrics.period_start(clock, "month").dt.month.tolist() == [3, 4]
    # UTC runs (every run made before the zone was recorded) are left as they are.
    assert metrics.on_the_clock(sent, "UTC") is sent


def test_days_across_a_daylight_saving_change_are_whole_days():
    """On the clock, the week of 8 Mar 2026 (US clocks go forward) still has seven days of 24 hours: a message at
    noon each day lands on its own day, and a 7-day window holds exactly the seven."""
    local = pd.date_range("2026-03-05 12:00", periods=7, freq="D", tz="America/Los_Angeles")
    clock = metrics.on_the_clock(pd.Series(local.tz_convert("UTC")), "America/Los_Angeles")
    assert (clock.dt.hour == 12).all()
    assert clock.dt.day.tolist() == [5, 6, 7, 8, 9, 10, 11]
    current, _ = metrics.comparison_windows(pd.Timestamp("2026-03-11").date(), days=7)
    assert current.contains(clock).all()


@pytest.mark.parametrize(("zone", "words"), [("UTC", "UTC"), ("America/Los_Angeles", "Los Angeles time"),
                                             ("+02:00", "UTC+02:00"), ("Etc/GMT+5", "Etc/GMT+5")])
def test_zones_are_named_as_a_sentence_would(zone, words):
    assert metrics.zone_words(zone) == words


@pytest.mark.slow
def test_a_run_in_los_angeles_time_counts_its_days_on_every_page_and_snapshot(sample_frame, encoder, tmp_path):
    """Through the real path: tickets written in Los Angeles time, the last ten at 10:30 pm on 31 Mar (05:30 UTC on
    1 Apr). The run stores UTC; the curated run the pages and snapshots read, its stored figure cube and the March
    snapshot all count them in March, and the report says which clock."""
    from pipelines.analyse import analyse_file
    from pipelines.curation import load_curated_run
    from pipelines.settings import ColumnMapping, Settings, SnapshotSettings
    from pipelines.snapshot import make_snapshot
    from pipelines.store import load_run_table

    frame = sample_frame.iloc[200:240][["review_id", "text", "rating"]].reset_index(drop=True)
    days = [f"2026-03-{1 + i % 30:02d} 14:00" for i in range(30)] + ["2026-03-31 22:30"] * 10
    path = tmp_path / "tickets.csv"
    frame.assign(date=days).to_csv(path, index=False)
    store = tmp_path / "store"
    summary = analyse_file(path, ColumnMapping(metadata=("rating",)),
                           Settings(store_dir=store, assume_timezone="America/Los_Angeles"), encoder=encoder)
    assert "Dates             1–31 Mar 2026 (Los Angeles time)" in summary.format()

    stored = load_run(store)
    assert stored.time_zone == "America/Los_Angeles"
    assert f"{stored.messages['date'].max():%Y-%m-%d %H:%M}" == "2026-04-01 05:30"  # stored in UTC, as before

    run = load_curated_run(store).run
    assert metrics.last_day(run.messages) == pd.Timestamp("2026-03-31").date()
    assert f"{run.messages['date'].max():%H:%M}" == "22:30"
    metadata = [c for c in load_run_table(stored, "cube").columns if c not in (*metrics.CUBE_KEYS, *metrics.CUBE_VALUES)]
    pd.testing.assert_frame_equal(load_run_table(stored, "cube"), metrics.message_cube(run.messages, metadata),
                                  check_dtype=False)

    result = make_snapshot(store, tmp_path / "snaps", "2026-03", settings=SnapshotSettings(images=False))
    assert result.manifest["counts"]["messages_in_period"] == 40  # in UTC days, ten would fall in April
    report = (result.path / "report.html").read_text("utf-8")
    assert "counted in Los Angeles time" in report

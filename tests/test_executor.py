"""Executors: the local one, and a real Dask LocalCluster with 2 worker processes giving the same run."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from pipelines.errors import FeedbackLensError
from pipelines.executor import LocalExecutor, make_executor, partitions
from pipelines.settings import Settings


def test_partitions_cover_every_row_once():
    assert partitions(0, 10) == []
    assert partitions(25, 10) == [(0, 10), (10, 20), (20, 25)]


def test_local_executor_maps_in_order_and_reports_each_item():
    seen = []
    assert LocalExecutor().map(lambda x: x * x, [1, 2, 3], seen.append) == [1, 4, 9]
    assert seen == [0, 1, 2]
    assert LocalExecutor().run(max, 2, 5) == 5


def test_unknown_executor_and_missing_address_are_clear_errors(tmp_path):
    with pytest.raises(FeedbackLensError, match='Unknown executor "spark"'):
        make_executor(replace(Settings(store_dir=tmp_path), executor="spark"))
    with pytest.raises(FeedbackLensError, match="needs the address of a Dask scheduler") as err:
        make_executor(replace(Settings(store_dir=tmp_path), executor="dask", dask_scheduler=None))
    assert "--dask-scheduler" in err.value.fix


def _tricky_feedback(path):
    """Records whose cleaning needs more than one partition's view: duplicates, repeated ids, a metadata column
    that is numbers in one partition and words in another, bad dates and over-long texts in several."""
    rows = []
    for i in range(40):
        rows.append({"id": f"r{i % 31}", "text": f"Order {i % 17} came late &amp; cold  " + "x" * (i % 3) * 300,
                     "date": "not a date" if i in (3, 25, 38) else f"2024-0{1 + i % 9}-1{i % 10}",
                     "channel": str(i % 4) if i < 20 else ("email" if i % 2 else "chat"), "rating": i % 5 or None})
    rows.append(dict(rows[2]))  # the same record again, in another partition
    rows.append({**rows[5], "id": ""})
    rows.append({"id": "r99", "text": "   ", "date": "2024-02-02", "channel": "1", "rating": 3})
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("on_bad_date", ["drop", "fail"])
def test_cleaning_in_partitions_gives_the_messages_and_report_of_cleaning_at_once(tmp_path, on_bad_date):
    from pipelines.clean import clean_messages
    from pipelines.errors import InputError
    from pipelines.executor import clean_partitioned
    from pipelines.ingest import read_feedback_file, resolve_columns
    from pipelines.settings import ColumnMapping

    table = read_feedback_file(_tricky_feedback(tmp_path / "tricky.csv"))
    settings = replace(Settings(store_dir=tmp_path), max_message_chars=400, on_bad_date=on_bad_date)
    for mapping in (ColumnMapping(id="id", metadata=("channel", "rating")), ColumnMapping(metadata=("channel",))):
        columns = resolve_columns(table, mapping)
        if on_bad_date == "fail":
            with pytest.raises(InputError) as at_once:
                clean_messages(table, columns, settings)
            with pytest.raises(InputError) as in_parts:
                clean_partitioned(table, columns, settings, LocalExecutor(), 7)
            assert str(in_parts.value) == str(at_once.value) and "line 5" in str(at_once.value)
            continue
        expected, report = clean_messages(table, columns, settings)
        got, got_report = clean_partitioned(table, columns, settings, LocalExecutor(), 7)
        pd.testing.assert_frame_equal(got, expected)
        assert got_report == report and report.truncated > 2 and len(report.skipped) >= 3
        assert got["channel"].dtype == "string"  # numbers in the first partitions, words later: text throughout


@pytest.mark.slow
def test_unreachable_scheduler_is_a_clear_error(tmp_path):
    with pytest.raises(FeedbackLensError, match="Could not reach the Dask scheduler at tcp://127.0.0.1:9"):
        make_executor(replace(Settings(store_dir=tmp_path), executor="dask", dask_scheduler="tcp://127.0.0.1:9"))


@pytest.fixture(scope="module")
def dask_client():
    import sys
    import types

    from distributed import Client, LocalCluster

    # Worker processes are spawned, and spawning re-runs the parent's __main__ file. Streamlit's AppTest
    # (earlier dashboard tests) leaves dashboard/app.py there; a real `feedback-lens analyse` has the CLI.
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(sys.modules, "__main__", types.ModuleType("__main__"))
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    with cluster, Client(cluster, set_as_default=False) as client:
        yield client


@pytest.mark.slow
def test_dask_cluster_gives_the_same_run_as_the_local_executor(dask_client, sample_frame, tmp_path):
    from pipelines.analyse import analyse_file
    from pipelines.executor import DaskExecutor
    from pipelines.settings import ColumnMapping
    from pipelines.store import load_run, load_run_array

    path = tmp_path / "reviews.csv"
    reviews = sample_frame.iloc[::8]  # about 620 real reviews with a PII-like mix, three of them again at the end
    pd.concat([reviews, reviews.iloc[[3, 70, 400]]]).to_csv(path, index=False)
    runs = {}
    for name in ("local", "dask"):
        # Small partitions and a fit sample smaller than the data: every partitioned stage has several tasks.
        settings = replace(Settings(store_dir=tmp_path / name), executor=name, partition_size=128, fit_sample_size=400,
                           assign_chunk_size=100)
        executor = DaskExecutor(client=dask_client) if name == "dask" else LocalExecutor()
        summary = analyse_file(path, ColumnMapping(metadata=("rating",)), settings, executor=executor)
        run = load_run(tmp_path / name)
        runs[name] = (summary, run, load_run_array(run, "embeddings"))
    (s_local, local, e_local), (s_dask, dask, e_dask) = runs["local"], runs["dask"]
    assert dask.manifest["encoder"]["backend"].endswith("on dask workers")
    assert s_dask.messages == s_local.messages > 600 and s_dask.topics == s_local.topics >= 3
    # Cleaned in partitions on the workers: the same records read, skipped and cut.
    assert (s_dask.rows_read, s_dask.skipped, s_dask.truncated) == (s_local.rows_read, s_local.skipped, s_local.truncated)
    assert s_local.skipped.get("exact duplicate") == 3
    np.testing.assert_array_equal(e_dask, e_local)  # the same vectors, not merely close
    same = ["message_id", "text", "topic", "sentiment", "sentiment_label", "x", "y", "rating"]
    tags = [c for c in local.messages.columns if c.startswith(("expectation", "area", "unmet", "met_", "source"))]
    assert tags, local.messages.columns.tolist()
    pd.testing.assert_frame_equal(dask.messages[same + tags], local.messages[same + tags])
    pd.testing.assert_frame_equal(dask.topics.drop(columns=["key"]), local.topics.drop(columns=["key"]))
    pd.testing.assert_frame_equal(dask.keywords, local.keywords)

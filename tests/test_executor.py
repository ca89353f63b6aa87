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
    from pipelines.ingest import plan_parts
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
        with pytest.MonkeyPatch.context() as mp:
            if name == "dask":  # the file is read on the workers, in parts: this process never reads it
                settings = replace(settings, read_part_bytes=path.stat().st_size // 6)
                assert len(plan_parts(path, settings.read_part_bytes, 128).parts) >= 6

                def refuse(*args, **kwargs):
                    raise AssertionError("the analysing process read the file")
                mp.setattr("pipelines.ingest.read_feedback_file", refuse)
                mp.setattr("pipelines.ingest.read_part", refuse)
            summary = analyse_file(path, ColumnMapping(metadata=("rating",)), settings, executor=executor)
        run = load_run(tmp_path / name)
        runs[name] = (summary, run, load_run_array(run, "embeddings"))
    (s_local, local, e_local), (s_dask, dask, e_dask) = runs["local"], runs["dask"]
    assert dask.manifest["encoder"]["backend"].endswith("on dask workers")
    assert s_dask.messages == s_local.messages > 600 and s_dask.topics == s_local.topics >= 3
    # Read and cleaned in parts on the workers: the same records read, skipped and cut.
    assert (s_dask.rows_read, s_dask.skipped, s_dask.truncated) == (s_local.rows_read, s_local.skipped, s_local.truncated)
    assert s_local.skipped.get("exact duplicate") == 3
    np.testing.assert_array_equal(e_dask, e_local)  # the same vectors, not merely close
    same = ["message_id", "text", "topic", "sentiment", "sentiment_label", "x", "y", "rating"]
    tags = [c for c in local.messages.columns if c.startswith(("expectation", "area", "unmet", "met_", "source"))]
    assert tags, local.messages.columns.tolist()
    pd.testing.assert_frame_equal(dask.messages[same + tags], local.messages[same + tags])
    pd.testing.assert_frame_equal(dask.topics.drop(columns=["key"]), local.topics.drop(columns=["key"]))
    pd.testing.assert_frame_equal(dask.keywords, local.keywords)


@pytest.mark.slow
@pytest.mark.parametrize("in_object", [False, True])
def test_a_json_list_is_read_in_parts_on_the_dask_workers(dask_client, sample_frame, tmp_path, in_object):
    """A JSON list as pandas exports it (one line), bare or as ``{"reviews": [...]}``, is cut, counted and read on
    the workers, never in the analysing process, and gives the messages, report and notes of reading it at once."""
    from pipelines.executor import DaskExecutor
    from pipelines.settings import ColumnMapping

    path = tmp_path / "reviews.json"
    records = sample_frame.iloc[::8].to_json(orient="records", force_ascii=False)
    path.write_text('{"reviews": ' + records + "}" if in_object else records, encoding="utf-8")
    mapping = ColumnMapping(metadata=("rating",))
    settings = replace(Settings(store_dir=tmp_path), executor="dask", read_part_bytes=path.stat().st_size // 6,
                       partition_size=128)
    expected = _read_at_once(path, mapping, settings)
    with pytest.MonkeyPatch.context() as mp:
        def refuse(*args, **kwargs):
            raise AssertionError("the analysing process read the file")
        mp.setattr("pipelines.ingest.read_feedback_file", refuse)
        mp.setattr("pipelines.ingest.read_part", refuse)
        messages, report, notes, fmt = _read_in_parts(path, mapping, settings, DaskExecutor(client=dask_client))
    pd.testing.assert_frame_equal(messages, expected[0])
    assert (report, notes, fmt) == expected[1:] and len(messages) > 600


def test_with_dask_every_file_is_checked_on_the_workers_before_the_first_is_analysed(dask_client, sample_frame,
                                                                                      tmp_path):
    """Several files: a date that cannot be read in the second stops the command before the first is published, as
    with the local executor, and the files are read on the workers, not in the analysing process."""
    from pipelines.analyse import analyse_files
    from pipelines.errors import InputError
    from pipelines.executor import DaskExecutor
    from pipelines.store import list_runs

    jan, feb = tmp_path / "jan.csv", tmp_path / "feb.csv"
    sample_frame.iloc[0:400:4].to_csv(jan, index=False)
    bad = sample_frame.iloc[1:400:4].copy()
    bad.loc[bad.index[5], "date"] = "someday"
    bad.to_csv(feb, index=False)
    settings = replace(Settings(store_dir=tmp_path / "store"), executor="dask", read_part_bytes=8_000)
    started = []
    with pytest.MonkeyPatch.context() as mp:
        def refuse(*args, **kwargs):
            raise AssertionError("the analysing process read the file")
        mp.setattr("pipelines.analyse.read_feedback_file", refuse)
        mp.setattr("pipelines.ingest.read_part", refuse)
        with pytest.raises(InputError) as err:
            analyse_files([jan, feb], settings=settings, executor=DaskExecutor(client=dask_client),
                          starting=lambda *a: started.append(a))
    assert str(err.value).startswith('feb.csv, column "date"') and "line 7: 'someday'" in str(err.value)
    assert "Nothing was analysed: both files are checked before the first one is." in err.value.fix
    assert started == [] and list_runs(settings.store_dir) == []


def _read_at_once(path, mapping, settings):
    from pipelines.clean import clean_messages
    from pipelines.ingest import read_feedback_file, resolve_columns

    table = read_feedback_file(path)
    messages, report = clean_messages(table, resolve_columns(table, mapping), settings)
    return messages, report, table.notes, table.format


def _read_in_parts(path, mapping, settings, executor):
    from pipelines.executor import open_partitioned

    opened = open_partitioned(path, mapping, settings, executor)
    messages, report, notes = opened.clean(settings, executor)
    return messages, report, notes, opened.format


def _same_result(path, mapping, settings, executor=None) -> bool:
    """Reading ``path`` in parts and cleaning them gives what reading and cleaning it at once gives, error included.
    True when that was messages, False when it was an error."""
    from pipelines.errors import FeedbackLensError

    executor = executor or LocalExecutor()
    try:
        expected = _read_at_once(path, mapping, settings)
    except FeedbackLensError as err:
        with pytest.raises(FeedbackLensError) as in_parts:
            _read_in_parts(path, mapping, settings, executor)
        assert (str(in_parts.value), in_parts.value.fix) == (str(err), err.fix)
        return False
    messages, report, notes, fmt = _read_in_parts(path, mapping, settings, executor)
    pd.testing.assert_frame_equal(messages, expected[0])
    assert (report, notes, fmt) == expected[1:]
    return True


def _exports(suffix: str):
    """Exports as tools write them (quoted line breaks, quotes, delimiters and odd characters inside fields, CRLF;
    JSON lists on one line or indented), a third of them damaged once: a stray quote or bracket, a cut, a NUL, a
    short row, a line that is not JSON. Parquet: the same rows, undamaged, in row groups of 1-5 rows."""
    import csv
    import io
    import json
    import random

    from hypothesis import strategies as st

    from tests.test_fuzz_inputs import NASTY, words

    # Mostly words, as feedback is: a file whose texts are nearly all numbers or symbols is now refused as holding
    # no messages, and the parts of such files would be compared only as errors.
    cell = st.one_of(words, words, words, st.sampled_from(NASTY), st.text(max_size=30))
    row = st.tuples(st.integers(0, 40), cell, st.sampled_from(["2024-03-01"] * 20 + ["2024-13-01", "", "05/06/2024 10:00"]),
                    st.one_of(st.integers(1, 5), st.none(), cell))

    @st.composite
    def files(draw) -> bytes:
        rows = draw(st.lists(row, min_size=3, max_size=60))
        if suffix == ".parquet":  # small row groups, so that the file has several
            frame = pd.DataFrame(rows, columns=["id", "text", "date", "rating"])
            frame["rating"] = frame["rating"].map(lambda v: v if isinstance(v, int) else None).astype("Int64")
            out = io.BytesIO()
            frame.to_parquet(out, index=False, row_group_size=draw(st.integers(1, 5)))
            return out.getvalue()
        end = draw(st.sampled_from(["\n", "\r\n"]))
        keys = ["id", "text", "date", "rating"]
        if suffix == ".jsonl":
            text = end.join(json.dumps({k: v for k, v in zip(keys, r, strict=True) if v is not None or k != "rating"},
                                       ensure_ascii=draw(st.booleans())) for r in rows)
        elif suffix == ".json":  # a list of records, as exporters write it: on one line or indented, bare or in an object
            records = [{k: v for k, v in zip(keys, r, strict=True) if v is not None or k != "rating"} for r in rows]
            wrapper = draw(st.sampled_from([None, None, {"reviews": 0}, {"source": "shop", "reviews": 0},
                                            {"reviews": 0, "count": len(rows)}, {"reviews": 0, "replies": []},
                                            {'café "reviews"': 0}, {"reviews": 0, "more": {"x": [1]}}]))
            if wrapper is not None:
                records = {k: records if v == 0 else v for k, v in wrapper.items()}
            text = json.dumps(records, ensure_ascii=draw(st.booleans()), indent=draw(st.sampled_from([None, 1, 2])))
        else:
            out = io.StringIO()
            writer = csv.writer(out, delimiter="\t" if suffix == ".tsv" else ",", lineterminator=end)
            writer.writerow(["id", "text", "date", "rating"])
            writer.writerows(["" if c is None else c for c in r] for r in rows)
            text = out.getvalue()
        rnd = random.Random(draw(st.integers(0, 10**6)))
        damage = draw(st.sampled_from([None, None, None, None, '"', "cut", "\x00", "short"]))
        at = rnd.randrange(len(text))
        if damage == "cut":
            text = text[:at]
        elif damage == "short":
            text = text + end + "only one field"
        elif damage:
            text = text[:at] + damage + text[at:]
        return text.encode("utf-8", errors="surrogatepass").replace(b"\xed", b"?")

    return files()


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".json", ".jsonl", ".parquet"])
def test_reading_in_parts_gives_what_reading_at_once_gives_on_generated_files(suffix, tmp_path_factory):
    """Generated files, good and broken (the fuzz tests' own and damaged exports), cut into parts of 10-300 bytes (Parquet: row groups of
    1-5 rows): the same messages, report and notes, or the same error, as reading the whole file."""
    import io

    from hypothesis import given
    from hypothesis import strategies as st

    from pipelines.ingest import plan_parts
    from tests.test_fuzz_inputs import FORMATS, FUZZ, MAPPINGS, frames

    tmp = tmp_path_factory.mktemp("parts")
    seen = {"examples": 0, "cut": 0, "cut and read": 0, "cut in an object and read": 0}
    files = st.one_of(FORMATS[suffix], _exports(suffix))
    if suffix == ".parquet":  # written with small row groups, so that the file has several
        def small_groups(frame, rows):
            out = io.BytesIO()
            try:
                frame.to_parquet(out, index=False, row_group_size=rows)
            except Exception:  # a table pyarrow cannot store: such a file cannot exist
                return b""
            return out.getvalue()
        files = st.one_of(st.builds(small_groups, frames(), st.integers(1, 5)), _exports(suffix))

    @FUZZ
    @given(data=files, mapping=st.sampled_from(MAPPINGS), on_bad_date=st.sampled_from(["fail", "drop"]),
           part_bytes=st.integers(10, 300))
    def run(data, mapping, on_bad_date, part_bytes):
        path = tmp / f"feedback{suffix}"
        path.write_bytes(data)
        settings = replace(Settings(store_dir=tmp), on_bad_date=on_bad_date, read_part_bytes=part_bytes,
                           partition_size=3)
        seen["examples"] += 1
        plan = plan_parts(path, part_bytes, 3)
        cut = plan is not None and len(plan.parts) > 1
        seen["cut"] += cut
        read = cut and _same_result(path, mapping, settings)
        seen["cut and read"] += read
        seen["cut in an object and read"] += read and plan.parts[0].list_span[0] > 0

    run()
    # Many files really were read in several parts, and many of those gave messages.
    assert seen["cut"] >= seen["examples"] // 4 and seen["cut and read"] >= 40, seen
    assert suffix != ".json" or seen["cut in an object and read"] >= 10, seen  # {"reviews": [...]} too


def test_reading_real_reviews_in_parts_gives_the_same_messages(sample_frame, tmp_path):
    """The bundled reviews (quoted line breaks, commas, quotes) as CSV, TSV with CRLF line ends, a JSON list (on
    one line and indented), JSON Lines and Parquet, cut into ~50 parts: the same messages and report as reading
    each file at once."""
    from pipelines.ingest import plan_parts
    from pipelines.settings import ColumnMapping

    reviews = sample_frame.iloc[::5].copy()
    reviews.loc[reviews.index[::7], "text"] = reviews["text"].iloc[::7] + '\nSecond line, "quoted", and\r\na CRLF.'
    files = {"reviews.csv": lambda p: reviews.to_csv(p, index=False),
             "reviews.tsv": lambda p: reviews.to_csv(p, index=False, sep="\t", lineterminator="\r\n"),
             "reviews.json": lambda p: reviews.to_json(p, orient="records", force_ascii=False),
             "indented.json": lambda p: reviews.to_json(p, orient="records", indent=2),
             "in-object.json": lambda p: p.write_text(
                 '{"reviews": ' + reviews.to_json(orient="records", force_ascii=False) + "}\n", encoding="utf-8"),
             "reviews.jsonl": lambda p: reviews.to_json(p, orient="records", lines=True, force_ascii=False),
             "reviews.parquet": lambda p: reviews.to_parquet(p, index=False, row_group_size=20)}
    for name, write in files.items():
        path = tmp_path / name
        write(path)
        settings = replace(Settings(store_dir=tmp_path), read_part_bytes=path.stat().st_size // 50, partition_size=20)
        assert len(plan_parts(path, settings.read_part_bytes, 20).parts) >= 40
        for mapping in (ColumnMapping(metadata=("rating",)), ColumnMapping(text="missing")):
            _same_result(path, mapping, settings)


def test_a_cut_inside_quotes_is_caught_and_the_file_read_whole(tmp_path):
    """A stray quote in an unquoted field (5" screen) makes the quote count odd, so cuts may land inside a quoted
    field; the part that ends inside quotes is noticed and the whole file is read instead: nothing is lost."""
    from pipelines.executor import open_partitioned
    from pipelines.ingest import read_part
    from pipelines.settings import ColumnMapping

    lines = ["id,text"] + [f'{i},A 5" screen and more words {i}' if i == 3 else f'{i},"Line one of {i}\nline two, {i}"'
                           for i in range(60)]
    path = tmp_path / "stray.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    settings = replace(Settings(store_dir=tmp_path), read_part_bytes=90)
    opened = open_partitioned(path, ColumnMapping(), settings, LocalExecutor())
    assert any(read_part(p, opened.file_columns) is None for p in opened.plan.parts)
    _same_result(path, ColumnMapping(), settings)
    messages, _, _ = opened.clean(settings, LocalExecutor())
    assert len(messages) == 60 and messages["text"].str.contains("\n").sum() == 59


def test_a_json_list_is_cut_between_records_and_names_records_by_their_place(tmp_path, monkeypatch):
    """A JSON list of records is cut where one record ends and the next begins, and each part names its records by
    their place in the whole list (a bad date in record 57 is "record 57", as reading the file at once says).
    A "}, {" inside a text or a nested list is no record boundary: the part that ends there is refused and the
    whole file read, so nothing is lost or split."""
    import json

    from pipelines.errors import InputError
    from pipelines.executor import open_partitioned
    from pipelines.ingest import read_part
    from pipelines.settings import ColumnMapping

    # The planner looks at the file's first bytes only; here fewer than one line (pandas writes a list on one line).
    monkeypatch.setattr("pipelines.ingest._HEAD_BYTES", 64)
    records = [{"id": i, "text": f"Order {i} came late, {{again}}.", "date": "2024-03-01"} for i in range(1, 90)]
    records[56]["date"] = "2024-13-45"
    path = tmp_path / "export.json"
    path.write_text(json.dumps(records), encoding="utf-8")
    settings = replace(Settings(store_dir=tmp_path), read_part_bytes=400, on_bad_date="fail")
    opened = open_partitioned(path, ColumnMapping(), settings, LocalExecutor())
    assert len(opened.plan.parts) >= 10 and opened.plan.parts[-1].first_line > 80
    assert [read_part(p, opened.file_columns).frame["_row"].iloc[0] for p in opened.plan.parts] == \
        [p.first_line for p in opened.plan.parts]
    with pytest.raises(InputError, match=r"export\.json, column \"date\": 1 of 89 .* record 57: '2024-13-45'"):
        opened.clean(settings, LocalExecutor())
    assert not _same_result(path, ColumnMapping(), settings)

    tricky = [*({"id": i, "text": f"Message {i}"} for i in range(1, 20)),
              {"id": 20, "text": 'Quoted: "}, {" and }, {"id": 2} in a message'},
              {"id": 21, "text": "Nested replies below", "replies": [{"by": "shop"}, {"by": "customer"}, {"by": "shop"}]},
              *({"id": i, "text": f"Message {i}"} for i in range(22, 40))]
    seen = {"read in parts": 0, "read whole": 0}
    for indent in (None, 1):
        path.write_text(json.dumps(tricky, indent=indent), encoding="utf-8")
        for part_bytes in range(8, 300, 7):
            settings = replace(Settings(store_dir=tmp_path), read_part_bytes=part_bytes)
            assert _same_result(path, ColumnMapping(), settings)
            opened = open_partitioned(path, ColumnMapping(), settings, LocalExecutor())
            seen["read in parts" if opened.plan is not None else "read whole"] += 1
            messages, _, _ = opened.clean(settings, LocalExecutor())
            assert messages["text"].tolist() == [r["text"] for r in tricky]
    assert min(seen.values()) >= 5, seen  # cuts landed both beside and inside the tricky records


def test_a_date_column_found_by_its_values_is_found_when_the_file_is_read_in_parts(tmp_path):
    """A date column no name list holds ("Erfasst") is found by its values; a file read in parts knows only
    its header at first, so its first rows are read to look, and the messages keep their dates, as read whole."""
    from pipelines.executor import open_partitioned
    from pipelines.settings import ColumnMapping

    frame = pd.DataFrame({"Erfasst": [f"2026-03-{1 + i % 28:02d} 10:{i % 60:02d}" for i in range(500)],
                          "text": [f"Paket {i} kam zu spät" for i in range(500)]})
    for name, write in (("f.csv", lambda p: frame.to_csv(p, index=False)),
                        ("f.parquet", lambda p: frame.assign(Erfasst=pd.to_datetime(frame["Erfasst"]))
                         .to_parquet(p, index=False, row_group_size=40))):
        path = tmp_path / name
        write(path)
        settings = replace(Settings(store_dir=tmp_path), read_part_bytes=path.stat().st_size // 12, partition_size=40)
        opened = open_partitioned(path, ColumnMapping(), settings, LocalExecutor())
        assert opened.plan is not None and len(opened.plan.parts) >= 10
        assert opened.columns.date == "Erfasst" and opened.columns.date_from_values
        assert _same_result(path, ColumnMapping(), settings)
        messages, _, _ = opened.clean(settings, LocalExecutor())
        assert messages["date"].notna().all() and len(messages) == 500


def test_exports_joined_end_to_end_skip_their_repeated_headers_whole_or_in_parts(tmp_path):
    """``cat january.csv february.csv`` repeats the header (with February's byte-order mark) inside the file: those
    lines are skipped with one note, read whole or in parts, instead of a "date" that is no date stopping the run."""
    from pipelines.settings import ColumnMapping

    def month(m: int) -> str:
        return "id,text,date\n" + "".join(f"{m}-{i},Parcel {i} came late in month {m},2026-0{m}-{1 + i % 28:02d}\n"
                                           for i in range(50))

    path = tmp_path / "joined.csv"
    path.write_bytes(month(1).encode() + b"\xef\xbb\xbf" + month(2).encode())
    settings = replace(Settings(store_dir=tmp_path), read_part_bytes=300, partition_size=10, on_bad_date="fail")
    assert _same_result(path, ColumnMapping(), settings)
    messages, _, notes, _ = _read_in_parts(path, ColumnMapping(), settings, LocalExecutor())
    assert len(messages) == 100 and notes == [
        "Lines that repeat the header row were skipped: the file looks like several exports joined."]


def test_a_lone_surrogate_escape_in_json_reads_as_a_replacement_character(tmp_path):
    r"""JSON may escape half of a surrogate pair (``"\udc00"``), which no UTF-8 text can hold: it reads as U+FFFD
    in the text and in other columns, whole or in parts, instead of a traceback when the run is written. A
    complete pair (an emoji written as two escapes) stays the character it stands for."""
    from pipelines.settings import ColumnMapping

    lines = [f'{{"id": {i}, "text": "Parcel {i} came late", "store": "Main"}}' for i in range(1, 41)]
    lines[6] = '{"id": 7, "text": "Broken \\ud83d text", "store": "ab\\udc00cd"}'
    lines[20] = '{"id": 21, "text": "Loved it \\ud83d\\ude00", "store": "Main"}'
    for name, body in (("export.jsonl", "\n".join(lines) + "\n"), ("export.json", "[" + ",\n".join(lines) + "]")):
        path = tmp_path / name
        path.write_text(body, encoding="utf-8")
        messages, _, _, _ = _read_in_parts(path, ColumnMapping(), Settings(store_dir=tmp_path), LocalExecutor())
        by_id = messages.set_index("message_id")
        assert by_id.loc["7", "text"] == "Broken \ufffd text" and by_id.loc["7", "store"] == "ab\ufffdcd"
        assert by_id.loc["21", "text"] == "Loved it \U0001f600"
        settings = replace(Settings(store_dir=tmp_path), read_part_bytes=200, partition_size=5)
        assert _same_result(path, ColumnMapping(metadata=("store",)), settings)
        messages.to_parquet(tmp_path / "written.parquet")  # what a run writes: no UnicodeEncodeError


def test_a_json_list_inside_an_object_is_read_in_parts(tmp_path, monkeypatch):
    """``{"reviews": [...]}`` (what many APIs export) is cut inside its list and read in parts, records named by
    their place in the list. With a second member the file is read whole, which reads it when the other member is
    no list and names the problem when it is one, as a local run does."""
    import json

    from pipelines.errors import InputError
    from pipelines.executor import open_partitioned
    from pipelines.settings import ColumnMapping

    monkeypatch.setattr("pipelines.ingest._HEAD_BYTES", 64)
    records = [{"id": i, "text": f"Parcel {i} arrived dented.", "date": "2024-03-01"} for i in range(1, 90)]
    path = tmp_path / "export.json"
    for indent in (None, 2):
        path.write_text(json.dumps({"reviews": records}, indent=indent), encoding="utf-8-sig")
        settings = replace(Settings(store_dir=tmp_path), read_part_bytes=300, on_bad_date="fail")
        opened = open_partitioned(path, ColumnMapping(), settings, LocalExecutor())
        assert opened.plan is not None and len(opened.plan.parts) >= 10
        assert opened.plan.parts[0].start > 10 and opened.plan.parts[-1].first_line > 80
        messages, _, _ = opened.clean(settings, LocalExecutor())
        assert messages["text"].tolist() == [r["text"] for r in records]
        assert _same_result(path, ColumnMapping(), settings)

    records[56]["date"] = "2024-13-45"
    path.write_text(json.dumps({"reviews": records}), encoding="utf-8")
    with pytest.raises(InputError, match=r"export\.json, column \"date\": 1 of 89 .* record 57: '2024-13-45'"):
        open_partitioned(path, ColumnMapping(), settings, LocalExecutor()).clean(settings, LocalExecutor())
    assert not _same_result(path, ColumnMapping(), settings)

    records[56]["date"] = "2024-03-01"
    path.write_text(json.dumps({"reviews": records, "next_page": None}), encoding="utf-8")
    assert open_partitioned(path, ColumnMapping(), settings, LocalExecutor()).plan is None
    assert _same_result(path, ColumnMapping(), settings)
    path.write_text(json.dumps({"reviews": records, "replies": [{"id": 1, "text": "Sorry!"}]}), encoding="utf-8")
    with pytest.raises(InputError, match="an object with one list in it"):
        open_partitioned(path, ColumnMapping(), settings, LocalExecutor()).clean(settings, LocalExecutor())
    assert not _same_result(path, ColumnMapping(), settings)


def test_json_lines_keep_unicode_line_separators_inside_records(tmp_path):
    """U+2028 and U+0085 are line breaks to Python's splitlines but legal raw characters in a JSON string."""
    from pipelines.ingest import read_feedback_file

    path = tmp_path / "posts.jsonl"
    path.write_text('{"text": "first\u2028second"}\r\n\n{"text": "x\u0085y", "id": 7}\n{"text": "z", "id": null}\n',
                    encoding="utf-8")
    table = read_feedback_file(path)
    assert table.frame["text"].tolist() == ["first\u2028second", "x\u0085y", "z"]
    assert table.frame["_row"].tolist() == [1, 3, 4]
    assert table.frame["id"].tolist() == [None, 7, None]  # as JSON gave them: 7, not 7.0


def test_parquet_parts_type_columns_as_the_whole_file_does(tmp_path):
    """Read whole, an integer column with one missing value is floats (7.0) and a true/false one objects; a row
    group without the missing value must read the same way (found in CI: an id "-1" against "-1.0")."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipelines.ingest import read_feedback_file, read_part
    from pipelines.settings import ColumnMapping

    # Written by a tool other than pandas (no pandas metadata), as most Parquet exports are.
    table = pa.table({"text": [f"Message {i}" for i in range(9)], "id": pa.array([*range(8), None], pa.int64()),
                      "ok": pa.array([True, False] * 4 + [None]), "n": pa.array(range(9), pa.int32())})
    path = tmp_path / "typed.parquet"
    pq.write_table(table, path, row_group_size=2)
    settings = replace(Settings(store_dir=tmp_path), partition_size=2)
    whole = read_feedback_file(path).frame
    from pipelines.executor import open_partitioned

    opened = open_partitioned(path, ColumnMapping(id="id"), settings, LocalExecutor())
    assert len(opened.plan.parts) == 5
    parts = pd.concat([read_part(p, opened.file_columns).frame for p in opened.plan.parts], ignore_index=True)
    pd.testing.assert_frame_equal(parts, whole)
    assert whole["id"].dtype == "float64" and whole["ok"].dtype == object and whole["n"].dtype == "int32"
    for mapping in (ColumnMapping(id="id"), ColumnMapping(text="text", date="id"), ColumnMapping()):
        _same_result(path, mapping, settings)


def test_a_bad_whole_number_date_is_named_the_same_in_parts_and_at_once(tmp_path):
    """Found in CI: the bad value was shown as '-1.0' when read at once (masking the column made it floats) but
    '-1' in the part that held only it. Now both show the value as it is in the file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipelines.errors import InputError
    from pipelines.settings import ColumnMapping

    path = tmp_path / "feedback.parquet"
    # Whole numbers as epoch seconds (14 Nov 2023), and one that is no date.
    pq.write_table(pa.table({"text": pa.array([1_700_000_000] * 18 + [-1], pa.int64())}), path, row_group_size=1)
    settings = replace(Settings(store_dir=tmp_path), on_bad_date="fail", partition_size=3)
    mapping = ColumnMapping(text="text", date="text")
    with pytest.raises(InputError, match="row 19: '-1'\\)"):
        _read_at_once(path, mapping, settings)
    _same_result(path, mapping, settings)

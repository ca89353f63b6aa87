"""Incremental runs: the plan (extend or re-fit, and why), assignment and map placement, and the real path."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.incremental import UpdatePlan, assign_to_topics, place_on_map, plan_update
from pipelines.settings import Settings
from pipelines.store import load_run


def _messages(ids: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"message_id": ids})


def test_more_of_the_same_data_extends_the_run():
    old = _messages([f"m{i}" for i in range(100)])
    new = _messages([f"m{i}" for i in range(120)])
    plan = plan_update(new, Settings(), old, {"settings": Settings().to_dict()}, True)
    assert plan.incremental and len(plan.known) == 100 and plan.new.tolist() == list(range(100, 120))
    assert (plan.previous_rows == np.arange(100)).all()


def test_a_message_whose_text_changed_is_read_again():
    old = _messages([f"m{i}" for i in range(100)]).assign(text_hash=[f"h{i}" for i in range(100)])
    new = _messages([f"m{i}" for i in range(110)]).assign(text_hash=[f"h{i}" for i in range(110)])
    new.loc[7, "text_hash"] = "edited"
    plan = plan_update(new, Settings(), old, {"settings": Settings().to_dict()}, True)
    assert plan.incremental and 7 not in plan.known and plan.new.tolist() == [7, *range(100, 110)]


@pytest.mark.parametrize("change, reason", [
    (dict(new=[f"x{i}" for i in range(100)]), "different data"),
    (dict(new=[f"m{i}" for i in range(200)]), "more than 50%"),
    (dict(settings=replace(Settings(), seed=7)), "settings changed since the earlier run (seed)"),
    (dict(refit="always"), "re-fit was requested"),
    (dict(embeddings=False), "no stored embeddings"),
    (dict(previous=None), "no earlier run"),
])
def test_a_refit_happens_when_the_data_or_settings_changed_and_says_why(change, reason):
    old = _messages([f"m{i}" for i in range(100)])
    new = _messages(change.get("new", [f"m{i}" for i in range(110)]))
    previous = old if "previous" not in change else change["previous"]
    plan = plan_update(new, change.get("settings", Settings()), previous, {"settings": Settings().to_dict()},
                       change.get("embeddings", True), change.get("refit", "auto"))
    assert not plan.incremental and reason in plan.reason


def test_a_file_that_is_not_more_of_the_same_says_what_to_do():
    """A weekly export holds only its week: the note points to --add. The same texts under other ids (the id column
    changed) are said to be that, not "different data"."""
    old = _messages([f"m{i}" for i in range(100)]).assign(text_hash=[f"h{i}" for i in range(100)])
    week = _messages([f"w{i}" for i in range(20)]).assign(text_hash=[f"n{i}" for i in range(20)])
    plan = plan_update(week, Settings(), old, {"settings": Settings().to_dict()}, True)
    assert plan.reason == ("only 0% of the earlier run's messages are in this file (different data, not more of the "
                           "same; to add a file's messages to the earlier ones, use --add, or tick \"Add these messages "
                           "to the latest run's\" in the upload form)")
    renamed = _messages([f"row-{i}" for i in range(100)]).assign(text_hash=[f"h{i}" for i in range(100)])
    plan = plan_update(renamed, Settings(), old, {"settings": Settings().to_dict()}, True)
    assert plan.reason == ("only 0% of the earlier run's messages are in this file (100% of its texts are in this "
                           "file under other ids: was another id column used?)")
    # A part of the same data (a month of it) is no "different data".
    part = old.iloc[:5]
    plan = plan_update(part, Settings(), old, {"settings": Settings().to_dict()}, True)
    assert plan.reason.startswith("only 5% of the earlier run's messages are in this file (the file is a part of that "
                                  "data, so its topics are found afresh for that part alone; to add")


def test_added_messages_follow_the_earlier_ones_and_replace_those_with_their_id():
    from pipelines.incremental import add_to_earlier

    dates = pd.to_datetime(["2026-11-02", "2026-11-03", "2026-11-04"], utc=True)
    earlier = pd.DataFrame({"message_id": ["a", "b", "c"], "text": ["x", "y", "z"], "text_hash": ["1", "2", "3"],
                            "date": dates, "source_row": [2, 3, 4], "rating": [1.0, 2.0, 3.0], "topic": [0, 1, 0]})
    week = pd.DataFrame({"message_id": ["c", "d"], "text": ["z, edited", "w"], "text_hash": ["9", "8"],
                         "date": pd.to_datetime(["2026-11-30", "2026-12-01"], utc=True), "source_row": [2, 3],
                         "channel": ["app", "web"]})
    messages, replaced = add_to_earlier(earlier, week, ["rating"])
    assert replaced == 1
    assert messages["message_id"].tolist() == ["a", "b", "c", "d"]
    assert messages["text"].tolist() == ["x", "y", "z, edited", "w"]
    assert list(messages.columns) == ["message_id", "text", "text_hash", "date", "source_row", "rating", "channel"]
    assert messages["rating"].isna().tolist() == [False, False, True, True]


@pytest.mark.slow
def test_a_weekly_file_is_added_to_the_earlier_run(real_run_store, small_sample_csv, sample_frame, encoder, tmp_path):
    """Through the real path: a week's export of 40 messages (2 of them newer versions of earlier ones) is added to
    the run with --add; the earlier messages keep their topics, only the new ones are embedded, the note says so."""
    from pipelines.analyse import analyse_file
    from pipelines.settings import ColumnMapping

    store = tmp_path / "store"
    shutil.copytree(real_run_store, store)
    first = load_run(store)
    earlier = pd.read_csv(small_sample_csv)
    week = pd.concat([sample_frame.drop(index=sample_frame.index[::12]).sample(n=38, random_state=11),
                      earlier.iloc[:2]])
    path = tmp_path / "week.csv"
    week.to_csv(path, index=False)
    summary = analyse_file(path, ColumnMapping(metadata=("rating",)), Settings(store_dir=store), encoder=encoder,
                           add=True)
    run = load_run(store)
    assert len(run.messages) == len(first.messages) + 38
    assert run.manifest["update"]["mode"] == "incremental" and summary.newly_embedded == 38
    outliers = next(line for line in summary.format().splitlines() if line.strip().startswith("Outliers"))
    assert "without a topic" in outliers and "before outlier reduction" not in outliers  # no fit in this run
    old = run.messages.set_index("message_id").loc[first.messages["message_id"]]
    assert (old["topic"].to_numpy() == first.messages["topic"].to_numpy()).all()
    assert (f"Added 40 messages from week.csv to the {len(first.messages):,} of run {first.id}; 2 of them replaced "
            "earlier versions (same id).") in summary.notes


@pytest.mark.slow
def test_adding_to_a_run_that_kept_personal_data_redacts_it_now(sample_frame, encoder, tmp_path):
    """A run made with --no-redact, then a week added with redaction on: the earlier messages' e-mail addresses must
    not reach the new run, which is asked to redact."""
    from pipelines.analyse import analyse_file
    from pipelines.settings import ColumnMapping

    first = sample_frame.iloc[300:340].copy()
    first.iloc[0, first.columns.get_loc("text")] = "Write to jane.doe@example.com about the refund please."
    first.to_csv(tmp_path / "first.csv", index=False)
    sample_frame.iloc[340:350].to_csv(tmp_path / "week.csv", index=False)
    store = tmp_path / "store"
    analyse_file(tmp_path / "first.csv", ColumnMapping(metadata=("rating",)),
                 Settings(store_dir=store, redact_pii=False), encoder=encoder)
    assert load_run(store).messages["text"].str.contains("jane.doe@example.com").any()
    analyse_file(tmp_path / "week.csv", ColumnMapping(metadata=("rating",)), Settings(store_dir=store), encoder=encoder,
                 add=True)
    run = load_run(store)
    assert len(run.messages) == 50 and not run.messages["text"].str.contains("jane.doe").any()
    assert run.messages["text"].str.contains(r"\[email\]").sum() == 1


def test_adding_without_an_earlier_run_says_what_to_do(tmp_path, capsys):
    from pipelines.cli import main

    path = tmp_path / "week.csv"
    pd.DataFrame({"text": [f"message {i} about the delivery" for i in range(40)]}).to_csv(path, index=False)
    assert main(["analyse", str(path), "--add", "--store", str(tmp_path / "store"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"Error: --add: there is no earlier run in {tmp_path / 'store'} to add week.csv to.")
    assert "Analyse the first file without --add" in err and not (tmp_path / "store" / "runs").exists()


def test_new_messages_join_the_nearest_topic_and_few_stay_without_one():
    centroids = np.eye(3, dtype=np.float32)
    vectors = np.array([[0.9, 0.1, 0], [0.1, 0.95, 0], [0.3, 0.3, 0.3], [0, 0, 1]], dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    topics, sims = assign_to_topics(vectors, centroids, np.array([4, 7, 9]), 0.7, max_outlier_share=0.25)
    assert topics.tolist() == [4, 7, -1, 9] and sims[2] < 0.7
    topics, _ = assign_to_topics(vectors, centroids, np.array([4, 7, 9]), 0.7, max_outlier_share=0.0)
    assert -1 not in topics.tolist()


def test_new_messages_are_placed_among_their_nearest_known_messages():
    known = np.eye(4, dtype=np.float32)
    coords = np.array([[0, 0], [10, 10], [20, 20], [30, 30]], dtype=np.float32)
    placed = place_on_map(np.array([[0, 1, 0, 0]], dtype=np.float32), known, coords, neighbours=1)
    assert placed.tolist() == [[10, 10]]
    # Given topics, a new message is placed among the known messages of its own topic.
    new = np.array([[0, 1, 0, 0], [0, 0.9, 0.1, 0], [1, 0, 0, 0]], dtype=np.float32)
    placed = place_on_map(new, known, coords, neighbours=1, topics=np.array([5, 6, 8]),
                          known_topics=np.array([5, 5, 6, 6]))
    assert placed.tolist() == [[10, 10], [20, 20], [0, 0]]  # the last one's topic has no known messages: all count


def _fitting(n: int, poor: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` unit vectors: the first ``n - poor`` close to topic 0 or 1 (axes 0 and 1), the rest far from both."""
    vectors = rng.normal(0, 0.05, (n, 8))
    vectors[np.arange(n - poor), np.arange(n - poor) % 2] += 1.0
    vectors[n - poor:, 4] += 1.0
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize(("poor_new", "extends"), [(10, True), (14, False)])
def test_new_messages_that_fit_as_the_earlier_ones_do_extend_the_run(poor_new, extends):
    """Short messages fit their topics loosely: 40% of a run's own messages are far from every topic. A new batch
    where 50% are keeps the topics (10 points worse: the usual spread of new data), one where 70% are is re-fitted;
    the old rule (at most 30%, whatever the run) re-fitted both."""
    from pipelines.analyse import _extend
    from pipelines.store import Run

    rng = np.random.default_rng(3)
    old = _fitting(60, 24, rng)
    topics_of_old = np.where(np.arange(60) < 36, np.arange(60) % 2, -1)
    messages = pd.DataFrame({"message_id": [f"m{i}" for i in range(60)], "topic": topics_of_old,
                             "x": rng.normal(size=60), "y": rng.normal(size=60)})
    topics = pd.DataFrame({"topic": [0, 1], "size": [18, 18], "representative_ids": [["m0"], ["m1"]]})
    previous = Run("r1", Path("."), {"counts": {}}, messages, topics, pd.DataFrame())
    new = _fitting(20, poor_new, rng)
    everything = pd.DataFrame({"message_id": [f"m{i}" for i in range(80)]})
    plan = UpdatePlan(True, "", known=np.arange(60), previous_rows=np.arange(60), new=np.arange(60, 80))
    result, fit = _extend(previous, old, everything, np.vstack([old, new]), plan, Settings())
    assert fit.usual == pytest.approx(0.4) and fit.new == pytest.approx(poor_new / 20)
    assert (result is not None) == extends
    if not extends:
        assert fit.words() == "70% of the new messages fit no existing topic well (of the earlier ones, 40%)"


@pytest.mark.slow
def test_a_re_run_with_more_messages_keeps_topics_and_scores_only_the_new_ones(real_run_store, small_sample_csv,
                                                                           sample_frame, encoder, tmp_path):
    from pipelines.analyse import analyse_file
    from pipelines.settings import ColumnMapping
    from pipelines.store import load_run

    store = tmp_path / "store"
    shutil.copytree(real_run_store, store)
    first = load_run(store)
    bigger = tmp_path / "bigger.csv"
    extra = sample_frame.drop(index=sample_frame.index[::12]).sample(n=60, random_state=5)
    pd.concat([pd.read_csv(small_sample_csv), extra]).to_csv(bigger, index=False)
    summary = analyse_file(bigger, ColumnMapping(metadata=("rating",)), Settings(store_dir=store), encoder=encoder)
    run = load_run(store)
    assert run.manifest["update"]["mode"] == "incremental" and run.manifest["update"]["new"] == 60
    assert summary.newly_embedded == 60 and "Finding topics" not in str(summary.timings)
    old = run.messages.set_index("message_id").loc[first.messages["message_id"]]
    assert (old["topic"].to_numpy() == first.messages["topic"].to_numpy()).all()
    assert np.allclose(old["sentiment"].to_numpy(), first.messages["sentiment"].to_numpy())
    assert run.topics["key"].tolist() == first.topics["key"].tolist()  # labels and curation carry over as they are
    new = run.messages[~run.messages["message_id"].isin(first.messages["message_id"])]
    assert len(new) == 60 and (new["topic"] >= 0).mean() >= 0.9 and new["x"].notna().all()
    assert new["expectation"].notna().all() and new["areas"].notna().all()  # new messages were tagged too
    assert run.topics["size"].sum() + int((run.messages["topic"] == -1).sum()) == len(run.messages)
    # --refit finds topics afresh
    analyse_file(bigger, ColumnMapping(metadata=("rating",)), replace(Settings(store_dir=store), refit="always"),
                 encoder=encoder)
    assert load_run(store).manifest["update"]["mode"] == "refit"


def test_a_file_added_to_a_run_must_fit_its_columns():
    """--add: a file without ids added to a run with ids is refused (a message the run holds would come again under
    an id made from its text, and count twice); another text column, and metadata the file lacks or adds, are said."""
    from pipelines.errors import InputError
    from pipelines.incremental import check_added_columns

    run = {"text": "text", "date": "date", "id": "review_id", "metadata": ["rating"]}
    with pytest.raises(InputError) as refused:
        check_added_columns(run, "comment", "created", None, ["ticket", "channel"], "export.csv", "R1")
    assert str(refused.value.message).startswith('export.csv: the messages of run R1 have ids (column "review_id"), '
                                                 "and this file has no id column")
    assert refused.value.fix.startswith('Map the column of this file that holds the same ids as "review_id" with --id')
    notes = check_added_columns(run, "comment", None, "ticket", ["channel"], "export.csv", "R1")
    assert notes == [
        'export.csv: the message text is read from column "comment"; run R1\'s came from "text". Check that both '
        "hold the messages.",
        'export.csv has no date column, so its messages are undated: they count in totals, not in trends (run R1\'s '
        'dates came from "date").',
        'export.csv has no column "rating", which the run\'s messages have: its messages have none there.',
        'export.csv adds "channel", which the run\'s earlier messages do not have: a filter on it shows only this '
        "file's messages.",
    ]
    assert check_added_columns(run, "text", "date", "review_id", ["rating"], "week.csv", "R1") == []
    # A run without ids (made from the texts) takes a file without ids: the same message gets the same id again.
    assert check_added_columns({**run, "id": None}, "text", "date", None, ["rating"], "week.csv", "R1") == []


@pytest.mark.slow
def test_a_file_without_ids_is_refused_before_it_is_added_and_the_run_stays(real_run_store, small_sample_csv,
                                                                            tmp_path, capsys):
    from pipelines.cli import main

    store = tmp_path / "store"
    shutil.copytree(real_run_store, store)
    before = load_run(store)
    week = pd.read_csv(small_sample_csv).head(60).drop(columns=["review_id"])  # an export without the id column
    week.to_csv(tmp_path / "week.csv", index=False)
    assert main(["analyse", str(tmp_path / "week.csv"), "--add", "--store", str(store), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f'Error: week.csv: the messages of run {before.id} have ids (column "review_id"), and this '
                          "file has no id column") and "Traceback" not in err
    after = load_run(store)
    assert after.id == before.id and len(after.messages) == len(before.messages)

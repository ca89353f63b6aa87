"""Labels survive re-runs: curate a real run, re-run with 20% more data and again with a re-fit."""

from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from pipelines.analyse import analyse_file
from pipelines.curation import Curator, load_curated_run, propose_split
from pipelines.lineage import match_topics, new_since_last_run
from pipelines.settings import ColumnMapping, Settings
from pipelines.store import load_run


def test_matching_inherits_keys_by_overlap_and_flags_new_and_gone():
    old_ids = np.array([f"m{i}" for i in range(30)])
    old = np.repeat([0, 1, 2], 10)
    new_ids = np.array([f"m{i}" for i in range(10, 40)])  # m0-m9 (topic 0) gone, m30-m39 new
    new = np.repeat([5, 3, 4], 10)  # renumbered: old 1 → 5, old 2 → 3, new topic 4
    m = match_topics(new_ids, new, np.zeros((30, 4)), "R2", old_ids, old, None, {0: "a", 1: "b", 2: "c"}, "R1")
    assert m.keys == {5: "b", 3: "c", 4: "R2.4"}
    assert m.status == {5: "matched", 3: "matched", 4: "new"} and m.gone == ["a"]
    assert m.summary()["matched"] == 2 and m.confidence[5] == 1.0



def test_a_refit_says_what_it_did_to_the_topics_and_marks_the_new_ones():
    """After a re-fit the summary, the Data page and the Topics page say how many topics carried on, came and went,
    and the Topics page marks the new ones; a split part (the analyst's, key not of this run) is not marked."""
    from pipelines.lineage import changes_in_words

    manifest = {"update": {"mode": "refit"}, "lineage": {"previous_run": "R1", "matched": 27, "new": 2,
                                                         "gone": ["a", "b", "c", "d"]}}
    assert changes_in_words(manifest) == "Compared with run R1: 27 topics carried on (with their names and edits), 2 new, 4 gone"
    topics = pd.DataFrame({"topic": [0, 1, 2, 3], "key": ["k0", "R2.1", "R2.2", "part-9"],
                           "key_status": ["matched", "new", "new", "new"]})
    assert new_since_last_run(topics, manifest, "R2") == {1, 2}
    # A first run, or one that extended the earlier run, has nothing to say or mark.
    for other in ({"update": {"mode": "refit"}, "lineage": {"previous_run": None}},
                  {"update": {"mode": "incremental"}, "lineage": {"previous_run": "R1", "matched": 3}}):
        assert changes_in_words(other) is None and new_since_last_run(topics, other, "R2") == set()


@pytest.mark.slow
def test_curated_labels_survive_more_data_and_a_refit(real_run_store, small_sample_csv, sample_frame, encoder,
                                                      tmp_path):
    store = tmp_path / "store"
    shutil.copytree(real_run_store, store)
    first = load_curated_run(store).run
    topics = first.topics  # largest first
    keys = topics["key"].tolist()
    cur = Curator(store, first.id)
    for i, key in enumerate(keys[:6]):
        cur.rename(key, f"Curated {i}")
    cur.merge([keys[6], keys[7]], into=keys[6])
    cur.split(keys[0], propose_split(first, int(topics["topic"].iloc[0]), 2), ["Part A", "Part B"])
    moved = first.messages.loc[first.messages["topic"] == topics["topic"].iloc[3], "message_id"].head(3).tolist()
    cur.move(moved, to=keys[4])
    curated_keys = keys[1:7]  # renamed, or the merge target (keys[0] was split, keys[7] merged into keys[6])
    before = load_curated_run(store).run

    bigger = tmp_path / "bigger.csv"
    extra = sample_frame.drop(index=sample_frame.index[::12]).sample(n=len(first.messages) // 5, random_state=3)
    pd.concat([pd.read_csv(small_sample_csv), extra]).to_csv(bigger, index=False)
    figures = []
    for settings in (Settings(store_dir=store), replace(Settings(store_dir=store), seed=7, umap_neighbors=12)):
        analyse_file(bigger, ColumnMapping(metadata=("rating",)), settings, encoder=encoder)
        curated = load_curated_run(store)
        run = curated.run
        raw = load_run(store)
        if raw.manifest["update"]["mode"] == "refit":  # the summary and the pages say what the re-fit did
            lineage = raw.manifest["lineage"]
            assert f"Compared with run {lineage['previous_run']}: " in " ".join(raw.manifest["notes"])
            assert len(new_since_last_run(raw.topics, raw.manifest, raw.id)) == lineage["new"]
        matched = [k for k in curated_keys if k in set(raw.topics.loc[raw.topics["key_status"] == "matched", "key"])]
        by_key = run.topics.set_index("key")
        kept = [k for k in matched if by_key.at[k, "label"] == before.topics.set_index("key").at[k, "label"]]
        figures.append((len(curated_keys), len(matched), len(kept)))
        assert len(matched) >= 0.6 * len(curated_keys), figures
        assert len(kept) >= 0.95 * len(matched), figures
        # A matched key is the same topic: most of its earlier messages are in it again.
        for k in matched:
            old_members = set(before.messages.loc[before.messages["topic"] == before.topics.set_index("key").at[k, "topic"],
                                                  "message_id"])
            new_members = set(run.messages.loc[run.messages["topic"] == by_key.at[k, "topic"], "message_id"])
            where = raw.messages.loc[raw.messages["message_id"].isin(old_members - new_members), "topic"]
            info = raw.topics.set_index("topic").reindex(where.unique().tolist())[["key", "key_status"]]
            assert len(old_members & new_members) >= 0.5 * len(old_members), (k, figures, where.value_counts().to_dict(),
                                                                               info.to_dict(), len(old_members))
        # Split parts and moves hold by message id; no edit is silently dropped.
        assert {"Part A", "Part B"} <= set(run.topics["label"])
        # The topic they were moved to holds them, or (when the re-fit kept no such topic) its rename is listed.
        target = by_key["topic"].get(keys[4])
        assert (target is not None and set(run.messages.loc[run.messages["message_id"].isin(moved), "topic"]) <= {target}) \
            or any(e.kind == "rename" and e.payload["key"] == keys[4] for e, _ in curated.unresolved)
        unmatched = [k for k in curated_keys if k not in matched]
        listed = {e.payload.get("key") for e, _ in curated.unresolved} | \
                 {k for e, _ in curated.unresolved if e.kind == "merge" for k in e.payload["keys"]}
        # An unmatched curated topic's edits are listed for the analyst.
        assert all(k in listed or k in set(run.topics["key"]) for k in unmatched), (unmatched, curated.unresolved)
        # The merged-away topic's messages stay with the topic they were merged into.
        merged = set(first.messages.loc[first.messages["topic"] == topics.set_index("key").at[keys[7], "topic"],
                                        "message_id"])
        assert keys[7] not in set(run.topics["key"])
        if keys[6] in by_key.index:
            assert set(run.messages.loc[run.messages["message_id"].isin(merged), "topic"]) == {by_key.at[keys[6], "topic"]}
    print("curated topics, matched, kept label (more data; re-fit):", figures)

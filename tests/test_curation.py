"""Curation: the event log, the state derived from it, and curated runs (synthetic runs; real ones in test_lineage)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.curation import (
    CurationError,
    CurationLog,
    Curator,
    Event,
    audit_table,
    derive_state,
    load_curated_run,
    propose_split,
    undo_effects,
)
from pipelines.store import load_run, publish_run

RUN = "20260101-000000-aaaa"


def _store(tmp_path: Path, sizes=(12, 8, 6)) -> Path:
    """A run with three well-separated topics of ``sizes`` messages, embeddings included."""
    rng = np.random.default_rng(0)
    rows, vectors = [], []
    for t, n in enumerate(sizes):
        centre = np.zeros(8)
        centre[t] = 1
        for i in range(n):
            half = i % 2  # two sub-groups per topic, so a split has something to find
            v = centre + 0.3 * np.eye(8)[3 + half] + 0.02 * rng.normal(size=8)
            vectors.append(v / np.linalg.norm(v))
            rows.append({"message_id": f"m{t}-{i}", "text": f"topic{t} word{half} message {i}", "topic": t,
                         "sentiment": 0.1 * t, "date": pd.Timestamp("2026-01-01", tz="UTC")})
    messages = pd.DataFrame(rows)
    topics = pd.DataFrame({"topic": range(len(sizes)), "label": [f"t{t} · auto" for t in range(len(sizes))],
                           "keywords": [[f"topic{t}", "auto"] for t in range(len(sizes))], "size": list(sizes),
                           "share": [n / sum(sizes) for n in sizes],
                           "representative_ids": [[f"m{t}-0"] for t in range(len(sizes))],
                           "key": [f"K{t}" for t in range(len(sizes))]})
    keywords = pd.DataFrame({"topic": [0], "rank": [1], "word": ["topic0"], "weight": [1.0]})
    publish_run(tmp_path, RUN, {"messages": messages, "topics": topics, "keywords": keywords}, {"counts": {}},
                arrays={"embeddings": np.asarray(vectors, dtype=np.float16)})
    return tmp_path


def _topics(store: Path) -> pd.DataFrame:
    return load_curated_run(store).run.topics.set_index("key")


def test_without_edits_the_curated_run_is_the_run(tmp_path):
    store = _store(tmp_path)
    curated = load_curated_run(store)
    assert curated.version == 0 and curated.unresolved == []
    assert curated.run.messages["topic"].tolist() == load_run(store).messages["topic"].tolist()
    assert _topics(store)["label"].to_dict() == {"K0": "t0 · auto", "K1": "t1 · auto", "K2": "t2 · auto"}


def test_rename_merge_move_ignore_pin_and_their_audit_entries(tmp_path):
    store = _store(tmp_path)
    cur = Curator(store)
    cur.rename("K0", "Late deliveries", "Parcels that arrive after the promised day", user="ana")
    cur.merge(["K1", "K2"], into="K1", user="ana")
    assert _topics(store).loc["K1", "size"] == 14 and "K2" not in _topics(store).index
    cur.move(["m0-0", "m0-1"], to="K1", user="bo")
    cur.pin("K1", "m0-0", user="bo")
    topics = _topics(store)
    assert topics.loc["K0", ["label", "size"]].tolist() == ["Late deliveries", 10]
    assert topics.loc["K1", "size"] == 16 and topics.loc["K1", "representative_ids"][0] == "m0-0"
    cur.ignore("K0", user="ana")
    run = load_curated_run(store).run
    assert (run.messages["topic"] == -1).sum() == 10 and bool(_topics(store).loc["K0", "ignored"])
    events = CurationLog(store).events()
    assert [e.kind for e in events] == ["rename", "merge", "move", "pin", "ignore"]
    assert [e.user for e in events] == ["ana", "ana", "bo", "bo", "ana"]
    assert events[0].before["label"] == "t0 · auto" and events[0].after["label"] == "Late deliveries"
    assert events[2].before == {"topics": {"m0-0": 0, "m0-1": 0}, "labels": ["Late deliveries"]}
    assert audit_table(store)["details"].tolist()[2] == 'Moved 2 messages from "Late deliveries" to "t1 · auto": m0-0, m0-1'


def test_a_name_another_topic_has_or_the_name_it_has_is_refused(tmp_path):
    """Two topics of one name were drawn as one bar on the Overview and could not be told apart in pickers; saving an
    unchanged name was logged as an edit."""
    store = _store(tmp_path)
    cur = Curator(store)
    for name in ("t1 · auto", "  T1  ·  AUTO "):
        with pytest.raises(CurationError, match='Another topic is already called "t1 · auto"'):
            cur.rename("K0", name)
    with pytest.raises(CurationError, match="Nothing to change"):
        cur.rename("K0", "t0 · auto")
    cur.rename("K0", "t0 · auto", "now with a description")  # the description is a change
    proposal = propose_split(load_run(store), 0, 2)
    with pytest.raises(CurationError, match='Two parts are called "Same" and "same", one name to a reader'):
        cur.split("K0", proposal, ["Same", "same"])
    with pytest.raises(CurationError, match='Another topic is already called "t2 · auto"'):
        cur.split("K0", proposal, ["Odd ones", "t2 · auto"])
    cur.split("K0", proposal, ["t0 · auto", "Even ones"])  # a part may keep the name of the topic it splits
    cur.ignore("K2")
    cur.rename("K1", "t2 · auto")  # a topic marked as noise frees its name
    assert [e.kind for e in CurationLog(store).events()] == ["rename", "split", "ignore", "rename"]


def test_undoing_an_undo_that_cannot_apply_now_is_refused_and_said(tmp_path):
    """Undoing the undo of a move to a split part, once the split was undone too, read "Re-applied" and changed
    nothing; the Curate page did not list the move as not applying."""
    store = _store(tmp_path)
    cur = Curator(store)
    split = cur.split("K0", propose_split(load_run(store), 0, 2), ["Odd ones", "Even ones"])
    part = next(p["key"] for p in split.payload["parts"] if p["label"] == "Even ones")
    move = cur.move(["m1-0"], to=part)
    undo_move = cur.undo(move.id)
    cur.undo(split.id)
    with pytest.raises(CurationError, match=f"Edit #{move.id} cannot be applied again now: the topic it moves "
                                            "messages to is not in this run"):
        cur.undo(undo_move.id)
    assert [e.kind for e in CurationLog(store).events()] == ["split", "move", "undo", "undo"]
    cur.undo(4)  # the split back: the move can apply again
    cur.undo(undo_move.id)
    assert load_curated_run(store).run.topics.set_index("label").loc["Even ones", "size"] == 7


def test_the_audit_names_topics_never_renamed_by_their_names_not_their_keys(tmp_path):
    store = _store(tmp_path)
    cur = Curator(store)
    cur.move(["m0-0", "m0-1"], to="K2", user="bo")
    cur.pin("K2", "m0-0", user="bo")
    cur.ignore("K1", user="ana")
    details = audit_table(store)["details"].tolist()  # newest first
    assert details == ['Marked "t1 · auto" as noise', 'Pinned "topic0 word0 message 0" (message m0-0) in "t2 · auto"',
                       'Moved 2 messages from "t0 · auto" to "t2 · auto": m0-0, m0-1']
    # Edits logged before names were recorded with them are named from the run the page shows.
    with CurationLog(store)._connect() as db:
        db.execute("UPDATE events SET before = NULL, after = NULL")
    assert audit_table(store)["details"].tolist()[-1].endswith('to "K2": m0-0, m0-1')
    named = audit_table(store, {"K1": "Noise", "K2": "Coffee"})["details"].tolist()
    assert named[0] == 'Marked "Noise" as noise' and named[-1].startswith('Moved 2 messages to "Coffee"')


def test_an_edit_whose_topic_left_the_run_is_listed_with_what_it_did(tmp_path):
    """After a re-fit drops a renamed topic, the Curate page lists the edit so it can be redone: by what it did
    ('Renamed "t1 · auto" to "Billing"'), not only by its number and kind."""
    from pipelines.curation import describe_edit

    store = _store(tmp_path)
    Curator(store).rename("K1", "Billing", user="ana")
    run = load_run(store)
    keep = run.messages["topic"] != 1
    keywords = pd.DataFrame({"topic": [0], "rank": [1], "word": ["topic0"], "weight": [1.0]})
    publish_run(store, "20260201-000000-bbbb", {"messages": run.messages[keep], "keywords": keywords,
                                                "topics": run.topics[run.topics["key"] != "K1"]}, {"counts": {}})
    (event, reason), = load_curated_run(store).unresolved
    assert (describe_edit(event, {}), reason) == ('Renamed "t1 · auto" to "Billing"', "its topic is not in this run")


def test_a_renamed_topic_that_left_the_run_is_followed_to_where_its_messages_went(tmp_path):
    """A re-fit gave renamed topic K1's messages a topic of its own (fresh key) and spread a few: the Curate page says
    where they went, and giving the name to the topic holding most of them redoes the rename there."""
    from pipelines.curation import trail_in_words, trails_of_unresolved

    store = _store(tmp_path)
    Curator(store, RUN).rename("K1", "Billing", "Invoices and charges", user="ana")
    run = load_run(store)
    messages = run.messages.copy()
    k1 = messages.index[messages["topic"] == 1]  # 8 messages: 5 to a new topic 3, 2 to topic 0, 1 to no topic
    messages.loc[k1[:5], "topic"], messages.loc[k1[5:7], "topic"], messages.loc[k1[7:], "topic"] = 3, 0, -1
    topics = pd.concat([run.topics[run.topics["key"] != "K1"],
                        run.topics[run.topics["key"] == "K1"].assign(topic=3, key="R2.3", label="invoice · charge")])
    keywords = pd.DataFrame({"topic": [0], "rank": [1], "word": ["topic0"], "weight": [1.0]})
    publish_run(store, "20260201-000000-bbbb", {"messages": messages, "keywords": keywords, "topics": topics},
                {"counts": {}})
    curated = load_curated_run(store)
    (event, _), = curated.unresolved
    trail = trails_of_unresolved(store, curated)[event.id]
    assert (trail.messages, trail.without_topic) == (8, 1)
    assert trail.parts == [("R2.3", "invoice · charge", 5), ("K0", "t0 · auto", 2)]
    assert trail_in_words(trail) == "Its 8 messages are now in “invoice · charge” (5) and “t0 · auto” (2); 1 has no topic."

    key, label, _ = trail.parts[0]
    Curator(store, "20260201-000000-bbbb").rename(key, event.payload["label"], event.payload["description"],
                                                  seen_label=label)
    again = load_curated_run(store)
    assert again.run.topics.set_index("key").at["R2.3", "label"] == "Billing"
    assert trails_of_unresolved(store, again)[event.id].parts[0][:2] == ("R2.3", "Billing")  # the page says: redone
    # The run the rename was made on is gone from the store: nothing to follow, and no error.
    import shutil

    shutil.rmtree(store / "runs" / RUN)
    assert trails_of_unresolved(store, load_curated_run(store)) == {}


def test_undo_reverts_one_edit_and_undoing_the_undo_reapplies_it(tmp_path):
    store = _store(tmp_path)
    cur = Curator(store)
    merge = cur.merge(["K1", "K2"], into="K1")
    cur.rename("K0", "Late deliveries")
    undo = cur.undo(merge.id)
    assert set(_topics(store).index) == {"K0", "K1", "K2"} and _topics(store).loc["K0", "label"] == "Late deliveries"
    with pytest.raises(CurationError, match="already undone"):
        cur.undo(merge.id)
    cur.undo(undo.id)
    assert set(_topics(store).index) == {"K0", "K1"}


def test_the_audit_offers_to_undo_an_undo_in_force_and_never_an_undone_edit(tmp_path):
    store = _store(tmp_path)
    cur = Curator(store)
    rename = cur.rename("K0", "Late deliveries")
    move = cur.move(["m0-0", "m0-1"], to="K1")
    undo = cur.undo(move.id)
    table = audit_table(store).set_index("id_")
    assert table["state"].to_dict() == {undo.id: "undo", move.id: "undone", rename.id: "applied"}
    assert table.at[undo.id, "details"] == f'Undid edit #{move.id}: Moved 2 messages from "Late deliveries" to "t1 · auto": m0-0, m0-1'
    # Newest first, so the default choice is the undo just made; the undone move is not offered.
    offered = audit_table(store).query("undo_ != ''")
    assert offered["id_"].tolist() == [undo.id, rename.id]
    assert offered["undo_"].iloc[0] == (f"#{undo.id} · Undo of #{move.id} (re-applies: Moved 2 messages from "
                                        '"Late deliveries" to "t1 · auto": m0-0, m0-1)')
    assert offered["undo_"].iloc[1] == f'#{rename.id} · Renamed "t0 · auto" to "Late deliveries"'

    redo = cur.undo(undo.id)  # the move applies again
    assert load_curated_run(store).run.messages.set_index("message_id").loc[["m0-0", "m0-1"], "topic"].tolist() == [1, 1]
    table = audit_table(store).set_index("id_")
    assert table["state"].to_dict() == {redo.id: "undo", undo.id: "undone", move.id: "applied",
                                        rename.id: "applied"}
    offered = audit_table(store).query("undo_ != ''")
    assert offered["id_"].tolist() == [redo.id, move.id, rename.id]
    assert offered["undo_"].iloc[0].startswith(f"#{redo.id} · Undo of #{undo.id} (undoes #{move.id} again: Moved")
    with pytest.raises(CurationError, match="already undone"):
        cur.undo(undo.id)


def test_an_undo_that_would_change_nothing_is_not_offered(tmp_path):
    store = _store(tmp_path)
    cur = Curator(store)
    move = cur.move(["m0-0"], to="K1")
    first = cur.undo(move.id)
    redo = cur.undo(first.id)
    second = cur.undo(move.id)  # the move is undone again, by a second undo
    table = audit_table(store)
    offered = table.query("undo_ != ''")["id_"].tolist()
    assert table.set_index("id_").at[redo.id, "state"] == "undo"  # in force, yet undoing it would change nothing
    # Undoing the redo alone would leave the move undone (the second undo still reverts it): not offered.
    assert offered == [second.id]
    assert derive_state(CurationLog(store).events()).undone == {move.id, first.id}
    cur.undo(second.id)
    assert load_curated_run(store).run.messages.set_index("message_id").at["m0-0", "topic"] == 1


def test_the_undo_choices_predict_exactly_what_undoing_changes():
    """Random chains of undos (of edits and of undos): an event is offered exactly when undoing it
    changes which edits are in force, and the offer names the edit it reverts or re-applies."""
    rng = np.random.default_rng(3)
    for _ in range(60):
        events = [Event(i, 0.0, "u", None, "rename", {"key": f"K{i}", "label": "x"}) for i in range(1, 4)]
        for _ in range(int(rng.integers(1, 12))):
            state = derive_state(events)
            candidates = [e.id for e in events if e.id not in state.undone]
            target = int(rng.choice(candidates))
            events.append(Event(len(events) + 1, 0.0, "u", None, "undo", {"event": target}))
        state = derive_state(events)
        in_force = {e.id for e in state.applied}
        effects = undo_effects(events, state)
        for e in events:
            if e.id in state.undone:
                assert e.id not in effects
                continue
            after = {x.id for x in derive_state([*events, Event(99, 0.0, "u", None, "undo",
                                                                 {"event": e.id})]).applied}
            changed = in_force ^ after
            if not changed:
                assert e.id not in effects
                continue
            edit, reapplied = effects[e.id]
            assert changed == {edit.id} and reapplied == (edit.id in after)


def test_split_previews_parts_then_applies_them(tmp_path):
    store = _store(tmp_path)
    run = load_run(store)
    proposal = propose_split(run, 0, 2)
    assert proposal.k == 2 and sorted(len(p) for p in proposal.message_ids) == [6, 6]
    # The preview found the two sub-groups: each part holds one kind of message.
    for ids in proposal.message_ids:
        assert len({int(m.split("-")[1]) % 2 for m in ids}) == 1
    assert all(proposal.keywords) and all(len(e) == 3 for e in proposal.examples)
    assert load_curated_run(store).version == 0  # a preview changes nothing
    Curator(store).split("K0", proposal, ["Odd ones", "Even ones"])
    topics = _topics(store)
    assert "K0" not in topics.index
    parts = topics[topics["label"].isin(["Odd ones", "Even ones"])]
    assert sorted(parts["size"]) == [6, 6] and set(parts["topic"]) == {3, 4}


@pytest.mark.parametrize("edit, message", [
    (lambda c: c.rename("K0", "   "), "cannot be empty"),
    (lambda c: c.rename("K0", "x" * 81), "at most 80"),
    (lambda c: c.merge(["K0"], into="K0"), "cannot be merged with itself"),
    (lambda c: c.merge(["K0", "K1"], into="K9"), "not in this run"),
    (lambda c: c.move(["m0-0"], to="gone"), "not in this run"),
    (lambda c: c.move(["nope"], to="K1"), "not in this run"),
    (lambda c: c.move([], to="K1"), "No messages selected"),
    (lambda c: c.undo(99), "no edit #99"),
])
def test_bad_edits_are_refused_with_a_clear_message_and_nothing_changes(tmp_path, edit, message):
    store = _store(tmp_path)
    with pytest.raises(CurationError, match=message):
        edit(Curator(store))
    assert CurationLog(store).events() == []


def test_splitting_a_small_topic_into_too_many_parts_is_refused(tmp_path):
    store = _store(tmp_path, sizes=(12, 8, 3))
    with pytest.raises(CurationError, match="3 messages: too few to split into 5 parts"):
        propose_split(load_run(store), 2, 5)


def test_moving_to_a_merged_away_topic_is_refused(tmp_path):
    store = _store(tmp_path)
    cur = Curator(store)
    cur.merge(["K1", "K2"], into="K1")
    with pytest.raises(CurationError, match="not in this run"):
        cur.move(["m0-0"], to="K2")


_EDITOR = """
import sys
from pathlib import Path
from pipelines.curation import Curator
store, user, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
cur = Curator(store)
for i in range(n):
    cur.rename("K%d" % (i % 3), "%s name %d" % (user, i), user=user)
"""


def test_two_analysts_editing_at_once_lose_nothing(tmp_path):
    import subprocess
    import sys

    store = _store(tmp_path)
    root = Path(__file__).resolve().parents[1]
    editors = [subprocess.Popen([sys.executable, "-c", _EDITOR, str(store), user, "15"], cwd=root)
               for user in ("ana", "bo")]
    assert [p.wait(timeout=300) for p in editors] == [0, 0]
    events = CurationLog(store).events()
    assert len(events) == 30 and [e.id for e in events] == sorted(e.id for e in events)
    assert {e.user for e in events} == {"ana", "bo"}
    state = derive_state(events)
    last = {}
    for e in events:
        last[e.payload["key"]] = e.payload["label"]
    assert state.labels == last == {k: v for k, v in _topics(store)["label"].items()}


_WRITER = """
import sys
from pathlib import Path
from pipelines.curation import Curator
cur = Curator(Path(sys.argv[1]))
i = 0
while True:
    cur.rename("K%d" % (i % 3), "name %d" % i, user="crash")
    i += 1
    print(i, flush=True)
"""


def test_killing_an_editor_mid_edit_leaves_the_log_consistent(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    store = _store(tmp_path)
    for trial in range(5):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(store)], stdout=subprocess.PIPE, text=True,
                                cwd=Path(__file__).resolve().parents[1])
        proc.stdout.readline()  # it is writing
        time.sleep(0.05 + 0.05 * trial)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        events = CurationLog(store).events()  # readable, every event whole
        assert [e.id for e in events] == sorted(e.id for e in events) and events
        state = derive_state(events)
        assert state.labels[events[-1].payload["key"]] == events[-1].payload["label"]
        assert load_curated_run(store).run.topics.set_index("key").at[events[-1].payload["key"], "label"] == \
            events[-1].payload["label"]
    Curator(store).rename("K0", "after the crashes")  # the log still takes edits
    assert _topics(store).loc["K0", "label"] == "after the crashes"


def test_a_rename_over_a_name_someone_saved_meanwhile_is_refused_with_who_and_goes_through_when_saved_again(tmp_path):
    """Ben began typing on "t0 · auto"; Ana renamed it first. His save had said 'Nothing to change: already called
    "Candy & sweets"' (his text lost); now he is told who renamed it, and a second save replaces her name."""
    store = _store(tmp_path)
    Curator(store).rename("K0", "Candy & sweets", user="ana", seen_label="t0 · auto")
    with pytest.raises(CurationError, match='While you were typing, ana renamed it to "Candy & sweets". Your name '
                                            '"Confectionery" was not saved.'):
        Curator(store).rename("K0", "Confectionery", user="ben", seen_label="t0 · auto")
    assert _topics(store).at["K0", "label"] == "Candy & sweets"
    Curator(store).rename("K0", "Confectionery", user="ben", seen_label="Candy & sweets")
    assert _topics(store).at["K0", "label"] == "Confectionery"


def test_a_split_into_parts_too_small_to_be_topics_is_warned_about_before_it_is_applied(tmp_path):
    store = _store(tmp_path, sizes=(24, 8, 6))  # topic 0: two sub-groups of 12
    assert propose_split(load_run(store), 0, 2).warning() is None
    many = propose_split(load_run(store), 0, 8)
    small = [len(ids) for ids in many.message_ids if len(ids) < 5]
    assert small and many.warning().startswith(f"{len(small)} part")
    assert f"Try {8 - len(small)} parts" in many.warning() or "Move those messages by hand instead." in many.warning()

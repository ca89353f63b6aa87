"""The Curate topics and Audit pages through AppTest on a real run: edits show everywhere and are logged."""

from __future__ import annotations

import shutil

import pytest
from streamlit.testing.v1 import AppTest

from pipelines.curation import CurationLog, Curator, load_curated_run
from pipelines.store import load_run
from tests.test_dashboard_pages import APP


@pytest.fixture
def store(monkeypatch, real_run_store, tmp_path):
    copy = tmp_path / "store"
    shutil.copytree(real_run_store, copy)
    monkeypatch.setenv("FEEDBACK_LENS_STORE", str(copy))
    return copy


def _open(page: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=90)
    at.run()
    at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception, [e.message for e in at.exception]
    return at


@pytest.mark.slow
def test_rename_and_merge_in_the_page_show_on_every_page_and_in_the_audit(store):
    run = load_run(store)
    first, second, third = run.topics["topic"].head(3).tolist()
    at = _open("curate")
    key = at.selectbox(key="curate_topic_v0").value
    at.text_input[0].input("Late deliveries")
    at.button[0].click().run()  # the rename form's submit
    assert not at.exception, [e.message for e in at.exception]
    curated = load_curated_run(store).run
    assert curated.topics.set_index("key").at[key, "label"] == "Late deliveries"
    picker = at.selectbox(key="curate_topic_v1")  # a fresh picker: the same topic, under its new name at once
    assert picker.value == key and any(o.startswith("Late deliveries (") for o in picker.options)

    others = [k for k in curated.topics["key"] if k != key][:2]
    at.multiselect(key="curate_merge_v1").set_value(others).run()
    at.button(key="curate_merge_go").click().run()
    assert not at.exception, [e.message for e in at.exception]
    curated = load_curated_run(store).run
    sizes = run.topics.set_index("topic")["size"]
    assert curated.topics.set_index("key").at[key, "size"] == sizes[first] + sizes[second] + sizes[third]
    assert [e.kind for e in CurationLog(store).events()] == ["rename", "merge"]

    data_page = _open("runs")  # the Data page counts topics as the other pages do, after the merge
    found = run.manifest["counts"]["topics"]
    assert data_page.metric[1].value == f"{found - 2:,}" and f"The topic model found {found:,}" in data_page.metric[1].help
    topics_page = _open("topics")  # another page shows the curated topics at once
    table = topics_page.dataframe[0].value
    assert "Late deliveries" in " ".join(map(str, table.to_numpy().ravel()))

    audit = _open("audit")
    details = audit.dataframe[0].value["details"].tolist()
    assert details[0].startswith("Merged") and "Late deliveries" in details[1]
    audit.selectbox(key="audit_undo_v0").set_value(CurationLog(store).events()[1].id).run()
    audit.button(key="audit_undo_go").click().run()
    assert not audit.exception
    assert len(load_curated_run(store).run.topics) == len(run.topics)  # the merge is undone


@pytest.mark.slow
def test_an_undo_can_be_undone_in_the_audit_page_and_the_edit_applies_again(store):
    run = load_run(store)
    first, second = run.topics["key"].head(2).tolist()
    moved = run.messages.loc[run.messages["topic"] == run.topics["topic"].iloc[0], "message_id"].astype(str).head(2)
    cur = Curator(store)
    rename = cur.rename(second, "Late deliveries")
    move = cur.move(moved.tolist(), to=second)

    def topics_of_moved() -> set[str]:
        curated = load_curated_run(store).run
        keys = curated.topics.set_index("topic")["key"]
        return set(curated.messages.set_index(curated.messages["message_id"].astype(str)).loc[moved, "topic"].map(keys))

    assert topics_of_moved() == {second}
    audit = _open("audit")
    picker = audit.selectbox(key="audit_undo_v0")
    assert picker.value == move.id and len(picker.options) == 2  # the latest edit first
    audit.button(key="audit_undo_go").click().run()
    assert not audit.exception, [e.message for e in audit.exception]
    assert topics_of_moved() == {first}  # the move is undone
    undo = CurationLog(store).events()[-1]
    assert undo.kind == "undo" and undo.payload["event"] == move.id

    # The undo is offered first (the default), named for what undoing it does; the undone move is not offered.
    picker = audit.selectbox(key="audit_undo_v1")
    assert picker.value == undo.id
    assert picker.options[0].startswith(f"#{undo.id} · Undo of #{move.id} (re-applies: Moved 2 messages from")
    assert picker.options[1].startswith(f"#{rename.id} · Renamed") and len(picker.options) == 2
    assert any("Undone: Moved 2 messages" in s.value.replace("\\", "") for s in audit.success)
    audit.button(key="audit_undo_go").click().run()
    assert not audit.exception, [e.message for e in audit.exception]
    assert topics_of_moved() == {second}  # the move applies again, and the page says so in those words
    assert any("Re-applied: Moved 2 messages" in s.value.replace("\\", "") for s in audit.success)
    table = audit.dataframe[0].value.set_index("#")
    assert table.at[f"#{undo.id}", "state"] == "undone"
    assert table.at[f"#{move.id}", "state"] == "applied"
    picker = audit.selectbox(key="audit_undo_v2")
    assert picker.value == CurationLog(store).events()[-1].id and len(picker.options) == 3


@pytest.mark.slow
def test_a_bad_edit_in_the_page_shows_a_clear_message_and_changes_nothing(store):
    at = _open("curate")
    at.text_input[0].input("   ")
    at.button[0].click().run()
    assert any("cannot be empty" in e.value for e in at.error)
    assert CurationLog(store).events() == []


@pytest.mark.slow
def test_split_preview_then_apply(store):
    at = _open("curate")
    at.number_input(key="curate_split_k").set_value(2).run()
    at.button(key="curate_split_preview").click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert CurationLog(store).events() == []  # a preview changes nothing
    at.text_input(key="curate_split_name_0").input("Part one")
    at.text_input(key="curate_split_name_1").input("Part two")
    at.button(key="curate_split_go").click().run()
    assert not at.exception, [e.message for e in at.exception]
    labels = set(load_curated_run(store).run.topics["label"])
    assert {"Part one", "Part two"} <= labels
    # The page stays on the parts, and says what was made of what.
    assert at.selectbox(key="curate_topic_v1").format_func(at.selectbox(key="curate_topic_v1").value).startswith(
        "Part one (")
    assert any("into 2 topics: Part one, Part two." in s.value.replace("\\", "") for s in at.success)


@pytest.mark.slow
def test_move_selected_messages(store):
    at = _open("curate")
    at.dataframe(key="curate_move_table_v0")  # exists
    # AppTest cannot click dataframe rows: the selection arrives as the widget's state, as a browser sends it.
    at.session_state["curate_move_table_v0"] = {"selection": {"rows": [0, 1], "columns": [], "cells": []}}
    at.run()
    assert at.button(key="curate_move_go").label == "Move 2 messages"
    assert at.button(key="curate_move_go").disabled  # no topic to move them to is chosen for the analyst
    target = at.selectbox(key="curate_move_to_v0")
    target.set_value(target.options and load_curated_run(store).run.topics["key"].iloc[-1]).run()
    at.button(key="curate_move_go").click().run()
    assert not at.exception, [e.message for e in at.exception]
    events = CurationLog(store).events()
    assert [e.kind for e in events] == ["move"] and len(events[0].payload["message_ids"]) == 2
    # The ticks do not stay on rows that now hold other messages: a second click cannot move unchosen ones.
    at.dataframe(key="curate_move_table_v1")
    assert at.button(key="curate_move_go").disabled
    assert at.button(key="curate_move_go").label == "Move 0 messages"


@pytest.mark.slow
def test_a_pinned_message_leads_the_typical_messages_of_its_topic(store):
    """Pinning said "Pinned." and showed nowhere: the topics' examples were not on any page."""
    run = load_curated_run(store).run
    topic = run.topics.iloc[0]
    members = run.messages.loc[run.messages["topic"] == topic["topic"], "message_id"].astype(str)
    pick = next(m for m in members if m not in list(topic["representative_ids"])[:3])
    Curator(store).pin(str(topic["key"]), pick)
    at = AppTest.from_file(str(APP), default_timeout=90)
    at.query_params["topic"] = str(int(topic["topic"]))
    at.run()
    at.switch_page("app_pages/messages.py").run()
    assert not at.exception, [e.message for e in at.exception]
    typical = next(e for e in at.expander if e.label.startswith("Typical messages of "))
    assert typical.label == f"Typical messages of {topic['label']}"
    assert any("Pinned by an analyst" in c.value for c in typical.caption)
    cards = [c.value for c in typical.caption if "Pinned by an analyst" not in c.value]
    assert len(cards) == 3  # the pinned one and the two closest to the centre
    texts = load_run(store).messages.set_index("message_id")["text"]
    first = typical.markdown[0].value.replace("\\", "")
    assert first[:60] == str(texts.loc[pick])[:60].replace("\\", "")


@pytest.mark.slow
def test_merging_most_topics_at_once_asks_to_confirm(store):
    """"Select all" in the merge picker merged 54 topics into one in a single click."""
    at = _open("curate")
    topics = load_curated_run(store).run.topics
    key = at.selectbox(key="curate_topic_v0").value
    others = [k for k in topics["key"] if k != key]
    at.multiselect(key="curate_merge_v0").set_value(others[-1:]).run()  # a small merge needs no second click
    assert not at.button(key="curate_merge_go").disabled and not at.get("checkbox")
    at.multiselect(key="curate_merge_v0").set_value(others).run()
    assert at.button(key="curate_merge_go").disabled
    assert at.checkbox(key="curate_merge_sure").label.startswith(f"Yes, merge {len(others)} topics into this one")
    at.checkbox(key="curate_merge_sure").check().run()
    at.button(key="curate_merge_go").click().run()
    assert [e.kind for e in CurationLog(store).events()] == ["merge"]


@pytest.mark.slow
def test_a_rename_saved_by_someone_else_while_typing_is_not_overwritten_unawares(store):
    at = _open("curate")
    key = at.selectbox(key="curate_topic_v0").value
    at.text_input[0].input("Confectionery")
    Curator(store, load_run(store).id).rename(key, "Candy & sweets", user="ana")  # another analyst, meanwhile
    at.button[0].click().run()
    assert not at.exception, [e.message for e in at.exception]
    said = " ".join(e.value for e in at.error).replace("\\", "")  # markdown escapes
    assert 'While you were typing, ana renamed it to "Candy & sweets". Your name "Confectionery" was not saved.' in said
    assert at.text_input[0].value == "Confectionery"  # what he typed is still there
    assert load_curated_run(store).run.topics.set_index("key").at[key, "label"] == "Candy & sweets"
    at.button[0].click().run()  # saved again: his name replaces hers, knowingly
    assert load_curated_run(store).run.topics.set_index("key").at[key, "label"] == "Confectionery"
    assert [e.user for e in CurationLog(store).events()][-1] != "ana"


@pytest.mark.slow
def test_a_topic_picked_to_merge_that_another_analyst_merged_away_is_named_not_silently_dropped(store):
    at = _open("curate")
    key = at.selectbox(key="curate_topic_v0").value
    topics = load_curated_run(store).run.topics
    other, third = [k for k in topics["key"] if k != key][:2]
    name = topics.set_index("key").at[other, "label"]
    at.multiselect(key="curate_merge_v0").set_value([other]).run()
    assert not at.warning
    Curator(store, load_run(store).id).merge([third, other], into=third, user="ana")  # meanwhile, elsewhere
    at.run()
    said = " ".join(w.value for w in at.warning)
    assert f"“{name}” left your selection: another analyst merged, split or marked it as noise" in said
    assert at.multiselect(key="curate_merge_v0").value == []
    at.run()  # said once
    assert not at.warning


@pytest.mark.slow
def test_a_renamed_topic_a_refit_renumbered_is_followed_and_its_name_given_again_in_one_click(store):
    """A re-fit gave a renamed topic's messages a fresh topic (and spread some): the Curate page says where they went
    and offers the name to the topic holding most of them; one click renames it, and the notice then says so."""
    import numpy as np

    from pipelines.store import RUN_ARRAYS, load_run_array, publish_run

    run = load_run(store)
    topic, key = (int(run.topics["topic"].iloc[1]), str(run.topics["key"].iloc[1]))
    other = int(run.topics["topic"].iloc[2])
    Curator(store, run.id).rename(key, "Billing & fees", user="ana")
    messages = run.messages.copy()
    members = messages.index[messages["topic"] == topic]
    kept = len(members) * 7 // 10
    fresh = int(run.topics["topic"].max()) + 1
    messages.loc[members[:kept], "topic"], messages.loc[members[kept:], "topic"] = fresh, other
    topics = run.topics.copy()
    topics.loc[topics["topic"] == topic, ["topic", "key", "label"]] = [fresh, "20991231-000000-ffff.9", "refit · label"]
    arrays = {name: load_run_array(run, name) for name in RUN_ARRAYS if load_run_array(run, name) is not None}
    publish_run(store, "20991231-000000-ffff", {"messages": messages, "topics": topics, "keywords": run.keywords},
                dict(run.manifest), arrays=arrays)

    at = _open("curate")
    assert [e.label for e in at.expander][0].endswith("1 earlier edit does not apply to this run")
    said = " ".join(m.value for m in at.markdown).replace("\\", "")
    other_label = run.topics.set_index("topic").at[other, "label"]
    assert (f"Its {len(members):,} messages are now in “refit · label” ({kept:,}) and “{other_label}” "
            f"({len(members) - kept:,}).") in said
    event = CurationLog(store).events()[-1]
    button = at.button(key=f"redo_rename_{event.id}")
    assert button.label.replace("\\", "") == "Call “refit · label” “Billing & fees”"
    button.click().run()
    assert not at.exception, [e.message for e in at.exception]
    topics_now = load_curated_run(store).run.topics.set_index("key")
    assert topics_now.at["20991231-000000-ffff.9", "label"] == "Billing & fees"
    assert np.sum(load_curated_run(store).run.messages["topic"] == topics_now.at["20991231-000000-ffff.9", "topic"]) == kept
    assert any("Redone: the topic holding most of them is called “Billing & fees”." in c.value.replace("\\", "")
               for c in at.caption)
    assert [e.label for e in at.expander][0].endswith("1 earlier edit redone on this run")
    assert CurationLog(store).events()[-1].user != "ana"

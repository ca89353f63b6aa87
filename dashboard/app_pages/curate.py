"""Curate topics: rename, merge, split, move messages, mark as noise and pin examples (analysts only).

Every edit is recorded in the curation log (see the Audit page) and shows on every page at once.
"""

from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import components, curation_ui, data
from pipelines.charts import count_of, format_count, format_share
from pipelines.curation import Curator
from pipelines.metrics import MessageFilter

PIN_CHOICES = 1000  # how many of a topic's messages the pin list offers (a bare string here would be shown: magic)

view = components.page_view()
curation_ui.require_curator()
st.title("Curate topics")
curation_ui.show_flash()
st.caption("Turn the machine-found topics into your own categories. Every change is logged on the Audit page, "
           "can be undone there, applies to every page at once, and carries over to later runs.")
curation_ui.unresolved_notice(view.ref)

topics = view.info.topics
active = topics[~topics["ignored"]] if "ignored" in topics else topics
if active.empty:
    st.info("This run has no topics to curate.", icon=":material/info:")
    st.stop()
keys = active["key"].tolist()
label_of = dict(zip(topics["key"], topics["label"], strict=True))
size_of = dict(zip(topics["key"], topics["size"], strict=True))


def describe(key: str) -> str:
    """'Late deliveries (312 messages)'."""
    return f"{label_of[key]} ({count_of(int(size_of[key]), 'message')})"


# The chosen topic outlives the picker, whose key changes with every edit (see curation_ui.edit_key).
chosen = st.session_state.get("curate_topic_chosen")
key = st.selectbox("Topic", keys, index=keys.index(chosen) if chosen in keys else 0, format_func=describe,
                   key=curation_ui.edit_key("curate_topic"))
st.session_state["curate_topic_chosen"] = key
topic = active.set_index("key").loc[key]
curator = Curator(Path(view.ref.store), view.ref.id)
user = curation_ui.user_name()

st.markdown(f"**{components.escape_markdown(topic['label'])}** · {count_of(int(topic['size']), 'message')} "
            f"({format_share(topic['share'], 1)}) · keywords: "
            f"{components.escape_markdown(', '.join(map(str, list(topic['keywords'])[:8])))}")
if topic.get("description"):
    st.caption(components.escape_markdown(str(topic["description"])))

# A keyed tab bar keeps the chosen tab through the reruns its widgets cause.
rename, merge, split, move, other = st.tabs(["Rename", "Merge", "Split", "Move messages", "Noise & examples"],
                                            key="curate_tab", on_change="rerun")

with rename, st.form("curate_rename"):
    # Keyed by topic, so that what the analyst typed survives a rerun that brings another analyst's new name; the
    # name they saw goes with the edit, which is refused if the topic was renamed since (saving again replaces it).
    seen = f"curate_rename_seen_{key}"
    st.session_state.setdefault(seen, topic["label"])
    name = st.text_input("Name", value=topic["label"], max_chars=80, key=f"curate_rename_name_{key}")
    description = st.text_area("Description (optional)", value=topic.get("description") or "", max_chars=500,
                               placeholder="What belongs here, e.g. parcels that arrive after the promised day",
                               key=f"curate_rename_description_{key}")
    if st.form_submit_button("Save name", type="primary"):
        saw, st.session_state[seen] = st.session_state[seen], topic["label"]
        curation_ui.run_edit(lambda: curator.rename(key, name, description, user=user, seen_label=saw),
                             f'Renamed "{topic["label"]}" to "{" ".join(name.split())}".', clear=[seen])

with merge:
    picked = st.session_state.get("curate_merge_picked", {})  # key → name, to tell what another analyst took away
    others = st.multiselect("Merge these topics into this one", [k for k in keys if k != key], format_func=describe,
                            key=curation_ui.edit_key("curate_merge"), help="Their messages join this topic, which keeps its name.")
    gone = [name for k, name in picked.items() if k not in keys]
    if gone:
        st.warning(f"{', '.join(f'“{n}”' for n in gone)} left your selection: another analyst merged, split or "
                   f"marked {'it' if len(gone) == 1 else 'them'} as noise since you picked "
                   f"{'it' if len(gone) == 1 else 'them'}.", icon=":material/group:")
    st.session_state["curate_merge_picked"] = {k: label_of[k] for k in others}
    merged = int(topic["size"]) + sum(int(size_of[k]) for k in others)
    share = merged / max(int(active["size"].sum()), 1)
    sweeping = len(others) > 5 or share > 0.5  # "Select all" is one click from merging everything
    sure = not sweeping or st.checkbox(f"Yes, merge {count_of(len(others), 'topic')} into this one: it will hold "
                                       f"{format_share(share)} of the messages", key="curate_merge_sure")
    if st.button("Merge", disabled=not others or not sure, type="primary", key="curate_merge_go"):
        curation_ui.run_edit(lambda: curator.merge([key, *others], into=key, user=user),
                             f"Merged {count_of(len(others), 'topic')} into {topic['label']}.",
                             clear=["curate_merge_picked"])

with split:
    k = st.number_input("Split into how many parts?", min_value=2, max_value=8, value=2, key="curate_split_k")
    if st.button("Preview the split", key="curate_split_preview"):
        try:
            st.session_state["curate_proposal"] = (key, view.ref.id, data.split_proposal(
                view.ref, int(topic["topic"]), int(k)))
        except Exception as err:  # noqa: BLE001 - CurationError carries the message; anything else is shown too
            curation_ui.show_error(err)
    pending = st.session_state.get("curate_proposal")
    if pending and pending[0] == key and pending[1] == view.ref.id:
        proposal = pending[2]
        if too_small := proposal.warning():
            st.warning(too_small, icon=":material/warning:")
        names = []
        for i in range(proposal.k):
            with st.container(border=True):
                st.markdown(f"**Part {i + 1}** · {count_of(len(proposal.message_ids[i]), 'message')} · "
                            f"{components.escape_markdown(', '.join(proposal.keywords[i][:6]))}")
                names.append(st.text_input("Name", value=proposal.labels[i], key=f"curate_split_name_{i}",
                                           max_chars=80))
                for example in proposal.examples[i][:2]:
                    shown = example if len(example) <= 240 else example[:240].rsplit(" ", 1)[0] + " …"
                    st.caption(components.escape_markdown(shown))
        def split_and_show() -> None:
            event = curator.split(key, proposal, names, user=user)
            st.session_state["curate_topic_chosen"] = event.payload["parts"][0]["key"]  # the parts, not the first topic

        if st.button("Apply this split", type="primary", key="curate_split_go"):
            curation_ui.run_edit(split_and_show, f"Split {topic['label']} into {proposal.k} topics: "
                                 + ", ".join(" ".join(n.split()) for n in names) + ".", clear=("curate_proposal",))

members = data.with_texts(view.ref, data.messages(view.ref, MessageFilter(topics=(int(topic["topic"]),))), ["text"])
table = pd.DataFrame({"date": members["date"].dt.strftime("%-d %b %Y").fillna("") if "date" in members else "",
                      "message": members["text"].str.slice(0, 200), "id": members["message_id"].astype(str)})

with move:
    st.caption("Tick messages in the table, pick where they belong, and move them.")
    picked = st.dataframe(table, hide_index=True, width="stretch", height=300, on_select="rerun",
                          selection_mode="multi-row", key=curation_ui.edit_key("curate_move_table"),
                          column_config={"id": None, "message": st.column_config.TextColumn(width="large")})
    rows = picked.selection.rows if picked else []
    # No topic until one is picked: a default target would take a hasty click's messages somewhere unchosen.
    target = st.selectbox("Move to", [k for k in keys if k != key], format_func=describe, index=None,
                          placeholder="Pick the topic they belong to", key=curation_ui.edit_key("curate_move_to"))
    if st.button(f"Move {count_of(len(rows), 'message')}", disabled=not rows or target is None, type="primary",
                 key="curate_move_go"):
        ids = table["id"].iloc[rows].tolist()
        curation_ui.run_edit(lambda: curator.move(ids, to=target, user=user),
                             f"Moved {count_of(len(ids), 'message')} to {label_of[target]}.")

with other:
    st.markdown("**Noise**: a topic that is not a real issue (greetings, spam). Its messages then count as without a "
                "topic everywhere.")
    if st.button("Mark this topic as noise", key="curate_ignore"):
        curation_ui.run_edit(lambda: curator.ignore(key, True, user=user), f"{topic['label']} is marked as noise.")
    ignored = topics[topics["ignored"]] if "ignored" in topics else topics.iloc[0:0]
    if not ignored.empty:
        back = st.selectbox("Bring back a topic marked as noise", ignored["key"].tolist(),
                            format_func=lambda k: label_of[k], key=curation_ui.edit_key("curate_unignore"))
        if st.button("Bring it back", key="curate_unignore_go"):
            curation_ui.run_edit(lambda: curator.ignore(back, False, user=user), "Brought back.")
    st.divider()
    st.markdown("**Examples**: pinned messages come first among the topic's typical messages, shown on the "
                "Messages page when this topic is picked.")
    pinned = list(topic.get("pinned") or [])
    preview = dict(zip(table["id"], table["message"].str.slice(0, 120), strict=True))
    # A list of every message of a large topic would make each rerun slow to send; pinned ones always show.
    choices = list(dict.fromkeys([*[i for i in pinned if i in preview], *table["id"].head(PIN_CHOICES)]))
    pin = st.selectbox("Message", choices, key=curation_ui.edit_key("curate_pin"),
                       format_func=lambda i: ("📌 " if i in pinned else "") + preview[i],
                       help=f"Pinned messages and the first {format_count(min(len(table), PIN_CHOICES))} of the "
                       "topic's messages, in the order of the Move messages table.")
    if pin is not None:
        if pin in pinned:
            if st.button("Unpin", key="curate_unpin_go"):
                curation_ui.run_edit(lambda: curator.pin(key, pin, False, user=user), "Unpinned.")
        elif st.button("Pin as an example", key="curate_pin_go"):
            curation_ui.run_edit(lambda: curator.pin(key, pin, True, user=user), "Pinned.")

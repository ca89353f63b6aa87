"""Audit: every curation edit (who, when, what, before and after), with filters and undo."""

from pathlib import Path

import streamlit as st

from dashboard import components, curation_ui
from pipelines.curation import Curator, audit_table
from pipelines.metrics import zone_words

view = components.page_view()
st.title("Audit")
curation_ui.show_flash()
st.caption("Every change analysts made to the topics, newest first. Undo reverts one change; undoing an undo "
           "applies the change again. Nothing is ever deleted.")

table = audit_table(Path(view.ref.store), dict(zip(view.info.topics["key"], view.info.topics["label"], strict=True)))
if table.empty:
    st.info("No edits yet. Analysts change topics on the **Curate topics** page.", icon=":material/history:")
    st.stop()

a, b, c = st.columns(3)
users = a.multiselect("Who", sorted(table["user"].unique()), key="audit_users")
kinds = b.multiselect("What", sorted(table["edit"].unique()), key="audit_kinds")
text = c.text_input("Containing", key="audit_text", placeholder="a topic name, a message id…")
shown = table
if users:
    shown = shown[shown["user"].isin(users)]
if kinds:
    shown = shown[shown["edit"].isin(kinds)]
if text.strip():
    shown = shown[shown["details"].str.contains(text.strip(), case=False, regex=False)]

# Edits are instants: shown on the clock of the run's time zone, as every other time is.
st.dataframe(shown.drop(columns=["id_", "undo_", "done_"]).assign(when=shown["when"].dt.tz_convert(view.info.time_zone)),
             hide_index=True, width="stretch",
             column_config={"when": st.column_config.DatetimeColumn(f"When ({zone_words(view.info.time_zone)})",
                                                                    format="D MMM YYYY, HH:mm"),
                            "user": "Who", "edit": "Edit", "state": "State", "run": "Run",
                            "details": st.column_config.TextColumn("Details", width="large")})

if curation_ui.may_curate():
    # Edits in force and undos in force (undoing an undo re-applies its edit), newest first: the default
    # is the latest. The key changes after every edit, so the list starts again from the latest one.
    choices = {int(i): label for i, label in zip(shown["id_"], shown["undo_"], strict=True) if label}
    done = dict(zip(shown["id_"].astype(int), shown["done_"], strict=True))
    if choices:
        pick, go = st.columns([3, 1], vertical_alignment="bottom")
        event = pick.selectbox("Undo an edit", list(choices), key=curation_ui.edit_key("audit_undo"),
                               format_func=choices.__getitem__)
        if go.button("Undo", key="audit_undo_go", icon=":material/undo:"):
            curator = Curator(Path(view.ref.store), view.ref.id)
            curation_ui.run_edit(lambda: curator.undo(int(event), user=curation_ui.user_name()),
                                 done[int(event)])

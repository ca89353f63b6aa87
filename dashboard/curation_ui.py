"""Parts shared by the Curate topics and Audit pages: who edits, running an edit, unresolved edits.

Edits themselves are checked and recorded by :class:`pipelines.curation.Curator`; this module only
shows their outcome. Every edit is re-checked there, on the server, whatever the page showed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import streamlit as st

from dashboard import auth, components, data
from dashboard.data import RunRef
from pipelines.charts import count_of
from pipelines.curation import Curator, Event, TopicTrail, describe_edit, trail_in_words
from pipelines.errors import FeedbackLensError

_FLASH = "curation_flash"
_EDITS = "curation_edits"


def edit_key(name: str) -> str:
    """A widget key that is new after every saved edit.

    Pickers and the message table must start afresh once the topics change: a ticked row would
    otherwise point at whichever message now sits in that row, and a picker would keep showing
    the names and counts from before the edit.
    """
    return f"{name}_v{st.session_state.get(_EDITS, 0)}"


def user_name() -> str:
    """The signed-in user's name, recorded with every edit."""
    return auth.current_user().name


def may_curate() -> bool:
    """Whether the user may edit topics (analysts and admins)."""
    return auth.allowed("curate")


def require_curator() -> None:
    """Stop the page with a clear message unless the user may curate."""
    auth.require("curate")


def show_error(err: Exception) -> None:
    """An edit that was refused: its message and how to fix it (never a traceback)."""
    if isinstance(err, FeedbackLensError):
        fix = f"\n\n**How to fix:** {components.escape_markdown(err.fix)}" if err.fix else ""
        st.error(components.escape_markdown(err.message) + fix, icon=":material/error:")
    else:
        st.error(f"The edit could not be saved ({type(err).__name__}). Nothing was changed.", icon=":material/error:")


def run_edit(edit: Callable[[], object], done: str, clear: Sequence[str] = ()) -> None:
    """Run one edit (re-checking the role on the server), then rerun so every figure shows it."""
    if not may_curate():
        st.error("You need the analyst role to change topics.", icon=":material/lock:")
        return
    try:
        edit()
    except Exception as err:  # noqa: BLE001 - a refused edit is shown, and nothing was written
        show_error(err)
        return
    for key in clear:
        st.session_state.pop(key, None)
    st.session_state[_EDITS] = st.session_state.get(_EDITS, 0) + 1
    st.session_state[_FLASH] = done  # shown after the rerun: a toast sent just before it would be lost
    st.rerun()


def show_flash() -> None:
    """The confirmation of the edit just saved, once."""
    done = st.session_state.pop(_FLASH, None)
    if done:
        st.success(components.escape_markdown(done), icon=":material/check_circle:")


def unresolved_notice(ref: RunRef) -> None:
    """A warning listing edits whose topics are not in this run, so none is silently lost."""
    unresolved = data.unresolved_edits(ref)
    if not unresolved:
        return
    trails = data.unresolved_trails(ref)
    redone = sum(_redone(event, trails.get(event.id)) for event, _ in unresolved)
    waiting = len(unresolved) - redone
    verb = "does" if waiting == 1 else "do"
    title = (f":material/warning: {count_of(waiting, 'earlier edit')} {verb} not apply to this run"
             + (f" ({redone:,} more redone)" if redone else "")) if waiting else \
        f":material/check: {count_of(redone, 'earlier edit')} redone on this run"
    with st.expander(title, expanded=False):
        st.caption("Their topics are not in this run (the data changed). Redo them here if they still matter, "
                   "or leave them: they apply again if the topics come back.")
        for event, reason in unresolved:  # what the edit did, so that it can be redone by hand
            trail = trails.get(event.id)
            where = f"  \n{components.escape_markdown(trail_in_words(trail))}" if trail else ""
            st.markdown(f"- #{event.id} {components.escape_markdown(describe_edit(event, {}))} "
                        f"(by {components.escape_markdown(event.user)}): {components.escape_markdown(reason)}.{where}")
            if trail and trail.parts:
                _redo_rename(ref, event, trail)


def _redone(event: Event, trail: TopicTrail | None) -> bool:
    """Whether a rename's name is on the topic now holding most of its topic's messages."""
    return bool(trail and trail.parts and trail.parts[0][1] == event.payload["label"])


def _redo_rename(ref: RunRef, event: Event, trail: TopicTrail) -> None:
    """A button that gives a renamed topic's name to the topic now holding most of its messages (or says it has)."""
    key, label, _ = trail.parts[0]
    name = event.payload["label"]
    if _redone(event, trail):
        st.caption(f"Redone: the topic holding most of them is called “{components.escape_markdown(name)}”.")
    elif may_curate():
        curator = Curator(Path(ref.store), ref.id)
        if st.button(f"Call “{components.escape_markdown(label)}” “{components.escape_markdown(name)}”",
                     key=f"redo_rename_{event.id}", icon=":material/redo:",
                     help="Gives the earlier name (and description) to the topic that holds most of its messages."):
            run_edit(lambda: curator.rename(key, name, event.payload.get("description", ""), user=user_name(),
                                            seen_label=label),
                     f"“{label}” is now called “{name}”.")

"""Users: who may sign in and with which role; an admin adds people, changes roles and passwords, removes people.

The same users file as `feedback-lens users`. Every change re-checks the admin role when it happens (a page drawn
before a demotion cannot still change anyone), and an admin cannot demote or remove themselves here, so the
dashboard is never left without the admin who was using it.
"""

from collections.abc import Callable

import pandas as pd
import streamlit as st

from dashboard import auth, components
from pipelines.auth import MIN_PASSWORD, ROLES, AuthError, UserRecord, role_with_article
from pipelines.charts import format_date

ROLE_WORDS = {"viewer": "Viewer: reads every page, downloads and makes snapshots",
              "analyst": "Analyst: also renames, merges and splits topics",
              "admin": "Admin: also analyses new files, chooses runs and manages users"}
_DONE, _ADD_REFUSED = "users_done", "users_add_refused"
_DIFFER = "The two passwords differ: type the same password twice."

me = auth.require("admin")
st.title("Users")
mode = auth.settings().mode
if mode == "none":
    st.info("Sign-in is off (this dashboard serves this computer only), so these users are not asked to sign in "
            "yet: they apply once FEEDBACK_LENS_AUTH is password or oidc.", icon=":material/info:")
done = st.session_state.pop(_DONE, None)
if done:
    st.success(components.escape_markdown(done), icon=":material/check_circle:")

users = auth.users()
try:
    records = users.records()
except AuthError as err:
    st.error(f"{components.escape_markdown(err.message)}\n\n**How to fix:** {components.escape_markdown(err.fix)}",
             icon=":material/error:")
    st.stop()

if records:
    table = pd.DataFrame([{"User": r.name, "Role": r.role, "Signs in with": r.sign_in,
                           "Added": format_date(r.created_at), "Last changed": format_date(r.updated_at)}
                          for r in records.values()])
    st.dataframe(table, hide_index=True, width="content")
    st.caption("A change applies to the person's open pages at their next click; a removed person is signed out.")
else:
    st.info("No users yet. Add the first below (an admin, to manage the others).", icon=":material/person_add:")
changes = users.changes()
if changes:
    with st.expander(f"Changes to the users ({len(changes):,})"):
        st.dataframe(pd.DataFrame({
            "When (UTC)": [pd.Timestamp(c.at).strftime("%-d %b %Y, %H:%M") for c in changes],
            "By": [c.by for c in changes], "Change": [c.action for c in changes],
            "User": [c.user for c in changes], "Role": [c.role_shown for c in changes]}),
            hide_index=True, width="content",
            # Sized to fit "command line (root)": with the default width the column was cut at "comma…".
            column_config={"By": st.column_config.TextColumn(width="medium")})


def _apply(change: Callable[..., UserRecord], said: Callable[[UserRecord], str], *args: object) -> None:
    """Make one change to the users file as the admin signed in now; the next run says what was done."""
    admin = auth.require("admin")  # when the click arrives, not when the page was drawn
    try:
        record = change(*args, by=admin.name)
    except AuthError as err:  # a taken name, a short password: the message says which rule
        st.error(components.escape_markdown(err.message), icon=":material/error:")
        return
    st.session_state[_DONE] = said(record)
    st.rerun()


def _passwords_match(password: str, again: str) -> bool:
    if password != again:
        st.error(_DIFFER, icon=":material/error:")
        return False
    return True


def _add() -> None:
    """The Add button's callback. It runs before the page is drawn again, so it can empty the form's fields itself:
    the typed passwords always, the name only once added (a refused name stays, to be corrected)."""
    form = st.session_state
    sso = mode == "oidc" and form.get("users_add_sso", False)
    password, again = form["users_add_password"], form["users_add_again"]
    form["users_add_password"] = form["users_add_again"] = ""
    if not sso and password != again:
        form[_ADD_REFUSED] = _DIFFER
        return
    admin = auth.signed_in_user()  # guarded: an admin when the click arrived
    try:
        record = users.add(form["users_add_name"], form["users_add_role"], None if sso else password,
                           by=admin.name if admin else "")
    except AuthError as err:  # a taken name, a short password: the message says which rule
        form[_ADD_REFUSED] = err.message
        return
    form["users_add_name"] = ""
    form[_DONE] = f"Added {record.name} ({record.role}, {record.sign_in})."


others = [name for name in records if name != me.name]


def _with_role(name: str) -> str:
    return f"{name} ({records[name].role})"

# Keyed: after a change the page shows what was done, and the tab in use stays open (it went back to the first).
add, role_tab, password_tab, remove_tab = st.tabs(["Add someone", "Change a role", "Set a password", "Remove someone"],
                                                  key="users_tab", on_change="rerun")

with add, st.form("users_add", border=False):
    a, b = st.columns(2)
    a.text_input("User name", key="users_add_name", placeholder="e.g. ann or ann@example.com",
                 help="Lower-case letters, digits and . _ @ + -; with single sign-on, their e-mail address.")
    b.selectbox("Role", ROLES, format_func=ROLE_WORDS.get, key="users_add_role")
    if mode == "oidc":
        st.toggle("Signs in with single sign-on (matched by e-mail), no password", key="users_add_sso")
    c, d = st.columns(2)
    c.text_input("Password", type="password", autocomplete="new-password", key="users_add_password",
                 help=f"At least {MIN_PASSWORD} characters. Give it to them in person or by phone.")
    d.text_input("The same password again", type="password", autocomplete="new-password", key="users_add_again")
    if refused := st.session_state.pop(_ADD_REFUSED, None):
        st.error(components.escape_markdown(refused), icon=":material/error:")
    st.form_submit_button("Add", type="primary", icon=":material/person_add:", key="users_add_go",
                          on_click=auth.guarded("admin", _add))

with role_tab:
    if not others:
        st.caption("There is nobody else yet. Your own role is changed by another admin, or on the server with "
                   "`feedback-lens users set-role`.")
    else:
        with st.form("users_role", border=False):
            a, b = st.columns(2)
            who = a.selectbox("User", others, format_func=_with_role, key="users_role_who")
            role = b.selectbox("New role", ROLES, format_func=ROLE_WORDS.get, key="users_role_role")
            if st.form_submit_button("Change the role", type="primary", icon=":material/manage_accounts:",
                                     key="users_role_go"):
                if records[who].role == role:
                    st.info(f"{who} is already {role_with_article(role)}: nothing changed.", icon=":material/info:")
                else:
                    _apply(users.set_role, lambda r: f"{r.name} is now {role_with_article(r.role)}.", who, role)

with password_tab, st.form("users_password", border=False, clear_on_submit=True):
    names = list(records)
    who = st.selectbox("User", names, index=names.index(me.name) if me.name in names else 0,
                       format_func=lambda n: n + (" (you)" if n == me.name else ""), key="users_password_who")
    c, d = st.columns(2)
    password = c.text_input("New password", type="password", autocomplete="new-password", key="users_password_new",
                            help=f"At least {MIN_PASSWORD} characters. It also lifts a lock after failed sign-ins, and "
                                 "signs them out in every browser that remembered them.")
    again = d.text_input("The same password again", type="password", autocomplete="new-password",
                         key="users_password_again")
    if st.form_submit_button("Set the password", type="primary", icon=":material/key:", disabled=not names,
                             key="users_password_go") and (
            _passwords_match(password, again)):
        _apply(users.set_password, lambda r: f"New password set for {r.name}.", who, password)

with remove_tab:
    if not others:
        st.caption("There is nobody else to remove. You are removed by another admin, or on the server with "
                   "`feedback-lens users remove`.")
    else:
        with st.form("users_remove", border=False):
            who = st.selectbox("User", others, format_func=_with_role, key="users_remove_who")
            sure = st.checkbox("Yes, remove them: they can no longer sign in", key="users_remove_sure")
            if st.form_submit_button("Remove", icon=":material/person_remove:", key="users_remove_go"):
                if sure:
                    _apply(users.remove, lambda r: f"Removed {r.name} ({r.role}).", who)
                else:
                    st.warning("Tick the box to confirm.", icon=":material/help:")

"""Who is signed in and what they may do: the one place the router and the pages ask.

- :func:`current_user` / :func:`signed_in_user`: the :class:`~pipelines.auth.User` (name, role).
- :func:`allowed` (UI: show or hide), :func:`require` (at the point of action: refuse and stop) and
  :func:`guarded` (a button callback that re-checks the role when it runs) for the actions in
  :data:`pipelines.auth.ACTIONS`: ``view``, ``export`` (viewer+), ``curate`` (analyst+), ``admin`` (admin).
- :func:`sign_in_screen`: what a signed-out visitor sees instead of any page; :func:`sidebar`: who is
  signed in, and the sign-out button.

Roles are read from the users file on every run, so ``feedback-lens users set-role`` or ``remove``
applies to open sessions at their next click, and an action is checked when it is performed, not only
when its button was drawn: a request forged by a browser (or a stale page) is refused on the server.

Sign-in modes (``FEEDBACK_LENS_AUTH``, or ``feedback-lens serve --auth MODE``):

``none`` (default)
    No sign-in; the single user is an admin. Only allowed while the server listens on localhost
    (``server.address`` in ``streamlit_config/config.toml``, ``--host`` or ``STREAMLIT_SERVER_ADDRESS``);
    on any other address the dashboard refuses to show anything.
``password``
    Users and roles from the users file (``<store>/users.json`` or ``FEEDBACK_LENS_USERS``), managed with
    ``feedback-lens users add NAME --role viewer|analyst|admin``. Passwords are Argon2id hashes; five
    failed sign-ins per user name within five minutes pause that name for the rest of the five minutes,
    across every browser session and server process. A sign-in is remembered by the browser for
    ``FEEDBACK_LENS_SIGN_IN_DAYS`` (7 by default; 0: for the tab only): a cookie holds a random token whose
    SHA-256 the server keeps with the user's name, so signing out, a new password or removing the user
    ends it on the server. Streamlit lets a page set a cookie only from script, so the cookie cannot be
    HttpOnly; every text the dashboard shows from the data is escaped, which is what keeps script out.
``oidc``
    Company single sign-on through Streamlit's ``st.login`` (OpenID Connect; needs ``Authlib``, in
    requirements.txt). Configure the provider in ``.streamlit/secrets.toml`` in the folder the dashboard
    is started from, or in ``~/.streamlit/secrets.toml``::

        [auth]
        redirect_uri = "https://feedback.example.com/oauth2callback"   # this dashboard's URL + /oauth2callback
        cookie_secret = "a long random string"      # e.g. python -c "import secrets; print(secrets.token_hex(32))"
        client_id = "..."                           # from the provider's app registration
        client_secret = "..."
        server_metadata_url = "https://login.microsoftonline.com/<tenant>/v2.0/.well-known/openid-configuration"

    With several providers, put the last three keys under ``[auth.NAME]`` and set
    ``FEEDBACK_LENS_OIDC_PROVIDER=NAME``. People are matched by the e-mail address the provider gives:
    ``feedback-lens users add alice@example.com --role analyst --sso`` sets a role. Anyone else who signs
    in gets ``FEEDBACK_LENS_OIDC_DEFAULT_ROLE`` (e.g. ``viewer``) or, by default, no access: providers
    such as Google let anyone with an account sign in, not only your colleagues.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, NoReturn

import streamlit as st

from pipelines.auth import (
    ROLES,
    AuthError,
    SignInError,
    User,
    Users,
    check_mode,
    check_served,
    check_sign_in_days,
    is_local_address,
    needed_role,
    role_with_article,
    users_path,
)
from pipelines.errors import FeedbackLensError
from pipelines.settings import AuthSettings

LOCAL_USER = User("local", "admin")
"""The single user when sign-in is off (mode ``none``, localhost only)."""

SIGNED_IN = "_auth_user"
"""Session key: the name of the user signed in by password (the role is re-read from the users file)."""
REFUSED = "_auth_refused"
"""Session key: why a guarded callback refused, shown on the run that follows."""
COOKIE = "feedback_lens_sign_in"
"""The browser cookie that remembers a password sign-in (a token; see :meth:`pipelines.auth.Users.remember`)."""
_TOKEN, _COOKIE_SCRIPT = "_auth_token", "_auth_cookie_script"
"""Session keys: this browser's remembered sign-in, and a cookie change to make on the next run."""


def settings() -> AuthSettings:
    """The sign-in settings, read from the environment on every run (tests and restarts change them)."""
    return AuthSettings()


def users() -> Users:
    """The users file and its sign-in log."""
    s = settings()
    return Users(users_path(s), s)


def served_address() -> str | None:
    """The address the server listens on; None means every interface (Streamlit's default).

    Flags, environment variables and config files all end up in ``server.address``; when nothing set
    it, ``STREAMLIT_SERVER_ADDRESS`` is read directly, and under ``AppTest`` (which serves nothing) the
    address is taken to be localhost.
    """
    from streamlit import config
    from streamlit.config_option import ConfigOption

    # config.get_option, not st.get_option: AppTest patches the module's function.
    if config.get_where_defined("server.address") != ConfigOption.DEFAULT_DEFINITION:
        return config.get_option("server.address")
    if os.environ.get("STREAMLIT_SERVER_ADDRESS"):
        return os.environ["STREAMLIT_SERVER_ADDRESS"]
    if config.get_option("global.appTest"):
        return "localhost"
    return None


def _mode() -> str | None:
    try:
        return check_mode(settings().mode)
    except AuthError:
        return None


# ---------------------------------------------------------------------------------------------- who


def signed_in_user() -> User | None:
    """The signed-in user with their current role, or None (signed out, no access, or serving refused).

    Draws nothing: the router calls it before the page list exists.
    """
    mode = _mode()
    if mode == "none":
        return LOCAL_USER if is_local_address(served_address()) else None
    if mode == "password":
        name = st.session_state.get(SIGNED_IN) or _remembered_name()
        if not name:
            return None
        try:
            user = users().user(name)
        except AuthError:
            return None
        if user is None:  # removed from the users file since signing in
            del st.session_state[SIGNED_IN]
        return user
    if mode == "oidc" and st.user.get("is_logged_in"):
        return _oidc_user()
    return None


def current_user() -> User:
    """The signed-in user; a signed-out visitor gets the sign-in screen and the run stops."""
    user = signed_in_user()
    if user is None:
        sign_in_screen()
    return user


def allowed(action: str) -> bool:
    """Whether the signed-in user may do ``action``: decides what the UI shows. Never enough on its own
    for an action with effects: check it where the action happens (:func:`require`, :func:`guarded`)."""
    user = signed_in_user()
    return user is not None and user.can(action)


def deny_message(action: str, user: User | None = None) -> str:
    """ "You need the analyst role to do this …" for a user whose role may not do ``action``."""
    role = needed_role(action)
    user = user or signed_in_user()
    who = f" You are signed in as {user.name}, {role_with_article(user.role)}." if user else ""
    return (f"You need the {role} role to do this.{who} Ask an admin to change your role "
            f"(feedback-lens users set-role NAME {role}).")


def require(action: str) -> User:
    """The signed-in user if their role may do ``action``; otherwise a clear message and the run stops.

    Call it where the action is performed (before starting a job, before writing an edit), not only
    where its button is drawn.
    """
    user = current_user()
    if not user.can(action):
        st.error(deny_message(action, user), icon=":material/lock:")
        st.stop()
    return user


def guarded(action: str, callback: Callable[..., Any]) -> Callable[..., Any]:
    """``callback`` for a widget's ``on_click`` / ``on_change`` that runs only if the user's role (as it is
    when the click arrives) may do ``action``; otherwise the next run shows why, and nothing changes.

    Example:
        >>> st.button("Dismiss", on_click=guarded("admin", jobs.remove_job), args=(store, job.id))
    """

    def run(*args: Any, **kwargs: Any) -> Any:
        if allowed(action):
            return callback(*args, **kwargs)
        st.session_state[REFUSED] = deny_message(action)
        return None

    return run


def _remembered_name() -> str | None:
    """The user a remembered sign-in in this browser's cookie names (a reload, a new tab), now signed in here."""
    token = _cookie()
    if not token:
        return None
    user = users().remembered(token)
    if user is None:
        return None
    st.session_state[SIGNED_IN], st.session_state[_TOKEN] = user.name, token
    return user.name


def _cookie() -> str | None:
    """This browser's sign-in cookie as the connection was opened with it (a test harness may offer none)."""
    token = st.context.cookies.get(COOKIE)
    return token if isinstance(token, str) and token else None


def _cookie_script(token: str | None, days: float = 0) -> str:
    """A script that sets the sign-in cookie to ``token`` for ``days``, or deletes it (``None``)."""
    import json

    value, age = (token, round(days * 86_400)) if token else ("", 0)
    return (f"<script>document.cookie = {json.dumps(f'{COOKIE}={value}; path=/; max-age={age}; SameSite=Strict')}"
            ' + (location.protocol === "https:" ? "; Secure" : "");</script>')


def _change_cookie() -> None:
    """Set or delete the sign-in cookie when a sign-in or a sign-out asked for it (drawn in the sidebar)."""
    script = st.session_state.pop(_COOKIE_SCRIPT, None)
    if script:
        st.html(script, unsafe_allow_javascript=True, width="content")


# ------------------------------------------------------------------------------------------- drawing


def sidebar(user: User) -> None:
    """Who is signed in and the sign-out button (nothing when sign-in is off), and any refusal notice."""
    refused = st.session_state.pop(REFUSED, None)
    if refused:
        st.error(refused, icon=":material/lock:")
    mode = _mode()
    if mode not in ("password", "oidc"):
        return
    with st.sidebar:
        _change_cookie()
        who, out = st.columns([3, 2], vertical_alignment="center")
        who.caption(f":material/person: {_plain(user.name)} · {user.role}")
        out.button("Sign out", key="auth_sign_out", on_click=_sign_out, width="stretch")


def _sign_out() -> None:
    # Everything this session held goes: the next person at this browser starts afresh, and the remembered
    # sign-in ends on the server (the cookie this connection was opened with still names it).
    token = st.session_state.get(_TOKEN)
    if token:
        try:
            users().forget(token)
        except AuthError:
            pass  # the sign-in log cannot be written: the cookie is deleted below all the same
    for key in list(st.session_state):
        del st.session_state[key]
    if token:
        st.session_state[_COOKIE_SCRIPT] = _cookie_script(None)
    if _mode() == "oidc":
        st.logout()  # forgets the identity cookie and ends the provider's session where it can


def sign_in_screen() -> NoReturn:
    """What a visitor sees while nobody is signed in; no page and no data. Stops the run."""
    st.title("Feedback Lens")
    try:
        mode = check_mode(settings().mode)
    except AuthError as err:
        _error(err)
        st.stop()
    if mode == "none":
        try:
            check_served(mode, served_address())
        except AuthError as err:
            _error(err)
    elif mode == "password":
        if _cookie():  # one that no longer signs anyone in (expired, signed out elsewhere)
            st.session_state.setdefault(_COOKIE_SCRIPT, _cookie_script(None))
        _change_cookie()
        _password_form()
    else:
        _oidc_screen()
    st.stop()


def _error(err: FeedbackLensError) -> None:
    st.error(_plain(err.message) + (f"\n\n**How to fix:** {_plain(err.fix)}" if err.fix else ""),
             icon=":material/error:")


def _plain(text: str) -> str:
    from dashboard.components import escape_markdown

    return escape_markdown(str(text))


_NAME, _PASSWORD, _FAILED = "sign_in_name", "sign_in_password", "sign_in_failed"


def _password_form() -> None:
    try:
        has_users = any(r.password_hash for r in users().records().values())
    except AuthError as err:
        _error(err)
        return
    if not has_users:
        st.info("Nobody can sign in yet: an admin adds the first user on the server with "
                "`feedback-lens users add NAME --role admin`.", icon=":material/person_add:")
        return
    failed = st.session_state.pop(_FAILED, None)
    with st.form("sign_in", width=420):
        st.markdown("**Sign in**")
        name = st.text_input("User name", autocomplete="username", key=_NAME)
        password = st.text_input("Password", type="password", autocomplete="current-password", key=_PASSWORD)
        submitted = st.form_submit_button("Sign in", type="primary", icon=":material/login:")
    if failed is not None:
        _error(failed)
    if not submitted:
        return
    try:
        if not name.strip():
            raise SignInError("Enter your user name as well as your password.")
        user = users().authenticate(name, password)
    except (SignInError, AuthError) as err:
        # The user name stays for the next try; the password is cleared, as sign-in forms do.
        st.session_state[_FAILED] = err
        st.session_state.pop(_PASSWORD, None)
        st.rerun()
    st.session_state.pop(_PASSWORD, None)
    st.session_state[SIGNED_IN] = user.name
    _remember(user.name)
    st.rerun()


def _remember(name: str) -> None:
    """Have the browser remember this sign-in for the configured days (none with 0, or when it cannot be kept)."""
    try:
        days = check_sign_in_days(settings().sign_in_days)
        token = users().remember(name) if days > 0 else None
    except AuthError as err:  # a typo in FEEDBACK_LENS_SIGN_IN_DAYS: signed in for this tab, and told why
        st.session_state[REFUSED] = f"{err.message} {err.fix} This sign-in lasts for this tab only."
        return
    if token:
        st.session_state[_TOKEN], st.session_state[_COOKIE_SCRIPT] = token, _cookie_script(token, days)


# ---------------------------------------------------------------------------------------------- oidc


def _oidc_user() -> User | None:
    email = str(st.user.get("email") or "").strip().lower()
    if not email:
        return None
    try:
        record = users().get(email)
    except AuthError:
        return None
    if record is not None:
        return record.user()
    default = settings().oidc_default_role
    return User(email, default) if default in ROLES else None


def _oidc_problem() -> str | None:
    """What is missing from secrets.toml for single sign-on, or None when it looks complete."""
    try:
        section = st.secrets.get("auth")
    except Exception:  # no secrets file at all: Streamlit raises its own "not found" error
        section = None
    if not section:
        return "there is no [auth] section in .streamlit/secrets.toml"
    provider = settings().oidc_provider
    keys = {"redirect_uri", "cookie_secret"} - set(section)
    provider_section = section.get(provider) if provider else section
    if provider and not provider_section:
        return f"there is no [auth.{provider}] section (FEEDBACK_LENS_OIDC_PROVIDER={provider})"
    keys |= {"client_id", "client_secret", "server_metadata_url"} - set(provider_section)
    return f"[auth] lacks {', '.join(sorted(keys))}" if keys else None


def _oidc_screen() -> None:
    if st.user.get("is_logged_in"):  # signed in with the provider, but no role here
        email = st.user.get("email") or "this account"
        st.warning(f"{_plain(email)} has no access to Feedback Lens yet. Ask an admin to add you: "
                   f"`feedback-lens users add {_plain(email)} --role viewer --sso`.", icon=":material/lock:")
        st.button("Sign out", key="auth_sign_out", on_click=_sign_out)
        return
    problem = _oidc_problem()
    if problem:
        st.error(f"Single sign-on is not configured: {problem}.\n\n**How to fix:** add the provider's settings "
                 "(redirect_uri, cookie_secret, client_id, client_secret, server_metadata_url) to "
                 "`.streamlit/secrets.toml` where the dashboard is started; the README shows an example.",
                 icon=":material/error:")
        return
    st.markdown("Sign in with your company account to see the feedback analysis.")
    if st.button("Sign in with single sign-on", key="auth_sign_in", type="primary", icon=":material/login:"):
        try:
            st.login(settings().oidc_provider)
        except Exception as err:  # Streamlit's own auth errors: missing Authlib or incomplete secrets
            st.error(f"Single sign-on could not start: {_plain(err)}", icon=":material/error:")

"""Roles and sign-in: the users file and its hashes, rate limiting across processes, the users CLI, and
the dashboard for each role and sign-in mode through Streamlit's AppTest (on an empty store: no model).
"""

from __future__ import annotations

import getpass
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import auth as dashboard_auth
from dashboard import components
from pipelines import auth, cli, jobs
from pipelines.auth import (
    ACTIONS,
    ROLES,
    AuthError,
    LockedOut,
    SignInError,
    User,
    Users,
    check_served,
    check_sign_in_days,
    is_local_address,
)
from pipelines.settings import AuthSettings

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "dashboard" / "app.py"
PASSWORDS = {"vera": "viewer pass 1", "ann": "analyst pass 2", "ada": "admin pass 3"}
ROLE_OF = {"vera": "viewer", "ann": "analyst", "ada": "admin"}
OIDC_SECRETS = {"auth": {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x" * 32,
                         "client_id": "feedback-lens", "client_secret": "s3cret",
                         "server_metadata_url": "https://id.example.com/.well-known/openid-configuration"}}


@pytest.fixture
def store(monkeypatch, tmp_path) -> Path:
    """An empty store with the three users, and the environment pointing at it (sign-in still off)."""
    store = tmp_path / "store"
    monkeypatch.setenv("FEEDBACK_LENS_STORE", str(store))
    for name in ("FEEDBACK_LENS_AUTH", "FEEDBACK_LENS_USERS", "FEEDBACK_LENS_OIDC_PROVIDER",
                 "FEEDBACK_LENS_OIDC_DEFAULT_ROLE", "STREAMLIT_SERVER_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    users = Users(store / "users.json")
    for name, password in PASSWORDS.items():
        users.add(name, ROLE_OF[name], password)
    return store


def users_of(store: Path) -> Users:
    return Users(store / "users.json")


# -------------------------------------------------------------------------------------- roles, hashes


def test_each_role_may_do_what_the_roles_below_it_may():
    table = {role: {action for action in ACTIONS if User("x", role).can(action)} for role in ROLES}
    assert table == {"viewer": {"view", "export"}, "analyst": {"view", "export", "curate"},
                     "admin": {"view", "export", "curate", "admin"}}
    assert not User("x", "owner").can("view")  # an unknown role may do nothing
    with pytest.raises(ValueError, match="unknown action"):
        User("x", "admin").can("delete-everything")  # a mistyped action fails closed, loudly


def test_passwords_are_stored_as_salted_argon2_hashes_readable_by_the_owner_only(store):
    users = users_of(store)
    users.add("Bob", "viewer", "same password")
    users.add("carol", "viewer", "same password")
    text = (store / "users.json").read_text()
    assert "same password" not in text and "pass 1" not in text
    bob, carol = users.get("bob"), users.get("CAROL")
    assert bob.password_hash.startswith("$argon2id$") and carol.password_hash.startswith("$argon2id$")
    assert bob.password_hash != carol.password_hash  # salted
    assert stat.S_IMODE((store / "users.json").stat().st_mode) == 0o600
    assert users.authenticate("BOB", "same password") == User("bob", "viewer")  # names ignore case
    with pytest.raises(SignInError, match="Wrong user name or password"):
        users.authenticate("bob", "Same password")  # passwords do not


def test_unknown_names_fail_exactly_like_wrong_passwords(monkeypatch, store):
    users = users_of(store)
    checked = []  # both check one real Argon2 hash, so they take as long (timing does not tell names apart)
    real_verify = auth.verify_password
    monkeypatch.setattr(auth, "verify_password", lambda h, p: checked.append(h) or real_verify(h, p))
    with pytest.raises(SignInError) as wrong_password:
        users.authenticate("vera", "not her password")
    with pytest.raises(SignInError) as no_such_user:
        users.authenticate("nobody", "not her password")
    assert str(wrong_password.value) == str(no_such_user.value)
    assert len(checked) == 2 and all(h.startswith("$argon2id$v=19$m=65536,t=3,p=4$") for h in checked)
    assert checked[0] == users.get("vera").password_hash and checked[1] != checked[0]


def test_bad_names_roles_and_passwords_are_refused_with_a_fix(store):
    users = users_of(store)
    cases = [(lambda: users.add("al ice", "viewer", "long enough"), "cannot be a user name"),
             (lambda: users.add("", "viewer", "long enough"), "cannot be a user name"),
             (lambda: users.add("alice", "owner", "long enough"), '"owner" is not a role'),
             (lambda: users.add("alice", "viewer", "short"), "too short"),
             (lambda: users.add("vera", "viewer", "long enough"), 'already a user "vera"'),
             (lambda: users.set_role("nobody", "admin"), 'no user "nobody"'),
             (lambda: users.remove("nobody"), 'no user "nobody"')]
    for call, message in cases:
        with pytest.raises(AuthError, match=message) as info:
            call()
        assert info.value.fix
    assert sorted(users.records()) == ["ada", "ann", "vera"]  # nothing changed


def test_a_damaged_users_file_is_a_clear_error(store):
    (store / "users.json").write_text("{not json")
    with pytest.raises(AuthError, match="not a readable users file") as info:
        users_of(store).records()
    assert "feedback-lens users add" in info.value.fix


# ---------------------------------------------------------------------------------- remembered sign-ins


def test_a_remembered_sign_in_lasts_its_days_and_ends_on_sign_out_new_password_or_removal(store, monkeypatch):
    users, now = users_of(store), time.time()
    token = users.remember("vera", now=now)
    assert len(token) >= 40 and users.remembered(token, now=now) == User("vera", "viewer")
    assert users.remembered(token, now=now + 6.9 * 86_400) is not None  # 7 days by default
    assert users.remembered(token, now=now + 7.1 * 86_400) is None
    assert token not in users.attempts_path.read_bytes().decode("latin-1")  # only its SHA-256 is kept
    assert users.remembered("a guessed token") is None and users.remembered("") is None

    users.set_role("vera", "analyst")  # the role is read when the token is, not when it was given
    assert users.remembered(token) == User("vera", "analyst")
    users.forget(token)  # signing out
    assert users.remembered(token) is None
    ann, ada = users.remember("ann"), users.remember("ada")
    users.set_password("ann", "a new password for ann")  # every browser of hers signs in again
    users.remove("ada")
    assert users.remembered(ann) is None and users.remembered(ada) is None
    vera = users.remember("vera")
    assert users.remembered(vera) == User("vera", "analyst")  # the others' changes leave hers alone

    monkeypatch.setenv("FEEDBACK_LENS_SIGN_IN_DAYS", "0.5")
    half_day = users_of(store).remember("vera", now=now)
    assert users.remembered(half_day, now=now + 11 * 3600) and not users.remembered(half_day, now=now + 13 * 3600)
    for wrong in ("a week", "-1", "400"):
        with pytest.raises(AuthError, match="is not a number of days") as info:
            check_sign_in_days(wrong)
        assert "0 to ask again" in info.value.fix
    monkeypatch.setenv("FEEDBACK_LENS_SIGN_IN_DAYS", "a week")
    with pytest.raises(AuthError, match='FEEDBACK_LENS_SIGN_IN_DAYS="a week"'):
        cli.check_serving({"FEEDBACK_LENS_STORE": str(store), "FEEDBACK_LENS_AUTH": "password",
                           "FEEDBACK_LENS_SIGN_IN_DAYS": "a week"}, None)


# ------------------------------------------------------------------------------------------ rate limit


def test_failed_sign_ins_lock_the_name_and_the_window_lifts_it(store):
    users = users_of(store)
    now = time.time()
    for i in range(5):
        with pytest.raises(SignInError) as info:
            users.authenticate("vera", f"guess {i}", now=now + i)
        assert not isinstance(info.value, LockedOut)
    assert "paused for 5 minutes" in str(info.value)
    with pytest.raises(LockedOut, match="Too many failed sign-ins") as locked:
        users.authenticate("vera", PASSWORDS["vera"], now=now + 10)  # even the right password
    assert 280 < locked.value.retry_after <= 300
    assert users.authenticate("ann", PASSWORDS["ann"], now=now + 10).role == "analyst"  # others unaffected
    assert users.authenticate("vera", PASSWORDS["vera"], now=now + 301).name == "vera"
    assert users.failures("vera", now=now + 301) == 0  # a success clears the count


def test_a_new_password_lifts_the_pause(store):
    users = users_of(store)
    for i in range(5):
        with pytest.raises(SignInError):
            users.authenticate("vera", f"guess {i}")
    users.set_password("vera", "brand new password")
    assert users.authenticate("vera", "brand new password").name == "vera"


GUESSER = """
import sys
from pipelines.auth import LockedOut, SignInError, Users
users = Users(sys.argv[1])
counts = {"wrong": 0, "locked": 0}
for i in range(int(sys.argv[2])):
    try:
        users.authenticate("vera", f"guess {sys.argv[3]} {i}")
    except LockedOut:
        counts["locked"] += 1
    except SignInError:
        counts["wrong"] += 1
print(counts["wrong"], counts["locked"])
"""


def _guessers(store: Path, tries: int, processes: int) -> list[tuple[int, int]]:
    procs = [subprocess.Popen([sys.executable, "-c", GUESSER, str(store / "users.json"), str(tries), str(p)],
                              cwd=ROOT, stdout=subprocess.PIPE, text=True) for p in range(processes)]
    return [tuple(int(n) for n in proc.communicate(timeout=300)[0].split()) for proc in procs]


def test_the_limit_holds_across_processes_even_when_they_guess_at_once(store):
    # Two processes one after the other: 3 + 2 failures lock the name for this one too.
    assert _guessers(store, 3, 1) == [(3, 0)]
    assert _guessers(store, 2, 1) == [(2, 0)]
    with pytest.raises(LockedOut):
        users_of(store).authenticate("vera", PASSWORDS["vera"])
    # Two processes at the same time, 6 guesses each: only 5 passwords are ever checked in all.
    users_of(store).set_password("vera", PASSWORDS["vera"])
    results = _guessers(store, 6, 2)
    assert sum(wrong for wrong, _ in results) == 5 and sum(locked for _, locked in results) == 7


# ---------------------------------------------------------------------------------------------- the CLI


def _cli(monkeypatch, capsys, *argv: str, stdin: str = "") -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_users_command_adds_lists_changes_and_removes(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv("FEEDBACK_LENS_USERS", raising=False)
    s = ["--store", str(tmp_path / "st")]
    code, out, _ = _cli(monkeypatch, capsys, "users", "add", "Alice", "--role", "analyst", "--password-stdin", *s,
                        stdin="correct horse battery\n")
    assert code == 0 and "Added alice (analyst, password)" in out
    assert _cli(monkeypatch, capsys, "users", "add", "ann@example.com", "--role", "viewer", "--sso", *s)[0] == 0
    code, out, _ = _cli(monkeypatch, capsys, "users", "list", *s)
    assert code == 0 and [line.split()[:3] for line in out.splitlines()] == [
        ["alice", "analyst", "password"], ["ann@example.com", "viewer", "single"]]
    assert _cli(monkeypatch, capsys, "users", "set-role", "alice", "admin", *s)[:2] == (0, "alice is now an admin.\n")
    assert Users(tmp_path / "st" / "users.json").authenticate("alice", "correct horse battery").role == "admin"
    code, _, err = _cli(monkeypatch, capsys, "users", "remove", "ann@example.com", *s)
    assert code == 0 and "no admin" not in err  # alice is still an admin
    assert list(Users(tmp_path / "st" / "users.json").records()) == ["alice"]
    code, out, err = _cli(monkeypatch, capsys, "users", "set-role", "alice", "viewer", *s)  # the last admin goes
    assert code == 0 and out == "alice is now a viewer.\n"
    assert _cli(monkeypatch, capsys, "users", "set-role", "alice", "viewer", *s)[:2] == (
        0, "alice is already a viewer: nothing changed.\n")  # and not logged below
    assert "Note: no admin is left" in err and "feedback-lens users set-role NAME admin" in err
    changes = Users(tmp_path / "st" / "users.json").changes()  # each change, newest first, by whoever ran it
    assert [(c.action, c.user, c.role) for c in changes] == [
        ("new role", "alice", "viewer"), ("removed", "ann@example.com", "viewer"), ("new role", "alice", "admin"),
        ("added", "ann@example.com", "viewer"), ("added", "alice", "analyst")]
    assert {c.by for c in changes} == {f"command line ({getpass.getuser()})"}
    assert [c.role_shown for c in changes][:3] == ["admin → viewer", "viewer", "analyst → admin"]
    # a path from the environment wins over the store
    monkeypatch.setenv("FEEDBACK_LENS_USERS", str(tmp_path / "elsewhere" / "people.json"))
    assert _cli(monkeypatch, capsys, "users", "add", "bob", "--role", "viewer", "--password-stdin",
                stdin="another good one\n")[0] == 0
    assert list(Users(tmp_path / "elsewhere" / "people.json").records()) == ["bob"]


def test_users_command_mistakes_exit_2_with_the_fix_and_change_nothing(monkeypatch, capsys, tmp_path):
    s = ["--store", str(tmp_path / "st")]
    _cli(monkeypatch, capsys, "users", "add", "alice", "--role", "viewer", "--password-stdin", *s, stdin="long enough\n")
    before = (tmp_path / "st" / "users.json").read_bytes()
    mistakes = [(["users", "add", "alice", "--role", "viewer", "--password-stdin"], "long enough\n",
                 'already a user "alice"'),
                (["users", "add", "bob", "--role", "viewer", "--password-stdin"], "short\n", "too short"),
                (["users", "add", "bob", "--role", "viewer", "--password-stdin"], "", "No password on standard input"),
                (["users", "add", "bob", "--role", "viewer"], "", "No terminal to ask for the password"),
                (["users", "add", "b o b", "--role", "viewer", "--sso"], "", "cannot be a user name"),
                (["users", "set-role", "nobody", "admin"], "", 'no user "nobody"'),
                (["users", "remove", "nobody"], "", 'no user "nobody"'),
                (["users", "set-password", "nobody", "--password-stdin"], "long enough\n", 'no user "nobody"')]
    for argv, stdin, message in mistakes:
        code, _, err = _cli(monkeypatch, capsys, *argv, *s, stdin=stdin)
        assert code == 2 and message in err and "How to fix:" in err, (argv, err)
    with pytest.raises(SystemExit) as info:  # argparse: a role that does not exist
        _cli(monkeypatch, capsys, "users", "set-role", "alice", "owner", *s)
    assert info.value.code == 2 and "invalid choice: 'owner'" in capsys.readouterr().err
    assert (tmp_path / "st" / "users.json").read_bytes() == before


def test_the_console_script_takes_a_password_from_a_pipe(tmp_path):
    users_file = tmp_path / "users.json"
    done = subprocess.run([sys.executable, "-m", "pipelines.cli", "users", "add", "ops", "--role", "admin",
                           "--password-stdin", "--users-file", str(users_file)],
                          input="piped password\n", capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert Users(users_file).authenticate("ops", "piped password") == User("ops", "admin")


def test_serve_refuses_no_sign_in_on_a_network_address(monkeypatch, capsys, store):
    monkeypatch.setattr(os, "execve", lambda *a, **k: pytest.fail("the server must not start"))
    assert cli.main(["serve", "--host", "0.0.0.0"]) == 1
    err = capsys.readouterr().err
    assert "may only be served on this machine" in err and "0.0.0.0" in err and "FEEDBACK_LENS_AUTH=password" in err
    empty = store.parent / "empty"
    assert cli.main(["serve", "--auth", "password", "--store", str(empty)]) == 1
    assert "no user with a password yet" in capsys.readouterr().err
    cli.check_serving({"FEEDBACK_LENS_STORE": str(store)}, None)  # config.toml binds localhost: fine
    cli.check_serving({"FEEDBACK_LENS_STORE": str(store), "FEEDBACK_LENS_AUTH": "password"}, "0.0.0.0")


def test_only_loopback_addresses_count_as_local():
    assert all(map(is_local_address, ["localhost", "127.0.0.1", "127.1.2.3", "::1", "[::1]", "LOCALHOST"]))
    assert not any(map(is_local_address, [None, "", "0.0.0.0", "::", "192.168.1.5", "10.0.0.1", "example.com"]))
    check_served("none", "127.0.0.1")
    check_served("password", "0.0.0.0")
    with pytest.raises(AuthError, match="every network address"):
        check_served("none", None)
    with pytest.raises(AuthError, match="not a sign-in mode"):
        check_served("ldap", "localhost")


# ------------------------------------------------------------------------------------- the dashboard


def app(path: Path = APP) -> AppTest:
    return AppTest.from_file(str(path), default_timeout=60)


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def sign_in(at: AppTest, name: str, password: str | None = None) -> AppTest:
    at.text_input[0].input(name)
    at.text_input[1].input(password if password is not None else PASSWORDS[name])
    at.button[0].click()
    return run(at)


def texts(at: AppTest) -> str:
    """Everything the main area and the sidebar say, markdown escapes removed."""
    parts = [e.value for kind in ("title", "markdown", "caption", "info", "warning", "error", "success")
             for e in getattr(at, kind)]
    parts += [e.value for e in at.sidebar.caption]
    return "\n".join(parts).replace("\\", "").replace(components.WORD_JOINER, "")


def signed_out(at: AppTest) -> bool:
    """The sign-in screen, and no page: no page title, no run, no upload."""
    return [t.value for t in at.title] == ["Feedback Lens"] and not at.get("file_uploader") \
        and "No analysed run" not in texts(at)


@pytest.fixture
def app_copy(tmp_path) -> Path:
    """The dashboard's router and pages in a folder of their own, with one-line stand-ins for the Curate and
    Audit pages: these tests are about which pages the router offers to whom, not what the pages show."""
    folder = tmp_path / "dashboard"
    shutil.copytree(ROOT / "dashboard" / "app_pages", folder / "app_pages")
    shutil.copy(APP, folder / "app.py")
    for name, title in (("curate", "Curate topics"), ("audit", "Audit")):
        (folder / "app_pages" / f"{name}.py").write_text(f'import streamlit as st\n\nst.title("{title}")\n')
    return folder / "app.py"


def test_sign_in_off_means_one_local_admin_and_nothing_else_changes(store):
    at = run(app())
    at.switch_page("app_pages/runs.py")
    run(at)
    assert at.file_uploader(key="upload_file")  # the admin's upload
    assert not at.sidebar.button and "Sign" not in texts(at)
    assert dashboard_auth.LOCAL_USER == User("local", "admin")


def test_sign_in_off_refuses_to_serve_on_a_network_address(monkeypatch, store):
    monkeypatch.setenv("STREAMLIT_SERVER_ADDRESS", "0.0.0.0")
    at = run(app())
    assert signed_out(at)
    assert "may only be served on this machine" in at.error[0].value.replace("\\", "")
    at.switch_page("app_pages/runs.py")  # no page opens by its link either
    assert signed_out(run(at))


def test_password_sign_in_wrong_password_lockout_and_sign_out(monkeypatch, store):
    monkeypatch.setenv("FEEDBACK_LENS_AUTH", "password")
    at = run(app())
    assert signed_out(at) and [t.label for t in at.text_input] == ["User name", "Password"]
    at.switch_page("app_pages/runs.py")  # a link to a page shows the sign-in screen too
    assert signed_out(run(at))

    sign_in(at, "vera", "not my password")
    assert signed_out(at) and "Wrong user name or password" in texts(at)
    # The name stays for the next try, the password does not.
    assert [t.value for t in at.text_input] == ["vera", ""]
    at.text_input[0].input("")
    at.text_input[1].input(PASSWORDS["vera"])
    at.button[0].click()
    assert signed_out(run(at)) and "Enter your user name as well as your password." in texts(at)

    sign_in(at, "vera")
    assert [t.value for t in at.title] == ["Data"]  # the page of the link, after signing in
    assert "vera · viewer" in texts(at)
    at.sidebar.button(key="auth_sign_out").click()
    assert signed_out(run(at)) and dashboard_auth.SIGNED_IN not in at.session_state

    for i in range(5):
        sign_in(at, "ann", f"guess {i}")
    sign_in(at, "ann")  # the right password, too late
    assert signed_out(at) and "Too many failed sign-ins" in texts(at)
    assert users_of(store).failures("ann") == 5


def test_password_mode_without_users_says_how_to_add_the_first(monkeypatch, tmp_path, store):
    monkeypatch.setenv("FEEDBACK_LENS_AUTH", "password")
    monkeypatch.setenv("FEEDBACK_LENS_USERS", str(tmp_path / "nobody.json"))
    at = run(app())
    assert signed_out(at) and "feedback-lens users add NAME --role admin" in texts(at) and not at.text_input


@pytest.mark.parametrize("name", ["vera", "ann", "ada"])
def test_each_role_sees_only_the_pages_and_actions_it_may_use(monkeypatch, store, app_copy, name):
    monkeypatch.setenv("FEEDBACK_LENS_AUTH", "password")
    at = sign_in(run(app(app_copy)), name)
    role = ROLE_OF[name]
    assert f"{name} · {role}" in texts(at)

    at.switch_page("app_pages/audit.py")  # every role may read the audit trail
    assert [t.value for t in run(at).title] == ["Audit"]
    if role == "viewer":  # not in the navigation: it cannot be opened
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page("app_pages/curate.py")
    else:
        at.switch_page("app_pages/curate.py")
        assert [t.value for t in run(at).title] == ["Curate topics"]

    at.switch_page("app_pages/runs.py")
    run(at)
    assert bool(at.get("file_uploader")) == (role == "admin")
    assert ("An admin can analyse a new file here" in texts(at)) == (role != "admin")
    if role != "admin":  # managing users is the admin's
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page("app_pages/users.py")


def _failed_job(store: Path) -> str:
    job_id = "20260101-000000-abcd"
    (jobs.jobs_dir(store) / job_id).mkdir(parents=True)
    status = jobs.JobStatus(id=job_id, file="old.csv", state="failed", error="Not enough messages.",
                            updated_at=time.time())  # failed just now: listed for everyone for an hour
    (jobs.jobs_dir(store) / job_id / "status.json").write_text(json.dumps(asdict(status)))
    return job_id


def test_an_admin_action_from_a_stale_page_is_refused_on_the_server(monkeypatch, store, sample_frame):
    """Ada signs in as admin and her page shows the upload form and a job's Dismiss button; then an admin
    makes her a viewer (another process). Her clicks on what is still on her screen are refused."""
    monkeypatch.setenv("FEEDBACK_LENS_AUTH", "password")
    job_id = _failed_job(store)
    at = sign_in(run(app()), "ada")
    at.switch_page("app_pages/runs.py")
    run(at)
    csv = sample_frame.head(40).to_csv(index=False).encode()
    at.file_uploader(key="upload_file").set_value(("feedback.csv", csv, "text/csv"))
    run(at)
    submit = next(b for b in at.button if b.label == "Analyse this file")
    dismiss = at.button(key=f"dismiss_{job_id}")

    users_of(store).set_role("ada", "viewer")
    dismiss.click()
    run(at)
    assert [j.id for j in jobs.list_jobs(store)] == [job_id]  # the callback did not run
    assert "You need the admin role to do this. You are signed in as ada, a viewer." in texts(at)
    submit.click()
    run(at)
    assert [j.id for j in jobs.list_jobs(store)] == [job_id]  # no analysis started
    assert not at.get("file_uploader") and "ada · viewer" in texts(at)


def test_a_removed_user_is_signed_out_at_the_next_click(monkeypatch, store):
    monkeypatch.setenv("FEEDBACK_LENS_AUTH", "password")
    at = sign_in(run(app()), "ann")
    users_of(store).remove("ann")
    assert signed_out(run(at))


def test_require_refuses_with_the_role_needed(monkeypatch, store):
    """``require`` is what pages call where an action happens: a viewer's forged session cannot curate."""
    monkeypatch.setenv("FEEDBACK_LENS_AUTH", "password")
    script = ("import streamlit as st\nfrom dashboard import auth\n"
              "user = auth.require('curate')\nst.success(f'curating as {user.name}')\n")
    at = AppTest.from_string(script, default_timeout=30)
    at.session_state[dashboard_auth.SIGNED_IN] = "vera"
    run(at)
    assert not at.success and "You need the analyst role to do this" in at.error[0].value
    at.session_state[dashboard_auth.SIGNED_IN] = "ann"
    assert run(at).success[0].value == "curating as ann"
    at.session_state[dashboard_auth.SIGNED_IN] = "mallory"  # not in the users file
    assert not run(at).success and at.text_input  # the sign-in screen


def test_oidc_shows_a_sign_in_button_and_no_data(monkeypatch, store):
    monkeypatch.setenv("FEEDBACK_LENS_AUTH", "oidc")
    at = app()
    at.secrets = OIDC_SECRETS
    at.user = {"is_logged_in": False}
    run(at)
    assert signed_out(at) and not at.text_input
    button = at.button(key="auth_sign_in")
    assert button.label == "Sign in with single sign-on"
    button.click()  # no provider is reachable from a test: the failure is a message, not a traceback
    run(at)
    assert signed_out(at) and "Single sign-on could not start" in texts(at)


def test_oidc_without_provider_settings_says_what_is_missing(monkeypatch, store):
    monkeypatch.setenv("FEEDBACK_LENS_AUTH", "oidc")
    at = app()
    at.secrets = {"auth": {"redirect_uri": "http://localhost:8501/oauth2callback"}}
    at.user = {"is_logged_in": False}
    run(at)
    message = at.error[0].value.replace("\\", "")
    assert "Single sign-on is not configured" in message and "client_id" in message and "cookie_secret" in message
    assert not at.button


def test_oidc_users_get_their_role_by_e_mail_and_strangers_none_by_default(monkeypatch, store, app_copy):
    monkeypatch.setenv("FEEDBACK_LENS_AUTH", "oidc")
    users_of(store).add("ann@example.com", "analyst", password=None)
    at = app(app_copy)
    at.secrets = OIDC_SECRETS
    at.user = {"is_logged_in": True, "email": "Ann@Example.com", "name": "Ann"}
    run(at)
    assert "ann@example.com · analyst" in texts(at)
    at.switch_page("app_pages/curate.py")
    assert [t.value for t in run(at).title] == ["Curate topics"]
    at.sidebar.button(key="auth_sign_out").click()
    assert signed_out(run(at)) and at.button(key="auth_sign_in")

    stranger = app()
    stranger.secrets = OIDC_SECRETS
    stranger.user = {"is_logged_in": True, "email": "eve@elsewhere.example"}
    run(stranger)
    assert signed_out(stranger) and "eve@elsewhere.example has no access" in texts(stranger)
    monkeypatch.setenv("FEEDBACK_LENS_OIDC_DEFAULT_ROLE", "viewer")
    run(stranger)
    assert "eve@elsewhere.example · viewer" in texts(stranger)
    assert AuthSettings().oidc_default_role == "viewer"


def test_with_single_sign_on_an_admin_adds_someone_by_e_mail_without_a_password(monkeypatch, store, app_copy):
    monkeypatch.setenv("FEEDBACK_LENS_AUTH", "oidc")
    users_of(store).add("boss@example.com", "admin", password=None)
    at = app(app_copy)
    at.secrets = OIDC_SECRETS
    at.user = {"is_logged_in": True, "email": "boss@example.com"}
    run(at).switch_page("app_pages/users.py")
    run(at).text_input(key="users_add_name").input("bob@example.com")
    at.toggle(key="users_add_sso").set_value(True)  # read when the form is sent, not when it was drawn
    at.button(key="users_add_go").click()
    assert f"Added bob@example.com ({ROLES[0]}, single sign-on)." in texts(run(at))
    assert users_of(store).get("bob@example.com").sign_in == "single sign-on"


def _users_page(monkeypatch, name: str = "ada") -> AppTest:
    monkeypatch.setenv("FEEDBACK_LENS_AUTH", "password")
    at = sign_in(run(app()), name)
    at.switch_page("app_pages/users.py")
    return run(at)


def _add(at: AppTest, name: str, role: str, password: str, again: str | None = None) -> AppTest:
    at.text_input(key="users_add_name").input(name)
    at.selectbox(key="users_add_role").set_value(role)
    at.text_input(key="users_add_password").input(password)
    at.text_input(key="users_add_again").input(password if again is None else again)
    at.button(key="users_add_go").click()
    return run(at)


def test_an_admin_manages_users_on_the_users_page(monkeypatch, store):
    """What `feedback-lens users` does, in the dashboard: the file changes, and so does who may sign in as what."""
    at = _users_page(monkeypatch)
    listed = at.dataframe[0].value
    assert listed["User"].tolist() == ["ada", "ann", "vera"] and listed["Role"].tolist() == ["admin", "analyst", "viewer"]
    assert listed["Signs in with"].eq("password").all()

    _add(at, "Bob", "analyst", "bob's long password", again="bob's long pasword")  # a typo in the second
    assert "The two passwords differ" in texts(at) and users_of(store).get("bob") is None
    # Refused: the name and role stay to be corrected; the typed passwords never stay in the page.
    assert at.text_input(key="users_add_name").value == "Bob" and at.selectbox(key="users_add_role").value == "analyst"
    assert at.text_input(key="users_add_password").value == at.text_input(key="users_add_again").value == ""
    _add(at, "bob", "analyst", "short")
    assert "at least 8 characters" in texts(at) and users_of(store).get("bob") is None
    assert at.text_input(key="users_add_name").value == "bob"
    _add(at, "Bob", "analyst", "bob's long password")
    assert "Added bob (analyst, password)." in texts(at)
    assert at.text_input(key="users_add_name").value == "" and at.text_input(key="users_add_password").value == ""
    assert users_of(store).authenticate("bob", "bob's long password") == User("bob", "analyst")
    assert at.dataframe[0].value["User"].tolist() == ["ada", "ann", "bob", "vera"]
    _add(at, "bob", "viewer", "another long password")
    assert 'There is already a user "bob" (analyst).' in texts(at)

    # Others' roles and passwords; the admin herself is not offered for a new role or for removal.
    assert at.selectbox(key="users_role_who").options == ["ann (analyst)", "bob (analyst)", "vera (viewer)"]
    at.selectbox(key="users_role_who").set_value("ann")
    at.selectbox(key="users_role_role").set_value("admin")
    at.button(key="users_role_go").click()
    assert "ann is now an admin." in texts(run(at)) and users_of(store).get("ann").role == "admin"
    logged = len(users_of(store).changes())
    at.selectbox(key="users_role_who").set_value("ann")
    at.selectbox(key="users_role_role").set_value("admin")
    at.button(key="users_role_go").click()  # her role already: said, and neither changed nor logged
    assert "ann is already an admin: nothing changed." in texts(run(at)) and len(users_of(store).changes()) == logged
    at.selectbox(key="users_password_who").set_value("vera")
    at.text_input(key="users_password_new").input("vera's new password")
    at.text_input(key="users_password_again").input("vera's new password")
    at.button(key="users_password_go").click()
    assert "New password set for vera." in texts(run(at))
    assert users_of(store).authenticate("vera", "vera's new password").role == "viewer"

    assert not any(o.startswith("ada ") for o in at.selectbox(key="users_remove_who").options)
    at.selectbox(key="users_remove_who").set_value("vera")
    at.button(key="users_remove_go").click()
    assert "Tick the box to confirm." in texts(run(at)) and users_of(store).get("vera") is not None
    at.selectbox(key="users_remove_who").set_value("vera")
    at.checkbox(key="users_remove_sure").check()
    at.button(key="users_remove_go").click()
    assert "Removed vera (viewer)." in texts(run(at)) and users_of(store).get("vera") is None
    # Who changed whom, newest first, on the page and in the log beside the users file.
    log = at.dataframe[1].value
    assert log[["By", "Change", "User", "Role"]].values.tolist()[:4] == [
        ["ada", "removed", "vera", "viewer"], ["ada", "new password", "vera", "viewer"],
        ["ada", "new role", "ann", "analyst → admin"], ["ada", "added", "bob", "analyst"]]
    assert [c.action for c in users_of(store).changes()][:4] == ["removed", "new password", "new role", "added"]


def test_a_users_page_drawn_before_a_demotion_changes_nobody(monkeypatch, store):
    at = _users_page(monkeypatch)
    users_of(store).set_role("ada", "analyst")  # by another admin, meanwhile
    _add(at, "mallory", "admin", "a long enough password")
    assert users_of(store).get("mallory") is None
    # The page itself is gone from her navigation: the click lands on the first page, and the form never ran.
    assert [t.value for t in at.title] != ["Users"] and "ada · analyst" in texts(at)


def test_with_sign_in_off_the_users_page_says_the_users_apply_once_it_is_on(store):
    at = run(app())
    at.switch_page("app_pages/users.py")
    run(at)
    assert "these users are not asked to sign in yet: they apply once FEEDBACK_LENS_AUTH is password or oidc" in texts(at)
    assert at.selectbox(key="users_remove_who").options == ["ada (admin)", "ann (analyst)", "vera (viewer)"]
    _add(at, "zoe", "viewer", "zoe's long password")
    assert users_of(store).get("zoe").role == "viewer"

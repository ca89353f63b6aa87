"""Who may do what: roles, the users file, password checks and sign-in rate limiting.

Owns the three roles (viewer < analyst < admin), the actions each may do, the users file
(``<store>/users.json`` or ``$FEEDBACK_LENS_USERS``: names, roles and salted Argon2id hashes, written
atomically under a lock) and the failed sign-in log beside it (SQLite, so a limit holds across browser
sessions and server processes). Imports no Streamlit: the CLI and the dashboard (``dashboard/auth.py``)
both call these functions, and the dashboard is the only place that asks who is signed in.

Example:
    >>> users = Users(Path("store/users.json"))
    >>> users.add("alice", "analyst", password="correct horse battery")
    >>> users.authenticate("alice", "correct horse battery")
    User(name='alice', role='analyst')
    >>> User("alice", "analyst").can("curate"), User("bob", "viewer").can("curate")
    (True, False)
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import re
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from pipelines.errors import FeedbackLensError
from pipelines.settings import AUTH_MODES, AuthSettings
from pipelines.sqlite_files import connect_wal

ROLES = ("viewer", "analyst", "admin")
"""From least to most: each role may do everything the roles before it may."""

ACTIONS = {
    "view": "viewer",  # read every page, switch which run this session shows
    "export": "viewer",  # download CSV files and snapshots
    "curate": "analyst",  # rename, merge, split and move topics
    "admin": "admin",  # users, settings and runs: analyse new files, change what everyone sees by default
}
"""Each action and the least role that may do it."""

FILE_FORMAT = 1
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._@+-]{0,127}")
MIN_PASSWORD, MAX_PASSWORD = 8, 1024
LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


class AuthError(FeedbackLensError):
    """A wrong user name, role or password rule, or an unreadable users file."""


class SignInError(FeedbackLensError):
    """Sign-in refused: wrong name or password (never saying which), or too many failures."""


class LockedOut(SignInError):
    """Too many failed sign-ins for this name within the window; ``retry_after`` is in seconds."""

    def __init__(self, message: str, *, retry_after: float, fix: str | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message, fix=fix)


# ---------------------------------------------------------------------------------------------- roles


@dataclass(frozen=True)
class User:
    """Someone signed in (or the single local user when sign-in is off)."""

    name: str
    role: str

    def can(self, action: str) -> bool:
        """Whether this user's role may do ``action`` (one of :data:`ACTIONS`)."""
        return role_allows(self.role, action)


def needed_role(action: str) -> str:
    """The least role that may do ``action``.

    Raises:
        ValueError: ``action`` is not one of :data:`ACTIONS` (a programming error: fail closed).
    """
    try:
        return ACTIONS[action]
    except KeyError:
        raise ValueError(f"unknown action {action!r}; expected one of {', '.join(ACTIONS)}") from None


def role_allows(role: str, action: str) -> bool:
    """Whether ``role`` may do ``action``; an unknown role may do nothing."""
    needed = needed_role(action)
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)


def check_role(role: str) -> str:
    """``role`` normalised to lower case.

    Raises:
        AuthError: not one of :data:`ROLES`.
    """
    value = str(role).strip().lower()
    if value not in ROLES:
        raise AuthError(f'"{role}" is not a role.', fix=f"Use one of: {', '.join(ROLES)}.")
    return value


def check_name(name: str) -> str:
    """A user name normalised to lower case (names are matched without regard to case).

    Raises:
        AuthError: empty, too long, or with characters other than letters, digits and . _ @ + -.
    """
    value = str(name).strip().lower()
    if not NAME_PATTERN.fullmatch(value):
        raise AuthError(f'"{name}" cannot be a user name: use 1 to 128 letters, digits and . _ @ + - '
                        "(starting with a letter or digit).",
                        fix="For example: alice, alice.martin or alice@example.com (for single sign-on).")
    return value


def check_password(password: str) -> None:
    """Raises :class:`AuthError` for a password shorter than 8 characters, only spaces, or absurdly long."""
    if len(password) < MIN_PASSWORD or not password.strip():
        raise AuthError(f"The password is too short: use at least {MIN_PASSWORD} characters.",
                        fix="A few unrelated words make a long password that is easy to type.")
    if len(password) > MAX_PASSWORD:
        raise AuthError(f"The password is longer than {MAX_PASSWORD} characters.", fix="Use a shorter one.")


# --------------------------------------------------------------------------------------------- hashing


@lru_cache(maxsize=1)
def _hasher():
    from argon2 import PasswordHasher

    # Argon2id with the library's defaults (RFC 9106's second recommendation: 64 MiB, 3 passes):
    # about 50 ms per check, slow enough to make guessing a stolen file expensive.
    return PasswordHasher()


def hash_password(password: str) -> str:
    """A salted Argon2id hash of ``password`` (PHC string: algorithm, parameters, salt, hash)."""
    check_password(password)
    return _hasher().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``password_hash``; the comparison takes the same time either way."""
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return _hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@lru_cache(maxsize=1)
def _decoy_hash() -> str:
    # Checked against when the name is unknown, so that a wrong name takes as long as a wrong password
    # and the time of a failure does not tell which user names exist.
    return _hasher().hash(secrets.token_urlsafe(24))


# ------------------------------------------------------------------------------------------- addresses


def is_local_address(address: str | None) -> bool:
    """Whether a server bound to ``address`` is reachable from this machine only.

    ``None`` or an empty address means every interface (Streamlit's default), so it is not local.
    """
    if not address:
        return False
    host = address.strip().strip("[]").lower()
    if host in LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_mode(mode: str) -> str:
    """``mode`` normalised.

    Raises:
        AuthError: not one of ``none``, ``password``, ``oidc``.
    """
    value = str(mode).strip().lower()
    if value not in AUTH_MODES:
        raise AuthError(f'FEEDBACK_LENS_AUTH="{mode}" is not a sign-in mode.',
                        fix=f"Use one of: {', '.join(AUTH_MODES)}.")
    return value


def check_sign_in_days(value: str) -> float:
    """How many days a password sign-in is remembered (``FEEDBACK_LENS_SIGN_IN_DAYS``); 0 means for the tab only.

    Raises:
        AuthError: not a number from 0 to 366.
    """
    try:
        days = float(value)
    except ValueError:
        days = -1.0
    if not 0 <= days <= 366:
        raise AuthError(f'FEEDBACK_LENS_SIGN_IN_DAYS="{value}" is not a number of days from 0 to 366.',
                        fix="Use a number such as 7 (the default), or 0 to ask again in every new tab.")
    return days


def check_served(mode: str, address: str | None) -> None:
    """Refuse to serve without sign-in anywhere but on this machine.

    Raises:
        AuthError: ``mode`` is ``none`` and ``address`` is not a loopback address.
    """
    if check_mode(mode) == "none" and not is_local_address(address):
        where = f'address "{address}"' if address else "every network address (no server.address set)"
        raise AuthError(f"Sign-in is off (FEEDBACK_LENS_AUTH=none), so the dashboard may only be served on this "
                        f"machine, but it is bound to {where}.",
                        fix="Serve it on localhost (feedback-lens serve without --host), or turn sign-in on: "
                        "FEEDBACK_LENS_AUTH=password after `feedback-lens users add NAME --role admin`, or "
                        "FEEDBACK_LENS_AUTH=oidc for single sign-on.")


# ------------------------------------------------------------------------------------------ users file


@dataclass(frozen=True)
class UserRecord:
    """One line of the users file. ``password_hash`` is None for single-sign-on users (oidc mode only)."""

    name: str
    role: str
    password_hash: str | None
    created_at: str
    updated_at: str

    @property
    def sign_in(self) -> str:
        return "password" if self.password_hash else "single sign-on"

    def user(self) -> User:
        return User(self.name, self.role)


def role_with_article(role: str) -> str:
    """'an admin', 'a viewer': a role as a sentence names it."""
    return f"{'an' if role[:1] in 'aeiou' else 'a'} {role}"


COMMAND_LINE = "command line"
"""Who made a change with `feedback-lens users` (it runs on the server, as whoever may edit the users file)."""


@dataclass(frozen=True)
class UserChange:
    """One line of the users' change log: when (UTC, ISO), who made it, what (added, removed, new role, new
    password), to whom, their role after it, and for a new role the one before (empty in lines written before
    2026-12-07, and for the other changes)."""

    at: str
    by: str
    action: str
    user: str
    role: str
    previous: str = ""

    @property
    def role_shown(self) -> str:
        """'analyst → admin' for a new role whose previous one is known, else the role after the change."""
        return f"{self.previous} → {self.role}" if self.previous and self.previous != self.role else self.role


def users_path(settings: AuthSettings | None = None, store_dir: Path | str | None = None) -> Path:
    """The users file: ``settings.users_file`` (``$FEEDBACK_LENS_USERS``), else ``<store>/users.json``."""
    from pipelines.settings import Settings

    settings = settings or AuthSettings()
    if settings.users_file is not None:
        return Path(settings.users_file)
    return Path(store_dir if store_dir is not None else Settings().store_dir) / "users.json"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Users:
    """The users file and its failed sign-in log.

    Args:
        path: the users file (JSON); its folder is created on the first write, never on reading.
        settings: the rate limit (failures per name within a window).
    """

    def __init__(self, path: Path | str, settings: AuthSettings | None = None) -> None:
        self.path = Path(path)
        self.settings = settings or AuthSettings()

    @property
    def attempts_path(self) -> Path:
        """The sign-in log (SQLite) beside the users file: failed sign-ins, and remembered ones."""
        return self.path.with_name(f"{self.path.stem}.sign-ins.sqlite")

    @property
    def changes_path(self) -> Path:
        """The log of changes to the users (JSON Lines) beside the users file: who changed whom, when, how."""
        return self.path.with_name(f"{self.path.stem}.changes.jsonl")

    def changes(self) -> list[UserChange]:
        """Every change to the users, newest first (none before the log existed). A line that cannot be read
        (a write cut short) is skipped: the log is a record, never a reason to refuse a page."""
        try:
            lines = self.changes_path.read_text("utf-8").splitlines()
        except OSError:
            return []
        out = []
        for line in lines:
            try:
                out.append(UserChange(**json.loads(line)))
            except (ValueError, TypeError):
                continue
        return out[::-1]

    def _log(self, by: str, action: str, record: UserRecord, previous: str = "") -> None:
        change = UserChange(at=_now(), by=by, action=action, user=record.name, role=record.role, previous=previous)
        try:
            with open(self.changes_path, "a", encoding="utf-8") as log:
                log.write(json.dumps(change.__dict__) + "\n")
        except OSError:
            pass  # the change itself is made and written; only its record is missing

    # ---------------------------------------------------------------------------- reading

    def records(self) -> dict[str, UserRecord]:
        """Every user by name; none when the file does not exist yet.

        Raises:
            AuthError: the file cannot be read or is not a users file.
        """
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as err:
            raise AuthError(f"{self.path}: cannot read the users file ({err.strerror}).",
                            fix="Check the file's permissions, or point FEEDBACK_LENS_USERS at another file.") from None
        try:
            data = json.loads(raw)
            users = data["users"]
            records = {name: UserRecord(name=name, role=check_role(u["role"]), password_hash=u.get("password_hash"),
                                        created_at=u.get("created_at", ""), updated_at=u.get("updated_at", ""))
                       for name, u in users.items()}
        except (ValueError, KeyError, TypeError, AttributeError, AuthError) as err:
            raise AuthError(f"{self.path}: not a readable users file ({type(err).__name__}: {err}).",
                            fix="Restore it from a backup, or move it away and add the users again with "
                            "`feedback-lens users add`.") from None
        return records

    def get(self, name: str) -> UserRecord | None:
        """The user called ``name`` (any case), or None."""
        try:
            key = check_name(name)
        except AuthError:
            return None
        return self.records().get(key)

    def user(self, name: str) -> User | None:
        """The :class:`User` called ``name`` with the role the file gives now, or None."""
        record = self.get(name)
        return record.user() if record else None

    # ---------------------------------------------------------------------------- changes

    @contextmanager
    def _editing(self) -> Iterator[dict[str, UserRecord]]:
        """Read, let the caller change, and write back atomically, holding a lock against other writers."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lock = open(self.path.with_name(f".{self.path.name}.lock"), "a+")
        except OSError as err:
            raise AuthError(f"{self.path.parent}: cannot write the users file here ({err.strerror}).",
                            fix="Check the folder's permissions, or point FEEDBACK_LENS_USERS at another file.") from None
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            records = self.records()
            yield records
            self._write(records)

    def _write(self, records: dict[str, UserRecord]) -> None:
        from pipelines.store import write_atomic

        data = {"format": FILE_FORMAT, "users": {
            r.name: {"role": r.role, "password_hash": r.password_hash, "created_at": r.created_at,
                     "updated_at": r.updated_at} for r in sorted(records.values(), key=lambda r: r.name)}}
        write_atomic(self.path, (json.dumps(data, indent=2) + "\n").encode("utf-8"))
        try:
            os.chmod(self.path, 0o600)  # password hashes: readable by the owner only
        except OSError:
            pass

    def add(self, name: str, role: str, password: str | None, by: str = COMMAND_LINE) -> UserRecord:
        """Add a user; ``password=None`` makes a single-sign-on user (oidc mode, matched by e-mail). ``by`` (who made
        the change: a signed-in admin, or the command line) goes to :meth:`changes`, as for every change below.

        Raises:
            AuthError: bad name, role or password, or the name is taken.
        """
        key, role = check_name(name), check_role(role)
        password_hash = hash_password(password) if password is not None else None
        with self._editing() as records:
            if key in records:
                raise AuthError(f'There is already a user "{key}" ({records[key].role}).',
                                fix=f"Change their role with `feedback-lens users set-role {key} ROLE`, or their "
                                f"password with `feedback-lens users set-password {key}`.")
            now = _now()
            records[key] = UserRecord(key, role, password_hash, now, now)
        self._log(by, "added", records[key])
        return records[key]

    def remove(self, name: str, by: str = COMMAND_LINE) -> UserRecord:
        """Remove a user; a signed-in session of theirs is signed out at its next click.

        Raises:
            AuthError: no such user.
        """
        key = check_name(name)
        with self._editing() as records:
            record = self._existing(records, key)
            del records[key]
        self._clear_failures(key)
        self._forget_user(key)
        self._log(by, "removed", record)
        return record

    def set_role(self, name: str, role: str, by: str = COMMAND_LINE) -> UserRecord:
        """Change a user's role; it applies to their open sessions at their next click. Their role already:
        nothing changes and nothing is logged (callers say so, comparing with :meth:`existing` first).

        Raises:
            AuthError: no such user or role.
        """
        key, role = check_name(name), check_role(role)
        with self._editing() as records:
            old = self._existing(records, key)
            if old.role != role:
                records[key] = UserRecord(key, role, old.password_hash, old.created_at, _now())
        if old.role != role:
            self._log(by, "new role", records[key], previous=old.role)
        return records[key]

    def set_password(self, name: str, password: str, by: str = COMMAND_LINE) -> UserRecord:
        """Set a new password (a single-sign-on user gets one too), lift a sign-in lockout and end the user's
        remembered sign-ins.

        Raises:
            AuthError: no such user, or the password breaks the rules.
        """
        key = check_name(name)
        password_hash = hash_password(password)
        with self._editing() as records:
            old = self._existing(records, key)
            records[key] = UserRecord(key, old.role, password_hash, old.created_at, _now())
        self._clear_failures(key)
        self._forget_user(key)  # a new password signs every browser out: the old one may have leaked
        self._log(by, "new password", records[key])
        return records[key]

    def existing(self, name: str) -> UserRecord:
        """The user called ``name``.

        Raises:
            AuthError: bad name, or no such user (the message lists who there is).
        """
        return self._existing(self.records(), check_name(name))

    def _existing(self, records: dict[str, UserRecord], key: str) -> UserRecord:
        if key not in records:
            known = ", ".join(sorted(records)) or "none yet"
            raise AuthError(f'There is no user "{key}" in {self.path} (users: {known}).',
                            fix="Check the spelling, or list them with `feedback-lens users list`.")
        return records[key]

    # ---------------------------------------------------------------------------- signing in

    @contextmanager
    def _attempts(self) -> Iterator[sqlite3.Connection]:
        """The sign-in log (failed sign-ins, remembered sign-ins), in one write transaction: checking and recording
        cannot interleave."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            con = connect_wal(self.attempts_path, 30)
        except (OSError, sqlite3.Error) as err:
            raise AuthError(f"{self.attempts_path}: cannot open the sign-in log ({err}).",
                            fix="Check that the users file's folder is writable.") from None
        try:
            con.execute("CREATE TABLE IF NOT EXISTS failed_sign_ins (name TEXT NOT NULL, at REAL NOT NULL)")
            con.execute("CREATE INDEX IF NOT EXISTS failed_by_name ON failed_sign_ins (name, at)")
            con.execute("CREATE TABLE IF NOT EXISTS sessions (token_hash TEXT PRIMARY KEY, name TEXT NOT NULL, "
                        "expires REAL NOT NULL)")
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("COMMIT")  # failures recorded before the error still count
                raise
            con.execute("COMMIT")
        finally:
            con.close()

    # A remembered sign-in is a random token in a browser cookie; the server keeps only its SHA-256 with the user's
    # name and when it expires, so a copy of this file (a backup) signs nobody in, and removing a user, giving them
    # a new password or signing out ends it on the server, not only in one browser.

    def remember(self, name: str, now: float | None = None) -> str:
        """Start a remembered sign-in for ``name``; the token to hand to their browser.

        Raises:
            AuthError: the sign-in log cannot be written.
        """
        now = time.time() if now is None else now
        token = secrets.token_urlsafe(32)
        days = check_sign_in_days(self.settings.sign_in_days)
        with self._attempts() as con:
            con.execute("DELETE FROM sessions WHERE expires < ?", (now,))
            con.execute("INSERT INTO sessions (token_hash, name, expires) VALUES (?, ?, ?)",
                        (_token_hash(token), check_name(name), now + days * 86_400))
        return token

    def remembered(self, token: str, now: float | None = None) -> User | None:
        """The user a browser's token signs in, with their role now; None when it is unknown, expired, signed out,
        or its user is gone or has a new password since."""
        now = time.time() if now is None else now
        if not token or not self.attempts_path.exists():
            return None
        try:
            with self._attempts() as con:
                row = con.execute("SELECT name FROM sessions WHERE token_hash = ? AND expires >= ?",
                                  (_token_hash(token), now)).fetchone()
            return self.user(row[0]) if row else None
        except AuthError:
            return None

    def forget(self, token: str) -> None:
        """End a remembered sign-in (signing out)."""
        if token and self.attempts_path.exists():
            with self._attempts() as con:
                con.execute("DELETE FROM sessions WHERE token_hash = ?", (_token_hash(token),))

    def _forget_user(self, key: str) -> None:
        if self.attempts_path.exists():
            with self._attempts() as con:
                con.execute("DELETE FROM sessions WHERE name = ?", (key,))

    def failures(self, name: str, now: float | None = None) -> int:
        """Failed sign-ins for ``name`` within the current window."""
        now = time.time() if now is None else now
        if not self.attempts_path.exists():
            return 0
        with self._attempts() as con:
            return con.execute("SELECT COUNT(*) FROM failed_sign_ins WHERE name = ? AND at >= ?",
                               (_attempt_key(name), now - self.settings.lockout_seconds)).fetchone()[0]

    def _clear_failures(self, key: str) -> None:
        if self.attempts_path.exists():
            with self._attempts() as con:
                con.execute("DELETE FROM failed_sign_ins WHERE name = ?", (key,))

    def authenticate(self, name: str, password: str, now: float | None = None) -> User:
        """The user whose name and password these are.

        At most ``settings.max_failed_sign_ins`` failures per name are allowed within
        ``settings.lockout_seconds``; then the name is refused (without checking the password) until the
        oldest of those failures is older than the window. Unknown names count and take as long as known
        ones, so neither the answer nor its timing tells whether a name exists.

        Raises:
            LockedOut: too many recent failures for this name.
            SignInError: wrong name or password.
            AuthError: the users file cannot be read.
        """
        now = time.time() if now is None else now
        key = _attempt_key(name)
        window, limit = self.settings.lockout_seconds, self.settings.max_failed_sign_ins
        with self._attempts() as con:
            con.execute("DELETE FROM failed_sign_ins WHERE at < ?", (now - window,))
            recent = [at for (at,) in con.execute(
                "SELECT at FROM failed_sign_ins WHERE name = ? ORDER BY at", (key,))]
            if len(recent) >= limit:
                wait = max(1.0, recent[-limit] + window - now)
                raise LockedOut(f"Too many failed sign-ins for this user name: try again in {_duration(wait)}.",
                                retry_after=wait,
                                fix="Wait, or ask an admin to set a new password with "
                                "`feedback-lens users set-password NAME`, which also lifts the pause.")
            record = self.get(name)
            known = record is not None and record.password_hash is not None
            matches = verify_password(record.password_hash if known else _decoy_hash(), password)
            if known and matches:
                con.execute("DELETE FROM failed_sign_ins WHERE name = ?", (key,))
                return record.user()
            con.execute("INSERT INTO failed_sign_ins (name, at) VALUES (?, ?)", (key, now))
        left = limit - len(recent) - 1
        pause = (f" After {left} more failed {'try' if left == 1 else 'tries'} sign-in is paused for "
                 f"{_duration(window)}." if 0 < left <= 2 else
                 f" Sign-in for this name is now paused for {_duration(window)}." if left <= 0 else "")
        raise SignInError("Wrong user name or password." + pause,
                          fix="Check both (the password is case-sensitive), or ask an admin to set a new one.")


def _token_hash(token: str) -> str:
    import hashlib

    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def _attempt_key(name: str) -> str:
    # Failures are counted per name as typed (normalised), known or not, capped so a long string
    # cannot bloat the log.
    return str(name).strip().lower()[:128]


def _duration(seconds: float) -> str:
    minutes = int((seconds + 59) // 60)
    return f"{int(seconds)} seconds" if seconds < 60 else f"{minutes} minute{'s' if minutes != 1 else ''}"

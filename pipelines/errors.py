"""Errors a user can cause, with the place and the fix, shown once at the edge without a traceback."""

from __future__ import annotations

from pathlib import Path


class FeedbackLensError(Exception):
    """A problem the user can fix: bad input, a missing file, a wrong option.

    The message names the file (and row / column where known) and says how to fix it.
    The CLI and the dashboard print ``str(error)`` and exit non-zero; they never show a traceback.
    """

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        self.message = message
        super().__init__()
        self.with_fix(fix)

    def with_fix(self, fix: str | None) -> FeedbackLensError:
        """This error with another fix; the printed text follows."""
        self.fix = fix
        self.args = (self.message if not fix else f"{self.message}\n  How to fix: {fix}",)
        return self


class InputError(FeedbackLensError):
    """The feedback file cannot be read or does not hold usable messages."""


class NotEnoughMessagesError(FeedbackLensError):
    """Too few messages survive cleaning to find topics."""


class StoreError(FeedbackLensError):
    """The run store is missing, unreadable or cannot be written."""


def write_failure(err: OSError, option: str) -> tuple[str, str]:
    """Why a folder could not be written, and what to do, in words: (reason, fix). ``option`` is where the user
    chose the folder ("--out", "--store"). Only a full disk is helped by freeing space."""
    import errno

    where = f" ({err.filename})" if err.filename else ""
    if err.errno == errno.ENOSPC:
        return "the disk is full", f"Free disk space or choose another folder with {option}."
    if err.errno in (errno.EEXIST, errno.ENOTDIR) and err.filename:
        path = Path(err.filename)
        blocking = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), path)
        return f"{blocking} is a file, not a folder", f"Choose a folder with {option}, or move that file away."
    if err.errno == errno.EROFS:
        return f"the disk is read-only{where}", f"Choose a folder on a writable disk with {option}."
    if err.errno in (errno.EACCES, errno.EPERM):
        return (f"no permission to write there{where}",
                f"Choose a folder you may write to with {option}, or give this user write access to it.")
    return f"{(err.strerror or str(err)).rstrip('.')}{where}", f"Check that the folder can be written, or choose " \
        f"another with {option}."

"""Errors a user can cause, with the place and the fix, shown once at the edge without a traceback."""

from __future__ import annotations


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

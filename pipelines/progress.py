"""Progress reporting for long stages: a small interface, a terminal bar and a silent default."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol, TextIO


class Stage(Protocol):
    """A running stage: ``advance`` by items done, ``describe`` what it is doing now."""

    def advance(self, n: int) -> None: ...

    def describe(self, text: str) -> None: ...


class Reporter(Protocol):
    """Opens stages; the CLI draws bars, the dashboard a status box, tests nothing."""

    def stage(self, name: str, total: int | None = None, unit: str = "msg"): ...


class _Silent:
    def advance(self, n: int) -> None:
        pass

    def describe(self, text: str) -> None:
        pass


class SilentReporter:
    """Reports nothing."""

    @contextmanager
    def stage(self, name: str, total: int | None = None, unit: str = "msg") -> Iterator[Stage]:
        yield _Silent()


class _TqdmStage:
    def __init__(self, bar) -> None:
        self.bar = bar

    def advance(self, n: int) -> None:
        self.bar.update(n)

    def describe(self, text: str) -> None:
        self.bar.set_postfix_str(text, refresh=True)


class _LineStage:
    """Counts and remembers what a stage did, for the one line written when it ends."""

    def __init__(self) -> None:
        self.n = 0
        self.text = ""

    def advance(self, n: int) -> None:
        self.n += n

    def describe(self, text: str) -> None:
        self.text = text


class TerminalReporter:
    """tqdm bars on standard error, one per stage; when it is not a terminal, plain lines as each stage starts and ends.

    A log file or a pipe (cron, CI, ``2>&1 | tee``) would keep every carriage-return redraw of a bar, and show
    them run together on one line.
    """

    def __init__(self, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.enabled = enabled
        self.stream = stream

    @contextmanager
    def stage(self, name: str, total: int | None = None, unit: str = "msg") -> Iterator[Stage]:
        stream = self.stream or sys.stderr  # looked up now: tests and callers may swap sys.stderr
        if not self.enabled:
            yield _Silent()
        elif _is_terminal(stream):
            with self._bar(stream, name, total, unit) as stage:
                yield stage
        else:
            with self._line(stream, name, total, unit) as stage:
                yield stage

    @contextmanager
    def _bar(self, stream: TextIO, name: str, total: int | None, unit: str) -> Iterator[Stage]:
        from tqdm import tqdm

        fmt = "{desc:<22} {percentage:3.0f}%|{bar:30}| {n_fmt}/{total_fmt} {unit} [{elapsed}<{remaining}, {rate_fmt}]{postfix}"
        if total is None:
            fmt = "{desc:<22} {n_fmt} {unit} {elapsed}{postfix}" if unit != "msg" else "{desc:<22} {elapsed}{postfix}"
        bar = tqdm(total=total, desc=name, unit=unit, file=stream, bar_format=fmt, dynamic_ncols=True, mininterval=0.5)
        try:
            yield _TqdmStage(bar)
        finally:
            if total is not None and bar.n < total:
                bar.n = total
            bar.close()

    @contextmanager
    def _line(self, stream: TextIO, name: str, total: int | None, unit: str) -> Iterator[Stage]:
        stage = _LineStage()
        started = time.perf_counter()
        # A line as the stage starts too: a long stage with nothing written would look stuck in a log.
        print(f"{name}" + (f" ({total:,} {unit})" if total else "") + "…", file=stream, flush=True)
        yield stage  # a stage that fails writes no "done" line: the error says what happened
        count = max(stage.n, total or 0)
        what = f" ({stage.text})" if stage.text else ""
        amount = f", {count:,} {unit}" if count else ""
        print(f"{name}{what}: done in {time.perf_counter() - started:.1f} s{amount}", file=stream, flush=True)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False

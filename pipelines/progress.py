"""Progress reporting for long stages: a small interface, a terminal bar and a silent default."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol


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


class TerminalReporter:
    """tqdm bars on standard error, one per stage."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled

    @contextmanager
    def stage(self, name: str, total: int | None = None, unit: str = "msg") -> Iterator[Stage]:
        from tqdm import tqdm

        fmt = "{desc:<22} {percentage:3.0f}%|{bar:30}| {n_fmt}/{total_fmt} {unit} [{elapsed}<{remaining}, {rate_fmt}]{postfix}"
        if total is None:
            fmt = "{desc:<22} {n_fmt} {unit} {elapsed}{postfix}" if unit != "msg" else "{desc:<22} {elapsed}{postfix}"
        bar = tqdm(total=total, desc=name, unit=unit, file=sys.stderr, disable=not self.enabled,
                   bar_format=fmt, dynamic_ncols=True, mininterval=0.5)
        try:
            yield _TqdmStage(bar)
        finally:
            if total is not None and bar.n < total:
                bar.n = total
            bar.close()

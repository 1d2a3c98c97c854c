"""Logging and progress bars: everything user-visible goes through this module (rich)."""
from __future__ import annotations

import contextlib
import time
from typing import Iterator

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

console = Console(stderr=True, highlight=False)
_quiet = False


def set_quiet(quiet: bool) -> None:
    """Hide :func:`info` lines and progress bars (warnings and errors still show)."""
    global _quiet
    _quiet = quiet


def is_quiet() -> bool:
    """Whether :func:`set_quiet` hides info lines and progress bars now."""
    return _quiet


def info(msg: str) -> None:
    """One line (rich does not wrap it; the terminal does), unless quiet."""
    if not _quiet:
        console.print(msg, soft_wrap=True)


def warn(msg: str) -> None:
    """One line (never wrapped by rich), shown even when quiet."""
    console.print(f"[yellow]warning:[/yellow] {msg}", soft_wrap=True)


def error(msg: str) -> None:
    console.print(f"[bold red]error:[/bold red] {msg}", soft_wrap=True)


def progress() -> Progress:
    """A rich progress bar; use ``with progress() as p: task = p.add_task(...)``."""
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=console, disable=_quiet, transient=False)


class StageTimer:
    """Wall time per named stage: ``with timer("training"): ...``; ``timer.seconds`` maps stage -> s."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - t0

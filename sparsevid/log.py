"""Logging and progress bars: everything user-visible goes through this module (rich on stderr).

A library caller can take the lines instead: inside ``with log.to_logger(logging.getLogger("x")):`` (or
``run_pipeline(cfg, logger=...)``) every info, warning and error line, and a plain progress line every few seconds,
goes to that :class:`logging.Logger` (levels INFO, WARNING, ERROR) and nothing to the console. That choice, the
quiet switch of :func:`quieted`, the batch tag and the warning records are context variables: they hold for the
block and the code it calls, in the thread that runs it and in the worker threads started with
:func:`in_context`; other threads of the process are not affected.
"""
from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import sys
import tempfile
import time
from typing import Iterator

from rich.console import Console
from rich.text import Text
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

console = Console(stderr=True, highlight=False)
_quiet = False
#: SPARSEVID_VERBOSE=1 (or true, yes, on) lets native logs through; 0, false, no, off or empty do not
_verbose = os.environ.get("SPARSEVID_VERBOSE", "").strip().lower() in ("1", "true", "yes", "on")
#: seconds between the plain progress lines printed when stderr is not a terminal
PLAIN_PROGRESS_INTERVAL = 5.0


def set_quiet(quiet: bool) -> None:
    """Hide :func:`info` lines and progress bars (warnings and errors still show)."""
    global _quiet
    _quiet = quiet


#: a block's own quiet switch (:func:`quieted`) and logger (:func:`to_logger`); None: the process's (``set_quiet``)
_quiet_here: contextvars.ContextVar[bool | None] = contextvars.ContextVar("sparsevid_quiet", default=None)
_logger: contextvars.ContextVar[logging.Logger | None] = contextvars.ContextVar("sparsevid_logger", default=None)


@contextlib.contextmanager
def quieted(quiet: bool = True) -> Iterator[None]:
    """:func:`info` lines and progress hidden (``quiet``) or shown inside the block only, whatever
    :func:`set_quiet` says for the process."""
    token = _quiet_here.set(quiet)
    try:
        yield
    finally:
        _quiet_here.reset(token)


@contextlib.contextmanager
def to_logger(logger: logging.Logger | None) -> Iterator[None]:
    """Every line printed inside the block goes to ``logger`` (info -> INFO, warnings -> WARNING, errors ->
    ERROR, progress -> a plain INFO line every few seconds) instead of the console; None: the console."""
    token = _logger.set(logger)
    try:
        yield
    finally:
        _logger.reset(token)


def in_context(fn):
    """``fn`` made to run in a copy of the calling thread's context (the logger, the quiet switch, the batch tag,
    the warning records): wrap what a worker thread runs, e.g. ``pool.map(in_context(one), items)``."""
    ctx = contextvars.copy_context()

    def run(*args, **kwargs):
        return ctx.copy().run(fn, *args, **kwargs)

    return run


def is_quiet() -> bool:
    """Whether info lines and progress bars are hidden now (:func:`quieted` inside its block, else
    :func:`set_quiet`)."""
    here = _quiet_here.get()
    return _quiet if here is None else here


def set_verbose(verbose: bool) -> None:
    """Let third-party native logging (COLMAP/glog) through to stderr instead of capturing it
    (:func:`capture_native_stderr`). Also on with the environment variable ``SPARSEVID_VERBOSE=1``."""
    global _verbose
    _verbose = verbose


def is_verbose() -> bool:
    return _verbose


def _line(label: str, style: str, msg: str, dim: bool = False, level: int = logging.INFO) -> None:
    """Print ``label`` in ``style``, the batch tag and ``msg`` as one line. ``msg`` is plain text: brackets in
    it (a path, ``pip install 'sparsevid[view]'``) are printed as they are, never read as rich markup. Inside
    :func:`to_logger`: the tag and ``msg`` logged at ``level`` instead."""
    from rich.text import Text

    # a path that is not valid UTF-8 (a Latin-1 folder name, held as surrogates) printed as its escapes, whatever
    # the stream's own error handler
    msg = msg.encode("utf-8", "backslashreplace").decode("utf-8")
    logger = _logger.get()
    if logger is not None:
        logger.log(level, _prefix() + " ".join(msg.split()))
        return
    line = Text()
    if label:
        line.append(label, style=style)
        line.append(" ")
    line.append(_prefix())
    line.append(msg, style="dim" if dim else "")
    console.print(line, soft_wrap=True)


def info(msg: str, *, dim: bool = False) -> None:
    """One line (rich does not wrap it; the terminal does), unless quiet; ``dim``: printed faint."""
    if not is_quiet():
        _line("", "", msg, dim)


#: the name the warning and error lines of the code running now start with (``batch``: the clip's), and the
#: lists every warning is recorded into (:func:`recording_warnings`); context variables, so a Ray worker or a
#: thread has its own
_tag: contextvars.ContextVar[str] = contextvars.ContextVar("sparsevid_log_tag", default="")
_sinks: contextvars.ContextVar[tuple[list[str], ...]] = contextvars.ContextVar("sparsevid_log_sinks", default=())


@contextlib.contextmanager
def tagged(name: str) -> Iterator[None]:
    """Start every warning and error line printed inside the block with ``[name]`` (e.g. the clip a
    batch runs), so lines from many clips can be told apart."""
    token = _tag.set(name)
    try:
        yield
    finally:
        _tag.reset(token)


@contextlib.contextmanager
def recording_warnings() -> Iterator[list[str]]:
    """Record the text of every :func:`warn` line printed inside the block (without markup or tag)
    into the yielded list, as well as printing it. Blocks nest: an outer one records too."""
    sink: list[str] = []
    token = _sinks.set(_sinks.get() + (sink,))
    try:
        yield sink
    finally:
        _sinks.reset(token)


def _prefix() -> str:
    tag = _tag.get()
    return f"[{tag}] " if tag else ""


def warn(msg: str, record: bool = True) -> None:
    """One line (never wrapped by rich), shown even when quiet, recorded by :func:`recording_warnings` (unless
    ``record`` is off: a notice of the moment, e.g. that a signal stops the training, not a warning about the
    result that run.json keeps)."""
    _line("warning:", "yellow", msg, level=logging.WARNING)
    sinks = _sinks.get()
    if sinks and record:
        text = " ".join(msg.split())
        for sink in sinks:
            sink.append(text)


def error(msg: str) -> None:
    _line("error:", "bold red", msg, level=logging.ERROR)


class PlainProgress(Progress):
    """The progress bar when stderr is not a terminal (a log file, a pipe, CI): no live bar (rich
    would print one final bar, cut off at 80 columns), but a plain, whole line per task every
    :data:`PLAIN_PROGRESS_INTERVAL` seconds and when the task ends, e.g.
    ``training 150/300 (50%) loss 0.41  PSNR 21.3  40000 gs  5.1 it/s, 29 s elapsed, ~29 s left``."""

    def __init__(self, *columns, interval: float | None = None, quiet: bool = False, **kwargs) -> None:
        kwargs["disable"] = True  # rich's live display off; the lines are ours
        super().__init__(*columns, **kwargs)
        self._interval = PLAIN_PROGRESS_INTERVAL if interval is None else interval
        self._quiet = quiet
        self._last: dict = {}
        self._done: set = set()

    def line(self, task_id) -> str:
        """The plain line of a task now."""
        t = self._tasks[task_id]
        parts = [str(t.description)]
        if t.total:
            parts.append(f"{t.completed:g}/{t.total:g} ({100.0 * t.completed / t.total:.0f}%)")
        else:
            parts.append(f"{t.completed:g}")
        status = str(t.fields.get("status") or "").strip()
        if status:
            parts.append(status)
        tail = f"{t.elapsed or 0.0:.0f} s elapsed"
        left, at_least = time_left(t)
        if not t.finished and left is not None:
            tail += f", ~{left:.0f} s left" + (" or more (the Gaussians are still growing)" if at_least else "")
        return " ".join(parts) + ", " + tail

    def _emit(self, task_id, force: bool = False) -> None:
        if self._quiet or task_id in self._done:
            return
        t = self._tasks[task_id]
        now = time.monotonic()
        if t.finished:
            self._done.add(task_id)
        elif not force and now - self._last.get(task_id, now) < self._interval:
            return
        self._last[task_id] = now
        logger = _logger.get()
        if logger is not None:
            logger.info(_prefix() + self.line(task_id))
        else:
            self.console.print(self.line(task_id), soft_wrap=True, markup=False, highlight=False)

    def add_task(self, *args, **kwargs):
        task_id = super().add_task(*args, **kwargs)
        self._last[task_id] = time.monotonic()
        return task_id

    def update(self, task_id, *args, **kwargs) -> None:
        super().update(task_id, *args, **kwargs)
        self._emit(task_id)

    def advance(self, task_id, advance: float = 1) -> None:
        super().advance(task_id, advance)
        self._emit(task_id)

    def stop(self) -> None:
        for task_id in list(self._tasks):  # the last state of every task not printed finished
            self._emit(task_id, force=True)
        super().stop()


def time_left(task) -> tuple[float | None, bool]:
    """(seconds left, whether that is a lower bound) of a progress task: its own estimate where it gives one (task
    fields ``left`` and ``at_least``: the trainer's, from its latest steps' speed, a lower bound while the Gaussians
    grow and each step gets slower), else rich's from the task's recent speed."""
    if task.fields.get("left") is not None:
        return float(task.fields["left"]), bool(task.fields.get("at_least"))
    return task.time_remaining, False


class TimeLeftColumn(TimeRemainingColumn):
    """rich's time-remaining column, from :func:`time_left` (``0:00:47+``: at least that long)."""

    def render(self, task):
        left, at_least = time_left(task)
        if task.finished or left is None:
            return super().render(task)
        m, sec = divmod(int(left), 60)
        h, m = divmod(m, 60)
        return Text(f"{h}:{m:02d}:{sec:02d}" + ("+" if at_least else ""), style="progress.remaining")


def progress() -> Progress:
    """A rich progress bar; use ``with progress() as p: task = p.add_task(...)``. When stderr is
    not a terminal: a :class:`PlainProgress` (a whole line every few seconds instead of a bar)."""
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TimeLeftColumn())
    quiet = is_quiet()
    if not console.is_terminal or _logger.get() is not None:
        return PlainProgress(*columns, console=console, quiet=quiet)
    return Progress(*columns, console=console, disable=quiet, transient=False)


@contextlib.contextmanager
def capture_native_stderr(sink: list[str] | None = None) -> Iterator[list[str]]:
    """Capture what native libraries (COLMAP's glog, Ceres) write to the stderr *file descriptor*
    while the block runs: fd 2 goes to a temporary file, and the captured text is appended to
    the yielded list (``sink``) on exit. Python's own stderr (this module's lines, warnings)
    still reaches the real stderr. glog's flags (``pycolmap.logging.minloglevel``,
    ``GLOG_minloglevel``) do not silence pycolmap 4.2's logging, hence the descriptor.

    With :func:`set_verbose` (or ``SPARSEVID_VERBOSE=1``) nothing is captured. When the block
    raises anything but a :class:`~sparsevid.errors.SparsevidError`, the captured text is written
    to stderr before the exception goes on (it may explain a crash).
    """
    sink = [] if sink is None else sink
    if _verbose:
        yield sink
        return
    _flush_c_stderr()
    try:
        sys.stderr.flush()
    except Exception:
        pass
    saved = os.dup(2)
    tmp = tempfile.TemporaryFile(mode="w+b")
    os.dup2(tmp.fileno(), 2)
    swap = False
    py_stderr = sys.stderr
    try:
        swap = py_stderr is not None and py_stderr.fileno() == 2
    except Exception:  # pytest's capture, io.StringIO: not fd 2, nothing to reroute
        swap = False
    if swap:
        sys.stderr = os.fdopen(os.dup(saved), "w", buffering=1, encoding=getattr(py_stderr, "encoding", None),
                               errors="backslashreplace")
    failed: BaseException | None = None
    try:
        yield sink
    except BaseException as e:
        failed = e
        raise
    finally:
        _flush_c_stderr()
        if swap:
            try:
                sys.stderr.close()
            finally:
                sys.stderr = py_stderr
        os.dup2(saved, 2)
        os.close(saved)
        tmp.seek(0)
        text = tmp.read().decode("utf-8", errors="replace")
        tmp.close()
        sink.append(text)
        from sparsevid.errors import SparsevidError

        if failed is not None and text and not isinstance(failed, (SparsevidError, KeyboardInterrupt)):
            sys.stderr.write(text)
            sys.stderr.flush()


def _flush_c_stderr() -> None:
    """fflush(stderr) of the C library (glog writes through it)."""
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except Exception:
        pass


class StageTimer:
    """Wall time per named stage: ``with timer("training"): ...``; ``timer.seconds`` maps stage -> s."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.current: str | None = None  # the stage entered last (where an interruption stopped the run)
        self._open: list[str] = []

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        """Time ``stage`` (its seconds add up over every entry). A stage timed inside another (the render calls
        inside "enhance") hands ``current`` back to the outer one when it ends."""
        t0 = time.perf_counter()
        self.current = stage
        self._open.append(stage)
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - t0
            self._open.pop()
            if self._open:
                self.current = self._open[-1]

"""One error type for every user-facing failure.

Every stage raises :class:`SparsevidError` with a one-line message that names the
file (when there is one) and says what to do. The CLI prints it without a traceback.
"""
from __future__ import annotations

import re
from pathlib import Path


class SparsevidError(Exception):
    """A failure the user can act on: ``what went wrong`` + ``what to do``."""

    def __init__(self, message: str, fix: str | None = None, path: str | Path | None = None):
        self.message = message
        self.fix = fix
        self.path = Path(path) if path is not None else None
        super().__init__(self.one_line())

    def one_line(self) -> str:
        """``path: message -> fix`` on one line (a library's multi-line text, e.g. the hub's, is joined)."""
        parts = []
        if self.path is not None:
            parts.append(f"{self.path}: {self.message}")
        else:
            parts.append(self.message)
        if self.fix:
            parts.append(f"-> {self.fix}")
        return re.sub(r"\s*[\r\n]+\s*", " ", " ".join(parts)).strip()


class PoseFailure(SparsevidError):
    """The pose stage found no model that passes its checks (too little motion or texture, tiny
    frames, unrelated frames). ``run`` falls back to the 2D route instead of stopping."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (``timeout``, SLURM, ``docker stop``, a Ray cancel) raised as an interruption, so that every
    stage cleans up as it does for Ctrl-C (temporary folders removed, a checkpoint saved in training) and the
    command ends with one line and exit code 143. ``signum``: the signal's number."""

    signum = 15


def interrupt_signum(e: BaseException) -> int:
    """The signal number of an interruption: its own ``signum`` (SIGTERM, or the trainer's), else SIGINT's 2."""
    return int(getattr(e, "signum", None) or 2)

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

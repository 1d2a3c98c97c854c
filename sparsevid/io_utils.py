"""Atomic file writes: write to a temporary file in the same folder, then ``os.replace``.

A reader never sees a half-written file, and an interrupted run leaves either the old file
or the new one (plus, at worst, a stray ``.tmp-*`` file that the next write ignores).

Also :func:`jsonable`, the one converter of run records (configs, metrics, reports) to JSON values.
"""
from __future__ import annotations

import dataclasses
import math
import os
import tempfile
from pathlib import Path
from typing import Callable


def _temp_path(path: Path) -> Path:
    """A fresh, unused temporary path beside ``path`` that keeps its suffix (for writers that
    pick a format from the extension, e.g. ``cv2.imwrite`` or PyAV)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # the name's start only: a file name near the system's 255-byte limit still gets a temporary name
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{path.stem[:64]}-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    return Path(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_save(path: str | Path, writer: Callable[[Path], None]) -> Path:
    """Call ``writer(tmp)`` to write a temporary file beside ``path``, then move it onto ``path``.

    The temporary path has the same suffix as ``path``. If ``writer`` raises, the temporary
    file is removed and ``path`` is left untouched.

    Returns:
        ``path`` as a :class:`Path`.
    """
    path = Path(path)
    tmp = _temp_path(path)
    try:
        writer(tmp)
        if not tmp.exists():
            raise FileNotFoundError(f"writer did not create {tmp}")
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (flushed and fsynced before the rename)."""

    def _write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    return atomic_save(path, _write)


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically. A path that is not valid UTF-8 (a Latin-1 folder name, which Python
    holds as surrogates) is written backslash-escaped where it appears in the text (a report's page, a config's
    comment): the file stays valid UTF-8 (JSON and YAML values escape such characters themselves)."""
    return atomic_write_bytes(path, text.encode(encoding, errors="backslashreplace"))


def write_json(path: str | Path, obj, indent: int | None = 1) -> Path:
    """Write ``obj`` as strict JSON (:func:`jsonable` with NaN and infinities as ``null``, which
    every JSON reader accepts; Python's ``NaN`` / ``Infinity`` are not JSON) to ``path`` atomically."""
    import json

    return atomic_write_text(path, json.dumps(jsonable(obj, finite=True), indent=indent, allow_nan=False))


def jsonable(obj, finite: bool = False):
    """``obj`` as JSON values: dataclasses and dicts -> dicts with string keys, lists and tuples ->
    lists, paths -> strings, numpy scalars -> Python numbers, anything else unknown -> its string.

    ``finite``: NaN and infinities become None (strict JSON); otherwise they are kept (Python's
    ``json`` writes them as ``NaN`` / ``Infinity``).
    """
    import numpy as np

    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {k: jsonable(v, finite) for k, v in dataclasses.asdict(obj).items()}
    if isinstance(obj, dict):
        return {str(k): jsonable(v, finite) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v, finite) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (np.floating, np.integer)):
        obj = obj.item()
    if finite and isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)

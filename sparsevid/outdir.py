"""Output folders: create, refuse, resume or overwrite, and never touch the user's input.

A command that writes a folder (``run``, ``poses``) leaves a marker file in it. ``--overwrite``
then removes only that command's own outputs (a fixed list of names) and only in a folder that
carries its marker. Whatever the flags, the command refuses outright when the output folder is
one of the paths it reads (the input, a poses dataset, a checkpoint: a finished run's folder
given as both input and output would be emptied and then read), or when any of its outputs is,
or holds, one of them. A folder that holds nothing but the marker (a run that failed early)
counts as empty.
"""
from __future__ import annotations

import errno
import shutil
from pathlib import Path
from typing import Iterable

from sparsevid.errors import SparsevidError

#: the marker file of a ``sparsevid run`` output folder
RUN_MARKER = ".sparsevid-run"


def _is_within(path: Path, folder: Path) -> bool:
    """True if ``path`` is ``folder`` or lies inside it (both resolved)."""
    try:
        path.relative_to(folder)
        return True
    except ValueError:
        return False


def _resolved(p: str | Path) -> Path:
    return Path(p).expanduser().resolve()


def os_error(e: OSError, path: str | Path, doing: str) -> SparsevidError:
    """An OSError met while ``doing`` something to ``path``, as a one-line error with a fix."""
    fixes = {
        errno.EROFS: "the file system is read-only -> choose an -o on a writable disk",
        errno.EACCES: "permission denied -> choose an -o you can write to",
        errno.EPERM: "permission denied -> choose an -o you can write to",
        errno.ENOSPC: "the disk is full -> free some space (then --resume) or choose an -o on another disk",
        errno.EDQUOT: "the disk quota is exhausted -> free some space (then --resume) or choose another -o",
        errno.ENOTDIR: "a part of this path is a file, not a folder -> choose another -o",
        errno.EEXIST: "a file is in the way -> choose another -o",
    }
    what = fixes.get(e.errno, f"{e.strerror or e} -> check the path and choose another -o if needed")
    msg, fix = what.split(" -> ", 1)
    return SparsevidError(f"cannot {doing}: {msg}", fix=fix, path=path)


def _refuse_reading_what_we_write(out: Path, outputs: Iterable[str], guarded: list[Path], overwrite: bool) -> None:
    """Raise when the output folder is one of the ``guarded`` paths (resolved) the command reads, or when one
    of its ``outputs`` (names under ``out``, existing or to be written) is or holds one of them."""
    rout = _resolved(out)
    for g in guarded:
        if g == rout:
            raise SparsevidError("the output folder is also what this command reads (its input, poses or checkpoint); "
                                 "writing the outputs there would replace it", fix="choose another -o", path=out)
    for name in outputs:
        t = out / name
        rt = _resolved(t)
        for g in guarded:
            if _is_within(g, rt):
                doing = "--overwrite would delete" if overwrite and (t.exists() or t.is_symlink()) else \
                    "the command would write into"
                raise SparsevidError(f"{doing} {t}, which holds the input {g}; refusing",
                                     fix="copy the input out of the output folder first, or choose another -o",
                                     path=out)


def prepare_output(out: str | Path, *, marker: str, outputs: Iterable[str], protect: Iterable[str | Path | None] = (),
                   resume: bool = False, overwrite: bool = False) -> Path:
    """Make ``out`` ready for a command that writes ``outputs`` (names directly under ``out``).

    Args:
        out: the output folder.
        marker: the command's marker file name (written into ``out``).
        outputs: every file/folder name the command may write under ``out``; ``--overwrite``
            removes these (and the marker) and nothing else.
        protect: paths the command reads (input, poses, checkpoint): refused if an output to be
            removed is or holds one of them.
        resume: keep what is there (the folder must carry the marker).
        overwrite: remove the command's earlier outputs first.

    Raises:
        SparsevidError: the folder is someone else's, exists without --resume/--overwrite,
            holds the input, or cannot be created.
    """
    out = Path(out)
    if resume and overwrite:
        raise SparsevidError("--resume and --overwrite exclude each other", fix="pick one")
    outputs = tuple(outputs)
    try:
        if out.exists() and not out.is_dir():
            raise SparsevidError("the output path exists and is a file", fix="choose another -o", path=out)
        _refuse_reading_what_we_write(out, outputs, [_resolved(p) for p in protect if p is not None], overwrite)
        contents = [p for p in out.iterdir() if p.name != marker and not p.name.startswith(".tmp-")] \
            if out.is_dir() else []
        ours = (out / marker).exists()
        if contents and not ours:
            raise SparsevidError("the output folder is not empty and was not written by this command; "
                                 "refusing to touch it", fix="choose a new or empty -o folder", path=out)
        if contents and not (resume or overwrite):
            raise SparsevidError("the output folder already holds a run",
                                 fix="pass --resume to continue it, --overwrite to replace it, or choose another -o",
                                 path=out)
        if overwrite and contents:
            targets = [out / name for name in outputs if (out / name).exists() or (out / name).is_symlink()]
            for t in targets:
                if t.is_dir() and not t.is_symlink():
                    shutil.rmtree(t)
                else:
                    t.unlink()
        out.mkdir(parents=True, exist_ok=True)
        (out / marker).touch()
    except OSError as e:
        raise os_error(e, out, "create the output folder") from None
    return out


"""Output folders: create, refuse, resume or overwrite, and never touch the user's input.

A command that writes a folder (``run``, ``poses``) leaves a marker file in it. ``--overwrite``
then removes only that command's own outputs (a fixed list of names) and only in a folder that
carries its marker. Whatever the flags, the command refuses outright when the output folder is
one of the paths it reads (the input, a poses dataset, a checkpoint: a finished run's folder
given as both input and output would be emptied and then read), or when any of its outputs is,
or holds, one of them. A folder that holds nothing but the marker (a run that failed early)
counts as empty.

While a command writes the folder it holds an exclusive lock on it (``OUT/.sparsevid-lock``, an advisory
``flock``, released when the process ends, however it ends): a second command on the same folder is refused
before it touches anything, instead of mixing its outputs with the first's. Left-over temporary files of an
atomic write that was killed (``.tmp-*``) are removed when a run is resumed or overwritten.
"""
from __future__ import annotations

import contextlib
import errno
import os
import shutil
from pathlib import Path
from typing import IO, Iterable, Iterator

from sparsevid.errors import SparsevidError

#: the marker file of a ``sparsevid run`` output folder
RUN_MARKER = ".sparsevid-run"
#: the lock file a command holds while it writes its output folder
LOCK_NAME = ".sparsevid-lock"
#: the prefix of the temporary files of atomic writes (:mod:`sparsevid.io_utils`)
TMP_PREFIX = ".tmp-"

#: the error of a folder another sparsevid process holds (its lock), as batch summaries recognise it
BUSY = "another sparsevid process is writing this output folder"


def _is_within(path: Path, folder: Path) -> bool:
    """True if ``path`` is ``folder`` or lies inside it (both resolved)."""
    try:
        path.relative_to(folder)
        return True
    except ValueError:
        return False


def _resolved(p: str | Path) -> Path:
    return Path(p).expanduser().resolve()


def os_error(e: OSError, path: str | Path, doing: str, elsewhere: str = "choose another -o") -> SparsevidError:
    """An OSError met while ``doing`` something to ``path``, as a one-line error with a fix; ``elsewhere``: how
    the command writes to another place (``eval`` has ``--metrics``, ``report`` none). A temporary file of an
    atomic write (``.tmp-*``) is named by its folder: the user never sees it."""
    if Path(str(path)).name.startswith(TMP_PREFIX):
        path = Path(str(path)).parent
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
    if elsewhere != "choose another -o" and e.errno not in (errno.ENOSPC, errno.EDQUOT):
        fix = elsewhere
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


#: flock's answers on a file system that has no locks (an NFS mount with ``nolock``, some FUSE file systems)
_NO_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL, errno.ENOSYS)


def _lock(out: Path, fix: str = "wait for it to finish, or choose another -o") -> IO[bytes]:
    """Take the folder's exclusive lock (the open lock file, left empty and unchanged; closing it releases the
    lock), or raise a one-line error. On a file system without locks the command goes on unlocked, with a line
    that says so (a batch on a cluster's shared disk must still run)."""
    import fcntl

    f = open(out / LOCK_NAME, "ab")
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno in _NO_LOCKS:
            from sparsevid.log import info

            info(f"{out}: this file system has no file locks ({e.strerror or e}); nothing stops a second command "
                 "from writing this folder at the same time")
            return f
        f.close()
        if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            raise
        raise SparsevidError(BUSY, fix=fix, path=out) from None
    return f


@contextlib.contextmanager
def locked(out: str | Path, fix: str) -> Iterator[None]:
    """Hold the output folder's lock for the block (``report`` and ``eval`` writing into a finished run's folder):
    a run still writing it is a one-line error with ``fix``, not a page or metrics made of half its outputs."""
    try:
        f = _lock(Path(out), fix)
    except OSError as e:  # a folder this user cannot write (a read-only copy): nothing writes it, nothing to guard
        if e.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise
        f = None
    try:
        yield
    finally:
        if f is not None:
            f.close()


def _check_removable(target: Path) -> None:
    """Raise a one-line error before anything is deleted when ``target`` (a file, or a folder tree) cannot
    be removed whole: a read-only folder half way down would otherwise stop ``--overwrite`` half done."""
    folders = [target.parent] + ([target] if target.is_dir() and not target.is_symlink() else [])
    if target.is_dir() and not target.is_symlink():
        folders += [Path(root) / d for root, dirs, _ in os.walk(target) for d in dirs
                    if not (Path(root) / d).is_symlink()]
    for d in folders:
        if not os.access(d, os.W_OK | os.X_OK):
            raise SparsevidError(f"--overwrite cannot remove {target}: {d} is not writable; nothing was removed",
                                 fix="make it writable (chmod -R u+w) or choose another -o")


def remove_temporary_files(out: Path) -> int:
    """Remove the ``.tmp-*`` files of atomic writes a killed process left anywhere under ``out`` (call it
    only while holding the folder's lock); returns how many."""
    n = 0
    for p in sorted(out.rglob(TMP_PREFIX + "*")):
        with contextlib.suppress(OSError):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
            n += 1
    return n


def check_output(out: str | Path, outputs: Iterable[str], protect: Iterable[str | Path | None] = (),
                 overwrite: bool = False) -> None:
    """The checks of :func:`prepare_output` that need nothing read or written (an output path that is a file, an
    output that is or holds something the command reads), for a command that reads its input before it
    prepares the folder."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise SparsevidError("the output path exists and is a file", fix="choose another -o", path=out)
    _refuse_reading_what_we_write(out, tuple(outputs), [_resolved(p) for p in protect if p is not None], overwrite)


def check_still_there(out: str | Path, marker: str = RUN_MARKER) -> None:
    """Raise a one-line :class:`SparsevidError` when the run folder ``out`` (its ``marker``) is gone: deleted or moved
    while the command ran. Writing on would make it again (every atomic write makes its folder), unlocked and
    without the run's record, a folder the next ``--resume`` refuses as someone else's."""
    if not (Path(out) / marker).is_file():
        raise SparsevidError("the output folder was deleted or moved while the run was going on", path=Path(out),
                             fix="run the command again")


def prepare_output(out: str | Path, *, marker: str, outputs: Iterable[str], protect: Iterable[str | Path | None] = (),
                   resume: bool = False, overwrite: bool = False,
                   hold: contextlib.ExitStack | None = None, resumable: bool = True) -> Path:
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
        hold: where the folder's lock is kept: it is taken before anything else is looked at and released
            when ``hold`` closes (None: no lock, for a caller that does not go on writing).
        resumable: whether the command has ``--resume`` (the error for a used folder names it only then).

    Raises:
        SparsevidError: the folder is someone else's, exists without --resume/--overwrite,
            holds the input, or cannot be created.
    """
    out = Path(out)
    if resume and overwrite:
        raise SparsevidError("--resume and --overwrite exclude each other", fix="pick one")
    outputs = tuple(outputs)
    try:
        check_output(out, outputs, protect, overwrite)
        created, had_lock = not out.exists(), (out / LOCK_NAME).exists()
        try:
            if hold is not None:
                out.mkdir(parents=True, exist_ok=True)
                hold.enter_context(_lock(out))
            _prepare_locked(out, marker, outputs, resume, overwrite, resumable)
        except BaseException:  # refused: what was made only for the lock goes again
            if hold is not None:
                with contextlib.suppress(OSError):
                    if not had_lock:
                        (out / LOCK_NAME).unlink()
                    if created:
                        out.rmdir()
            raise
    except OSError as e:
        raise os_error(e, out, "create the output folder") from None
    return out


def _prepare_locked(out: Path, marker: str, outputs: tuple[str, ...], resume: bool, overwrite: bool,
                    resumable: bool = True) -> None:
    """:func:`prepare_output`'s checks and removals, once the lock is held."""
    contents = [p for p in out.iterdir()
                if p.name not in (marker, LOCK_NAME) and not p.name.startswith(TMP_PREFIX)] if out.is_dir() else []
    ours = (out / marker).exists()
    if contents and not ours:
        raise SparsevidError("the output folder is not empty and was not written by this command; "
                             "refusing to touch it", fix="choose a new or empty -o folder", path=out)
    if contents and not (resume or overwrite):
        raise SparsevidError("the output folder already holds a run",
                             fix=("pass --resume to continue it, --overwrite to replace it, or choose another -o"
                                  if resumable else "pass --overwrite to replace it, or choose another -o"),
                             path=out)
    if resume and not contents:
        from sparsevid.log import info

        info(f"--resume: nothing to resume in {out}, starting a new run there")
    if overwrite and contents:
        targets = [out / name for name in outputs if (out / name).exists() or (out / name).is_symlink()]
        for t in targets:  # all or nothing: every tree is checked before the first is removed
            _check_removable(t)
        for t in targets:
            if t.is_dir() and not t.is_symlink():
                shutil.rmtree(t)
            else:
                t.unlink()
    out.mkdir(parents=True, exist_ok=True)
    if resume or overwrite:
        remove_temporary_files(out)
    (out / marker).touch()


"""Command-line interface: thin wrappers over the library, one module per subcommand."""
from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from typing import Iterator

from sparsevid import __version__
from sparsevid.errors import SparsevidError, Terminated, interrupt_signum
from sparsevid.log import error

# subcommand modules: each defines add_parser(subparsers) and run(args) -> int
_COMMANDS = ["inspect", "poses", "train", "run", "batch", "eval", "report", "view", "bench", "cache"]


def build_parser() -> argparse.ArgumentParser:
    import importlib

    from sparsevid.cli.flags import Parser

    parser = Parser(
        prog="sparsevid",
        description="Turn a few frames of a short video into the full video "
                    "(camera poses -> 3D Gaussian Splatting -> fixer -> camera path -> video).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--version", action="version", version=f"sparsevid {__version__}")
    _log_flags(parser, False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name in _COMMANDS:
        try:
            mod = importlib.import_module(f"sparsevid.cli.{name}")
        except ModuleNotFoundError as e:  # subcommand not built yet
            if e.name == f"sparsevid.cli.{name}":
                continue
            raise
        mod.add_parser(sub)
    for command in sub.choices.values():  # also after the subcommand: `sparsevid run ... -q`
        _log_flags(command, argparse.SUPPRESS)
    return parser


def _log_flags(parser: argparse.ArgumentParser, default) -> None:
    """``-v/--verbose`` and ``-q/--quiet``; a subcommand's default (SUPPRESS) leaves the top level's value."""
    parser.add_argument("-v", "--verbose", action="store_true", default=default,
                        help="show third-party logging (COLMAP/glog lines; else kept in OUT/poses/colmap.log of a run, OUT/colmap.log of poses); "
                             "also SPARSEVID_VERBOSE=1")
    parser.add_argument("-q", "--quiet", action="store_true", default=default,
                        help="no info lines and no progress (warnings and errors still show)")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from sparsevid import caches, log

    caches.configure()  # compile caches in a folder the user can see and clear (`sparsevid cache`)
    quiet, verbose = log.is_quiet(), log.is_verbose()
    if args.verbose:
        log.set_verbose(True)
    if args.quiet:
        log.set_quiet(True)
    try:
        return _run_command(args)
    finally:  # -q / -v last as long as the command (main called from Python, e.g. a test, runs another after it)
        log.set_quiet(quiet)
        log.set_verbose(verbose)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """While the command runs, SIGTERM raises :class:`~sparsevid.errors.Terminated` (a KeyboardInterrupt), as
    Ctrl-C does: Python's default would end the process at once, leaving temporary folders and no message."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    with contextlib.suppress(ImportError):  # COLMAP's glog takes SIGTERM when pycolmap is first imported
        import pycolmap  # noqa: F401  (its handler prints a native stack trace and kills): ours comes after

    def handler(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def _run_command(args) -> int:
    """``args.func(args)``, with a :class:`SparsevidError` (or a file system error, or Ctrl-C / SIGTERM) as one
    line."""
    try:
        with _sigterm_as_interrupt():
            return int(args.func(args) or 0)
    except SparsevidError as e:
        error(e.one_line())
        return 2
    except OSError as e:  # last-resort net: a file system error no stage turned into a message
        from sparsevid.outdir import os_error

        elsewhere = {"eval": "write the scores elsewhere with --metrics PATH",
                     "report": "copy the run folder where you can write and run report on the copy"
                     }.get(args.command, "choose another -o")
        error(os_error(e, e.filename if e.filename is not None else "?", f"finish `sparsevid {args.command}`",
                       elsewhere).one_line())
        return 2
    except KeyboardInterrupt as e:
        if getattr(e, "checkpoint", None) is not None:  # trainer.TrainingInterrupted (no torch import here)
            error(f"interrupted at training step {e.step}, checkpoint saved -> rerun the same command with "
                  "--resume to continue from that step")
            return 128 + e.signum
        signum = interrupt_signum(e)
        kept = getattr(e, "kept", None)  # run: what the run saved (pipeline.saved_work)
        again = getattr(e, "again", None) or (  # run: a finished run's own line (pipeline.finished_run)
            f"with --resume: {' and '.join(kept)} it saved {'are' if len(kept) > 1 else 'is'} taken up" if kept
            else "(nothing was saved yet: it starts over, with --resume too)" if kept is not None else
            "with --resume: the poses and the training it finished are kept" if args.command == "run" else
            "with --resume: the training's last checkpoint is kept" if args.command == "train" else
            "to start it again")
        error(f"interrupted by {signal.Signals(signum).name} -> rerun the same command {again}")
        return 128 + signum


if __name__ == "__main__":
    sys.exit(main())

"""``sparsevid bench``: the benchmark harness (``benchmarks/run.py`` of the source checkout)."""
from __future__ import annotations

import argparse
import importlib.util
import shlex
import sys
from pathlib import Path
from types import ModuleType

from sparsevid.errors import SparsevidError

#: the harness of the source checkout this package lives in (absent from an installed package)
_HARNESS = Path(__file__).resolve().parents[2] / "benchmarks" / "run.py"
_NAME = "benchmarks.run"


def _harness() -> ModuleType | None:
    """The harness module ``benchmarks.run`` loaded from its file in the checkout, or None when
    the package is installed without the sources (``run`` then gives a one-line error). The
    harness puts its checkout on ``sys.path`` itself, so that spawned run processes can import it."""
    if _NAME in sys.modules:
        return sys.modules[_NAME]
    if not _HARNESS.is_file():
        return None
    spec = importlib.util.spec_from_file_location(_NAME, _HARNESS)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[_NAME] = mod  # registered before it runs: its dataclasses look their module up by name
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        del sys.modules[_NAME]
        raise
    return mod


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "bench", help="benchmark sparsevid and weight-free peers on real cases",
        description="Run the weight-free peers (nearest, crossfade, DIS flow) and sparsevid configurations on "
                    "case folders; write results JSON/markdown, comparison images and the machine's block of "
                    "BENCHMARKS.md. Same options as `python benchmarks/run.py`.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    harness = _harness()
    if harness is not None:
        harness.add_arguments(p)
    else:
        p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    harness = _harness()
    if harness is None:
        raise SparsevidError("the benchmark harness (benchmarks/run.py) is not part of an installed package",
                             fix="run it from a source checkout: pip install -e . then sparsevid bench")
    args.command_line = " ".join(shlex.quote(a) for a in ["sparsevid", *sys.argv[1:]])
    return harness.exit_status(harness.run_bench(harness.config_from_args(args, [])))

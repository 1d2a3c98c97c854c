"""``sparsevid bench``: the benchmark harness (``benchmarks/run.py`` of the source checkout)."""
from __future__ import annotations

import argparse
import importlib
import shlex
import sys
from pathlib import Path
from types import ModuleType

from sparsevid.errors import SparsevidError

_REPO = Path(__file__).resolve().parents[2]


def _harness() -> ModuleType | None:
    """``benchmarks.run`` of the checkout this package lives in, or None (installed without sources)."""
    if not (_REPO / "benchmarks" / "run.py").is_file():
        return None
    if str(_REPO) not in sys.path:  # importable by name, so spawned run processes can import it too
        sys.path.insert(0, str(_REPO))
    return importlib.import_module("benchmarks.run")


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
    harness.run_bench(harness.config_from_args(args, []))
    return 0

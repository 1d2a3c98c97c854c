"""Probe (issue 12, session 18): the fused video's low band made consistent over time
(:func:`sparsevid.fuse.temporal.smooth_low_band`), applied to the frames of finished default runs.

    python tools/temporal_probe.py RUN:CASE [RUN:CASE...] [--json OUT.json]

RUN is a run folder (its ``frames/``: the fused video of 30 frames, made with ``--fuse.temporal.sigma none`` or
before the step existed); CASE the clip (``frame_0000.png`` ... ``frame_0029.png``, inputs 0, 9, 19, 29). Each row
redoes the pipeline's last steps from the fused frames: the frames at input times set back to the inputs, the
smoothing with the row's settings, the input-time frames softened to their neighbours' detail
(:func:`sparsevid.fuse.stage.even_key_detail`). Printed per clip: held-out PSNR / SSIM / sharpness / pulse / flicker
(``evaluate``, as ``score.py``), and the change over the row without smoothing.
"""
from __future__ import annotations

import argparse
import glob
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sparsevid.eval.metrics import evaluate  # noqa: E402
from sparsevid.fuse.stage import even_key_detail  # noqa: E402
from sparsevid.fuse.temporal import TemporalConfig, smooth_low_band  # noqa: E402

KEYS = [0, 9, 19, 29]
#: row name -> settings (None: no smoothing)
ROWS = {
    "off": None,
    "reach 1, sigma 1.5": TemporalConfig(sigma=1.5, reach=1, colour_sigma=None),
    "reach 1, sigma 2": TemporalConfig(sigma=2.0, reach=1, colour_sigma=None),
    "reach 1, sigma 3": TemporalConfig(sigma=3.0, reach=1, colour_sigma=None),
    "reach 2, sigma 1 (sharpness -4 to -10 %)": TemporalConfig(sigma=1.0, reach=2, colour_sigma=None),
    "reach 2, sigma 1.5": TemporalConfig(sigma=1.5, reach=2, colour_sigma=None),
    "reach 2, sigma 2 (session 18's default)": TemporalConfig(sigma=2.0, reach=2, colour_sigma=None),
    "reach 2, sigma 3": TemporalConfig(sigma=3.0, reach=2, colour_sigma=None),
    "reach 3, sigma 2": TemporalConfig(sigma=2.0, reach=3, colour_sigma=None),
    # session 19: the colour (the part of the change with no luma) taken from the mean in every band
    "reach 2, sigma 2, colour (the default)": TemporalConfig(sigma=2.0, reach=2, colour_sigma=0.0),
    "reach 1, sigma 2, colour": TemporalConfig(sigma=2.0, reach=1, colour_sigma=0.0),
    "reach 3, sigma 2, colour": TemporalConfig(sigma=2.0, reach=3, colour_sigma=0.0),
    "reach 2, sigma 2, colour to 0.5 px": TemporalConfig(sigma=2.0, reach=2, colour_sigma=0.5),
    "reach 2, sigma 2, colour to 1 px": TemporalConfig(sigma=2.0, reach=2, colour_sigma=1.0),
}


def read(pattern: str) -> list[np.ndarray]:
    return [cv2.imread(f)[..., ::-1].copy() for f in sorted(glob.glob(pattern))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pairs", nargs="+", help="RUN:CASE")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--rows", nargs="+", help="only these rows (names as in ROWS; 'off' is always run)")
    args = ap.parse_args()
    todo = {n: c for n, c in ROWS.items() if n == "off" or not args.rows or n in args.rows}
    res = {"command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%d %H:%M"), "cases": {}}
    for pair in args.pairs:
        run, case = pair.split(":")
        real = read(f"{case}/frame_*.png")
        fused = read(f"{run}/frames/*.png")
        at_input = [i in KEYS for i in range(len(fused))]
        fused = [real[i] if inp else f for i, (f, inp) in enumerate(zip(fused, at_input))]
        gt = dict(enumerate(real))
        rows = {}
        for name, cfg in todo.items():
            t0 = time.perf_counter()
            frames = fused if cfg is None else smooth_low_band(fused, at_input, cfg)
            secs = time.perf_counter() - t0
            frames, _ = even_key_detail(frames, at_input)
            m = evaluate(frames, gt, KEYS)
            rows[name] = {"psnr": round(m["psnr_heldout"], 3), "ssim": round(m["ssim_heldout"], 4),
                          "sharpness": round(m["sharpness_heldout"], 3), "pulse": round(m["pulse_ratio"], 3),
                          "flicker": round(m["flicker"]["flicker"], 3), "seconds": round(secs, 2)}
            print(f"{Path(case).name:16s} {name:42s} " + " ".join(f"{k} {v}" for k, v in rows[name].items())
                  + f"  ({rows[name]['psnr'] - rows['off']['psnr']:+.3f} dB)", flush=True)
        res["cases"][Path(case).name] = rows
        if args.json:
            args.json.write_text(json.dumps(res, indent=1))
    names = list(todo)[1:]
    print("mean change over 'off' (min), mean sharpness ratio:")
    for name in names:
        d = [r[name]["psnr"] - r["off"]["psnr"] for r in res["cases"].values()]
        s = [r[name]["sharpness"] / r["off"]["sharpness"] for r in res["cases"].values()]
        print(f"  {name:42s} {np.mean(d):+.3f} ({min(d):+.3f}), {np.mean(s):.3f}; {sum(x < 0 for x in d)} below")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Score runs made from any keyframes beside DIS flow from the same keyframes (``../shared/bench/score.py`` takes
0, 9, 19, 29 only):

    python tools/score_keys.py CASE RUN:K,K,... [RUN:K,K,...]

CASE holds the clip's real frames (frame_0000.png ...); RUN a run folder (its ``frames/``), K its keyframes. Printed
per run: held-out PSNR / SSIM / sharpness (``sparsevid.eval.metrics.evaluate``, as ``score.py``) of the run and of
DIS flow (``sparsevid.eval.peers.dis_flow``), and the PSNR margin.
"""
from __future__ import annotations

import glob
import sys
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sparsevid.eval.metrics import evaluate  # noqa: E402
from sparsevid.eval.peers import dis_flow  # noqa: E402


def read(pattern: str) -> list:
    return [cv2.imread(f)[..., ::-1].copy() for f in sorted(glob.glob(pattern))]


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    real = dict(enumerate(read(f"{sys.argv[1]}/frame_*.png")))
    for arg in sys.argv[2:]:
        run, _, keys = arg.rpartition(":")
        keys = [int(k) for k in keys.split(",")]
        ours = evaluate(read(f"{run}/frames/*.png"), real, keys)
        peer = evaluate(dis_flow({k: real[k] for k in keys}, len(real)), real, keys)
        fmt = "{psnr_heldout:.3f} / {ssim_heldout:.4f} / {sharpness_heldout:.2f}"
        print(f"{Path(run).name}: ours {fmt.format(**ours)}, DIS flow {fmt.format(**peer)}, "
              f"margin {ours['psnr_heldout'] - peer['psnr_heldout']:+.3f} dB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The issue's moonshot in its smallest nonlinear form: a small CNN trained per clip on the leave-one-out pairs
(each interior input rebuilt from the others, against the real frame), then applied to the fused in-between
frames (BENCHMARKS.md, issue 12, session 5):

    python tools/clip_cnn_probe.py CAP CASE

CAP is a tools/fusion_capture.py capture (its stashes from tools/fusion_probes.py and tools/ensemble_probe.py are
made when absent). The network sees, per pixel, the fused frame, each route fused alone, the 3D render, the
learned frame, the three route gains and the distance to the nearer input (19 channels); four 3x3 convolutions
(32 channels, dilations 1, 2, 4) predict a correction of the fused frame (zero at the start). Trained with Adam on
96-px crops (batch 8, random flips), L2 or L1 loss, 300 or 1000 steps. Printed: the cross-check on the
leave-one-out pairs (fit on one input, scored on the other: before -> after) and the held-out frames before ->
after, with SSIM and sharpness.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ensemble_probe import route3d  # noqa: E402
from fusion_probes import KEYS, Probe  # noqa: E402

from sparsevid import log  # noqa: E402
from sparsevid.eval.metrics import evaluate  # noqa: E402
from sparsevid.fuse.fusion import Bracket, flow_candidates, fuse, learned_candidate, route3d_candidates  # noqa: E402
from sparsevid.fuse.learned import learned_frames, load_learned  # noqa: E402
from sparsevid.render.frames import to_uint8  # noqa: E402


class FixNet(nn.Module):
    def __init__(self, cin: int, ch: int = 32):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(cin, ch, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(ch, ch, 3, padding=2, dilation=2), nn.ReLU(),
                                  nn.Conv2d(ch, ch, 3, padding=4, dilation=4), nn.ReLU(),
                                  nn.Conv2d(ch, 3, 3, padding=1))
        nn.init.zeros_(self.body[-1].weight)
        nn.init.zeros_(self.body[-1].bias)

    def forward(self, x):
        return x[:, :3] + self.body(x)


def features(p: Probe, br: Bracket, img3w, learned_img, gains) -> np.ndarray:
    f = p.fkeys
    cs = flow_candidates(f[br.k0], f[br.k1], br.t, p.flows(br.k0, br.k1), p.cfg)
    c3 = route3d_candidates(img3w[0], img3w[1], f[br.k0], f[br.k1], br.t, p.cfg)
    fused = fuse(cs + c3 + [learned_candidate(learned_img)], gains, 1.0, p.cfg)
    g = [gains[r] if gains else np.ones((p.h, p.w)) for r in ("2d", "3d", "learned")]
    return np.concatenate([fused, fuse(cs, None, 1.0, p.cfg), fuse(c3, None, 1.0, p.cfg), img3w[0], learned_img,
                           np.stack(g, -1), np.full((p.h, p.w, 1), br.distance() / 10)], -1).astype(np.float32)


def tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a).permute(2, 0, 1)[None]


def fit(pairs, steps: int, loss: str, rng: np.random.Generator) -> FixNet:
    net = FixNet(pairs[0][0].shape[-1])
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    X, Y = [tensor(x) for x, _ in pairs], [tensor(y) for _, y in pairs]
    h, w = X[0].shape[-2:]
    for _ in range(steps):
        xb, yb = [], []
        for _ in range(8):
            j, y0, x0 = rng.integers(len(X)), rng.integers(0, h - 96), rng.integers(0, w - 96)
            xx, yy = X[j][..., y0:y0 + 96, x0:x0 + 96], Y[j][..., y0:y0 + 96, x0:x0 + 96]
            if rng.random() < 0.5:
                xx, yy = xx.flip(-1), yy.flip(-1)
            xb.append(xx)
            yb.append(yy)
        d = net(torch.cat(xb)) - torch.cat(yb)
        err = d.abs().mean() if loss == "l1" else (d ** 2).mean()
        opt.zero_grad()
        err.backward()
        opt.step()
    return net


def apply(net: FixNet, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return np.clip(net(tensor(x))[0].permute(1, 2, 0).numpy(), 0, 1)


def main() -> int:
    log.set_quiet(True)
    torch.manual_seed(0)
    cap, case = Path(sys.argv[1]), Path(sys.argv[2])
    p = Probe(cap, case, "linear")  # as measured (before the quadratic motion)
    loo3d = route3d(cap)["loo"]
    held = [(k, (a, b)) for a, k, b in zip(KEYS, KEYS[1:-1], KEYS[2:])]
    model = load_learned("auto", "cpu")
    learned = learned_frames(model, p.keys, [(a, b, (k - a) / (b - a)) for k, (a, b) in held], "cpu", 1)
    train = []
    for k, (a, b) in held:
        br = Bracket(a, b, (k - a) / (b - a))
        gains = p.S["loo"].gains_at(k, p.region, exclude=k)
        train.append((features(p, br, loo3d[k], learned[(a, b, br.t)], gains), p.fkeys[k]))
    test = {}
    for i, br in enumerate(p.brs):
        if not br.at_key:
            gains = p.S["loo"].gains_at(float(p.C["positions"][i]), p.region, distance=br.distance())
            test[i] = features(p, br, p.S["f3"][i], p.S["L"][(br.k0, br.k1, br.t)], gains)

    def psnr_f(a, b):
        return 10 * np.log10(1 / np.mean((a - b) ** 2))
    base = [to_uint8(test[i][..., :3]) if i in test else p.keys[br.key] for i, br in enumerate(p.brs)]
    mb = evaluate(base, p.gt, KEYS)
    torch.set_num_threads(2)
    for loss in ("l2", "l1"):
        for steps in (300, 1000):
            t0, rng = time.time(), np.random.default_rng(0)
            cross = []
            for j in range(len(train)):
                net = fit([train[j]], steps, loss, rng)
                x, y = train[1 - j]
                cross.append(f"{psnr_f(x[..., :3], y):.2f} -> {psnr_f(apply(net, x), y):.2f}")
            net = fit(train, steps, loss, rng)
            out = [to_uint8(apply(net, test[i])) if i in test else p.keys[br.key] for i, br in enumerate(p.brs)]
            m = evaluate(out, p.gt, KEYS)
            print(f"{loss} {steps} steps: leave-one-out cross-check {', '.join(cross)}; held-out "
                  f"{mb['psnr_heldout']:.3f} / {mb['ssim_heldout']:.4f} / {mb['sharpness_heldout']:.3f} -> "
                  f"{m['psnr_heldout']:.3f} / {m['ssim_heldout']:.4f} / {m['sharpness_heldout']:.3f} "
                  f"({time.time() - t0:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

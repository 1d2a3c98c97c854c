"""Probe (issue 12, session 21): can the fusion's candidate weights be corrected by a small model learnt on *other*
clips, so that it carries to a clip it never saw?

    python tools/learned_weights_probe.py dump CASE RUN DIR        # once per clip
    python tools/learned_weights_probe.py loco DIR [--model linear|mlp|types] [--bands all|low] [--json OUT.json]

``dump`` resumes a default CPU run RUN of CASE (poses and training kept; the fingerprint check is skipped so that runs
made by earlier code serve) and re-fuses it, keeping every in-between frame's candidates (the 2D route's two warps,
the 3D route's two guided warps and its frame, the learned route's frame), their weights (confidence x time x route
gain, as :func:`sparsevid.fuse.fusion.fuse` blends them) and the real frame, in DIR/<case>/fNN.npz.

``loco`` is a leave-one-clip-out test over every clip in DIR: for each clip, a correction of the candidates' log
weights is fitted on the other clips' frames and scored on this clip's 26 frames (before the temporal step), beside
the default weights. Per candidate and pixel, the correction sees: its squared difference to the fused frame (blurred
over 1.5 and 6 px per 1000 px of the longer side) and to the plain mean of the candidates (1.5 px), its log weight, its
log route gain, the fused frame's local Laplacian energy, the frame's distance to its nearer input, and its kind
(one-hot). Models: ``linear`` (one weight per feature), ``mlp`` (two hidden layers of 16), ``types`` (the kind
alone: one constant per kind). The correction is bounded to +-2 in log weight. ``--bands low`` applies the
corrected weights to the low band only (``FuseConfig.band_sigma``), the detail band keeping the default weights.
The loss is each frame's squared error over the default's, so that each frame counts alike whatever its PSNR.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sparsevid.eval.metrics import laplacian_variance  # noqa: E402
from sparsevid.fuse.fusion import FuseConfig, bracket  # noqa: E402
from sparsevid.imaging import blur, px_scale  # noqa: E402
from sparsevid.render.frames import to_uint8  # noqa: E402

KEYS = [0, 9, 19, 29]
KINDS = ["flow_a", "flow_b", "guided_a", "guided_b", "render", "learned"]
MAX_CANDIDATES = len(KINDS)
SAMPLES_PER_FRAME = 6000
FEATURES = ["dF 1.5px", "dF 6px", "dM 1.5px", "log weight", "log gain", "texture", "distance"] + KINDS


def dump(case: Path, run: Path, out: Path) -> None:
    import sparsevid.fingerprint as fingerprint
    import sparsevid.fuse.stage as stage
    from sparsevid import log
    from sparsevid.data.load import load_scene
    from sparsevid.eval.metrics import match_size
    from sparsevid.pipeline import named_config, run_pipeline

    kept = []
    fuse = stage.fuse

    def keep(cands, gains, power, cfg):
        g = gains or {}
        kept.append(dict(images=np.stack([c.image for c in cands]).astype(np.float16),
                         raw=np.stack([c.weight for c in cands]).astype(np.float32),
                         gain=np.stack([np.broadcast_to(np.asarray(g.get(c.route, 1.0), np.float32), c.weight.shape)
                                        for c in cands]).astype(np.float16),
                         routes=np.array([c.route for c in cands])))
        return fuse(cands, gains, power, cfg)

    stage.fuse = keep  # probe only: record what the default blends
    fingerprint.check_or_write = lambda *a, **k: None  # runs made by earlier code resume as they are
    log.set_quiet(True)
    cfg = named_config("default", input=case, output=run, keyframes=KEYS, device="cpu", resume=True)
    cfg.fuse.threads = 1  # the frames are fused in order, so kept[j] is the j-th in-between frame
    cfg.write_video = cfg.write_report = False
    res = run_pipeline(cfg)
    h, w = res.frames[0].shape[:2]
    scene = load_scene(case, keyframes=KEYS)
    gt = {f.index: match_size(f.image, (h, w)) for f in scene.frames + scene.gt_frames}
    between = [i for i in range(len(res.frames)) if i not in KEYS]
    assert len(kept) == len(between), (len(kept), len(between))
    (out / case.name).mkdir(parents=True, exist_ok=True)
    for i, k in zip(between, kept):
        np.savez(out / case.name / f"f{i:02d}.npz", truth=gt[i], **k)
    print(case.name, len(kept), "frames, candidates", list(kept[0]["routes"]), flush=True)


def kinds_of(routes) -> list[int]:
    n = len(routes)
    return {6: [0, 1, 2, 3, 4, 5], 5: [0, 1, 2, 3, 4], 3: [0, 1, 5], 2: [0, 1]}[n]


def frame_arrays(path: Path, sample: int | None, rng: np.random.Generator) -> dict:
    """One dumped frame -> per-pixel arrays (all pixels, or ``sample`` random ones), padded to 6 candidates."""
    d = np.load(path)
    imgs = d["images"].astype(np.float32)
    n, h, w = imgs.shape[:3]
    wt = d["raw"] * d["gain"].astype(np.float32)
    wt = wt / np.maximum(wt.sum(0, keepdims=True), 1e-12)
    fused = (imgs * wt[..., None]).sum(0)
    mean = imgs.mean(0)
    s = px_scale(h, w)
    br = bracket(int(path.stem[1:]), KEYS)
    grey = fused @ np.array([0.299, 0.587, 0.114], np.float32)
    lap = cv2.Laplacian(grey, cv2.CV_32F)
    texture = np.log(blur(lap * lap, 6.0 * s) + 1e-6)
    feats = []
    for j, kind in enumerate(kinds_of(d["routes"])):
        df = np.mean((imgs[j] - fused) ** 2, -1)
        dm = np.mean((imgs[j] - mean) ** 2, -1)
        onehot = np.zeros((MAX_CANDIDATES, h, w), np.float32)
        onehot[kind] = 1.0
        feats.append(np.concatenate([np.stack([
            np.log(blur(df, 1.5 * s) + 1e-6), np.log(blur(df, 6.0 * s) + 1e-6), np.log(blur(dm, 1.5 * s) + 1e-6),
            np.log(wt[j] + 1e-6), np.log(d["gain"][j].astype(np.float32) + 1e-6), texture,
            np.full((h, w), min(br.t, 1.0 - br.t), np.float32)]), onehot]))
    low = np.stack([blur(im, FuseConfig().band_sigma * s) for im in imgs])
    idx = rng.integers(0, h * w, sample) if sample else np.arange(h * w)
    pad = MAX_CANDIDATES - n

    def take(a, fill):  # [N, H, W, ...] -> [P, 6, ...]
        a = a.reshape(n, h * w, *a.shape[3:])[:, idx].swapaxes(0, 1)
        return np.concatenate([a, np.full((len(idx), pad, *a.shape[2:]), fill, np.float32)], 1) if pad else a

    truth = d["truth"].astype(np.float32) / 255.0
    return dict(I=take(imgs, 0.0), L=take(low, 0.0), B=take(np.log(wt + 1e-6), -1e4),
                F=take(np.stack(feats).transpose(0, 2, 3, 1), 0.0), T=truth.reshape(-1, 3)[idx],
                mse0=float(np.mean((fused - truth) ** 2)), shape=(h, w))


class Correction(torch.nn.Module):
    """Log-weight correction per candidate, bounded to +-``bound``; softmax over the candidates."""

    def __init__(self, nf: int, model: str, mu: torch.Tensor, sd: torch.Tensor, bound: float = 2.0):
        super().__init__()
        self.keep = list(range(7, nf)) if model == "types" else list(range(nf))
        k = len(self.keep)
        self.m = torch.nn.Linear(k, 1) if model != "mlp" else torch.nn.Sequential(
            torch.nn.Linear(k, 16), torch.nn.GELU(), torch.nn.Linear(16, 16), torch.nn.GELU(), torch.nn.Linear(16, 1))
        last = self.m if model != "mlp" else self.m[-1]
        torch.nn.init.zeros_(last.weight)
        torch.nn.init.zeros_(last.bias)
        self.mu, self.sd, self.bound = mu[self.keep], sd[self.keep], bound

    def forward(self, I, L, B, F, low_only: bool):
        f = (F[..., self.keep] - self.mu) / self.sd
        p = torch.softmax(B + self.bound * torch.tanh(self.m(f).squeeze(-1) / self.bound), -1)
        if not low_only:
            return (p[..., None] * I).sum(-2)
        p0 = torch.softmax(B, -1)
        return (p[..., None] * L).sum(-2) + (p0[..., None] * (I - L)).sum(-2)


def fit(frames: list[dict], model: str, low_only: bool, steps: int, seed: int) -> Correction:
    cat = {k: torch.from_numpy(np.concatenate([f[k] for f in frames])) for k in "ILBFT"}
    wt = torch.from_numpy(np.concatenate([np.full(len(f["T"]), 1.0 / f["mse0"], np.float32) for f in frames]))
    nf = cat["F"].shape[-1]
    flat = cat["F"].reshape(-1, nf)
    net = Correction(nf, model, flat.mean(0), flat.std(0) + 1e-3)
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-4)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        b = torch.randint(0, len(wt), (8192,), generator=g)
        out = net(cat["I"][b], cat["L"][b], cat["B"][b], cat["F"][b], low_only)
        loss = (wt[b] * ((out - cat["T"][b]) ** 2).mean(-1)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net


def score(net: Correction, files: list[Path], low_only: bool) -> dict:
    rng = np.random.default_rng(0)
    p0, p1, s0, s1 = [], [], [], []
    with torch.no_grad():
        for path in files:
            f = frame_arrays(path, None, rng)
            h, w = f["shape"]
            t = {k: torch.from_numpy(f[k]) for k in "ILBF"}
            out = net(t["I"], t["L"], t["B"], t["F"], low_only).numpy().reshape(h, w, 3)
            base = torch.softmax(t["B"], -1)[..., None].mul(t["I"]).sum(-2).numpy().reshape(h, w, 3)
            truth = f["T"].reshape(h, w, 3)
            real = laplacian_variance(to_uint8(truth))
            for img, ps, ss in ((base, p0, s0), (out, p1, s1)):
                ps.append(10 * np.log10(1.0 / float(np.mean((np.clip(img, 0, 1) - truth) ** 2))))
                ss.append(laplacian_variance(to_uint8(img)) / real)
    return dict(psnr_default=float(np.mean(p0)), psnr_corrected=float(np.mean(p1)),
                sharpness_default=float(np.mean(s0)), sharpness_corrected=float(np.mean(s1)))


def loco(root: Path, model: str, low_only: bool, steps: int, seed: int) -> dict:
    clips = sorted(p.name for p in root.iterdir() if p.is_dir())
    rng = np.random.default_rng(seed)
    samples = {c: [frame_arrays(p, SAMPLES_PER_FRAME, rng) for p in sorted((root / c).glob("f*.npz"))] for c in clips}
    out = {}
    for c in clips:
        t0 = time.time()
        net = fit([f for o in clips if o != c for f in samples[o]], model, low_only, steps, seed)
        out[c] = score(net, sorted((root / c).glob("f*.npz")), low_only)
        r = out[c]
        print(f"{c}: PSNR {r['psnr_default']:.3f} -> {r['psnr_corrected']:.3f} "
              f"({r['psnr_corrected'] - r['psnr_default']:+.3f}), sharpness {r['sharpness_default']:.3f} -> "
              f"{r['sharpness_corrected']:.3f} ({time.time() - t0:.0f} s)", flush=True)
    net = fit([f for c in clips for f in samples[c]], model, low_only, steps, seed)
    if model != "mlp":  # what the correction fitted on every clip does, per unit of each feature
        coef = (net.m.weight.detach()[0] / net.sd).tolist()
        out["coefficients, fitted on every clip"] = {FEATURES[k]: round(c, 4) for k, c in zip(net.keep, coef)}
        print("coefficients (per unit of each feature):", out["coefficients, fitted on every clip"])
    gains = [r["psnr_corrected"] - r["psnr_default"] for c, r in out.items() if c in clips]
    print(f"mean {np.mean(gains):+.3f} dB, min {min(gains):+.3f}, {sum(g > 0 for g in gains)} of {len(gains)} up")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dump")
    d.add_argument("case", type=Path)
    d.add_argument("run", type=Path)
    d.add_argument("dir", type=Path)
    lo = sub.add_parser("loco")
    lo.add_argument("dir", type=Path)
    lo.add_argument("--model", choices=["linear", "mlp", "types"], default="linear")
    lo.add_argument("--bands", choices=["all", "low"], default="all")
    lo.add_argument("--steps", type=int, default=1500)
    lo.add_argument("--seed", type=int, default=0)
    lo.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.manual_seed(args.seed if args.cmd == "loco" else 0)
    if args.cmd == "dump":
        dump(args.case, args.run, args.dir)
        return 0
    res = loco(args.dir, args.model, args.bands == "low", args.steps, args.seed)
    if args.json:
        args.json.write_text(json.dumps({"command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%d %H:%M"),
                                         "features": FEATURES, "clips": res}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

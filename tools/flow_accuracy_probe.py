"""How much of the in-between frames' error is alignment, and how good the flows between inputs are (issue 12,
BENCHMARKS.md sessions 32 and 34). Four probes on a case of 30 real frames (inputs 0, 9, 19, 29):

    python tools/flow_accuracy_probe.py CASE [--frames RUN/frames] [--no-gmflow] [--timing]

* ``--frames``: a run's output frames, each aligned to its real frame by DIS flow (computed with the real frame):
  PSNR as it is, after the median translation alone, after the whole flow (MSE-averaged over the held-out frames);
  and each frame's median shift from its real frame by thirds of the height.
* ``--timing``: where the content of each third of the frame's height is at every frame (DIS flows between consecutive
  real frames, chained from frame 0; the median over the third's pixels whose content stays in the frame), against
  where motion models through the 4 inputs alone put it: linear between neighbouring inputs, the pipeline's local
  quadratic (each segment the mean of the parabolas through its keys and their outer neighbours), a natural cubic
  spline and PCHIP through all four. The rms residual (px) over the 26 held-out frames is the part of the camera's
  motion that the inputs do not tell. An oracle beside them: a cubic Hermite spline with each input's true velocity
  (from its real neighbouring frames). Then whether a frame shows that velocity itself through motion blur
  (:func:`blur_cue`).
* The DIS flow between neighbouring inputs against DIS flows chained through the real in-between frames (one-frame
  steps, an oracle of the flow): mean end-point difference per sixth of the frame's height.
* The scorer's DIS-flow interpolation (``score.py``'s peer: linear motion, bilinear warps blended by time) with its
  flows replaced by: DIS with 4 mirrors; the chained oracle; each candidate of ``FlowConfig.candidates``; the
  per-pixel choice among them (``flow2d.choose_flow``), with and without GMFlow (when its weights are installed);
  and, with ``--soft T,R ...``, the soft choice (``FlowConfig.choice_temperature`` T, ``choice_relative`` R; session 33).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sparsevid.eval.metrics import evaluate  # noqa: E402
from sparsevid.fuse.flow2d import (FlowConfig, candidate_flows, choose_flow, mirrored_flow,  # noqa: E402
                                   quadratic_shift)
from sparsevid.imaging import grid, make_dis, px_scale, remap  # noqa: E402

KEYS = [0, 9, 19, 29]


def load(case: Path) -> list[np.ndarray]:
    return [cv2.imread(str(case / f"frame_{i:04d}.png"))[:, :, ::-1].copy() for i in range(30)]


def chained_steps(grey: list[np.ndarray], i0: int, i1: int) -> list[np.ndarray]:
    """DIS flows between consecutive real frames from ``i0`` towards ``i1``, composed: the flow from ``i0`` to each
    frame on the way, ``i0`` itself (zero) first."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    gx, gy = grid(*grey[0].shape)
    step = 1 if i1 > i0 else -1
    totals = [np.zeros(grey[0].shape + (2,), np.float32)]
    for i in range(i0, i1, step):
        f = dis.calc(grey[i], grey[i + step], None)
        total = totals[-1]
        mx, my = gx + total[..., 0], gy + total[..., 1]
        totals.append(total + np.stack([remap(f[..., 0], mx, my), remap(f[..., 1], mx, my)], -1))
    return totals


def chained(grey: list[np.ndarray], i0: int, i1: int) -> np.ndarray:
    """DIS flows between consecutive real frames from ``i0`` to ``i1``, composed."""
    return chained_steps(grey, i0, i1)[-1]


def interpolate(frames: list[np.ndarray], flows: dict[tuple[int, int], np.ndarray]) -> list[np.ndarray]:
    """The scorer's peer with the given flows between neighbouring inputs."""
    out = [None] * 30
    gx, gy = grid(*frames[0].shape[:2])
    for k0, k1 in zip(KEYS, KEYS[1:]):
        fab, fba = flows[(k0, k1)], flows[(k1, k0)]
        for f in range(k0, k1 + 1):
            t = (f - k0) / (k1 - k0)
            if f in (k0, k1):
                out[f] = frames[f]
                continue
            fa = -t * (1 - t) * fab + t * t * fba
            fb = (1 - t) * (1 - t) * fab - t * (1 - t) * fba
            wa = remap(frames[k0], gx + fa[..., 0], gy + fa[..., 1])
            wb = remap(frames[k1], gx + fb[..., 0], gy + fb[..., 1])
            out[f] = cv2.addWeighted(wa, 1 - t, wb, t, 0)
    return out


def trajectories(grey: list[np.ndarray], parts: int = 3) -> np.ndarray:
    """[parts, N, 2]: the median displacement (from frame 0) at every one of the N frames of the content of each
    1/``parts`` of frame 0's height, along DIS flows between consecutive frames chained from frame 0
    (:func:`chained_steps`). The median is over the same pixels at every frame: those whose content stays inside the
    frame to the last one (all of the third's pixels where fewer than a tenth of them do)."""
    h, w = grey[0].shape
    gx, gy = grid(h, w)
    totals = chained_steps(grey, 0, len(grey) - 1)
    inside = np.ones((h, w), bool)
    for t in totals:
        inside &= (gx + t[..., 0] >= 0) & (gx + t[..., 0] <= w - 1) & (gy + t[..., 1] >= 0) & (gy + t[..., 1] <= h - 1)
    out = np.zeros((parts, len(grey), 2))
    for r in range(parts):
        rows = slice(r * h // parts, (r + 1) * h // parts)
        keep = inside[rows] if inside[rows].mean() >= 0.1 else np.ones_like(inside[rows])
        out[r] = [np.median(t[rows][keep], 0) for t in totals]
    return out


def local_quadratic(p: np.ndarray, times: np.ndarray) -> np.ndarray:
    """The pipeline's motion model between keys, on a trajectory ``p`` [30, 2] sampled at KEYS: each key's content
    moves along the parabola through the key and its two neighbouring keys (the line to the near key plus
    :func:`~sparsevid.fuse.flow2d.quadratic_shift`; the outer keys' line alone where they have no key on their far
    side); a frame is the time-weighted mean of both keys' paths."""
    def path(k: int, other: int, t: float) -> np.ndarray:
        linear = p[k] + (p[other] - p[k]) * (t - k) / (other - k)
        i = KEYS.index(k) + (-1 if other > k else 1)  # the key on the far side, if any
        if not 0 <= i < len(KEYS):
            return linear
        far = KEYS[i]
        return linear + quadratic_shift(p[other] - p[k], p[far] - p[k], other - k, far - k, t - k)
    out = []
    for t in times:
        k0 = max(k for k in KEYS if k <= t)
        k1 = min(k for k in KEYS if k > t)
        s = (t - k0) / (k1 - k0)
        out.append((1 - s) * path(k0, k1, t) + s * path(k1, k0, t))
    return np.array(out)


def timing_report(grey: list[np.ndarray]) -> list[str]:
    from scipy.interpolate import CubicHermiteSpline, CubicSpline, PchipInterpolator

    held = np.array([i for i in range(30) if i not in KEYS])
    lines = []
    traj = trajectories(grey)
    for r, p in enumerate(traj):
        k = np.array(KEYS)
        models = {
            "linear": np.stack([np.interp(held, k, p[k, d]) for d in range(2)], -1),
            "local quadratic": local_quadratic(p, held),
            "natural cubic": CubicSpline(k, p[k], bc_type="natural")(held),
            "pchip": PchipInterpolator(k, p[k])(held),
        }
        # an oracle: the inputs' own velocities, measured with their real neighbouring frames
        v = np.stack([p[1] - p[0]] + [(p[i + 1] - p[i - 1]) / 2 for i in KEYS[1:-1]] + [p[29] - p[28]])
        models["Hermite oracle"] = CubicHermiteSpline(k, p[k], v)(held)
        moved = np.linalg.norm(np.diff(p[k], axis=0), axis=-1).mean()
        res = " ".join(f"{n} {np.sqrt(np.mean(np.sum((m - p[held]) ** 2, -1))):.2f}" for n, m in models.items())
        lines.append(f"timing, third {r + 1} of the height (moves {moved:.1f} px per segment): rms px {res}")
    cue = " ".join(f"{c:+.2f}" for c in blur_cue(grey, traj))
    lines.append(f"blur cue: correlation of speed with gradient energy across / along the motion, by thirds: {cue}")
    return lines


def blur_cue(grey: list[np.ndarray], traj: np.ndarray) -> list[float]:
    """Whether a frame shows its own speed through motion blur: per third of the height, the correlation over the 30
    frames between the speed (px per frame, from ``traj`` [parts, 30, 2]) and the ratio of the image's gradient
    energy across the motion to that along it (blur along the motion lowers the latter)."""
    parts = traj.shape[0]
    h = grey[0].shape[0]
    vel = np.gradient(traj, axis=1)
    out = []
    for r in range(parts):
        ratio, speed = [], []
        for i, g in enumerate(grey):
            band = g[r * h // parts:(r + 1) * h // parts].astype(np.float32)
            gx, gy = cv2.Sobel(band, cv2.CV_32F, 1, 0), cv2.Sobel(band, cv2.CV_32F, 0, 1)
            v = vel[r, i]
            d = v / max(np.linalg.norm(v), 1e-6)
            along, across = gx * d[0] + gy * d[1], gy * d[0] - gx * d[1]
            ratio.append(float(np.mean(across ** 2) / max(np.mean(along ** 2), 1e-6)))
            speed.append(float(np.linalg.norm(v)))
        out.append(float(np.corrcoef(ratio, speed)[0, 1]))
    return out


def score(frames: list[np.ndarray], gt: list[np.ndarray]) -> str:
    m = evaluate(frames, {i: g for i, g in enumerate(gt)}, KEYS)
    return f"{m['psnr_heldout']:.3f} / {m['ssim_heldout']:.4f} / {m['sharpness_heldout']:.2f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("case", type=Path)
    ap.add_argument("--frames", type=Path, help="a run's output frames to decompose (frame_XXXX.png)")
    ap.add_argument("--no-gmflow", action="store_true")
    ap.add_argument("--timing", action="store_true", help="only the motion models' timing residuals (fast)")
    ap.add_argument("--soft", nargs="*", default=[], metavar="T,R",
                    help="also the soft choice among all candidates with these temperatures (grey levels) and "
                         "relative softness, e.g. 4,0 1,0.25")
    args = ap.parse_args()
    gt = load(args.case)
    grey = [cv2.cvtColor(x, cv2.COLOR_RGB2GRAY) for x in gt]
    h, w = grey[0].shape
    gx, gy = grid(h, w)
    if args.timing:
        print("\n".join(timing_report(grey)))
        return 0
    if args.frames:
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        mse = {"as it is": [], "median translation": [], "whole flow": []}
        for i in (i for i in range(30) if i not in KEYS):
            out = cv2.imread(str(args.frames / f"frame_{i:04d}.png"))[:, :, ::-1].astype(np.float32)
            f = dis.calc(grey[i], cv2.cvtColor(out.astype(np.uint8), cv2.COLOR_RGB2GRAY), None)
            tx, ty = np.median(f[..., 0]), np.median(f[..., 1])
            thirds = [np.median(f[r * h // 3:(r + 1) * h // 3].reshape(-1, 2), 0) for r in range(3)]
            print(f"frame {i:2d}: the output's shift from the real frame (x, y px), by thirds of the height: "
                  + " ".join(f"({x:+.2f} {y:+.2f})" for x, y in thirds))
            m = (slice(16, -16), slice(16, -16))
            for name, img in (("as it is", out), ("median translation", remap(out, gx + tx, gy + ty)),
                              ("whole flow", remap(out, gx + f[..., 0], gy + f[..., 1]))):
                mse[name].append(float(np.mean((img[m] - gt[i][m]) ** 2)))
        for name, v in mse.items():
            print(f"{args.frames}: {name:20s} {10 * np.log10(255 ** 2 / np.mean(v)):.2f} dB (MSE-averaged)")
    pairs = [(a, b) for k0, k1 in zip(KEYS, KEYS[1:]) for a, b in ((k0, k1), (k1, k0))]
    oracle = {p: chained(grey, *p) for p in pairs}
    dis = make_dis("medium", max(h, w), None, 400)
    plain = {p: mirrored_flow(dis, grey[p[0]], grey[p[1]], 4) for p in pairs}
    for k0, k1 in zip(KEYS, KEYS[1:]):
        err = np.linalg.norm(plain[(k0, k1)] - oracle[(k0, k1)], axis=-1)
        bands = " ".join(f"{err[r * h // 6:(r + 1) * h // 6].mean():5.1f}" for r in range(6))
        print(f"DIS {k0}->{k1} against the chained flows: mean {err.mean():.2f} px; by sixths of the height {bands}")
    learned = None
    if not args.no_gmflow:
        from sparsevid.fuse import gmflow

        if gmflow.weights_path() is not None:
            model = gmflow.load_gmflow()
            learned = lambda a, b: gmflow.gmflow_flow(model, a, b)  # noqa: E731
    cfg = FlowConfig(prealign="never")
    cands = {p: candidate_flows(gt[p[0]], gt[p[1]], cfg, None, learned) for p in pairs}
    print(f"DIS flow peer (4 mirrors)     {score(interpolate(gt, plain), gt)}")
    print(f"chained through real frames   {score(interpolate(gt, oracle), gt)}")
    for name in cands[pairs[0]]:
        print(f"candidate {name:19s} {score(interpolate(gt, {p: c[name] for p, c in cands.items()}), gt)}")
    sigma = cfg.choice_sigma * px_scale(h, w)
    for label, keep in (("chosen, DIS candidates only", lambda n: not n.startswith("gmflow")),
                        ("chosen, all candidates", lambda n: True)):
        if label.endswith("all candidates") and learned is None:
            continue
        chosen = {}
        for a, b in pairs:
            fwd = {n: f for n, f in cands[(a, b)].items() if keep(n)}
            bwd = {n: f for n, f in cands[(b, a)].items() if keep(n)}
            chosen[(a, b)] = choose_flow(gt[a], gt[b], fwd, bwd, sigma, cfg.choice_fb_weight)
        print(f"{label:29s} {score(interpolate(gt, chosen), gt)}")
    for text in args.soft:
        temperature, relative = (float(v) for v in text.split(","))
        soft = {(a, b): choose_flow(gt[a], gt[b], cands[(a, b)], cands[(b, a)], sigma, cfg.choice_fb_weight,
                                    temperature, relative) for a, b in pairs}
        print(f"{f'soft choice, T={temperature:g} r={relative:g}':29s} {score(interpolate(gt, soft), gt)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Probes of the fusion on a tools/fusion_capture.py capture, scored on the held-out frames (BENCHMARKS.md,
issue 12, session 5):

    python tools/fusion_probes.py CAP CASE [--probe NAME]...

CAP is the capture folder (capture2.pkl), CASE the clip it was made from (inputs 0, 9, 19, 29). The fusion's
inputs are rebuilt once from the capture (the 3D route with the default ReprojectFixer, the leave-one-out, the
learned route's frames) and kept in CAP/stash-MOTION.pkl (``--motion``: the 2D route's motion model). Probes:

- ``base``: the default fusion (detail power 1), as the run made it.
- ``consensus``: every 2D / 3D candidate aligned by DIS flow to the fused frame, then fused again.
- ``consensus-sharp``: the same, with the detail band from the aligned 2D / 3D candidates only (not the learned one).
- ``tta-2d``: the 2D route's flows computed on the keys as given and mirrored (h, v, both), each key's warps
  averaged by their consistency (the leave-one-out unchanged).
- ``powers``: detail powers 2, 4, 8, 16, 64 (band sigma 2.5 and 1.2 px per 1000 px).
- ``by-distance``: PSNR / sharpness per distance to the nearer input, at detail powers 1..64.
- ``candidates``: each candidate alone and its share of the weight, per distance.
- ``oracle-mix``: each route fused alone, and the least-squares mix of the three fitted to the real frames.
- ``error-bands``: the default's squared error split into bands (differences of Gaussians, 0.7/2/8/32 px).
- ``oracle-candidates``: what better weights of the same six candidates could give (least-squares mixes fitted to
  the real frames; weights per region from each candidate's true error).
"""
from __future__ import annotations

import argparse
import dataclasses
import pickle
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sparsevid import log  # noqa: E402
from sparsevid.data.load import load_scene  # noqa: E402
from sparsevid.eval.metrics import evaluate, laplacian_variance, match_size, psnr, pulse_ratio  # noqa: E402
from sparsevid.fixer.reproject import ReprojectFixer  # noqa: E402
from sparsevid.fuse.flow2d import interpolate_pair, pair_flow  # noqa: E402
from sparsevid.fuse.fusion import (Candidate, PairFlows, bracket, flow_candidates, fuse,  # noqa: E402
                                   learned_candidate, route3d_candidates, to_float)
from sparsevid.fuse.loo import leave_one_out  # noqa: E402
from sparsevid.fuse.route3d import LeaveOneOut3D, path_frames_3d  # noqa: E402
from sparsevid.fuse.stage import _learned_route  # noqa: E402
from sparsevid.imaging import blur, gray_u8, grid, make_dis, remap  # noqa: E402
from sparsevid.render.frames import to_uint8  # noqa: E402

KEYS = [0, 9, 19, 29]
MIRRORS = {"": lambda x: x, "h": lambda x: x[:, ::-1], "v": lambda x: x[::-1], "hv": lambda x: x[::-1, ::-1]}


def stash(cap: Path, C: dict) -> dict:
    """The 3D route's frames, the leave-one-out and the learned frames of the capture (computed once per
    motion model of the 2D route)."""
    path = cap / f"stash-{C['cfg'].flow.motion}.pkl"
    if path.exists():
        return pickle.loads(path.read_bytes())
    fixer = ReprojectFixer()
    f3 = path_frames_3d(C["rendered"], C["path"], C["und"], C["refs"], fixer, C["enhance"])
    l3 = LeaveOneOut3D.__new__(LeaveOneOut3D)
    l3.und, l3.refs, l3.fixer, l3.order = C["und"], C["refs"], fixer, C["order"]
    l3._render = lambda k, refs: C["loo_renders"][k]
    keys_u8 = {k: to_uint8(to_float(v)) for k, v in C["keys"].items()}
    brs = [bracket(p, list(keys_u8)) for p in C["positions"]]
    learned = _learned_route(keys_u8, brs, C["cfg"], "cpu")
    loo = leave_one_out(keys_u8, C["cfg"], l3, PairFlows(keys_u8, C["cfg"].flow), learned=learned)
    S = {"f3": f3, "loo": loo,
         "L": {(b.k0, b.k1, b.t): learned(b.k0, b.k1, b.t) for b in brs if not b.at_key}}
    path.write_bytes(pickle.dumps(S))
    return S


class Probe:
    def __init__(self, cap: Path, case: Path, motion: str = "quadratic"):
        self.C = C = pickle.loads((cap / "capture2.pkl").read_bytes())
        C["cfg"] = dataclasses.replace(C["cfg"], flow=dataclasses.replace(C["cfg"].flow, motion=motion))
        self.S = stash(cap, C)
        self.cfg = C["cfg"]
        self.keys = {k: to_uint8(to_float(v)) for k, v in C["keys"].items()}
        self.fkeys = {k: to_float(v) for k, v in self.keys.items()}
        self.h, self.w = self.fkeys[KEYS[0]].shape[:2]
        scene = load_scene(case, keyframes=KEYS)
        self.gt = {f.index: match_size(f.image, (self.h, self.w)) for f in scene.frames + scene.gt_frames}
        self.flows = PairFlows(self.keys, self.cfg.flow)
        self.brs = [bracket(p, list(self.keys)) for p in C["positions"]]
        self.region = self.cfg.region_sigma * self.w / 1000.0
        self._mirrored = {}

    def truth(self, i: int) -> np.ndarray:
        return self.gt[int(round(float(self.C["positions"][i])))]

    def candidates(self, i: int) -> tuple[list[Candidate], dict | None]:
        br = self.brs[i]
        cs = flow_candidates(self.fkeys[br.k0], self.fkeys[br.k1], br.t, self.flows(br.k0, br.k1), self.cfg,
                             self.flows.shifts(KEYS, br.k0, br.k1, br.t))
        img3, w3 = self.S["f3"][i]
        cs += route3d_candidates(img3, w3, self.fkeys[br.k0], self.fkeys[br.k1], br.t, self.cfg)
        cs.append(learned_candidate(self.S["L"][(br.k0, br.k1, br.t)]))
        gains = self.S["loo"].gains_at(float(self.C["positions"][i]), self.region, distance=br.distance())
        return cs, gains

    def frames(self, fn) -> list[np.ndarray]:
        out = []
        for i, br in enumerate(self.brs):
            if br.at_key:
                out.append(self.keys[br.key])
            else:
                cs, g = self.candidates(i)
                out.append(to_uint8(fn(i, cs, g)))
        return out

    def score(self, name: str, fn) -> None:
        t0 = time.time()
        out = self.frames(fn)
        m = evaluate(out, self.gt, KEYS)
        src = [b.key if b.at_key else None for b in self.brs]
        print(f"{name:40s} PSNR {m['psnr_heldout']:.3f} SSIM {m['ssim_heldout']:.4f} sharpness "
              f"{m['sharpness_heldout']:.3f} pulse {pulse_ratio(out, src, KEYS):.3f} ({time.time() - t0:.0f} s)",
              flush=True)

    # ---- probes
    def base(self):
        self.score("default (detail power 1)", lambda i, cs, g: fuse(cs, g, 1.0, self.cfg))

    def _align(self, anchor: np.ndarray, img: np.ndarray) -> np.ndarray:
        dis = make_dis("medium", self.w, 1, 0)
        f = dis.calc(gray_u8(to_uint8(anchor)), gray_u8(to_uint8(img)), None)
        gx, gy = grid(self.h, self.w)
        return np.clip(remap(img, gx + f[..., 0], gy + f[..., 1], cv2.INTER_CUBIC), 0, 1)

    def _consensus(self, sharp_detail: bool):
        def fn(i, cs, g):
            anchor = fuse(cs, g, 1.0, self.cfg)
            new = [Candidate(self._align(anchor, c.image), c.weight, c.route) if c.route in ("2d", "3d") else c
                   for c in cs]
            if not sharp_detail:
                return fuse(new, g, 1.0, self.cfg)
            sig = self.cfg.band_sigma * self.w / 1000.0
            ws = np.stack([c.weight * (g or {}).get(c.route, 1.0) for c in new])
            wl = ws / np.maximum(ws.sum(0), 1e-12)
            keep = [j for j, c in enumerate(new) if c.route != "learned"]
            wh = ws[keep] / np.maximum(ws[keep].sum(0), 1e-12)
            low = sum(wi[..., None] * blur(c.image, sig) for wi, c in zip(wl, new))
            high = sum(wi[..., None] * (new[j].image - blur(new[j].image, sig)) for wi, j in zip(wh, keep))
            return np.clip(low + high, 0, 1)
        return fn

    def consensus(self):
        self.score("consensus alignment", self._consensus(False))

    def consensus_sharp(self):
        self.score("consensus alignment, detail from 2D/3D", self._consensus(True))

    def _mirrored_flow(self, k0: int, k1: int, m: str):
        if (k0, k1, m) not in self._mirrored:
            f = MIRRORS[m]
            self._mirrored[(k0, k1, m)] = pair_flow(np.ascontiguousarray(f(self.keys[k0])),
                                                    np.ascontiguousarray(f(self.keys[k1])), self.cfg.flow)
        return self._mirrored[(k0, k1, m)]

    def tta_2d(self):
        def fn(i, cs, g):
            br, t = self.brs[i], self.brs[i].t
            runs = []
            for m, f in MIRRORS.items():
                a, b = (np.ascontiguousarray(f(self.fkeys[k])) for k in (br.k0, br.k1))
                res = interpolate_pair(a, b, t, self._mirrored_flow(br.k0, br.k1, m), self.cfg.flow)
                runs.append([np.ascontiguousarray(f(x)) for x in res])
            new = []
            for j, tw in ((0, 1 - t), (1, t)):
                conf = np.stack([r[j + 2] for r in runs]) + 1e-3
                img = sum(c[..., None] * r[j] for c, r in zip(conf, runs)) / conf.sum(0)[..., None]
                new.append(Candidate(img.astype(np.float32),
                                     tw * (np.mean([r[j + 2] for r in runs], 0) + self.cfg.conf_floor), "2d"))
            return fuse(new + [c for c in cs if c.route != "2d"], g, 1.0, self.cfg)
        self.score("2D flows averaged over 4 mirrorings", fn)

    def powers(self):
        for bs in (2.5, 1.2):
            for p in (2.0, 4.0, 8.0, 16.0, 64.0):
                c2 = dataclasses.replace(self.cfg, detail_power=p, band_sigma=bs)
                self.score(f"detail power {p:g}, band sigma {bs:g}",
                           lambda i, cs, g, c2=c2: fuse(cs, g, c2.detail_power, c2))

    def by_distance(self):
        table = {}
        powers = (1.0, 2.0, 4.0, 8.0, 64.0)
        for p in powers:
            c2 = dataclasses.replace(self.cfg, detail_power=p)
            for i, br in enumerate(self.brs):
                if br.at_key:
                    continue
                cs, g = self.candidates(i)
                o, t = to_uint8(fuse(cs, g, p, c2)), self.truth(i)
                table.setdefault((p, round(br.distance())), []).append(
                    (psnr(o, t), laplacian_variance(o) / laplacian_variance(t)))
        for d in sorted({d for _, d in table}):
            print(f"distance {d}: " + "  ".join(f"p{p:g} {np.mean([x[0] for x in table[(p, d)]]):.2f} dB / "
                                               f"{np.mean([x[1] for x in table[(p, d)]]):.2f}" for p in powers))

    def candidates_alone(self):
        names = ["flow near", "flow far", "guided near", "guided far", "render", "learned"]
        table = {}
        for i, br in enumerate(self.brs):
            if br.at_key:
                continue
            cs, g = self.candidates(i)
            near = 0 if br.t < 0.5 else 1
            order = [near, 1 - near, 2 + near, 3 - near, 4, 5]
            ws = np.stack([c.weight * (g or {}).get(c.route, 1.0) for c in cs])
            ws = ws / ws.sum(0)
            d, t = round(br.distance()), self.truth(i)
            for n, j in zip(names, order):
                table.setdefault((n, d), []).append((psnr(to_uint8(cs[j].image), t), float(ws[j].mean())))
            table.setdefault(("fused", d), []).append((psnr(to_uint8(fuse(cs, g, 1.0, self.cfg)), t), 1.0))
        for d in sorted({d for _, d in table}):
            print(f"distance {d}: " + "  ".join(f"{n} {np.mean([x[0] for x in table[(n, d)]]):.2f} dB "
                                               f"(weight {np.mean([x[1] for x in table[(n, d)]]):.2f})" for n in names)
                  + f"  fused {np.mean([x[0] for x in table[('fused', d)]]):.2f} dB")

    def oracle_mix(self):
        routes = ("2d", "3d", "learned")
        R, B, T = {r: [] for r in routes}, [], []
        for i, br in enumerate(self.brs):
            if br.at_key:
                continue
            cs, g = self.candidates(i)
            for r in routes:
                R[r].append(fuse([c for c in cs if c.route == r], None, 1.0, self.cfg))
            B.append(fuse(cs, g, 1.0, self.cfg))
            T.append(self.truth(i).astype(np.float32) / 255.0)

        def mean_psnr(xs):
            return float(np.mean([10 * np.log10(1 / np.mean((np.clip(x, 0, 1) - t) ** 2)) for x, t in zip(xs, T)]))
        for r in routes:
            print(f"{r} route alone: {mean_psnr(R[r]):.3f} dB")
        X = np.stack([np.concatenate([x.ravel() for x in R[r]]) for r in routes], 1)
        coef = np.linalg.lstsq(X, np.concatenate([t.ravel() for t in T]), rcond=None)[0]
        mix = [sum(c * x for c, x in zip(coef, xs)) for xs in zip(*R.values())]
        print(f"default fusion: {mean_psnr(B):.3f} dB; least-squares mix of the routes (fitted to the real frames, "
              f"weights {np.round(coef, 3).tolist()}): {mean_psnr(mix):.3f} dB")

    def oracle_candidates(self):
        """How much better weights could make the fusion of these same candidates: the least-squares mix of
        the six candidates fitted to the real frames (one global mix, and one per distance), and weights per
        region from each candidate's *true* error (inverse squared error smoothed over the fusion's region,
        exactly as the leave-one-out's maps are used, and over a region a quarter that size)."""
        names = ["flow a", "flow b", "guided a", "guided b", "render", "learned"]
        C, B, T, D = [], [], [], []
        oracle = {self.region: [], self.region / 4: []}
        for i, br in enumerate(self.brs):
            if br.at_key:
                continue
            cs, g = self.candidates(i)
            t = self.truth(i).astype(np.float32) / 255.0
            C.append([c.image for c in cs])
            B.append(fuse(cs, g, 1.0, self.cfg))
            T.append(t)
            D.append(round(br.distance()))
            for sig, out in oracle.items():
                inv = [1.0 / np.maximum(blur(np.mean((c.image - t) ** 2, -1).astype(np.float32), sig), 1e-6)
                       for c in cs]
                out.append(sum(w[..., None] * c.image for w, c in zip(inv, cs)) / sum(inv)[..., None])

        def mean_psnr(xs, ts):
            return float(np.mean([10 * np.log10(1 / np.mean((np.clip(x, 0, 1) - t) ** 2)) for x, t in zip(xs, ts)]))

        def ls_mix(idx):
            X = np.stack([np.concatenate([C[j][n].ravel() for j in idx]) for n in range(len(names))], 1)
            coef = np.linalg.lstsq(X, np.concatenate([T[j].ravel() for j in idx]), rcond=None)[0]
            return coef, [sum(c * x for c, x in zip(coef, C[j])) for j in idx]

        every = list(range(len(T)))
        coef, mix = ls_mix(every)
        print(f"default fusion: {mean_psnr(B, T):.3f} dB")
        print(f"least-squares mix of the 6 candidates ({', '.join(names)}), one for all frames: "
              f"{mean_psnr(mix, T):.3f} dB, weights {np.round(coef, 3).tolist()}")
        per_d = [None] * len(T)
        for d in sorted(set(D)):
            idx = [j for j in every if D[j] == d]
            for j, m in zip(idx, ls_mix(idx)[1]):
                per_d[j] = m
        print(f"... one mix per distance to the nearer input: {mean_psnr(per_d, T):.3f} dB")
        for sig, out in oracle.items():
            print(f"weights per region from the true errors (region sigma {sig:.1f} px): {mean_psnr(out, T):.3f} dB")

    def error_bands(self):
        acc = {}
        for i, br in enumerate(self.brs):
            if br.at_key:
                continue
            cs, g = self.candidates(i)
            e = fuse(cs, g, 1.0, self.cfg) - self.truth(i).astype(np.float32) / 255.0
            prev = e
            for s in (0.7, 2, 8, 32):
                low = blur(e, s)
                acc.setdefault(f"{s} px", []).append(np.mean((prev - low) ** 2) * 255 ** 2)
                prev = low
            acc.setdefault("rest", []).append(np.mean(prev ** 2) * 255 ** 2)
            acc.setdefault("total", []).append(np.mean(e ** 2) * 255 ** 2)
        print("squared error by band (finest first): " + ", ".join(f"{k} {np.mean(v):.1f}" for k, v in acc.items()))


PROBES = {"base": Probe.base, "consensus": Probe.consensus, "consensus-sharp": Probe.consensus_sharp,
          "tta-2d": Probe.tta_2d, "powers": Probe.powers, "by-distance": Probe.by_distance,
          "candidates": Probe.candidates_alone, "oracle-mix": Probe.oracle_mix, "error-bands": Probe.error_bands,
          "oracle-candidates": Probe.oracle_candidates}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cap", type=Path)
    ap.add_argument("case", type=Path)
    ap.add_argument("--probe", action="append", choices=list(PROBES), help="default: base")
    ap.add_argument("--motion", default="quadratic", choices=["quadratic", "linear"],
                    help="the 2D route's motion model (FlowConfig.motion; linear before session 5)")
    args = ap.parse_args()
    log.set_quiet(True)
    p = Probe(args.cap, args.case, args.motion)
    for name in args.probe or ["base"]:
        PROBES[name](p)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

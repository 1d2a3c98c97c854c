"""Leave-one-out self-validation on the input frames.

The inputs are real frames at known times. Each interior input ``k`` (one with an input before
and after it) is rebuilt from the others, by each route, exactly as an in-between output frame
would be, and compared with the real frame. That is ground truth for this very clip, and it
serves three purposes:

1. **Route gains per region** (:func:`sparsevid.fuse.fusion.route_gains`): the smoothed squared
   error of each route where it rebuilt ``k``.
2. **The detail power**: the smallest power whose rebuilt inputs are as sharp as wanted.
3. **A quality estimate without ground truth**: the fused rebuild's error, evaluated with gains
   learnt on the *other* held-out inputs (cross-validated, so not flattered), scaled from the
   held-out distance to each output frame's distance to its nearest input.

The scaling law: the mean squared error of an interpolated frame grows with its distance ``d``
(in source frames) to the nearest input roughly as ``d ** ERROR_GROWTH`` (misaligned edges grow
linearly with the misalignment, textures saturate; 0.5 sits between and matched the per-frame
errors of DIS-flow interpolation on the shared clip, d = 1..5 and the leave-one-out d = 9.5,
within 10 %).

The estimate's PSNR uses a steeper law, ``d ** ERROR_GROWTH_2D``, when no 3D route is in the video (none, or left
out): the rebuilds span twice the inputs' spacing, and the 2D routes' error over such a span is far more than twice
their error over the video's. With the 0.5 law such runs were estimated 2.2 dB too low on average on 13 clips of our
own and 4.3 dB on 8 more (up to 6.9); with 1.0 their errors averaged +0.8 and -1.2 dB, half as far off on average
(BENCHMARKS.md, session 26; DIS flow alone fits 0.94 over 35 clips). A 3D route's rebuild of a held-out input
comes from a model trained on it, which flatters it; 0.5 keeps that run's estimate within 0.5 dB on the shared clip.
``1 - SSIM`` grows as the square root of that growth: ``d ** (growth * SSIM_OF_MSE)`` with ``SSIM_OF_MSE`` 0.5
(``d ** 0.25`` with a 3D route in the video, ``d ** 0.5`` without). With the PSNR's own law, the SSIM estimate of the
runs with a 3D route was too high on every one of 12 clips, by 0.10 on average on the CPU and 0.11 on the H100; with
its square root by 0.05 and 0.065 (mean absolute error 0.075 and 0.079, over-estimates on 7 of 12 on each); 2D-only runs
keep the law they had (BENCHMARKS.md, session 31). SSIM saturates where the error is large, so it grows more slowly
than the squared error: per held-out frame inside one run, log(1 - SSIM) rises 0.46 to 1.0 times as fast as log MSE
on 11 clips.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from sparsevid.eval.metrics import psnr, ssim
from sparsevid.fuse.fixed import FixedRegions
from sparsevid.fuse.flow2d import flow_for_video
from sparsevid.imaging import px_scale
from sparsevid.log import progress
from sparsevid.render.frames import to_uint8
from sparsevid.fuse.fusion import (Bracket, Candidate, FuseConfig, PairFlows, flow_candidates, fuse, learned_candidate,
                                   route3d_candidates, route_gains, sharpness, to_float)

ERROR_GROWTH = 0.5
#: the estimate's PSNR law when only 2D routes make the video (module docstring)
ERROR_GROWTH_2D = 1.0
#: ``1 - SSIM`` grows with the distance as the MSE's growth to this power (module docstring)
SSIM_OF_MSE = 0.5


def ssim_at(dssim: float, d0: float, distances: Sequence[float], growth: float,
            ssim_of_mse: float = SSIM_OF_MSE) -> float:
    """Mean SSIM expected of frames at ``distances`` (source frames to the nearer input) from ``1 - SSIM`` =
    ``dssim`` measured at distance ``d0``: ``1 - SSIM`` scaled by ``(d / d0) ** (growth * ssim_of_mse)``, capped at 1,
    where ``growth`` is the PSNR's law (module docstring)."""
    return float(np.mean([1.0 - min(dssim * (max(d, 1e-3) / d0) ** (growth * ssim_of_mse), 1.0) for d in distances]))


def psnr_f(a: np.ndarray, b: np.ndarray) -> float:
    """:func:`sparsevid.eval.metrics.psnr` of float images (quantised as the output is)."""
    return psnr(to_uint8(a), to_uint8(b))


def ssim_f(a: np.ndarray, b: np.ndarray) -> float:
    """:func:`sparsevid.eval.metrics.ssim` of float images (quantised as the output is)."""
    return ssim(to_uint8(a), to_uint8(b))

#: ``route3d(target_key, reference_keys) -> (image [H, W, 3] float32, weight [H, W] float32)``: the 3D
#: route's rebuild of input ``target_key`` from the inputs ``reference_keys`` only.
Route3D = Callable[[int, Sequence[int]], tuple[np.ndarray, np.ndarray]]

#: ``learned(k0, k1, t) -> image [H, W, 3] float32``: the learned 2D route's frame at ``t`` between
#: inputs ``k0`` and ``k1`` (see :mod:`sparsevid.fuse.learned`).
Learned = Callable[[int, int, float], np.ndarray]


@dataclass
class LooResult:
    """What the leave-one-out check found.

    Attributes:
        held_out: the interior inputs that were rebuilt.
        distance: held-out input -> its distance (source frames) to the nearer remaining input.
        sq_errors: held-out input -> route -> [H, W] squared error map (mean over channels).
        route_psnr: held-out input -> route -> PSNR of that route alone.
        detail_power: the chosen (or configured) detail power.
        psnr, ssim, sharpness: held-out input -> fused rebuild's PSNR, SSIM and sharpness
            relative to the real frame, at ``detail_power``.
        tried: detail power -> mean sharpness ratio and PSNR over the held-out inputs.
        routes_off: routes the fusion leaves out (weight 0) because they made the fused rebuilds
            of the held-out inputs worse: "learned" when it worsens the 2D route's rebuilds (a
            learned route that fails on this clip), "3d" when it worsens the rest (a 3D model that
            fits nothing, wrong poses). With both off the output is the 2D route's, never below it
            where the check can tell. The routes left on share the weight by their errors.
        leak_free: the 3D rebuilds came from models trained without the held-out input, so both
            routes' errors were measured as far from the remaining inputs (see :meth:`gains_at`).
        sq_errors_3d_own: held-out input -> the 3D route's squared error map when rendered at the
            input's own camera, where ``sq_errors[k]["3d"]`` is rendered where the camera path
            through the other inputs puts it (``FuseConfig.loo_at_path``); empty otherwise.
        route_psnr_3d_path: held-out input -> PSNR of the 3D route's rebuild rendered where the camera
            path through the other inputs puts it (``FuseConfig.path_check_db``, ``loo_at_path``); empty
            without it.
    """

    held_out: list[int]
    distance: dict[int, float]
    sq_errors: dict[int, dict[str, np.ndarray]]
    route_psnr: dict[int, dict[str, float]]
    detail_power: float
    psnr: dict[int, float] = field(default_factory=dict)
    ssim: dict[int, float] = field(default_factory=dict)
    sharpness: dict[int, float] = field(default_factory=dict)
    tried: dict[float, dict[str, float]] = field(default_factory=dict)
    routes_off: list[str] = field(default_factory=list)
    leak_free: bool = False
    sq_errors_3d_own: dict[int, np.ndarray] = field(default_factory=dict)
    route_psnr_3d_path: dict[int, float] = field(default_factory=dict)

    def errors_at(self, position: float, exclude: int | None = None,
                  distance: float | None = None) -> dict[str, np.ndarray] | None:
        """Each route's expected squared-error map ``[H, W]`` for an output frame at source ``position``
        (the routes left out excluded): the held-out inputs' error maps, interpolated linearly in time
        between them (held constant beyond). ``exclude`` leaves one held-out input out
        (cross-validation). ``distance``: the frame's distance (source frames) to its nearer input;
        the 2D route's error map is scaled to it from the held-out inputs' distance by the growth
        law of the module docstring (flow interpolation errs less near an input; a render by a model
        that was trained on the held-out input does not depend on it). With :attr:`leak_free`
        rebuilds both routes' errors grow alike and nothing is scaled (the gains are ratios). With the
        3D route measured both at the inputs' own cameras and at the path's (:attr:`sq_errors_3d_own`),
        its error is the own-camera error (the model's) plus the path's extra error (what the path
        misses between its knots) scaled to the frame's distance by the same law. None when no error
        maps are left."""
        keys = [k for k in self.held_out if k != exclude]
        if not keys:
            return None
        routes = list(self.sq_errors[keys[0]])
        lam = _time_weights(position, keys)
        errs = {r: sum(l * self.sq_errors[k][r] for k, l in zip(keys, lam)) for r in routes}
        if distance is not None and not self.leak_free:
            d0 = float(np.mean([self.distance[k] for k in keys]))
            scale = (max(distance, 0.5) / max(d0, 0.5)) ** ERROR_GROWTH
            if "2d" in errs:
                errs["2d"] = errs["2d"] * scale
            if "3d" in errs and self.sq_errors_3d_own:
                own = sum(l * self.sq_errors_3d_own[k] for k, l in zip(keys, lam))
                errs["3d"] = own + np.maximum(errs["3d"] - own, 0.0) * scale
        return {r: e for r, e in errs.items() if r not in self.routes_off}

    def gains_at(self, position: float, region_sigma_px: float, exclude: int | None = None,
                 distance: float | None = None, images: dict[str, np.ndarray] | None = None,
                 suspect: dict[str, np.ndarray] | None = None, hedge: bool = True,
                 suspect_net: bool = True) -> dict[str, np.ndarray] | None:
        """Route gains for an output frame at source ``position``: :meth:`errors_at`, then
        :func:`~sparsevid.fuse.fusion.route_gains` (a route left out gets 0; ``images``, the routes' frames,
        make them hedge, and ``suspect`` charges a route where it is known to be wrong). None when no
        error maps are left or there is one route only."""
        errors = self.errors_at(position, exclude, distance)
        if errors is None or len(self.sq_errors[self.held_out[0]]) < 2:
            return None
        shape = next(iter(self.sq_errors[self.held_out[0]].values())).shape
        off = {r: np.zeros(shape, np.float32) for r in self.sq_errors[self.held_out[0]] if r in self.routes_off}
        if len(errors) == 1:
            (r,) = errors
            return {r: np.ones(shape, np.float32), **off}
        return {**route_gains(errors, region_sigma_px, images, suspect, hedge, suspect_net), **off}

    @property
    def uses_3d(self) -> bool:
        """Whether the 3D route is in the fused rebuilds (measured and not left out)."""
        return any("3d" in rp for rp in self.route_psnr.values()) and "3d" not in self.routes_off

    def estimate(self, distances: Sequence[float]) -> dict[str, float] | None:
        """Expected held-out PSNR / SSIM of output frames at ``distances`` (source frames to the
        nearer input; see the module docstring), or None without held-out inputs."""
        if not self.held_out or not distances:
            return None
        mse = float(np.mean([255.0 ** 2 / 10 ** (self.psnr[k] / 10) for k in self.held_out]))
        dssim = float(np.mean([1.0 - self.ssim[k] for k in self.held_out]))
        d0 = float(np.mean([self.distance[k] for k in self.held_out]))
        growth = ERROR_GROWTH if self.uses_3d else ERROR_GROWTH_2D
        psnr = float(np.mean([10 * np.log10(255.0 ** 2 / max(mse * (max(d, 1e-3) / d0) ** growth, 1e-6))
                              for d in distances]))
        return {"psnr_heldout": round(psnr, 3), "ssim_heldout": round(ssim_at(dssim, d0, distances, growth), 4),
                "loo_psnr": round(float(np.mean(list(self.psnr.values()))), 3),
                "loo_ssim": round(float(np.mean(list(self.ssim.values()))), 4),
                "loo_sharpness": round(float(np.mean(list(self.sharpness.values()))), 3),
                "detail_power": self.detail_power, "held_out_inputs": list(self.held_out), "error_growth": growth,
                "routes_off": list(self.routes_off),
                "routes": {str(k): {r: round(v, 3) for r, v in rp.items()} for k, rp in self.route_psnr.items()},
                "routes_3d_at_path": {str(k): round(v, 3) for k, v in self.route_psnr_3d_path.items()}}


def _path_check_fails(path_psnr: dict[int, float], route_psnr: dict[int, dict[str, float]],
                      margin_db: float | None) -> bool:
    """True when the 3D route's rebuilds at the camera path's poses are worse than the best 2D route's
    (flow or learned) by more than ``margin_db`` on every held-out input (``FuseConfig.path_check_db``)."""
    if margin_db is None or not path_psnr:
        return False
    best2d = {k: max(v for r, v in route_psnr[k].items() if r != "3d") for k in path_psnr}
    return all(path_psnr[k] < best2d[k] - margin_db for k in path_psnr)


def _time_weights(position: float, keys: Sequence[int]) -> list[float]:
    """Linear interpolation weights of ``position`` between the sorted ``keys`` (constant beyond)."""
    keys = list(keys)
    if len(keys) == 1 or position <= keys[0]:
        return [1.0] + [0.0] * (len(keys) - 1)
    if position >= keys[-1]:
        return [0.0] * (len(keys) - 1) + [1.0]
    lam = [0.0] * len(keys)
    for i in range(len(keys) - 1):
        if keys[i] <= position <= keys[i + 1]:
            u = (position - keys[i]) / (keys[i + 1] - keys[i])
            lam[i], lam[i + 1] = 1.0 - u, u
            break
    return lam


def leave_one_out(keys: dict[int, np.ndarray], cfg: FuseConfig, route3d: Route3D | None = None,
                  flows: PairFlows | None = None, leak_free: bool = False,
                  learned: Learned | None = None, route3d_path: Route3D | None = None,
                  fixed: FixedRegions | None = None, moved: dict[int, np.ndarray] | None = None) -> LooResult | None:
    """Rebuild every interior input from the others and measure each route (module docstring).

    Args:
        keys: input frame index -> [H, W, 3] image (uint8 or float 0..1), at the output size and lens.
        cfg: the fusion settings (``detail_power`` None = choose it here).
        route3d: the 3D route's rebuild of one input from others, or None (2D route only).
        flows: a flow cache over ``keys`` (made here when None).
        leak_free: ``route3d`` rebuilds each input with a model trained without it
            (:attr:`LooResult.leak_free`).
        learned: the learned 2D route, or None (a third route, "learned", when given).
        route3d_path: ``route3d`` rendered where the camera path through the other inputs puts the
            held-out input, or None. With ``FuseConfig.loo_at_path`` the rebuilds (and so the estimate) use
            it, and ``route3d``'s own-camera error is kept for :meth:`LooResult.gains_at`; otherwise it only
            serves ``FuseConfig.path_check_db`` (the 3D route left out when it is clearly worse there).
        fixed: the regions fixed in the image (:mod:`sparsevid.fuse.fixed`), treated in the rebuilds
            as in the output frames; None: none.
        moved: held-out input -> [H, W] in [0, 1], where the scene moved by itself at that input (the rigid
            check, :func:`sparsevid.fuse.route3d.rigid_check`), or None. The 3D route's rebuild there comes
            from a model trained on that very frame, so it says nothing about the frames between the inputs,
            where the 3D route gives way (``FuseConfig.rigid_check``): the quality measured on the rebuilds
            (:attr:`LooResult.psnr`, ``ssim``, ``sharpness``, and so the estimate) takes the rebuild without the
            3D route there. The route gains and decisions are as without it.

    Returns:
        :class:`LooResult`, or None when there are fewer than 3 inputs (nothing to hold out).
    """
    order = sorted(keys)
    if len(order) < 3:
        return None
    use3d = route3d is not None and cfg.mode != "2d"
    flows = flows or PairFlows({k: to_uint8(to_float(v)) for k, v in keys.items()}, flow_for_video(cfg.flow, use3d))
    fkeys = {k: to_float(v) for k, v in keys.items()}
    region = cfg.region_sigma * px_scale(*fkeys[order[0]].shape[:2])
    held = order[1:-1]
    cands: dict[int, list[Candidate]] = {}
    sq: dict[int, dict[str, np.ndarray]] = {}
    rpsnr: dict[int, dict[str, float]] = {}
    dist: dict[int, float] = {}
    sq_own: dict[int, np.ndarray] = {}
    path_psnr: dict[int, float] = {}

    def _rebuild_routes(i: int, k: int) -> None:  # input k rebuilt by every route from the others
        k0, k1 = order[i], order[i + 2]
        br = Bracket(k0, k1, (k - k0) / (k1 - k0))
        dist[k] = br.distance()
        cs = flow_candidates(fkeys[k0], fkeys[k1], br.t, flows(k0, k1), cfg,
                             flows.shifts([q for q in order if q != k], k0, k1, br.t))
        two_d = fuse(cs, None, 1.0, FuseConfig(band_sigma=0.0))
        routes = {"2d": two_d}
        if use3d:
            refs = [q for q in order if q != k]
            c3 = route3d_candidates(*route3d(k, refs), fkeys[k0], fkeys[k1], br.t, cfg)
            three_d = fuse(c3, None, 1.0, FuseConfig(band_sigma=0.0))
            if route3d_path is not None:
                c3_path = route3d_candidates(*route3d_path(k, refs), fkeys[k0], fkeys[k1], br.t, cfg)
                at_path = fuse(c3_path, None, 1.0, FuseConfig(band_sigma=0.0))
                path_psnr[k] = psnr_f(at_path, fkeys[k])
                if cfg.loo_at_path:  # the rebuilds use the path's render; the own camera's error goes to the gains
                    sq_own[k] = np.mean((three_d - fkeys[k]) ** 2, axis=-1).astype(np.float32)
                    c3, three_d = c3_path, at_path
            cs.extend(c3)
            routes["3d"] = three_d
        if learned is not None:
            cl = learned_candidate(learned(k0, k1, br.t))
            cs.append(cl)
            routes["learned"] = cl.image
        cands[k] = cs
        sq[k] = {r: np.mean((img - fkeys[k]) ** 2, axis=-1).astype(np.float32) for r, img in routes.items()}
        rpsnr[k] = {r: psnr_f(img, fkeys[k]) for r, img in routes.items()}

    with progress() as bar:
        task = bar.add_task("leave-one-out", total=len(held), status="each interior input rebuilt from the others")
        for i, k in enumerate(held):
            _rebuild_routes(i, k)
            bar.update(task, advance=1)

    def rebuild(k: int, power: float) -> np.ndarray:
        gains = res.gains_at(k, region, exclude=k if len(held) > 1 else None)
        if fixed is None:
            return fuse(cands[k], gains, power, cfg)
        if "3d" in rpsnr[k]:
            gains = fixed.gains(gains)
        i = order.index(k)
        k0, k1 = order[i - 1], order[i + 1]
        return fixed.compose(fuse(cands[k], gains, power, cfg), fkeys[k0], fkeys[k1], (k - k0) / (k1 - k0))

    res = LooResult(held, dist, sq, rpsnr, detail_power=cfg.detail_power or 1.0,
                    leak_free=leak_free and route3d is not None, sq_errors_3d_own=sq_own,
                    route_psnr_3d_path=path_psnr)
    ref_sharp = {k: max(sharpness(fkeys[k]), 1e-9) for k in held}
    powers = [cfg.detail_power] if cfg.detail_power is not None else sorted(cfg.detail_choices)
    chosen, out = None, {}
    for p in powers:
        imgs = {k: rebuild(k, p) for k in held}
        ratio = float(np.mean([sharpness(imgs[k]) / ref_sharp[k] for k in held]))
        res.tried[p] = {"sharpness": round(ratio, 3),
                        "psnr": round(float(np.mean([psnr_f(imgs[k], fkeys[k]) for k in held])), 3)}
        chosen, out = p, imgs
        if ratio >= cfg.target_sharpness:
            break
    res.detail_power = float(chosen)
    if len(held) > 1:
        # leave out a route whose inclusion makes the rebuilt inputs worse: the learned route when it
        # makes them worse by more than ``cfg.drop_learned_db``, judged within the 2D family (2D +
        # learned against 2D alone: the 3D rebuild, made with a model that saw the held-out input,
        # would flatter any comparison it enters), then the 3D route against what is left without it
        tried: dict[tuple[str, ...], tuple[float, dict[int, np.ndarray]]] = {}

        def mse(off: list[str]) -> tuple[float, dict[int, np.ndarray]]:
            if tuple(off) not in tried:  # each route set rebuilt once
                res.routes_off = off
                imgs = {k: rebuild(k, res.detail_power) for k in held}
                tried[tuple(off)] = float(np.mean([np.mean((imgs[k] - fkeys[k]) ** 2) for k in held])), imgs
            return tried[tuple(off)]

        has3d = "3d" in rpsnr[held[0]]
        off = []
        if "learned" in rpsnr[held[0]]:
            base = ["3d"] if has3d else []
            margin = 10.0 ** (cfg.drop_learned_db / 10.0) if cfg.drop_learned_db is not None else None
            if margin is not None and mse(base + ["learned"])[0] * margin < mse(base)[0]:
                off = ["learned"]
        err_all, imgs_all = mse(off)
        if has3d:
            err_no3d, imgs_no3d = mse(off + ["3d"])
            if err_no3d < err_all:  # a 3D model that fits nothing, wrong poses
                off, imgs_all = off + ["3d"], imgs_no3d
        on = {k: {r: v for r, v in rp.items() if r not in off} for k, rp in rpsnr.items()}  # the 2D routes kept
        if has3d and "3d" not in off and _path_check_fails(path_psnr, on, cfg.path_check_db):
            off, imgs_all = off + ["3d"], mse(off + ["3d"])[1]  # fits each input, nothing between them
        res.routes_off = off
        out = imgs_all
        if moved is not None and has3d and "3d" not in off:
            no3d = mse(off + ["3d"])[1]
            out = {k: out[k] if k not in moved else
                   (1.0 - moved[k][..., None]) * out[k] + moved[k][..., None] * no3d[k] for k in held}
    for k in held:
        res.psnr[k] = psnr_f(out[k], fkeys[k])
        res.ssim[k] = ssim_f(out[k], fkeys[k])
        res.sharpness[k] = sharpness(out[k]) / ref_sharp[k]
    return res

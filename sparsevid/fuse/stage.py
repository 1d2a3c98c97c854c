"""The fusion stage: every output frame from the input frames, by the 2D route, the 3D route, or
both fused per pixel (see :mod:`sparsevid.fuse.fusion` and :mod:`sparsevid.fuse.loo`)."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Sequence

import numpy as np
import torch

from sparsevid.devices import resolve_device
from sparsevid.imaging import px_scale, remap
from sparsevid.fuse.fusion import (Bracket, FuseConfig, PairFlows, bracket, flow_candidates, fuse, learned_candidate,
                                   route3d_candidates, route_images, to_float)
from sparsevid.fuse.checks import check_fuse_config, check_keys
from sparsevid.fuse.fixed import FixedRegions, fixed_regions
from sparsevid.fuse.flow2d import FlowConfig, LearnedFlow, PairFlow, extrapolate_key, flow_for_video, time_coords
from sparsevid.fuse.learned import adapt_learned, learned_frames, load_learned
from sparsevid.fuse.loo import Learned, LooResult, Route3D, leave_one_out
from sparsevid.fuse.temporal import smooth_low_band
from sparsevid import log
from sparsevid.log import progress
from sparsevid.render.frames import to_uint8

#: the 3D route's frame for one output frame: (image [H, W, 3] float32, weight [H, W] float32), or None
Route3DFrame = tuple[np.ndarray, np.ndarray] | None


@dataclass
class FusedFrames:
    """Output of :func:`fuse_frames`.

    Attributes:
        frames: T x [H, W, 3] uint8 (the input frames themselves at input times).
        quality_estimate: expected held-out PSNR / SSIM from the leave-one-out check, or None.
        loo: the leave-one-out result, or None (fewer than 3 inputs).
        gain_3d: mean route gain of the 3D route over the in-between frames (None: 2D only).
        routes: the routes that made the in-between frames ("2d", "3d", "learned"; those the
            leave-one-out check left out are not listed).
        fixed_fraction: the part of the frame found fixed in the image (:mod:`sparsevid.fuse.fixed`;
            no 3D route there); fixed_textured_fraction: the part of it taken from the inputs as is.
    """

    frames: list[np.ndarray]
    quality_estimate: dict | None
    loo: LooResult | None
    gain_3d: float | None
    routes: list[str] = field(default_factory=list)
    fixed_fraction: float = 0.0
    fixed_textured_fraction: float = 0.0


def fuse_frames(positions: Sequence[float | Fraction], keys: dict[int, np.ndarray], cfg: FuseConfig,
                frames3d: Sequence[Route3DFrame] | None = None, route3d: Route3D | None = None,
                leak_free: bool = False, device: str | torch.device = "cpu", seed: int = 0,
                route3d_path: Route3D | None = None,
                rigid: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] | None = None,
                hold_outside: bool = False) -> FusedFrames:
    """Build every output frame. (On the CPU, ``run_pipeline`` passes ``pipeline.cpu_profile(cfg).fuse``: fewer
    learned passes and fine-tuning steps than these defaults, which are the GPU's.)

    Args:
        positions: [T] each output frame's position in the source video (``time * scene_fps``;
            exact Fractions where possible: a frame at an input's position *is* that input), in time
            order: the last step, ``cfg.temporal`` (:func:`sparsevid.fuse.temporal.smooth_low_band`),
            takes the frames next to each other in this list as neighbours in time.
        keys: input index -> [H, W, 3] uint8 image at the output size, in the output lens.
        cfg: fusion settings.
        frames3d: [T] the 3D route's frame (image, weight) or None per frame; None = no 3D route.
        route3d: the 3D route's rebuild of an input from the others (for the leave-one-out check).
        leak_free: ``route3d`` rebuilds each input with a model trained without it (see
            :func:`sparsevid.fuse.loo.leave_one_out`).
        device: where the learned route runs (``cfg.learned``; :mod:`sparsevid.fuse.learned`).
        seed: seeds the learned route's fine-tuning (``cfg.learned_adapt_steps``).
        route3d_path: the 3D route's rebuild of an input rendered where the camera path through the
            other inputs puts it (see :func:`sparsevid.fuse.loo.leave_one_out`); used when
            ``cfg.loo_at_path`` or ``cfg.path_check_db``.
        rigid: (k0, k1) -> where the scene moved by itself between neighbouring inputs ``k0`` and ``k1``,
            at each of them (:func:`sparsevid.fuse.route3d.rigid_check`); used when ``cfg.rigid_check``.
        hold_outside: frames before the first input or after the last repeat that input (the camera path's
            ``extrapolation: hold``); else (``linear``) the input's content moves on at the velocity of its flow to
            the neighbouring input (:func:`~sparsevid.fuse.flow2d.extrapolate_key`), and the quality estimate
            counts them at their distance from it.

    Returns:
        :class:`FusedFrames`.

    Raises:
        SparsevidError: a setting of ``cfg`` that is not one of its choices
            (:func:`~sparsevid.fuse.checks.check_fuse_config`), or ``keys`` that are not uint8 images of one size.
    """
    check_fuse_config(cfg)
    check_keys(keys)
    use3d = cfg.mode != "2d" and frames3d is not None
    keys_u8 = {k: to_uint8(to_float(v)) for k, v in keys.items()}
    fcfg = flow_for_video(cfg.flow, use3d)
    flows = PairFlows(keys_u8, fcfg, learned_flow(fcfg, device))
    brackets = [bracket(pos, list(keys_u8)) for pos in positions]
    learned = _learned_route(keys_u8, brackets, cfg, device, seed)
    fixed = _fixed(keys_u8, cfg)
    moved = moved_at_inputs(rigid, sorted(keys_u8)) if use3d and cfg.rigid_check and rigid and not leak_free else None
    loo = leave_one_out(keys_u8, cfg, route3d if use3d else None, flows, leak_free=leak_free, learned=learned,
                        route3d_path=route3d_path if use3d and (cfg.loo_at_path or cfg.path_check_db is not None)
                        else None, fixed=fixed, moved=moved)
    power = loo.detail_power if loo is not None else (cfg.detail_power or max(cfg.detail_choices))
    fkeys = {k: to_float(v) for k, v in keys_u8.items()}
    region = cfg.region_sigma * px_scale(*next(iter(fkeys.values())).shape[:2])
    order = sorted(keys_u8)
    if len(order) > 1:
        with progress() as p:  # every neighbouring key pair's flow, once, before the frames run in parallel
            task = p.add_task("flows between inputs", total=len(order) - 1, status="each pair of neighbouring inputs")
            for k0, k1 in zip(order, order[1:]):
                flows(k0, k1)
                p.update(task, advance=1)
    # frames before the first input or after the last: carried on from the end input, unless held
    outside = [not hold_outside and len(order) > 1 and (pos < order[0] or pos > order[-1]) for pos in positions]
    if any(outside):
        before, after = sum(float(p) < order[0] for p in positions), sum(float(p) > order[-1] for p in positions)
        log.info(f"{before + after} frame{'s' if before + after > 1 else ''} outside the inputs' span ("
                 + ", ".join(x for x in (f"{before} before the first input" if before else "",
                                         f"{after} after the last" if after else "") if x)
                 + "): the end input carried on at its optical flow's velocity (--path.extrapolation hold repeats it)")

    def one(i: int) -> tuple[np.ndarray, float | None]:
        br = brackets[i]
        if outside[i]:
            end = br.key
            nb = order[1] if end == order[0] else order[-2]
            s = abs(float(positions[i]) - end) / abs(nb - end)
            # (the fixed regions are not held here: on the shared clip at 212x120 that cost 0.3-0.5 dB on these
            # frames, BENCHMARKS.md session 41)
            return to_uint8(extrapolate_key(fkeys[end], flows.flow(end, nb), s, fcfg)), None
        if br.at_key:
            return keys_u8[br.key], None
        shifts = flows.shifts(list(fkeys), br.k0, br.k1, br.t)
        cands = flow_candidates(fkeys[br.k0], fkeys[br.k1], br.t, flows(br.k0, br.k1), cfg, shifts)
        with3d = use3d and frames3d[i] is not None
        if with3d:
            img3, w3 = frames3d[i]
            cands.extend(route3d_candidates(img3, w3, fkeys[br.k0], fkeys[br.k1], br.t, cfg))
        if learned is not None:
            cands.append(learned_candidate(learned(br.k0, br.k1, br.t)))
        gains = None
        if loo is not None and (with3d or learned is not None):
            suspect = None
            if with3d and cfg.rigid_check and rigid is not None and (br.k0, br.k1) in rigid:
                suspect = {"3d": moved_at(rigid[(br.k0, br.k1)], br.t, flows(br.k0, br.k1), shifts)}
            gains = loo.gains_at(float(positions[i]), region, distance=br.distance() if cfg.distance_gains else None,
                                 images=route_images(cands) if cfg.hedge or suspect else None, suspect=suspect,
                                 hedge=cfg.hedge, suspect_net=cfg.rigid_net)
        if fixed is not None and with3d:
            gains = fixed.gains(gains)
        g3 = float(np.mean(gains["3d"])) if with3d and gains is not None and "3d" in gains else None
        img = fuse(cands, gains, power, cfg)
        if fixed is not None:
            img = fixed.compose(img, fkeys[br.k0], fkeys[br.k1], br.t)
        return to_uint8(img), g3

    # frames are independent (OpenCV and numpy release the GIL): threads, same result for any count
    workers = max(1, min(len(positions), cfg.threads if cfg.threads > 0 else (os.cpu_count() or 1)))
    with progress() as p, ThreadPoolExecutor(max_workers=workers) as pool:
        task = p.add_task("fusing", total=len(positions), status=f"detail power {power:g}, {workers} threads")
        results = []
        for r in pool.map(log.in_context(one), range(len(positions))):
            results.append(r)
            p.update(task, advance=1)
    at_input = [br.at_key and not out_i for br, out_i in zip(brackets, outside)]
    out = smooth_low_band([r[0] for r in results], at_input, cfg.temporal, workers)
    gains3 = [r[1] for r in results if r[1] is not None]
    dists = [abs(float(pos) - br.key) if out_i else br.distance()
             for pos, br, out_i in zip(positions, brackets, outside) if not br.at_key or out_i]
    estimate = loo.estimate(dists) if loo is not None else None
    routes = ["2d"] + (["3d"] if use3d else []) + (["learned"] if learned is not None else [])
    routes = [r for r in routes if loo is None or r not in loo.routes_off]
    return FusedFrames(out, estimate, loo, float(np.mean(gains3)) if gains3 else None, routes,
                       fixed_fraction=0.0 if fixed is None else round(float(fixed.fixed.mean()), 4),
                       fixed_textured_fraction=0.0 if fixed is None else round(float(fixed.textured.mean()), 4))


def moved_at(maps: tuple[np.ndarray, np.ndarray], t: float, flow: PairFlow,
             shifts: tuple[np.ndarray | None, np.ndarray | None] = (None, None)) -> np.ndarray:
    """Where the scene moved by itself at time ``t`` between two keys ([H, W] float32 in [0, 1]): the
    rigid check's maps at both keys (:func:`sparsevid.fuse.route3d.rigid_check`), each carried to ``t``
    along the 2D route's motion (:func:`~sparsevid.fuse.flow2d.time_coords`), the larger of the two."""
    ax, ay, bx, by = time_coords(t, flow, *shifts)
    return np.maximum(remap(maps[0], ax, ay), remap(maps[1], bx, by))


def moved_at_inputs(maps: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]], order: Sequence[int]
                    ) -> dict[int, np.ndarray]:
    """Where the scene moved by itself at each interior input (the larger of the rigid check's maps at it,
    from the pairs it makes with the inputs before and after it; :func:`sparsevid.fuse.route3d.rigid_check`)."""
    return {k: np.maximum(maps[(k0, k)][1], maps[(k, k1)][0]) for k0, k, k1 in zip(order, order[1:-1], order[2:])
            if (k0, k) in maps and (k, k1) in maps}


def learned_flow(cfg: FlowConfig, device: str | torch.device = "cpu") -> LearnedFlow | None:
    """GMFlow (:mod:`sparsevid.fuse.gmflow`) on ``device`` as a flow function for the 2D route's candidates
    (:attr:`FlowConfig.gmflow`), or None: "off", no GMFlow candidate asked for, or "auto" without the weights
    (one warning line)."""
    from sparsevid.errors import SparsevidError
    from sparsevid.fuse import gmflow
    from sparsevid.fuse.flow2d import GMFLOW_CHOICES

    if cfg.gmflow not in GMFLOW_CHOICES:
        raise SparsevidError(f"unknown fuse.flow.gmflow {cfg.gmflow!r}", fix=f"use one of {', '.join(GMFLOW_CHOICES)}")
    if cfg.gmflow == "off" or not any(c.startswith("gmflow") for c in cfg.candidates):
        return None
    if cfg.gmflow == "auto" and cfg.gmflow_weights is None and gmflow.weights_path() is None:
        log.warn(f"the 2D route's learned flow (GMFlow) is off: its weights are not installed -> {gmflow.INSTALL_HINT}")
        return None
    model = gmflow.load_gmflow(cfg.gmflow_weights, resolve_device(device))
    return lambda a, b: gmflow.gmflow_flow(model, a, b, cfg.gmflow_max_side)


def _fixed(keys: dict[int, np.ndarray], cfg: FuseConfig) -> FixedRegions | None:
    """The regions fixed in the image among ``keys`` (uint8), or None (off, fewer than 2 inputs, none found)."""
    if not cfg.fixed.enabled or len(keys) < 2:
        return None
    found = fixed_regions([to_float(keys[k]) for k in sorted(keys)], cfg.fixed)
    return found if found.any else None


#: the most a frame at an input time is softened by :func:`even_key_detail` (Gaussian sigma, px)
KEY_DETAIL_MAX_SIGMA = 1.5


def even_key_detail(frames: Sequence[np.ndarray], at_input: Sequence[bool],
                    max_sigma: float = KEY_DETAIL_MAX_SIGMA) -> tuple[list[np.ndarray], dict[int, float]]:
    """Each output frame at an input's time made no sharper than the in-between output frames next to it.

    The in-between frames carry less of the finest detail than the real frames they stand for (it is
    not predictable from inputs ~10 frames apart); an input frame kept as it is then shows for one
    frame at every input, and the video pulses. Each such frame gets the least Gaussian blur
    (:func:`sparsevid.imaging.soften_to`, at most ``max_sigma`` px) that brings its sharpness (variance
    of the Laplacian) down to the mean of its in-between neighbours' (the frames just before and after
    it that are not at input times); it is never sharpened, and in-between frames are not touched.

    Args:
        frames: T x [H, W, 3] uint8, the output video.
        at_input: [T] whether each frame is at an input's time.
        max_sigma: the strongest blur.

    Returns:
        (the frames, {frame number: sigma in px} of the frames that were softened).
    """
    from sparsevid.eval.metrics import laplacian_variance
    from sparsevid.imaging import soften_to

    out, sigmas = list(frames), {}
    for i, inp in enumerate(at_input):
        nb = [frames[j] for j in (i - 1, i + 1) if 0 <= j < len(frames) and not at_input[j]]
        if not inp or not nb:
            continue
        out[i], sigma = soften_to(frames[i], float(np.mean([laplacian_variance(f) for f in nb])), max_sigma)
        if sigma > 0:
            sigmas[i] = round(sigma, 3)
    return out, sigmas


def _learned_route(keys: dict[int, np.ndarray], brackets: Sequence[Bracket], cfg: FuseConfig,
                   device, seed: int = 0) -> Learned | None:
    """The learned 2D route's frames for every in-between output frame and every held-out input
    (computed here at once, before the frames are fused on threads), as a lookup; None when the
    route is off or absent (see :mod:`sparsevid.fuse.learned`). The output frames come from the
    network fine-tuned on the inputs (``cfg.learned_adapt_steps``), the held-out inputs from the
    pretrained one (the fine-tuned network has learnt them)."""
    if cfg.learned == "off" or cfg.mode == "3d":
        return None
    device = resolve_device(device)
    model = load_learned(cfg.learned, device)
    if model is None:
        return None
    order = sorted(keys)
    video = [(br.k0, br.k1, br.t) for br in brackets if not br.at_key]
    held = [(k0, k1, (k - k0) / (k1 - k0)) for k0, k, k1 in zip(order, order[1:-1], order[2:])]
    adapted = adapt_learned(model, keys, cfg.learned_adapt_steps, cfg.learned_adapt_lr, cfg.learned_scale,
                            device, seed, zoom=cfg.learned_adapt_zoom) if video else model
    table_video = learned_frames(adapted, keys, video, device, cfg.learned_passes, cfg.learned_scale)
    table_held = learned_frames(model, keys, held, device, cfg.learned_passes, cfg.learned_scale)
    return lambda k0, k1, t: table_held[(k0, k1, t)] if (k0, k1, t) in table_held else table_video[(k0, k1, t)]

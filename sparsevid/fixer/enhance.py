"""Difix3D+ post-render enhancement: fix every final frame once more with the nearest inputs.

Runs in canvas space, after rendering and before re-distortion to the input lens. A fixer's blend
weight (how much of its proposal replaces the render; ``extras["blend_weight"]`` when the fixer
reports one, else its confidence) varies from frame to frame (coverage, flow checks), and switching
a region between the sharp reference and the softer render from one frame to the next reads as
flicker. So the weight is smoothed over time: the per-frame weight ``c_t`` is replaced by a
Gaussian average over neighbouring frames ``a_t`` (neighbouring cameras are close on a 30 fps path,
so the maps line up to a few pixels; the map is blurred spatially by the same amount), and the
frame is rebuilt as ``render + (a_t / c_t) * (fixed - render)`` (exact for fixers that blend as
``c * proposal + (1 - c) * render``; ``a_t <= c_t`` by construction, so nothing is extrapolated).
"""
from __future__ import annotations

import os

from dataclasses import dataclass

import torch

from sparsevid.log import progress
from sparsevid.fixer.base import Fixer, FixRequest, FixResult, RefViews
from sparsevid.fixer.reproject import _gaussian_blur
from sparsevid.imaging import px_scale


@dataclass
class EnhanceConfig:
    """Post-render enhancement.

    Attributes:
        temporal_sigma: Gaussian sigma (frames) of the blend-weight smoothing; 0 disables.
        spatial_sigma_px: spatial blur of the smoothed weight, per 1000 px of the canvas's longer side.
        chunk: frames per fixer call (the weight-free fixer fixes a call's frames on parallel
            threads, so a call should hold at least one frame per core); 0 = auto: the number of
            CPU cores, at least 8. Results do not depend on it.
    """

    temporal_sigma: float = 1.0
    spatial_sigma_px: float = 4.0
    chunk: int = 0


def smooth_confidence(conf: torch.Tensor, temporal_sigma: float, spatial_sigma: float) -> torch.Tensor:
    """[T, H, W, 1] confidence -> min(conf, temporally and spatially smoothed conf).

    The temporal average is normalised at the sequence ends; the min keeps the smoothed weight
    from exceeding what the fixer trusted in this very frame."""
    if temporal_sigma <= 0 or conf.shape[0] < 2:
        sm = conf
    else:
        t = conf.shape[0]
        r = max(1, int(round(3 * temporal_sigma)))
        idx = torch.arange(t, device=conf.device)
        off = torch.arange(-r, r + 1, device=conf.device)
        w = torch.exp(-0.5 * (off.to(conf.dtype) / temporal_sigma) ** 2)
        acc = torch.zeros_like(conf)
        wsum = torch.zeros(t, 1, 1, 1, dtype=conf.dtype, device=conf.device)
        for o, wo in zip(off.tolist(), w):
            j = idx + o
            ok = (j >= 0) & (j < t)
            acc[idx[ok]] += wo * conf[j[ok]]
            wsum[idx[ok]] += wo
        sm = acc / wsum
    if spatial_sigma > 0:
        sm = _gaussian_blur(sm, spatial_sigma)
    return torch.minimum(sm, conf)


def enhance_frames(fixer: Fixer, renders: torch.Tensor, Ks: torch.Tensor, c2ws: torch.Tensor, refs: RefViews,
                   depth: torch.Tensor | None = None, alpha: torch.Tensor | None = None,
                   valid: torch.Tensor | None = None, times: torch.Tensor | None = None,
                   config: EnhanceConfig | None = None) -> FixResult:
    """Fix a whole output sequence (in time order) with temporally smoothed blending.

    Args:
        renders: [T, H, W, 3] rendered frames (canvas space), in time order.
        Ks, c2ws: [T, 3, 3], [T, 4, 4] their cameras.
        refs: the input frames (canvas space) with their rendered depth when available.
        depth, alpha, valid: [T, H, W, 1] or None.
        times: [T] seconds, or None.

    Returns:
        FixResult with the enhanced frames and their confidence (the fixer's, scaled by the share of
        the smoothed blend weight); ``extras``: ``blend_weight`` (smoothed, used), ``raw_blend_weight``
        and ``raw_confidence`` (the fixer's own).
    """
    cfg = config or EnhanceConfig()
    req = FixRequest(renders, Ks, c2ws, refs, depth=depth, alpha=alpha, valid=valid, times=times)
    step = max(1, cfg.chunk if cfg.chunk > 0 else max(8, os.cpu_count() or 1))
    fixed = conf = weight = None  # the whole sequence's, filled a chunk at a time (not concatenated: a second copy)
    with progress() as p:
        task = p.add_task("enhancing", total=req.batch_size, status=type(fixer).__name__)
        for i in range(0, req.batch_size, step):
            part = fixer.fix(req.subset(slice(i, i + step)))
            chunk = (part.images, part.confidence, part.extras.get("blend_weight", part.confidence))
            asked = min(step, req.batch_size - i)
            if any(x.shape[0] != asked for x in chunk):  # the whole-sequence tensors below would keep garbage rows
                raise RuntimeError(f"{type(fixer).__name__}.fix returned {[x.shape[0] for x in chunk]} frames "
                                   f"(images, confidence, weight) for the {asked} it was given")
            if fixed is None:
                fixed, conf, weight = (x.new_empty((req.batch_size,) + tuple(x.shape[1:])) for x in chunk)
            for whole, x in zip((fixed, conf, weight), chunk):
                whole[i:i + x.shape[0]] = x
            p.update(task, advance=part.images.shape[0])
    if cfg.temporal_sigma <= 0 and cfg.spatial_sigma_px <= 0:
        return FixResult(fixed, conf, extras={"blend_weight": weight, "raw_confidence": conf})
    smooth = smooth_confidence(weight, cfg.temporal_sigma, cfg.spatial_sigma_px * px_scale(*renders.shape[1:3]))
    ratio = torch.where(weight > 1e-3, smooth / weight.clamp_min(1e-3), torch.zeros_like(weight))
    # render + ratio * (fixed - render), clamped, in the fixed frames' own memory a chunk at a time: over the whole
    # sequence at once its temporaries took 36 of the ~90 bytes per canvas pixel and frame that a run held at its
    # peak (a 120-frame 640x360 clip peaked at 6.2 GB; BENCHMARKS.md session 43). The same numbers either way.
    fixed = fixed.to(torch.promote_types(torch.promote_types(fixed.dtype, renders.dtype), ratio.dtype))
    for i in range(0, fixed.shape[0], step):
        base = renders[i:i + step]
        fixed[i:i + step].sub_(base).mul_(ratio[i:i + step]).add_(base).clamp_(0, 1)
    return FixResult(fixed, (conf * ratio).clamp(0, 1),
                     extras={"blend_weight": smooth, "raw_blend_weight": weight, "raw_confidence": conf})

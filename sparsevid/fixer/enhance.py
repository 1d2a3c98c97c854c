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
from typing import Callable, Iterator

import numpy as np
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
            CPU cores, at least 8, but no more frames than :data:`CHUNK_BYTES` of canvases hold (3 frames of a
            4K canvas). Results do not depend on it.
    """

    temporal_sigma: float = 1.0
    spatial_sigma_px: float = 4.0
    chunk: int = 0


def temporal_radius(temporal_sigma: float) -> int:
    """How many frames on each side the blend weight's temporal average reaches (0: none)."""
    return max(1, int(round(3 * temporal_sigma))) if temporal_sigma > 0 else 0


def smooth_confidence(conf: torch.Tensor, temporal_sigma: float, spatial_sigma: float) -> torch.Tensor:
    """[T, H, W, 1] confidence -> min(conf, temporally and spatially smoothed conf).

    The temporal average is normalised at the sequence ends; the min keeps the smoothed weight
    from exceeding what the fixer trusted in this very frame."""
    return smooth_confidence_of(conf, 0, conf.shape[0], slice(0, conf.shape[0]), temporal_sigma, spatial_sigma)


def smooth_confidence_of(window: torch.Tensor, first: int, length: int, frames: slice, temporal_sigma: float,
                         spatial_sigma: float) -> torch.Tensor:
    """:func:`smooth_confidence` of the frames ``frames`` of a sequence of ``length`` frames, from a ``window`` of
    its confidence that starts at frame ``first`` and holds every frame within :func:`temporal_radius` of them (the
    same numbers as over the whole sequence, for an enhancement that holds a few chunks of frames, not all)."""
    a, b = frames.start, frames.stop
    own = window[a - first:b - first]
    r = temporal_radius(temporal_sigma) if length >= 2 else 0
    if r == 0:
        sm = own
    else:
        if first > max(0, a - r) or first + window.shape[0] < min(length, b + r):
            raise ValueError(f"frames {a}-{b} need the confidence of frames {max(0, a - r)}-{min(length, b + r)}, "
                             f"the window holds {first}-{first + window.shape[0]}")
        off = torch.arange(-r, r + 1, device=window.device)
        w = torch.exp(-0.5 * (off.to(window.dtype) / temporal_sigma) ** 2)
        acc = torch.zeros_like(own)
        wsum = torch.zeros(b - a, 1, 1, 1, dtype=window.dtype, device=window.device)
        for o, wo in zip(off.tolist(), w):  # frame t takes t + o where that is in the sequence, offsets in order
            lo, hi = max(a, -o), min(b, length - o)
            if lo < hi:
                acc[lo - a:hi - a] += wo * window[lo + o - first:hi + o - first]
                wsum[lo - a:hi - a] += wo
        sm = acc / wsum
    if spatial_sigma > 0:
        sm = _gaussian_blur(sm, spatial_sigma)
    return torch.minimum(sm, own)


#: ``canvas(sl)`` -> the frames ``sl`` rendered: (rgb [n, H, W, 3], depth [n, H, W, 1] or None, alpha [n, H, W, 1] or
#: None), torch tensors or numpy arrays (e.g. :meth:`sparsevid.render.frames.PathRenderer.canvas`)
CanvasChunks = Callable[[slice], tuple]


def _tensor(x) -> torch.Tensor | None:
    return None if x is None else (x if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x)))


#: the canvases one automatic chunk of the enhancement may hold, at 40 bytes a canvas pixel and frame (the render,
#: its depth and opacity, the fixer's frame, confidence and weight); :func:`enhance_stream` holds two or three chunks
CHUNK_BYTES = 1 << 30


def chunk_size(cfg: EnhanceConfig, canvas_pixels: int = 0) -> int:
    """Frames per fixer call: ``cfg.chunk``; 0: the CPU cores, at least 8, and at most as many frames of
    ``canvas_pixels`` pixels as :data:`CHUNK_BYTES` hold (at 848x480 behind a wide-angle lens, 31; at 4K, 3)."""
    if cfg.chunk > 0:
        return cfg.chunk
    n = max(8, os.cpu_count() or 1)
    return max(1, min(n, CHUNK_BYTES // (40 * canvas_pixels))) if canvas_pixels > 0 else n


def enhance_stream(fixer: Fixer, canvas: CanvasChunks, Ks: torch.Tensor, c2ws: torch.Tensor, refs: RefViews,
                   valid: torch.Tensor | None = None, times: torch.Tensor | None = None,
                   config: EnhanceConfig | None = None, status: str = "") -> Iterator[tuple[slice, FixResult]]:
    """:func:`enhance_frames` of a sequence rendered a chunk at a time, given back a chunk at a time.

    The frames are rendered (``canvas``) and fixed a chunk of :func:`chunk_size` frames at a time, in order. A chunk
    is blended and yielded as ``(slice, FixResult)``, with the rows :func:`enhance_frames` gives it (``extras``
    sliced alike), as soon as the frames its smoothed blend weight reaches (:func:`temporal_radius`) are fixed; then
    it is let go of. So the memory held does not grow with the sequence: about three chunks' renders, fixed frames,
    confidences and weights, where rendering every canvas first held 20 bytes a canvas pixel and frame, and the
    fixed frames 20 more (~35 MB a frame at 848x480 behind a wide-angle lens).

    Args:
        canvas: the frames ``sl`` rendered (:data:`CanvasChunks`); called once per chunk, in order.
        Ks, c2ws: [T, 3, 3], [T, 4, 4] the cameras (T: the sequence's length).
        valid: [T, H, W, 1] or None; times: [T] seconds or None.
        status: the progress line's status (default: the fixer's class).

    Raises:
        RuntimeError: the fixer gave back another number of frames than it was given.
    """
    cfg = config or EnhanceConfig()
    T = int(Ks.shape[0])
    step = chunk_size(cfg, 0 if refs.images.dim() < 3 else int(refs.images.shape[1] * refs.images.shape[2]))
    blend = cfg.temporal_sigma > 0 or cfg.spatial_sigma_px > 0
    reach = temporal_radius(cfg.temporal_sigma) if blend and T >= 2 else 0
    cut = (lambda t, sl: None if t is None else t[sl])
    held: list[dict] = []  # chunks fixed and not yet let go of, in order: slice, rgb, images, conf, weight
    done = 0  # frames fixed so far
    with progress() as p:
        task = p.add_task("enhancing", total=T, status=status or type(fixer).__name__)
        for start in range(0, T, step):
            sl = slice(start, min(T, start + step))
            rgb, depth, alpha = (_tensor(x) for x in canvas(sl))
            part = fixer.fix(FixRequest(rgb, Ks[sl], c2ws[sl], refs, depth, alpha, cut(valid, sl), cut(times, sl)))
            del depth, alpha  # only the fixer uses them
            chunk = (part.images, part.confidence, part.extras.get("blend_weight", part.confidence))
            asked = sl.stop - sl.start
            if any(x.shape[0] != asked for x in chunk):  # the blend below would pair other frames
                raise RuntimeError(f"{type(fixer).__name__}.fix returned {[x.shape[0] for x in chunk]} frames "
                                   f"(images, confidence, weight) for the {asked} it was given")
            held.append({"sl": sl, "rgb": rgb, "images": chunk[0], "conf": chunk[1], "weight": chunk[2]})
            del part, chunk, rgb
            done = sl.stop
            p.update(task, advance=asked)
            while True:  # every chunk whose weight's reach is fixed now (all of them after the last)
                ready = next((c for c in held if c["images"] is not None), None)
                if ready is None or min(T, ready["sl"].stop + reach) > done:
                    break
                yield ready["sl"], _blend_chunk(ready, held, T, cfg, reach, blend)
                ready["rgb"] = ready["images"] = ready["conf"] = None  # its weight stays while a window needs it
                nxt = next((c["sl"].start for c in held if c["images"] is not None), T)
                held = [c for c in held if c["sl"].stop + reach > nxt]  # their weights reach no frame left


def _blend_chunk(c: dict, held: list[dict], length: int, cfg: EnhanceConfig, reach: int, blend: bool) -> FixResult:
    """The chunk ``c`` blended with its weight smoothed over the ``held`` chunks' (see :func:`enhance_stream`;
    ``blend`` False: no smoothing asked, the fixed frames as they are)."""
    sl, images, base, conf, weight = c["sl"], c["images"], c["rgb"], c["conf"], c["weight"]
    if not blend:
        return FixResult(images, conf, extras={"blend_weight": weight, "raw_confidence": conf})
    near = [h for h in held if h["sl"].stop > sl.start - reach and h["sl"].start < sl.stop + reach]
    window = near[0]["weight"] if len(near) == 1 else torch.cat([h["weight"] for h in near])
    smooth = smooth_confidence_of(window, near[0]["sl"].start, length, sl, cfg.temporal_sigma,
                                  cfg.spatial_sigma_px * px_scale(*base.shape[1:3]))
    del window
    ratio = torch.where(weight > 1e-3, smooth / weight.clamp_min(1e-3), torch.zeros_like(weight))
    dtype = torch.promote_types(torch.promote_types(images.dtype, base.dtype), ratio.dtype)
    # render + ratio * (fixed - render), clamped, in a copy of the chunk's fixed frames: the fixer's own tensors (a
    # view of its inputs, of the references, or outputs it keeps) are left as they were
    images = images.to(dtype, copy=True).sub_(base).mul_(ratio).add_(base).clamp_(0, 1)
    return FixResult(images, (conf * ratio).clamp(0, 1),
                     extras={"blend_weight": smooth, "raw_blend_weight": weight, "raw_confidence": conf})


def enhance_frames(fixer: Fixer, renders: torch.Tensor, Ks: torch.Tensor, c2ws: torch.Tensor, refs: RefViews,
                   depth: torch.Tensor | None = None, alpha: torch.Tensor | None = None,
                   valid: torch.Tensor | None = None, times: torch.Tensor | None = None,
                   config: EnhanceConfig | None = None) -> FixResult:
    """Fix a whole output sequence (in time order) with temporally smoothed blending (:func:`enhance_stream` over
    renders already made; the renders are left as they are).

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
    FixRequest(renders, Ks, c2ws, refs, depth=depth, alpha=alpha, valid=valid, times=times)  # checks the shapes
    cut = (lambda t, sl: None if t is None else t[sl])
    whole: dict = {}
    for sl, part in enhance_stream(fixer, lambda sl: (renders[sl], cut(depth, sl), cut(alpha, sl)), Ks, c2ws, refs,
                                   valid, times, config):
        for name, x in (("images", part.images), ("confidence", part.confidence), *part.extras.items()):
            if name not in whole:
                whole[name] = x.new_empty((renders.shape[0],) + tuple(x.shape[1:]))
            whole[name][sl] = x
    if not whole:
        raise ValueError("enhance_frames needs at least one frame")
    return FixResult(whole.pop("images"), whole.pop("confidence"), extras=whole)

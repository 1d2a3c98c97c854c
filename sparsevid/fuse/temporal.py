"""The output video's low band made consistent over time: each in-between frame's coarse content
averaged with that of its neighbouring output frames, each moved onto it by optical flow.

Every in-between frame is fused on its own, from candidates whose weights change with its time, so
its coarse errors (a blend tipping towards one route, a region a little misplaced) differ from its
neighbours'. The scene itself changes smoothly from one output frame to the next. Averaged over a
few motion-compensated neighbours, the independent part of those errors shrinks. Only the low band
is taken from the mean, below a Gaussian of ``sigma`` px: the frame's own fine detail, which the
flow cannot carry without softening it, is kept as it is. Frames at an input's time are left alone
(they are the inputs), but serve as neighbours. Measured in BENCHMARKS.md, session 18.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from sparsevid.errors import SparsevidError
from sparsevid.log import in_context, progress
from sparsevid.fuse.flow2d import FlowConfig
from sparsevid.imaging import DIS_PRESETS, gray_u8, grid, long_side, make_dis, remap


@dataclass
class TemporalConfig:
    """Low-band smoothing of the output over time (:func:`smooth_low_band`).

    Attributes:
        sigma: the Gaussian (px of the output) below which a frame takes the motion-compensated
            mean of itself and its neighbours; None (``none`` on the command line): off. 2 px leaves
            the sharpness (variance of the Laplacian) within 2 % on 13 clips, and gains +0.06 dB held-out
            PSNR on average (12 of 13 up; 1 px: +0.08 dB for 6 % of the sharpness; BENCHMARKS.md, session 18).
        reach: the neighbours on each side (output frames) that enter the mean (3: no better than 2, and
            below on 4 of 13 clips).
        preset: the DIS preset of the flows from each frame to its neighbours.
        colour_sigma: the frame's colour, i.e. the part of the difference to the mean that leaves its luma
            (the grey image, ITU-R BT.601 weights) unchanged, is also taken from the mean down to this
            smaller Gaussian (px; 0: every band); None (the default): the colour like the luma, below
            ``sigma`` only. It leaves the sharpness a viewer sees (and ``score.py`` measures: the variance of
            the Laplacian of the grey image) as it is. Off by default: on 13 clips (BENCHMARKS.md, session 19)
            0 gained +0.03 dB on average, but its gains sit in the synthetic clips, whose colours are
            saturated (+0.02 to +0.17); on the seven real clips it moved the video by -0.21 to +0.04 dB
            (-0.02 on average; the still camera lost 0.21 to the resampling of its neighbours).

    The frames are smoothed on the fusion's threads (``FuseConfig.threads``).
    """

    sigma: float | None = 2.0
    reach: int = 2
    preset: str = "medium"
    colour_sigma: float | None = None


def check_temporal(cfg: TemporalConfig) -> None:
    """A one-line error for settings :func:`smooth_low_band` cannot use."""
    flag = "--fuse.temporal."
    if cfg.sigma is not None and not cfg.sigma > 0:
        raise SparsevidError(f"{flag}sigma must be positive or none, got {cfg.sigma:g}",
                             fix=f"pass e.g. {flag}sigma 2, or {flag}sigma none to turn it off")
    if cfg.colour_sigma is not None and not (0 <= cfg.colour_sigma <= (cfg.sigma or 0)):
        raise SparsevidError(f"{flag}colour-sigma must be between 0 and {flag}sigma, or none, got {cfg.colour_sigma:g}",
                             fix=f"pass e.g. {flag}colour-sigma 0 (every band), or none (the colour like the luma)")
    if cfg.reach < 1:
        raise SparsevidError(f"{flag}reach must be at least 1, got {cfg.reach}", fix=f"pass e.g. {flag}reach 2")
    if cfg.preset not in DIS_PRESETS:
        raise SparsevidError(f"{flag}preset must be one of {', '.join(DIS_PRESETS)}, got {cfg.preset!r}",
                             fix=f"pass e.g. {flag}preset medium")


#: the luma weights of ITU-R BT.601 (OpenCV's RGB -> grey), R, G, B
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def colour_part(diff: np.ndarray) -> np.ndarray:
    """The part of an RGB difference ``[..., 3]`` that leaves the luma unchanged: its orthogonal projection
    onto the plane ``LUMA . d = 0`` (the nearest change, in RGB, with the same colour effect)."""
    return diff - (diff @ LUMA)[..., None] * (LUMA / float(LUMA @ LUMA))


def moved_onto(frame: np.ndarray, neighbour: np.ndarray, dis) -> np.ndarray:
    """``neighbour`` [H, W, 3] uint8 resampled onto ``frame``'s pixels by DIS flow from ``frame`` to it
    (float32, bilinear, edges replicated)."""
    flow = dis.calc(gray_u8(frame), gray_u8(neighbour), None)
    gx, gy = grid(*frame.shape[:2])
    return remap(neighbour.astype(np.float32), gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR,
                 cv2.BORDER_REPLICATE)


def smooth_low_band(frames: Sequence[np.ndarray], at_input: Sequence[bool],
                    cfg: TemporalConfig | None = None, threads: int = 0) -> list[np.ndarray]:
    """The output video with each in-between frame's low band (and with ``cfg.colour_sigma`` its colour down to
    that finer band) replaced by the mean of its own and its ``cfg.reach`` neighbours' on each side (moved onto it by
    :func:`moved_onto`).

    Args:
        frames: T x [H, W, 3] uint8, the output video in time order.
        at_input: [T] whether each frame is at an input's time (left as it is).
        cfg: the settings (None: the defaults); ``cfg.sigma`` None returns the frames as they are.
        threads: frames smoothed at once (0: one per CPU core); the result does not depend on it.

    Returns:
        T x [H, W, 3] uint8; the frames at input times and, with ``sigma`` None, all frames are the
        objects given. Every frame is computed from the frames as given, not from smoothed ones.
    """
    cfg = cfg or TemporalConfig()
    check_temporal(cfg)
    if len(at_input) != len(frames):
        raise ValueError(f"{len(frames)} frames but {len(at_input)} input flags")
    if threads < 0:
        raise ValueError(f"threads must be 0 or more, got {threads}")
    if cfg.sigma is None or len(frames) < 2:
        return list(frames)
    side = long_side(*frames[0].shape[:2])

    def one(i: int) -> np.ndarray:
        dis = make_dis(cfg.preset, side, None, FlowConfig.finest_min_width)  # refined as the 2D route's flows
        own = frames[i].astype(np.float32)
        near = [moved_onto(frames[i], frames[j], dis)
                for j in range(i - cfg.reach, i + cfg.reach + 1) if j != i and 0 <= j < len(frames)]
        diff = (own + sum(near)) / (1 + len(near)) - own
        low = cv2.GaussianBlur(diff, (0, 0), cfg.sigma)
        if cfg.colour_sigma is not None:  # the colour's bands between the two sigmas too
            fine = diff if cfg.colour_sigma == 0 else cv2.GaussianBlur(diff, (0, 0), cfg.colour_sigma)
            low += colour_part(fine - low)
        return np.clip(np.rint(own + low), 0, 255).astype(np.uint8)

    todo = [i for i, inp in enumerate(at_input) if not inp]
    if not todo:
        return list(frames)
    done = {}
    with progress() as bar, ThreadPoolExecutor(threads or os.cpu_count() or 1) as pool:
        task = bar.add_task("consistency over time", total=len(todo),
                            status=f"in-between frames' content coarser than {cfg.sigma:g} px")
        for i, img in zip(todo, pool.map(in_context(one), todo)):
            done[i] = img
            bar.update(task, advance=1)
    return [done.get(i, f) for i, f in enumerate(frames)]

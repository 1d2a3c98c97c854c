"""Difix3D progressive 3D updates: fixed novel views become extra training data.

At a few training steps (``fix_steps``) a hook renders pseudo cameras that move, round by round,
from the training cameras toward the target cameras (the output path's cameras at the times
that are not inputs), fixes those renders with a :class:`~sparsevid.fixer.base.Fixer` and adds
them to the trainer as ``kind="pseudo"`` views with a lower weight and the fixer's confidence as
the per-pixel mask. Every round's pseudo views stay in the training set (the reference system
keeps only the latest round; we keep all, so early, near-input views keep anchoring the scene).

The camera schedule (:func:`plan_pseudo_cameras`) is pure: for each target, start at the nearest
training camera and move toward the target by ``(round + 1) / num_rounds`` of the way, but never
further than ``(round + 1) * max_translation`` (world units) and ``(round + 1) * max_rotation_deg``.
:class:`ProgressiveConfig` expresses the translation limit as a fraction of the median spacing
between neighbouring input cameras, so it scales with the scene.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
import torch

from sparsevid import log
from sparsevid.geometry import (camera_distances, interpolate_pose, median_neighbor_spacing,  # noqa: F401
                                rotation_angle_deg)
from sparsevid.fixer.base import Fixer, FixRequest, RefViews
from sparsevid.gaussians.views import TrainView  # the one view type (trainer, progressive updates)

if TYPE_CHECKING:
    from sparsevid.gaussians.trainer import Trainer


# ---------------------------------------------------------------------------------------------
# pure schedule
# ---------------------------------------------------------------------------------------------
#: the pose between two cameras (slerped rotation, lerped centre), see :mod:`sparsevid.geometry`
interpolate_c2w = interpolate_pose

#: the angle that counts as much as one spacing of the training cameras when choosing where a
#: target's pseudo cameras start (see :func:`nearest_cameras`)
NEAREST_ROTATION_UNIT_DEG = 5.0


def nearest_cameras(train_c2ws: np.ndarray, target_c2ws: np.ndarray) -> np.ndarray:
    """[M] index of the training camera nearest each target, where its pseudo cameras start: the
    :func:`~sparsevid.geometry.camera_distances` metric with the centre distance in units of the
    training cameras' median neighbour spacing and the rotation in units of
    :data:`NEAREST_ROTATION_UNIT_DEG`.

    Args:
        train_c2ws: [N, 4, 4] training cameras.
        target_c2ws: [M, 4, 4] target cameras.
    """
    tr = np.asarray(train_c2ws, dtype=np.float64)
    tg = np.asarray(target_c2ws, dtype=np.float64)
    spacing = median_neighbor_spacing(tr)
    d = camera_distances(torch.from_numpy(tg), torch.from_numpy(tr), position_unit=spacing if spacing > 0 else 1.0,
                         rotation_unit=float(np.deg2rad(NEAREST_ROTATION_UNIT_DEG)))
    return d.argmin(1).numpy()


def plan_pseudo_cameras(train_c2ws: np.ndarray, target_c2ws: np.ndarray, round_idx: int, num_rounds: int,
                        max_translation: float, max_rotation_deg: float) -> np.ndarray:
    """Pseudo cameras of one round of progressive updates.

    Each target starts from its nearest training camera; round ``round_idx`` (0-based) of
    ``num_rounds`` moves ``(round_idx + 1) / num_rounds`` of the way to the target, limited to a
    total of ``(round_idx + 1) * max_translation`` of centre motion (world units; <= 0: no limit)
    and ``(round_idx + 1) * max_rotation_deg`` of rotation (<= 0: no limit). The motion is
    monotonic over rounds and the last round reaches the target when the limits allow.

    Args:
        train_c2ws: [N, 4, 4] training cameras (camera-to-world, OpenCV axes).
        target_c2ws: [M, 4, 4] target cameras.

    Returns:
        [M, 4, 4] float64 pseudo cameras, in the order of ``target_c2ws``.
    """
    if num_rounds < 1 or not 0 <= round_idx < num_rounds:
        raise ValueError(f"round_idx {round_idx} must lie in [0, {num_rounds})")
    tr = np.asarray(train_c2ws, dtype=np.float64)
    tg = np.asarray(target_c2ws, dtype=np.float64)
    near = nearest_cameras(tr, tg)
    k = round_idx + 1
    out = np.empty_like(tg)
    for m in range(len(tg)):
        a, b = tr[near[m]], tg[m]
        s = k / num_rounds
        dist = float(np.linalg.norm(b[:3, 3] - a[:3, 3]))
        ang = float(rotation_angle_deg(a[:3, :3], b[:3, :3]))
        if max_translation > 0 and dist > 1e-12:
            s = min(s, k * max_translation / dist)
        if max_rotation_deg > 0 and ang > 1e-9:
            s = min(s, k * max_rotation_deg / ang)
        out[m] = interpolate_c2w(a, b, min(max(s, 0.0), 1.0))
    return out


def default_fix_steps(total_steps: int, num_rounds: int, start_frac: float = 0.3,
                      end_frac: float = 0.75) -> list[int]:
    """``num_rounds`` distinct steps spread evenly over [start_frac, end_frac] of training."""
    if num_rounds <= 0 or total_steps <= 1:
        return []
    if num_rounds == 1:
        fr = np.array([start_frac])
    else:
        fr = np.linspace(start_frac, end_frac, num_rounds)
    steps = sorted({int(np.clip(round(f * total_steps), 1, total_steps - 1)) for f in fr})
    return steps


# ---------------------------------------------------------------------------------------------
# the trainer hook
# ---------------------------------------------------------------------------------------------
@dataclass
class ProgressiveConfig:
    """Difix3D progressive 3D updates.

    Attributes:
        num_rounds: rounds of pseudo views (ignored when ``fix_steps`` is given: one per step).
        fix_steps: training steps at which a round runs; None -> :func:`default_fix_steps`.
        start_frac, end_frac: where the default rounds fall within training.
        max_translation_frac: per-round limit on camera motion, as a fraction of the median
            spacing between neighbouring input cameras.
        max_rotation_deg: per-round limit on camera rotation.
        pseudo_weight: loss weight of pseudo views relative to input views (1).
        min_confidence: per-pixel confidence below this is dropped from the mask. With the
            ``reproject`` fixer, pixels at or above 0.25 are ~81% of a held-out view and ~1.8 dB
            better than the render there (tools/tune_fixer.py, docs/notes/fixer-tuning.md).
        skip_frac: targets closer than this fraction of the spacing to a training camera (and
            under 0.5 deg) are skipped (they would duplicate an input).
        max_views_per_round: at most this many pseudo views per round (evenly subsampled).
        render_chunk: cameras per ``trainer.render`` call.
    """

    num_rounds: int = 3
    fix_steps: Sequence[int] | None = None
    start_frac: float = 0.3
    end_frac: float = 0.75
    max_translation_frac: float = 0.5
    max_rotation_deg: float = 3.0
    pseudo_weight: float = 0.5
    min_confidence: float = 0.25
    skip_frac: float = 0.02
    max_views_per_round: int | None = 32
    render_chunk: int = 4

    def steps_for(self, total_steps: int) -> list[int]:
        if self.fix_steps is not None:
            return sorted({int(s) for s in self.fix_steps if 0 < int(s) < total_steps})
        return default_fix_steps(total_steps, self.num_rounds, self.start_frac, self.end_frac)


@dataclass
class InputViews:
    """The training inputs the updater plans from and fixes against (canvas space).

    Attributes:
        images: [N, H, W, 3] float32 0..1.
        Ks: [N, 3, 3].
        c2ws: [N, 4, 4] OpenCV axes.
        valid: [H, W, 1] or [N, H, W, 1] float32 canvas validity mask, or None.
    """

    images: torch.Tensor
    Ks: torch.Tensor
    c2ws: torch.Tensor
    valid: torch.Tensor | None = None

    @staticmethod
    def from_train_views(views: Sequence[TrainView]) -> "InputViews":
        """From ``TrainView`` objects (``kind == "input"``)."""
        views = [v for v in views if getattr(v, "kind", "input") == "input"]
        t = (lambda x: torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x))
        images = torch.stack([t(v.image).float() for v in views])
        masks = [getattr(v, "mask", None) for v in views]
        valid = None if any(m is None for m in masks) else torch.stack([t(m).float() for m in masks])
        return InputViews(images, torch.stack([t(v.K).double() for v in views]),
                          torch.stack([t(v.c2w).double() for v in views]), valid)


@dataclass
class RoundRecord:
    """What one round did (for logs and tests)."""

    round: int
    step: int
    num_views: int
    mean_confidence: float
    pseudo_c2ws: np.ndarray = field(repr=False)


class ProgressiveUpdater:
    """Makes the trainer hooks of the progressive 3D update.

    Args:
        fixer: the fixer (weight-free ``reproject`` or ``difix``).
        inputs: the training inputs (canvas space).
        target_c2ws: [M, 4, 4] output path cameras (the non-input times).
        target_Ks: [M, 3, 3] or [3, 3] canvas intrinsics of the targets (None: the inputs' first K).
        config: :class:`ProgressiveConfig`.
    """

    def __init__(self, fixer: Fixer, inputs: InputViews, target_c2ws: np.ndarray,
                 target_Ks: np.ndarray | None = None, config: ProgressiveConfig | None = None) -> None:
        self.fixer = fixer
        self.inputs = inputs
        self.config = config or ProgressiveConfig()
        tr = inputs.c2ws.double().cpu().numpy()
        tg = np.asarray(target_c2ws, dtype=np.float64).reshape(-1, 4, 4)
        K0 = inputs.Ks[0].double().cpu().numpy()
        tK = np.broadcast_to(K0 if target_Ks is None else np.asarray(target_Ks, np.float64), (len(tg), 3, 3))
        keep = self._far_from_inputs(tr, tg)
        self.target_c2ws = tg[keep]
        self.target_Ks = np.ascontiguousarray(tK[keep])
        cap = self.config.max_views_per_round
        if cap is not None and len(self.target_c2ws) > cap:
            pick = np.unique(np.round(np.linspace(0, len(self.target_c2ws) - 1, cap)).astype(int))
            self.target_c2ws, self.target_Ks = self.target_c2ws[pick], self.target_Ks[pick]
        self.spacing = median_neighbor_spacing(tr)
        self.history: list[RoundRecord] = []
        self._steps: list[int] = []

    def _far_from_inputs(self, tr: np.ndarray, tg: np.ndarray) -> np.ndarray:
        spacing = median_neighbor_spacing(tr)
        dt = np.linalg.norm(tg[:, None, :3, 3] - tr[None, :, :3, 3], axis=-1)
        dr = rotation_angle_deg(tr[None, :, :3, :3], tg[:, None, :3, :3])
        dup = (dt <= self.config.skip_frac * max(spacing, 1e-12)) & (dr < 0.5)
        return ~dup.any(1)

    @property
    def num_rounds(self) -> int:
        return len(self._steps) if self._steps else self.config.num_rounds

    def hooks(self, total_steps: int) -> dict[int, Callable[[Any], None]]:
        """``{step: hook(trainer)}`` for ``Trainer.train(num_steps, hooks=...)``."""
        self._steps = self.config.steps_for(total_steps)
        if len(self.target_c2ws) == 0:
            log.info("progressive updates: no target camera away from the inputs; nothing to do")
            return {}
        return {s: (lambda trainer, r=r, s=s: self.run_round(trainer, r, s)) for r, s in enumerate(self._steps)}

    def plan(self, round_idx: int) -> np.ndarray:
        """[M, 4, 4] pseudo cameras of round ``round_idx``."""
        cfg = self.config
        return plan_pseudo_cameras(self.inputs.c2ws.double().cpu().numpy(), self.target_c2ws, round_idx,
                                   self.num_rounds, cfg.max_translation_frac * self.spacing, cfg.max_rotation_deg)

    def reference_views(self, trainer: "Trainer") -> RefViews:
        """The inputs with depth rendered by the current model (for the fixer's occlusion test)."""
        inp = self.inputs
        h, w = inp.images.shape[1:3]
        out = _render_chunked(trainer, inp.c2ws, inp.Ks, w, h, self.config.render_chunk)
        valid = inp.valid
        if valid is not None and valid.ndim == 3:
            valid = valid[None].expand(len(inp.images), -1, -1, -1)
        return RefViews(inp.images, inp.Ks.float(), inp.c2ws.double(), out["depth"].float(), valid)

    def run_round(self, trainer: "Trainer", round_idx: int, step: int) -> list[TrainView]:
        """Render, fix and add the pseudo views of one round; returns the added views."""
        cfg = self.config
        c2ws = self.plan(round_idx)
        inp = self.inputs
        h, w = inp.images.shape[1:3]
        with torch.no_grad():
            refs = self.reference_views(trainer)
            Ks = torch.as_tensor(self.target_Ks)
            out = _render_chunked(trainer, torch.as_tensor(c2ws), Ks, w, h, cfg.render_chunk)
            valid = self._canvas_valid(len(c2ws))
            dev = out["rgb"].device
            req = FixRequest(out["rgb"].float().clamp(0, 1), Ks.float().to(dev), torch.as_tensor(c2ws).to(dev),
                             refs.to(dev), depth=out["depth"].float(), alpha=out["alpha"].float(),
                             valid=None if valid is None else valid.to(dev))
            res = self.fixer.fix_in_chunks(req, chunk=max(1, cfg.render_chunk))
        conf = res.confidence
        if valid is not None:
            conf = conf * valid.to(conf.device)
        conf = torch.where(conf >= cfg.min_confidence, conf, torch.zeros_like(conf))
        views = [TrainView(image=res.images[i].detach().cpu().float(), K=torch.as_tensor(self.target_Ks[i]),
                           c2w=torch.as_tensor(c2ws[i]), mask=conf[i].detach().cpu().float(),
                           weight=cfg.pseudo_weight, kind="pseudo", round=round_idx)
                 for i in range(len(c2ws))]
        trainer.add_views(views)
        rec = RoundRecord(round_idx, step, len(views), float(conf.mean()), c2ws)
        self.history.append(rec)
        log.info(f"progressive update round {round_idx + 1}/{self.num_rounds} at step {step}: "
                 f"{len(views)} pseudo views, mean confidence {rec.mean_confidence:.2f}")
        return views

    def _canvas_valid(self, n: int) -> torch.Tensor | None:
        v = self.inputs.valid
        if v is None:
            return None
        v = v[0] if v.ndim == 4 else v
        return v[None].expand(n, -1, -1, -1).float()


def _render_chunked(trainer: Any, c2ws: torch.Tensor, Ks: torch.Tensor, width: int, height: int,
                    chunk: int) -> dict[str, torch.Tensor]:
    """``trainer.render`` over chunks of cameras; returns rgb [B,H,W,3], depth, alpha [B,H,W,1]."""
    parts: dict[str, list[torch.Tensor]] = {"rgb": [], "depth": [], "alpha": []}
    for i in range(0, len(c2ws), max(1, chunk)):
        o = trainer.render(c2ws[i:i + chunk], Ks[i:i + chunk], width, height)
        for k in parts:
            parts[k].append(o[k].detach())
    return {k: torch.cat(v) for k, v in parts.items()}

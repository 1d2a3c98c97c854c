"""Checks of the fusion's settings (:class:`~sparsevid.fuse.fusion.FuseConfig`) that need no work: each failure a
one-line :class:`~sparsevid.errors.SparsevidError` naming the setting as its flag (``--fuse.flow.motion``; the
config key is the flag without its dashes). :func:`~sparsevid.fuse.stage.fuse_frames` runs them first, so that
a library caller's typo is an error, not another fusion; ``sparsevid run`` runs them before any work
(:func:`sparsevid.checks.check_run_config`)."""
from __future__ import annotations

from typing import Mapping

import numpy as np

from sparsevid.errors import SparsevidError
from sparsevid.fuse.fusion import FuseConfig

#: the fusion's modes (``FuseConfig.mode``)
MODES = ("fuse", "2d", "3d")


def _one_of(flag: str, value, choices, example=None) -> None:
    if value not in choices:
        shown = ", ".join(map(str, choices))
        example = next(iter(choices)) if example is None else example
        raise SparsevidError(f"{flag} must be one of {shown}, got {value!r}", fix=f"pass e.g. {flag} {example}")


def check_fuse_config(cfg: FuseConfig) -> None:
    """Raise a one-line error for a fusion setting that cannot work or is not one of its choices (the mode, the
    learned route's name, passes, fine-tuning and scale, the 2D route's flow and the temporal smoothing).
    Whether the learned route's weights are installed is checked where they are needed."""
    from sparsevid.eval import rife
    from sparsevid.fuse.flow2d import CANDIDATES, GMFLOW_CHOICES, MIRRORS, MOTIONS, PREALIGN
    from sparsevid.fuse.learned import LEARNED_CHOICES, PASSES
    from sparsevid.fuse.temporal import check_temporal
    from sparsevid.imaging import DIS_PRESETS

    _one_of("--fuse.mode", cfg.mode, MODES)
    _one_of("--fuse.learned", cfg.learned, LEARNED_CHOICES)
    _one_of("--fuse.learned-passes", cfg.learned_passes, PASSES, 4)
    if not isinstance(cfg.learned_adapt_steps, int) or cfg.learned_adapt_steps < 0:
        raise SparsevidError(f"--fuse.learned-adapt-steps must be 0 or more, got {cfg.learned_adapt_steps}",
                             fix="pass e.g. --fuse.learned-adapt-steps 0 (no fine-tuning)")
    if not cfg.learned_adapt_lr > 0:
        raise SparsevidError(f"--fuse.learned-adapt-lr must be positive, got {cfg.learned_adapt_lr:g}",
                             fix="pass e.g. --fuse.learned-adapt-lr 3e-6")
    if cfg.learned_scale is not None and cfg.learned_scale not in rife.SCALES:
        raise SparsevidError(f"--fuse.learned-scale must be one of {', '.join(f'{v:g}' for v in rife.SCALES)}, "
                             f"got {cfg.learned_scale:g}",
                             fix="pass e.g. --fuse.learned-scale 2, or leave it out to choose by frame size")
    if cfg.detail_power is not None and not cfg.detail_power > 0:
        raise SparsevidError(f"--fuse.detail-power must be positive, or none (chosen by the leave-one-out check), got "
                             f"{cfg.detail_power:g}", fix="pass e.g. --fuse.detail-power 1 (in a config file: "
                                                          "detail_power: null to have it chosen)")
    if not cfg.detail_choices or not all(isinstance(c, (int, float)) and c > 0 for c in cfg.detail_choices):
        raise SparsevidError(f"--fuse.detail-choices must be positive powers, got "
                             f"{','.join(map(str, cfg.detail_choices)) or 'nothing'}",
                             fix="pass e.g. --fuse.detail-choices 1,2,4,8")
    flow = cfg.flow
    if not isinstance(flow.finest_min_width, int) or flow.finest_min_width < 1:
        raise SparsevidError(f"--fuse.flow.finest-min-width must be a whole number of pixels >= 1, got "
                             f"{flow.finest_min_width}", fix="pass e.g. --fuse.flow.finest-min-width 400")
    if flow.finest_scale is not None and (not isinstance(flow.finest_scale, int) or flow.finest_scale < -1):
        raise SparsevidError(f"--fuse.flow.finest-scale must be -1 (the preset's), 0 (full resolution) or more, or "
                             f"none (by frame size), got {flow.finest_scale}",
                             fix="pass e.g. --fuse.flow.finest-scale 0")
    _one_of("--fuse.flow.preset", flow.preset, DIS_PRESETS)
    _one_of("--fuse.flow.motion", flow.motion, MOTIONS)
    _one_of("--fuse.flow.prealign", flow.prealign, PREALIGN)
    for flag, value in (("--fuse.flow.mirrors", flow.mirrors), ("--fuse.guided-mirrors", cfg.guided_mirrors)):
        if value is not None:
            _one_of(flag, value, MIRRORS, 4)
    if not flow.candidates or set(flow.candidates) - set(CANDIDATES):
        raise SparsevidError(f"--fuse.flow.candidates must be among {', '.join(CANDIDATES)}, got "
                             f"{','.join(flow.candidates) or 'nothing'}", fix="pass e.g. --fuse.flow.candidates dis")
    if flow.choice_temperature is not None and not flow.choice_temperature > 0:
        raise SparsevidError(f"--fuse.flow.choice-temperature must be positive, got {flow.choice_temperature:g}",
                             fix="pass e.g. --fuse.flow.choice-temperature 1, or leave it out for a hard choice")
    if not flow.choice_relative >= 0:
        raise SparsevidError(f"--fuse.flow.choice-relative must be 0 or more, got {flow.choice_relative:g}",
                             fix="pass e.g. --fuse.flow.choice-relative 0.25")
    _one_of("--fuse.flow.gmflow", flow.gmflow, GMFLOW_CHOICES)
    check_temporal(cfg.temporal)


def check_keys(keys: Mapping[int, np.ndarray]) -> None:
    """The fusion's inputs: at least two, each an [H, W, 3] uint8 image, all of one size (a float image would be
    read as 0..1, so one in 0..255 came out white)."""
    if len(keys) < 2:
        raise SparsevidError(f"the fusion needs at least two inputs, got {len(keys)}",
                             fix="pass the inputs as {frame index: image}")
    shapes = set()
    for k, img in keys.items():
        img = np.asarray(img)
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise SparsevidError(f"input {k} is a {img.dtype} array of shape {img.shape}, not an [H, W, 3] uint8 "
                                 "image", fix="pass uint8 RGB images (e.g. sparsevid.render.frames.to_uint8)")
        shapes.add(img.shape)
    if len(shapes) > 1:
        raise SparsevidError(f"the inputs have different sizes ({', '.join(f'{w}x{h}' for h, w, _ in sorted(shapes))})",
                             fix="resize them to one size (the output's)")

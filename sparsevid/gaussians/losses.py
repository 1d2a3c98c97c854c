"""Training losses: masked, per-sample weighted L1 + (1 - SSIM).

SSIM uses the 3DGS reference definition (11 x 11 Gaussian window, sigma 1.5, zero padding). Two
equal implementations of its Gaussian filter: grouped 1-D convolutions (:func:`gaussian_blur`, the
eager/CPU path) and 11 shifted multiply-adds per direction (:func:`gaussian_blur_taps`), which
``torch.compile`` fuses into a few memory-bound kernels. On CUDA the trainer uses the compiled
loss (:func:`make_loss_fn`): cuDNN's depthwise convolutions took 2.6 of the 6.5 ms of GPU time
of a training step at 1080x612 on an H100.
"""
from __future__ import annotations

import functools
import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

_WINDOWS: dict[tuple, tuple[Tensor, Tensor]] = {}


def _gauss_1d(size: int, sigma: float) -> list[float]:
    """The normalised 1-D Gaussian window (``size`` taps, centred)."""
    g = [math.exp(-((i - (size - 1) / 2) ** 2) / (2 * sigma * sigma)) for i in range(size)]
    return [v / sum(g) for v in g]


def _gauss_windows(size: int, sigma: float, channels: int, dtype: torch.dtype,
                   device: torch.device) -> tuple[Tensor, Tensor]:
    """The 1-D Gaussian window as grouped conv2d weights: ([channels, 1, 1, size] horizontal,
    [channels, 1, size, 1] vertical), cached per (size, sigma, channels, dtype, device)."""
    key = (size, sigma, channels, dtype, str(device))
    if key not in _WINDOWS:
        g = torch.tensor(_gauss_1d(size, sigma), dtype=torch.float64).to(dtype).to(device)
        _WINDOWS[key] = (g.view(1, 1, 1, size).expand(channels, 1, 1, size).contiguous(),
                         g.view(1, 1, size, 1).expand(channels, 1, size, 1).contiguous())
    return _WINDOWS[key]


def gaussian_blur(x: Tensor, window: int = 11, sigma: float = 1.5) -> Tensor:
    """Per-channel Gaussian filter of x [B, C, H, W] with zero padding (same size out), as two 1-D
    grouped convolutions (equal to the 2-D ``window x window`` one, 2 x ``window`` instead of
    ``window**2`` multiply-adds per pixel)."""
    wh, wv = _gauss_windows(window, sigma, x.shape[1], x.dtype, x.device)
    p = window // 2
    x = F.conv2d(x, wh, padding=(0, p), groups=x.shape[1])
    return F.conv2d(x, wv, padding=(p, 0), groups=x.shape[1])


def gaussian_blur_taps(x: Tensor, window: int = 11, sigma: float = 1.5) -> Tensor:
    """Same as :func:`gaussian_blur` (x [B, C, H, W], zero padding), written as ``window`` shifted
    multiply-adds per direction: slow eagerly, a few fused kernels under ``torch.compile``."""
    p = window // 2
    H, W = x.shape[-2:]
    g = _gauss_1d(window, sigma)
    xp = F.pad(x, (p, p, 0, 0))
    h = sum(g[i] * xp[..., i:i + W] for i in range(window))
    hp = F.pad(h, (0, 0, p, p))
    return sum(g[i] * hp[..., i:i + H, :] for i in range(window))


def ssim_map(img: Tensor, ref: Tensor, window: int = 11, sigma: float = 1.5, blur=None) -> Tensor:
    """Per-pixel SSIM of ``img`` vs ``ref`` [B, H, W, 3] in [0, 1] -> [B, H, W, 1] (mean over
    channels), Gaussian window, zero padding (as the 3DGS reference ``ssim``). The five local
    moments come from one separable filter (``blur``: :func:`gaussian_blur` by default)."""
    B, H, W, Cc = img.shape
    x = img.permute(0, 3, 1, 2)
    y = ref.permute(0, 3, 1, 2)
    stack = torch.cat([x, y, x * x, y * y, x * y], 1)  # [B, 5C, H, W]
    mom = (blur or gaussian_blur)(stack, window, sigma)
    mx, my, xx, yy, xy = mom.split(Cc, 1)
    vx, vy, cxy = xx - mx * mx, yy - my * my, xy - mx * my
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return s.mean(1, keepdim=True).permute(0, 2, 3, 1)


def photometric_loss(render: Tensor, target: Tensor, mask: Tensor, weight: Tensor | float = 1.0,
                     ssim_weight: float = 0.2, blur=None) -> tuple[Tensor, Tensor, Tensor]:
    """``weight * ((1 - w) * L1 + w * (1 - SSIM))`` averaged over valid pixels.

    Args:
        render, target: [B, H, W, 3]; mask: [B, H, W, 1] (validity x confidence, 0..1);
        weight: per-sample weights [B] or a float.
        blur: the SSIM filter (:func:`gaussian_blur` when None; :func:`gaussian_blur_taps` to compile).

    Returns:
        (loss scalar, masked L1 scalar, masked MSE scalar) -- the last two detached, for logging.
    """
    if not torch.is_tensor(weight):
        weight = torch.full((render.shape[0],), float(weight), device=render.device, dtype=render.dtype)
    denom = mask.sum(dim=(1, 2, 3)).clamp_min(1e-6)  # [B]
    l1 = ((render - target).abs() * mask).sum(dim=(1, 2, 3)) / (3 * denom)
    ss = (ssim_map(render, target, blur=blur) * mask).sum(dim=(1, 2, 3)) / denom
    per = (1 - ssim_weight) * l1 + ssim_weight * (1 - ss)
    loss = (weight * per).sum() / weight.sum().clamp_min(1e-12)
    with torch.no_grad():
        mse = (((render - target) ** 2) * mask).sum() / (3 * denom.sum())
    return loss, l1.detach().mean(), mse


def _taps_loss(render, target, mask, weight, ssim_weight: float = 0.2):
    return photometric_loss(render, target, mask, weight, ssim_weight, blur=gaussian_blur_taps)


@functools.cache
def _compiled_cuda_loss() -> Callable:
    """One compiled loss per process (it recompiles per canvas size by itself)."""
    return _GuardedCompiled(torch.compile(_taps_loss, dynamic=False))


def make_loss_fn(device: torch.device, compile: bool = True) -> Callable:
    """The training loss for ``device``: :func:`photometric_loss` on the CPU (or with
    ``compile=False``); on CUDA the same loss with the tap filter through ``torch.compile``
    (compiled once per canvas size on first use, cached on disk by PyTorch; falls back to the eager
    loss, with a warning, where compilation fails)."""
    if device.type != "cuda" or not compile:
        return photometric_loss
    return _compiled_cuda_loss()


class _GuardedCompiled:
    """Calls the compiled loss; on a compile/runtime failure of the compiler stack (no Triton, no
    C compiler) warns once and uses the eager loss from then on."""

    def __init__(self, fn: Callable):
        self.fn, self.failed = fn, False

    def __call__(self, *args, **kwargs):
        if not self.failed:
            try:
                return self.fn(*args, **kwargs)
            except Exception as e:  # torch._dynamo / inductor backend errors
                from sparsevid import log

                log.warn(f"torch.compile of the training loss failed ({type(e).__name__}: {str(e)[:200]}); "
                         "using the eager loss (slower)")
                self.failed = True
        return photometric_loss(*args, **kwargs)


def psnr_from_mse(mse: float) -> float:
    return -10.0 * math.log10(max(mse, 1e-12))

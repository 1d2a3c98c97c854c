"""Training losses: masked, per-sample weighted L1 + (1 - SSIM), SSIM fused via one conv2d."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

_WINDOWS: dict[tuple, Tensor] = {}


def _gauss_window(size: int, sigma: float, channels: int, dtype: torch.dtype,
                  device: torch.device) -> Tensor:
    key = (size, sigma, channels, dtype, str(device))
    if key not in _WINDOWS:
        x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
        g = torch.exp(-x * x / (2 * sigma * sigma))
        g = (g / g.sum()).to(dtype)
        w2 = (g[:, None] * g[None, :]).to(device)
        _WINDOWS[key] = w2.expand(channels, 1, size, size).contiguous()
    return _WINDOWS[key]


def ssim_map(img: Tensor, ref: Tensor, window: int = 11, sigma: float = 1.5) -> Tensor:
    """Per-pixel SSIM of ``img`` vs ``ref`` [B, H, W, 3] in [0, 1] -> [B, H, W, 1] (mean over
    channels), Gaussian window, zero padding (as the 3DGS reference ``ssim``). The five local
    moments come from a single grouped conv2d."""
    B, H, W, Cc = img.shape
    x = img.permute(0, 3, 1, 2)
    y = ref.permute(0, 3, 1, 2)
    stack = torch.cat([x, y, x * x, y * y, x * y], 1)  # [B, 5C, H, W]
    win = _gauss_window(window, sigma, 5 * Cc, img.dtype, img.device)
    mom = F.conv2d(stack, win, padding=window // 2, groups=5 * Cc)
    mx, my, xx, yy, xy = mom.split(Cc, 1)
    vx, vy, cxy = xx - mx * mx, yy - my * my, xy - mx * my
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return s.mean(1, keepdim=True).permute(0, 2, 3, 1)


def photometric_loss(render: Tensor, target: Tensor, mask: Tensor, weight: Tensor | float = 1.0,
                     ssim_weight: float = 0.2) -> tuple[Tensor, Tensor, Tensor]:
    """``weight * ((1 - w) * L1 + w * (1 - SSIM))`` averaged over valid pixels.

    Args:
        render, target: [B, H, W, 3]; mask: [B, H, W, 1] (validity x confidence, 0..1);
        weight: per-sample weights [B] or a float.

    Returns:
        (loss scalar, masked L1 scalar, masked MSE scalar) -- the last two detached, for logging.
    """
    if not torch.is_tensor(weight):
        weight = torch.full((render.shape[0],), float(weight), device=render.device, dtype=render.dtype)
    denom = mask.sum(dim=(1, 2, 3)).clamp_min(1e-6)  # [B]
    l1 = ((render - target).abs() * mask).sum(dim=(1, 2, 3)) / (3 * denom)
    ss = (ssim_map(render, target) * mask).sum(dim=(1, 2, 3)) / denom
    per = (1 - ssim_weight) * l1 + ssim_weight * (1 - ss)
    loss = (weight * per).sum() / weight.sum().clamp_min(1e-12)
    with torch.no_grad():
        mse = (((render - target) ** 2) * mask).sum() / (3 * denom.sum())
    return loss, l1.detach().mean(), mse


def psnr_from_mse(mse: float) -> float:
    return -10.0 * math.log10(max(mse, 1e-12))

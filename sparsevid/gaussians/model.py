"""Gaussian parameters and their initialisation.

Parameters are stored the way gsplat's strategies expect (``params`` dict of nn.Parameter):
``means [N,3]``, ``quats [N,4]`` (w,x,y,z, unnormalised), ``scales [N,3]`` (log), ``opacities [N]``
(logit), ``sh0 [N,1,3]`` (DC), ``shN [N,K-1,3]`` (higher SH bands, K = (max_degree+1)^2).

Initialisation: from SfM points and colours; scales from the mean distance to the 3 nearest
neighbours (scipy cKDTree). **Fallback** when fewer than ``min_points`` points are given: random
points inside the camera frusta -- for each view, pixels drawn uniformly on the canvas (only where
its mask is valid) and depths drawn uniformly in inverse depth between ``near`` and ``far``, which
come from the SfM points' depths when at least 5 exist (5th/95th percentiles, widened x0.5/x2), or
else from the camera baseline (``[2, 50] x baseline``, baseline floored at 1 scene unit when the
cameras coincide); colours are taken from the image at the drawn pixel.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch import Tensor, nn

from sparsevid.gaussians.cpu_raster import _C0
from sparsevid.geometry import camera_extent

PARAM_NAMES = ("means", "quats", "scales", "opacities", "sh0", "shN")


def rgb_to_sh(rgb: Tensor) -> Tensor:
    """[..., 3] colour in 0..1 -> DC SH coefficient (gsplat/3DGS convention)."""
    return (rgb - 0.5) / _C0


def sh_to_rgb(sh: Tensor) -> Tensor:
    return sh * _C0 + 0.5


@dataclass
class InitConfig:
    """How Gaussians are initialised."""

    min_points: int = 100  # fewer SfM points -> random points in the frusta (see module doc)
    random_points: int = 20_000  # how many random points the fallback draws (in total)
    init_opacity: float = 0.1  # opacity of every initial Gaussian
    init_scale: float = 1.0  # multiplies the kNN distance
    sh_degree: int = 3  # max SH degree (storage)


def random_frustum_points(views, n: int, rng: np.random.Generator,
                          points: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """[n, 3] float64 points inside the views' frusta and their [n, 3] uint8 colours (see module doc).
    ``views``: objects with ``image [H,W,3]``, ``K [3,3]``, ``c2w [4,4]``, ``mask [H,W,1]``."""
    c2ws = np.stack([np.asarray(v.c2w, dtype=np.float64) for v in views])
    if points is not None and len(points) >= 5:
        w2c = np.linalg.inv(c2ws)
        z = np.concatenate([(points @ m[:3, :3].T + m[:3, 3])[:, 2] for m in w2c])
        z = z[z > 0]
        near, far = (0.5 * np.percentile(z, 5), 2.0 * np.percentile(z, 95)) if len(z) >= 5 else (None, None)
    else:
        near = far = None
    if near is None:
        base = max(camera_extent(c2ws), 1e-9)
        base = base if base > 1e-3 else 1.0
        near, far = 2.0 * base, 50.0 * base
    per = [n // len(views) + (1 if i < n % len(views) else 0) for i in range(len(views))]
    pts, cols = [], []
    for v, k in zip(views, per):
        img = np.asarray(v.image)
        H, W = img.shape[:2]
        m = np.asarray(v.mask).reshape(H, W) > 0.5 if v.mask is not None else np.ones((H, W), bool)
        ys, xs = np.nonzero(m)
        if len(xs) == 0:
            ys, xs = np.nonzero(np.ones((H, W), bool))
        pick = rng.integers(0, len(xs), size=k)
        u = xs[pick] + rng.uniform(0, 1, k)
        vv = ys[pick] + rng.uniform(0, 1, k)
        inv = rng.uniform(1.0 / far, 1.0 / near, k)
        z = 1.0 / inv
        K = np.asarray(v.K, dtype=np.float64)
        xc = np.stack([(u - K[0, 2]) / K[0, 0] * z, (vv - K[1, 2]) / K[1, 1] * z, z], -1)
        c2w = np.asarray(v.c2w, dtype=np.float64)
        pts.append(xc @ c2w[:3, :3].T + c2w[:3, 3])
        rgb = img[ys[pick], xs[pick]]
        cols.append(np.clip(rgb * 255.0 if rgb.dtype.kind == "f" else rgb, 0, 255).astype(np.uint8))
    return np.concatenate(pts), np.concatenate(cols)


def init_params(points: np.ndarray, colors: np.ndarray, cfg: InitConfig, seed: int,
                device: torch.device) -> dict[str, Tensor]:
    """Gaussian parameters (raw tensors, see module doc) from [P, 3] points and [P, 3] uint8 colours."""
    pts = np.asarray(points, dtype=np.float64)
    n = len(pts)
    k = min(4, n)
    if n >= 2:
        d, _ = cKDTree(pts).query(pts, k=k)
        dist = np.sqrt((d[:, 1:] ** 2).mean(1))
        dist = np.maximum(dist, max(np.median(dist) * 1e-3, 1e-7))
    else:
        dist = np.full(n, 0.01)
    g = torch.Generator().manual_seed(seed)
    K = (cfg.sh_degree + 1) ** 2
    rgb = torch.as_tensor(np.asarray(colors, dtype=np.float32) / 255.0)
    params = {
        "means": torch.as_tensor(pts, dtype=torch.float32),
        "quats": torch.rand(n, 4, generator=g),
        "scales": torch.log(torch.as_tensor(dist * cfg.init_scale, dtype=torch.float32))[:, None].repeat(1, 3),
        "opacities": torch.logit(torch.full((n,), cfg.init_opacity)),
        "sh0": rgb_to_sh(rgb)[:, None, :],
        "shN": torch.zeros(n, K - 1, 3),
    }
    return {k_: v.to(device) for k_, v in params.items()}


def make_parameters(raw: dict[str, Tensor]) -> nn.ParameterDict:
    return nn.ParameterDict({k: nn.Parameter(raw[k].contiguous()) for k in PARAM_NAMES})


@dataclass
class GaussianModel:
    """Activated views of the parameters, for rendering and export."""

    params: nn.ParameterDict

    @property
    def num(self) -> int:
        return int(self.params["means"].shape[0])

    def activated(self) -> dict[str, Tensor]:
        p = self.params
        return {"means": p["means"], "quats": p["quats"], "scales": torch.exp(p["scales"]),
                "opacities": torch.sigmoid(p["opacities"]),
                "colors": torch.cat([p["sh0"], p["shN"]], 1)}

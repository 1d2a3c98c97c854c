"""One rasterize function, two backends: gsplat (CUDA) and our tiled PyTorch rasterizer (CPU).

Both follow ``gsplat.rasterization``'s conventions (unpacked mode): 3D covariance from
quat/scale, EWA projection with the 0.3 px low-pass, optional antialiasing compensation,
SH colours ``+0.5`` clamped at 0, ``alpha = min(0.999, opacity * exp(-sigma))``, skip
``alpha < 1/255``, stop when transmittance would drop to <= 1e-4, z-depth for "D" modes
("ED" normalised by alpha).
"""
from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from sparsevid.devices import cuda_available, resolve_device  # noqa: F401  (resolve_device: re-exported)
from sparsevid.errors import SparsevidError
from sparsevid.gaussians import cpu_raster

Backend = Literal["auto", "cuda", "cpu"]


def _resolve_backend(backend: str, tensor_device: torch.device) -> str:
    if backend == "auto":
        return "cuda" if tensor_device.type == "cuda" else "cpu"
    if backend == "cuda":
        resolve_device("cuda")
        if tensor_device.type != "cuda":
            raise SparsevidError("backend='cuda' needs the Gaussians on a CUDA device",
                                 fix="move the tensors to cuda (trainer device='cuda') or use backend='cpu'")
        return "cuda"
    if backend == "cpu":
        return "cpu"
    raise SparsevidError(f"unknown rasterizer backend {backend!r}", fix="use auto, cuda or cpu")


def rasterize(means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor, colors: Tensor,
              viewmats: Tensor, Ks: Tensor, width: int, height: int, sh_degree: int | None = None,
              near_plane: float = 0.01, far_plane: float = 1e10, backgrounds: Tensor | None = None,
              render_mode: Literal["RGB", "RGB+ED", "RGB+D"] = "RGB",
              rasterize_mode: Literal["classic", "antialiased"] = "classic",
              backend: Backend = "auto", tile_size: int = 16, eps2d: float = 0.3,
              absgrad: bool = False) -> tuple[Tensor, Tensor, dict]:
    """Render N Gaussians into C pinhole cameras.

    Args:
        means [N, 3], quats [N, 4] (w, x, y, z), scales [N, 3] linear, opacities [N] in 0..1,
        colors [N, K, 3] SH coefficients (with ``sh_degree``) or [N, 3] RGB,
        viewmats [C, 4, 4] world-to-camera (OpenCV axes), Ks [C, 3, 3], backgrounds [C, 3].
        backend: "cuda" = ``gsplat.rasterization`` (packed=False), "cpu" = ours, "auto" = by device.
        absgrad: also accumulate |d loss / d means2d| per pixel into ``meta["means2d"].absgrad``
            during the backward (gsplat's densification signal; both backends).

    Returns:
        render [C, H, W, 3] (RGB) or [C, H, W, 4] (RGB + depth), alpha [C, H, W, 1], meta with
        ``means2d`` [C, N, 2] (gradient holder for densification), ``radii`` [C, N, 2],
        ``depths``, ``conics``, ``opacities``, ``width``, ``height``, ``n_cameras``,
        ``gaussian_ids`` (None: unpacked), ``backend``.
    """
    if render_mode not in ("RGB", "RGB+ED", "RGB+D"):
        raise SparsevidError(f"unsupported render_mode {render_mode!r}", fix="use RGB, RGB+ED or RGB+D")
    if rasterize_mode not in ("classic", "antialiased"):
        raise SparsevidError(f"unsupported rasterize_mode {rasterize_mode!r}", fix="use classic or antialiased")
    which = _resolve_backend(backend, means.device)
    if which == "cuda":
        from gsplat import rasterization

        render, alpha, meta = rasterization(
            means, quats, scales, opacities, colors, viewmats, Ks, width, height,
            near_plane=near_plane, far_plane=far_plane, eps2d=eps2d, sh_degree=sh_degree,
            packed=False, tile_size=tile_size, backgrounds=backgrounds, render_mode=render_mode,
            rasterize_mode=rasterize_mode, absgrad=absgrad)
        meta["backend"] = "cuda"
        return render, alpha, meta
    return _rasterize_cpu(means, quats, scales, opacities, colors, viewmats, Ks, width, height,
                          sh_degree, near_plane, far_plane, backgrounds, render_mode,
                          rasterize_mode, tile_size, eps2d, absgrad)


def _rasterize_cpu(means, quats, scales, opacities, colors, viewmats, Ks, width, height, sh_degree,
                   near_plane, far_plane, backgrounds, render_mode, rasterize_mode, tile_size, eps2d,
                   absgrad=False):
    C = viewmats.shape[0]
    proj = cpu_raster.project_gaussians(
        means, quats, scales, opacities, viewmats, Ks, width, height, eps2d=eps2d,
        near_plane=near_plane, far_plane=far_plane, antialiased=rasterize_mode == "antialiased")
    N = means.shape[0]
    if sh_degree is None:
        if colors.dim() != 2:
            raise SparsevidError(f"colors {tuple(colors.shape)} need sh_degree",
                                 fix="pass sh_degree for [N, K, 3] SH coefficients, or [N, 3] RGB")
        cols = colors[None].expand(C, N, colors.shape[-1])
    else:
        campos = torch.linalg.inv(viewmats)[:, :3, 3]  # [C, 3]
        dirs = means[None, :, :] - campos[:, None, :]  # [C, N, 3]
        cols = cpu_raster.eval_sh(sh_degree, dirs, colors)  # [N, K, 3] broadcast over the cameras
        cols = torch.clamp_min(cols + 0.5, 0.0)
    bgs = backgrounds
    if render_mode in ("RGB+D", "RGB+ED"):
        cols = torch.cat([cols, proj.depths[..., None]], -1)
        if bgs is not None:
            bgs = torch.cat([bgs, bgs.new_zeros((C, 1))], -1)
    isect = cpu_raster.isect_tiles(proj.means2d, proj.radii, proj.depths, width, height, tile_size)
    render, alpha = cpu_raster.composite(proj.means2d, proj.conics, cols, proj.opacities, isect,
                                         width, height, backgrounds=bgs, absgrad=absgrad)
    if render_mode == "RGB+ED":
        render = torch.cat([render[..., :-1], render[..., -1:] / alpha.clamp_min(1e-10)], -1)
    meta = {"means2d": proj.means2d, "radii": proj.radii, "depths": proj.depths,
            "conics": proj.conics, "opacities": proj.opacities, "width": width, "height": height,
            "n_cameras": C, "gaussian_ids": None, "tile_size": tile_size, "n_isects": isect.num,
            "backend": "cpu"}
    return render, alpha, meta

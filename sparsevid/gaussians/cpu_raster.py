"""Our tiled 3D Gaussian rasterizer in pure PyTorch (forward and backward), gsplat's conventions.

Pipeline (mirrors gsplat's ``fully_fused_projection -> isect_tiles -> rasterize_to_pixels``):

1. :func:`project_gaussians` (autograd): world -> camera, 3D covariance from quat/scale, EWA
   projection with the 0.3 px low-pass (``eps2d``), optional antialiasing compensation,
   opacity-aware radii and gsplat's culling rules (near/far plane, det <= 0, off-screen).
2. :func:`isect_tiles` (no grad): every (tile, Gaussian) overlap of the radius box with the
   16x16 tile grid, sorted by tile then depth (flattened, like gsplat's ``isect_ids``).
3. :func:`composite` (hand-written backward, numba): per pixel, walk the tile's depth-sorted
   list front to back; the backward walks it back to front from each pixel's last contributing
   Gaussian (gsplat's ``rasterize_to_pixels`` forward/backward). Kernels, threading and the
   race-free gradient reduction are in :mod:`sparsevid.gaussians.cpu_kernels` (imported and
   compiled on the first CPU rasterization, cached on disk).

Rules copied from gsplat 1.5.3 (``RasterizeToPixels3DGSFwd.cu``): pixel centres at +0.5,
``alpha = min(0.999, opacity * exp(-sigma))``, skip when ``sigma < 0`` or ``alpha < 1/255``,
stop (exclusive) when ``T * (1 - alpha) <= 1e-4``; opacity gradient ``exp(-sigma) * dL/dalpha``
even where alpha is clamped (as gsplat).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

ALPHA_THRESHOLD = 1.0 / 255.0
ALPHA_MAX = 0.999
T_MIN = 1e-4

# SH basis constants (real spherical harmonics, as in 3DGS / gsplat)
_C0 = 0.28209479177387814
_C1 = 0.4886025119029199
_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792,
       0.5462742152960396)
_C3 = (-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154,
       -0.4570457994644658, 1.445305721320277, -0.5900435899266435)


# ----------------------------------------------------------------------------------------
# geometry
# ----------------------------------------------------------------------------------------
def quat_to_rotmat(quats: Tensor) -> Tensor:
    """quats [..., 4] (w, x, y, z; normalised here) -> rotation matrices [..., 3, 3]."""
    q = quats / quats.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    w, x, y, z = q.unbind(-1)
    r = torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
                     2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
                     2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1)
    return r.reshape(q.shape[:-1] + (3, 3))


def covariance_3d(quats: Tensor, scales: Tensor) -> Tensor:
    """quats [N, 4], linear scales [N, 3] -> world covariances [N, 3, 3] = R S S R^T."""
    m = quat_to_rotmat(quats) * scales[:, None, :]
    return m @ m.transpose(-1, -2)


def sh_basis(degree: int, dirs: Tensor) -> Tensor:
    """Real SH basis functions of ``degree`` (1..3) along unit-normalised ``dirs [..., 3]`` ->
    ``[..., (degree + 1)^2]`` (gsplat's sign and ordering conventions)."""
    d = dirs / dirs.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    x, y, z = (d[..., i:i + 1] for i in range(3))
    terms = [torch.full_like(x, _C0), -_C1 * y, _C1 * z, -_C1 * x]
    if degree >= 2:
        xx, yy, zz, xy, yz, xz = x * x, y * y, z * z, x * y, y * z, x * z
        terms += [_C2[0] * xy, _C2[1] * yz, _C2[2] * (2 * zz - xx - yy), _C2[3] * xz, _C2[4] * (xx - yy)]
        if degree >= 3:
            terms += [_C3[0] * y * (3 * xx - yy), _C3[1] * xy * z, _C3[2] * y * (4 * zz - xx - yy),
                      _C3[3] * z * (2 * zz - 3 * xx - 3 * yy), _C3[4] * x * (4 * zz - xx - yy),
                      _C3[5] * z * (xx - yy), _C3[6] * x * (xx - 3 * yy)]
    return torch.cat(terms, -1)


def eval_sh(degree: int, dirs: Tensor, coeffs: Tensor) -> Tensor:
    """Evaluate real SH of ``degree`` (0..3) along unit-normalised ``dirs [..., 3]`` with
    ``coeffs [..., K, 3]`` (K >= (degree+1)^2; leading dims broadcast against those of ``dirs``, so
    ``[N, K, 3]`` serves ``[C, N, 3]`` directions) -> colours [..., 3] (without the +0.5 offset).

    One batched product of the basis (:func:`sh_basis`) with the coefficients: its backward is
    one product too, where slicing the coefficients one by one would make autograd fill a
    zero tensor of the coefficients' full size per slice (the CPU trainer's largest overhead
    outside the rasterizer)."""
    if degree < 1:
        shape = torch.broadcast_shapes(dirs.shape[:-1], coeffs.shape[:-2]) + coeffs.shape[-1:]
        return (_C0 * coeffs[..., 0, :]).expand(shape)
    basis = sh_basis(degree, dirs)
    k = basis.shape[-1]
    return torch.matmul(basis.unsqueeze(-2), coeffs[..., :k, :]).squeeze(-2)


@dataclass
class Projection:
    """Per-camera projected Gaussians (C cameras, N Gaussians).

    Attributes:
        means2d: [C, N, 2] pixel coordinates (differentiable).
        conics: [C, N, 3] inverse 2D covariance (a, b, c) (differentiable).
        depths: [C, N] z-depth in the camera frame (differentiable).
        opacities: [C, N] opacities, times the compensation in antialiased mode (differentiable).
        radii: [C, N, 2] int32 box half-sizes in pixels; 0 = culled.
        compensations: [C, N] or None.
    """

    means2d: Tensor
    conics: Tensor
    depths: Tensor
    opacities: Tensor
    radii: Tensor
    compensations: Tensor | None


def project_gaussians(means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor,
                      viewmats: Tensor, Ks: Tensor, width: int, height: int, eps2d: float = 0.3,
                      near_plane: float = 0.01, far_plane: float = 1e10, radius_clip: float = 0.0,
                      antialiased: bool = False) -> Projection:
    """EWA projection of N Gaussians into C pinhole cameras (gsplat's ``fully_fused_projection``,
    unpacked). Inputs: means [N, 3], quats [N, 4], scales [N, 3] (linear), opacities [N],
    viewmats [C, 4, 4] (world-to-camera), Ks [C, 3, 3]."""
    covars = covariance_3d(quats, scales)  # [N, 3, 3]
    R, t = viewmats[:, :3, :3], viewmats[:, :3, 3]  # [C, 3, 3], [C, 3]
    means_c = torch.einsum("cij,nj->cni", R, means) + t[:, None, :]  # [C, N, 3]
    covars_c = torch.einsum("cij,njk,clk->cnil", R, covars, R)  # [C, N, 3, 3]
    tx, ty, tz = means_c.unbind(-1)
    depth_ok = (tz >= near_plane) & (tz <= far_plane)
    tz_s = torch.where(depth_ok, tz, torch.ones_like(tz))  # keeps culled Gaussians NaN-free
    fx, fy = Ks[:, 0, 0, None], Ks[:, 1, 1, None]
    cx, cy = Ks[:, 0, 2, None], Ks[:, 1, 2, None]
    tan_x, tan_y = 0.5 * width / fx, 0.5 * height / fy
    lim_xp, lim_xn = (width - cx) / fx + 0.3 * tan_x, cx / fx + 0.3 * tan_x
    lim_yp, lim_yn = (height - cy) / fy + 0.3 * tan_y, cy / fy + 0.3 * tan_y
    txc = tz_s * torch.maximum(torch.minimum(tx / tz_s, lim_xp), -lim_xn)
    tyc = tz_s * torch.maximum(torch.minimum(ty / tz_s, lim_yp), -lim_yn)
    zero = torch.zeros_like(tz_s)
    J = torch.stack([fx / tz_s, zero, -fx * txc / tz_s ** 2,
                     zero, fy / tz_s, -fy * tyc / tz_s ** 2], -1).reshape(tz.shape + (2, 3))
    cov2d = J @ covars_c @ J.transpose(-1, -2)  # [C, N, 2, 2]
    means2d = torch.stack([fx * tx / tz_s + cx, fy * ty / tz_s + cy], -1)  # [C, N, 2]

    a, b, c = cov2d[..., 0, 0], 0.5 * (cov2d[..., 0, 1] + cov2d[..., 1, 0]), cov2d[..., 1, 1]
    det_orig = a * c - b * b
    a, c = a + eps2d, c + eps2d
    det = a * c - b * b
    det_s = torch.where(det > 0, det, torch.ones_like(det))
    conics = torch.stack([c / det_s, -b / det_s, a / det_s], -1)  # [C, N, 3]
    comp = torch.sqrt((det_orig / det_s).clamp_min(0.0)) if antialiased else None
    opac = opacities[None, :].expand(tz.shape)
    if comp is not None:
        opac = opac * comp

    with torch.no_grad():
        op = opac.detach()
        valid = depth_ok & (det > 0) & (op >= ALPHA_THRESHOLD)
        extend = torch.sqrt(2.0 * torch.log((op / ALPHA_THRESHOLD).clamp_min(1.0))).clamp_max(3.33)
        rx = torch.ceil(extend * torch.sqrt(a.detach().clamp_min(0)))
        ry = torch.ceil(extend * torch.sqrt(c.detach().clamp_min(0)))
        valid &= ~((rx <= radius_clip) & (ry <= radius_clip))
        mx, my = means2d[..., 0].detach(), means2d[..., 1].detach()
        valid &= ~((mx + rx <= 0) | (mx - rx >= width) | (my + ry <= 0) | (my - ry >= height))
        radii = (torch.stack([rx, ry], -1) * valid[..., None]).to(torch.int32)
    return Projection(means2d=means2d, conics=conics, depths=tz, opacities=opac, radii=radii,
                      compensations=comp)


# ----------------------------------------------------------------------------------------
# tile intersection
# ----------------------------------------------------------------------------------------
@dataclass
class Intersections:
    """Sorted (tile, Gaussian) pairs of C images.

    Attributes:
        tile_ids: [M] int64 global tile id (image * tiles_per_image + ty * tile_w + tx), sorted.
        flat_ids: [M] int64 index into the flattened [C * N] Gaussians, depth-sorted per tile.
        counts: [C * tiles_per_image] int64 intersections per tile.
        offsets: [C * tiles_per_image] int64 first intersection of each tile.
    """

    tile_ids: Tensor
    flat_ids: Tensor
    counts: Tensor
    offsets: Tensor
    tile_size: int
    tile_w: int
    tile_h: int

    @property
    def num(self) -> int:
        return int(self.flat_ids.numel())


@torch.no_grad()
def isect_tiles(means2d: Tensor, radii: Tensor, depths: Tensor, width: int, height: int,
                tile_size: int = 16) -> Intersections:
    """All overlaps of each Gaussian's radius box with the tile grid (gsplat's ``isect_tiles`` +
    ``isect_offset_encode``). means2d [C, N, 2], radii [C, N, 2] int, depths [C, N]."""
    C, N = depths.shape
    tw, th = math.ceil(width / tile_size), math.ceil(height / tile_size)
    T = tw * th
    dev = means2d.device
    m = means2d.detach().reshape(-1, 2).float()
    r = radii.reshape(-1, 2).float()
    live = (r > 0).all(-1)
    ids = torch.nonzero(live).squeeze(1)
    m, r = m[ids], r[ids]
    tmin = torch.floor((m - r) / tile_size).clamp_min(0).long()
    tmin[:, 0].clamp_(max=tw)
    tmin[:, 1].clamp_(max=th)
    tmax = torch.ceil((m + r) / tile_size).clamp_min(0).long()
    tmax[:, 0].clamp_(max=tw)
    tmax[:, 1].clamp_(max=th)
    nx, ny = (tmax - tmin).unbind(-1)
    cnt = nx * ny
    M = int(cnt.sum())
    rep = torch.repeat_interleave(torch.arange(ids.numel(), device=dev), cnt)
    start = torch.cumsum(cnt, 0) - cnt
    local = torch.arange(M, device=dev) - start[rep]
    nxr = nx[rep]
    tx = tmin[rep, 0] + local % nxr
    ty = tmin[rep, 1] + torch.div(local, nxr, rounding_mode="floor")
    flat = ids[rep]
    img = torch.div(flat, N, rounding_mode="floor")
    tile = img * T + ty * tw + tx
    # depth rank of every Gaussian (global order is fine: ties across images never meet)
    order = torch.argsort(depths.detach().reshape(-1), stable=True)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(order.numel(), device=dev)
    key = tile * (C * N) + rank[flat]
    key, perm = torch.sort(key)
    tile, flat = tile[perm], flat[perm]
    counts = torch.bincount(tile, minlength=C * T)
    offsets = torch.cumsum(counts, 0) - counts
    return Intersections(tile_ids=tile, flat_ids=flat, counts=counts, offsets=offsets,
                         tile_size=tile_size, tile_w=tw, tile_h=th)


# ----------------------------------------------------------------------------------------
# compositing (numba kernels in cpu_kernels.py, imported on first use)
# ----------------------------------------------------------------------------------------
def _kernels():
    """The numba kernel module (lazy: importing numba costs ~0.5 s, compiling ~10 s once)."""
    from sparsevid.gaussians import cpu_kernels

    return cpu_kernels


def _np(t: Tensor):
    """Contiguous numpy view of a CPU tensor (no copy when already contiguous)."""
    return t.detach().contiguous().numpy()


class _RasterizePixels(torch.autograd.Function):
    """Per-pixel front-to-back compositing of the sorted intersections (numba forward and
    backward, see :mod:`sparsevid.gaussians.cpu_kernels`).

    Inputs: means2d [C, N, 2], conics [C, N, 3], colors [C, N, D], opacities [C, N] (one float
    dtype), isect, width, height, absgrad (bool: store sum_pixels |dL/dmeans2d| as
    ``means2d.absgrad`` [C, N, 2] in the backward, like gsplat).
    Outputs: colour [C, H, W, D] without background, final transmittance [C, H, W]."""

    @staticmethod
    def forward(ctx, means2d: Tensor, conics: Tensor, colors: Tensor, opacities: Tensor,
                isect: Intersections, width: int, height: int, absgrad: bool):
        kn = _kernels()
        C, N, D = colors.shape
        kn.configure_threads(torch.get_num_threads(), C * width * height)
        dtype = colors.dtype
        args = (_np(means2d.reshape(C * N, 2).to(dtype)), _np(conics.reshape(C * N, 3).to(dtype)),
                _np(colors.reshape(C * N, D)), _np(opacities.reshape(C * N).to(dtype)),
                _np(isect.offsets), _np(isect.counts), _np(isect.flat_ids), isect.tile_size,
                isect.tile_w, isect.tile_h, width, height, kn.make_consts(_np(colors).dtype))
        img = torch.zeros((C, height, width, D), dtype=dtype)
        t_fin = torch.ones((C, height, width), dtype=dtype)
        last = torch.full((C, height, width), -1, dtype=torch.int64)
        kn.rasterize_fwd(*args, img.numpy(), t_fin.numpy(), last.numpy())
        ctx.args, ctx.shape = args, (C, N, D)
        ctx.absgrad_target = means2d if absgrad else None
        ctx.save_for_backward(t_fin, last)
        return img, t_fin

    @staticmethod
    def backward(ctx, g_img: Tensor, g_t: Tensor):
        kn = _kernels()
        t_fin, last = ctx.saved_tensors
        kn.configure_threads(torch.get_num_threads(), t_fin.numel())
        C, N, D = ctx.shape
        args = ctx.args
        dtype = t_fin.dtype
        M = args[6].shape[0]
        g_img = torch.zeros_like(t_fin)[..., None].expand(-1, -1, -1, D) if g_img is None else g_img
        g_t = torch.zeros_like(t_fin) if g_t is None else g_t
        v_isect = torch.zeros((M, 6 + D), dtype=dtype)
        want_abs = ctx.absgrad_target is not None
        v_abs = torch.zeros((M if want_abs else 0, 2), dtype=dtype)
        kn.rasterize_bwd(*args, _np(t_fin), _np(last), _np(g_img.to(dtype)), _np(g_t.to(dtype)),
                         v_isect.numpy(), v_abs.numpy())
        v = torch.zeros((C * N, 6 + D), dtype=dtype)
        kn.reduce_by_gaussian(args[6], v_isect.numpy(), v.numpy())
        if want_abs:
            va = torch.zeros((C * N, 2), dtype=dtype)
            kn.reduce_by_gaussian(args[6], v_abs.numpy(), va.numpy())
            ctx.absgrad_target.absgrad = va.reshape(C, N, 2)
        v_means = v[:, kn.GRAD_MX:kn.GRAD_MY + 1].reshape(C, N, 2)
        v_conics = v[:, kn.GRAD_A:kn.GRAD_C + 1].reshape(C, N, 3)
        v_opac = v[:, kn.GRAD_OPAC].reshape(C, N)
        v_cols = v[:, kn.GRAD_COL0:].reshape(C, N, D)
        return v_means, v_conics, v_cols, v_opac, None, None, None, None


def composite(means2d: Tensor, conics: Tensor, colors: Tensor, opacities: Tensor,
              isect: Intersections, width: int, height: int, backgrounds: Tensor | None = None,
              absgrad: bool = False) -> tuple[Tensor, Tensor]:
    """Rasterize projected Gaussians (gsplat's ``rasterize_to_pixels``), numba kernels.

    Args:
        means2d [C, N, 2], conics [C, N, 3], colors [C, N, D] (any D), opacities [C, N]; CPU
            tensors; computed in ``colors``' dtype (float32, or float64 for exact tests).
        isect: from :func:`isect_tiles`.
        backgrounds: [C, D] or None.
        absgrad: in the backward, also store ``means2d.absgrad`` [C, N, 2] = sum over pixels of
            |d loss / d means2d| (gsplat's absgrad densification signal).

    Returns:
        render [C, H, W, D], alpha [C, H, W, 1].
    """
    img, tfin = _RasterizePixels.apply(means2d, conics, colors, opacities, isect, width, height,
                                       absgrad)
    tfin = tfin[..., None]
    if backgrounds is not None:
        img = img + tfin * backgrounds[:, None, None, :]
    return img, 1.0 - tfin


# ----------------------------------------------------------------------------------------
# the brute-force reference (tests only: every pixel x every Gaussian, same rules)
# ----------------------------------------------------------------------------------------
def composite_dense_reference(means2d: Tensor, conics: Tensor, colors: Tensor, opacities: Tensor,
                              radii: Tensor, depths: Tensor, width: int, height: int,
                              backgrounds: Tensor | None = None,
                              tile_size: int = 16) -> tuple[Tensor, Tensor]:
    """Slow, obviously-correct compositing with plain autograd (a Python loop over the
    depth-sorted Gaussians, vectorised over all pixels). A Gaussian touches a pixel iff the
    pixel's tile overlaps its radius box (gsplat's tile rule). Shapes as :func:`composite`."""
    C, N, D = colors.shape
    ys, xs = torch.meshgrid(torch.arange(height, dtype=means2d.dtype),
                            torch.arange(width, dtype=means2d.dtype), indexing="ij")
    px, py = xs + 0.5, ys + 0.5
    tx, ty = (xs // tile_size).long(), (ys // tile_size).long()
    imgs, alphas = [], []
    for ci in range(C):
        T = torch.ones(height, width, dtype=means2d.dtype)
        acc = torch.zeros(height, width, D, dtype=means2d.dtype)
        done = torch.zeros(height, width, dtype=torch.bool)
        for n in torch.argsort(depths[ci].detach(), stable=True).tolist():
            r = radii[ci, n].float()
            if (r <= 0).any():
                continue
            mx, my = means2d[ci, n, 0], means2d[ci, n, 1]
            tmin_x = int(torch.floor((mx.detach() - r[0]) / tile_size).clamp_min(0))
            tmax_x = int(torch.ceil((mx.detach() + r[0]) / tile_size).clamp_min(0))
            tmin_y = int(torch.floor((my.detach() - r[1]) / tile_size).clamp_min(0))
            tmax_y = int(torch.ceil((my.detach() + r[1]) / tile_size).clamp_min(0))
            inbox = (tx >= tmin_x) & (tx < tmax_x) & (ty >= tmin_y) & (ty < tmax_y)
            a, b, c = conics[ci, n]
            dx, dy = mx - px, my - py
            sigma = 0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy
            alpha = torch.clamp_max(opacities[ci, n] * torch.exp(-sigma), ALPHA_MAX)
            use = inbox & (sigma >= 0) & (alpha >= ALPHA_THRESHOLD) & ~done
            next_t = T * (1 - alpha)
            stop = use & (next_t <= T_MIN)
            done = done | stop
            use = use & ~stop
            alpha = torch.where(use, alpha, torch.zeros_like(alpha))
            acc = acc + (alpha * T)[..., None] * colors[ci, n]
            T = T * (1 - alpha)
        if backgrounds is not None:
            acc = acc + T[..., None] * backgrounds[ci]
        imgs.append(acc)
        alphas.append(1 - T)
    return torch.stack(imgs), torch.stack(alphas)[..., None]

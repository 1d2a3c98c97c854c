"""Our tiled CPU rasterizer vs a brute-force dense reference (forward + gradients), gradcheck,
SH, the rasterize() front end and device errors."""
from __future__ import annotations

import pytest
import torch

from sparsevid.errors import SparsevidError
from sparsevid.gaussians import cpu_raster as cr
from sparsevid.gaussians.rasterize import rasterize, resolve_device


def _scene(n: int, w: int, h: int, dtype=torch.float32, seed: int = 0, cams: int = 2):
    g = torch.Generator().manual_seed(seed)
    means = (torch.rand(n, 3, generator=g, dtype=dtype) - 0.5) * torch.tensor([2.0, 1.5, 1.0], dtype=dtype)
    means = means + torch.tensor([0.0, 0.0, 3.0], dtype=dtype)
    quats = torch.randn(n, 4, generator=g, dtype=dtype)
    scales = torch.rand(n, 3, generator=g, dtype=dtype) * 0.15 + 0.02
    opac = torch.rand(n, generator=g, dtype=dtype) * 0.8 + 0.1
    cols = torch.rand(n, 3, generator=g, dtype=dtype)
    vm = torch.eye(4, dtype=dtype)[None].repeat(cams, 1, 1)
    vm[1:, 0, 3] = 0.2
    f = 0.8 * w
    K = torch.tensor([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1]], dtype=dtype)[None].repeat(cams, 1, 1)
    bg = torch.rand(cams, 4, generator=g, dtype=dtype)
    return means, quats, scales, opac, cols, vm, K, bg


def _render_both(dtype, w=40, h=30, n=60, antialiased=False):
    means, quats, scales, opac, cols, vm, K, bg = _scene(n, w, h, dtype)
    ps = [t.clone().requires_grad_(True) for t in (means, quats, scales, opac, cols)]
    wts = torch.rand(2, h, w, 4, generator=torch.Generator().manual_seed(1), dtype=dtype)
    results = []
    for which in ("tiled", "dense"):
        for p in ps:
            p.grad = None
        pr = cr.project_gaussians(ps[0], ps[1], ps[2], ps[3], vm, K, w, h, antialiased=antialiased)
        c = torch.cat([ps[4][None].expand(2, -1, -1), pr.depths[..., None]], -1)
        if which == "tiled":
            isect = cr.isect_tiles(pr.means2d, pr.radii, pr.depths, w, h, 16)
            img, a = cr.composite(pr.means2d, pr.conics, c, pr.opacities, isect, w, h, bg)
        else:
            img, a = cr.composite_dense_reference(pr.means2d, pr.conics, c, pr.opacities, pr.radii,
                                                  pr.depths, w, h, bg)
        ((img * wts).sum() + 3 * a.sum()).backward()
        results.append((img.detach(), a.detach(), [p.grad.clone() for p in ps]))
    return results


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 2e-4), (torch.float64, 1e-10)])
def test_tiled_matches_dense_reference(dtype, tol):
    (img1, a1, g1), (img2, a2, g2) = _render_both(dtype)
    assert a2.max() > 0.5  # the scene covers the image
    assert (img1 - img2).abs().max() < tol
    assert (a1 - a2).abs().max() < tol
    for x, y in zip(g1, g2):
        assert y.abs().sum() > 0
        assert (x - y).norm() / y.norm() < (1e-4 if dtype == torch.float32 else 1e-9)


def test_tiled_matches_dense_antialiased():
    (img1, a1, g1), (img2, a2, g2) = _render_both(torch.float64, antialiased=True)
    assert (img1 - img2).abs().max() < 1e-10
    for x, y in zip(g1, g2):
        assert (x - y).norm() / y.norm() < 1e-9


def test_early_termination_and_skip_rules():
    """Many opaque Gaussians stacked on one pixel: compositing must stop at T <= 1e-4 like gsplat."""
    n, w, h = 30, 16, 16
    dtype = torch.float64
    means2d = torch.full((1, n, 2), 8.0, dtype=dtype) + torch.linspace(0, 0.3, n, dtype=dtype)[None, :, None]
    conics = torch.tensor([0.05, 0.0, 0.05], dtype=dtype).expand(1, n, 3).clone()
    opac = torch.full((1, n), 0.6, dtype=dtype)
    cols = torch.rand(1, n, 3, generator=torch.Generator().manual_seed(0), dtype=dtype)
    depths = torch.arange(n, dtype=dtype)[None] + 1
    radii = torch.full((1, n, 2), 10, dtype=torch.int32)
    isect = cr.isect_tiles(means2d, radii, depths, w, h, 16)
    img, a = cr.composite(means2d, conics, cols, opac, isect, w, h)
    ref, ra = cr.composite_dense_reference(means2d, conics, cols, opac, radii, depths, w, h)
    assert (img - ref).abs().max() < 1e-12
    # transmittance after k layers of alpha ~0.6 is 0.4^k: 0.4^10 ~ 1e-4, so ~10 layers are used
    assert 1 - a[0, 8, 8, 0] > 1e-4 * 0.4 and 1 - a[0, 8, 8, 0] <= 1e-4 / 0.4


def test_gradcheck_float64():
    w, h, n = 20, 18, 6
    means, quats, scales, opac, cols, vm, K, bg = _scene(n, w, h, torch.float64, seed=3, cams=1)
    scales = scales * 2

    def fn(m, q, s, o, c):
        img, a, _ = rasterize(m, q, s, o, c, vm, K, w, h, backgrounds=bg[:, :3], backend="cpu")
        return img, a

    inputs = tuple(t.clone().requires_grad_(True) for t in (means, quats, scales, opac, cols))
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-4)


def test_rasterize_sh_modes_and_depth():
    w, h, n = 32, 24, 40
    means, quats, scales, opac, cols, vm, K, _ = _scene(n, w, h)
    sh = torch.zeros(n, 16, 3)
    sh[:, 0] = (cols - 0.5) / cr._C0
    rgb, a, meta = rasterize(means, quats, scales, opac, cols, vm, K, w, h, backend="cpu")
    rgb_sh, _, _ = rasterize(means, quats, scales, opac, sh, vm, K, w, h, sh_degree=3, backend="cpu")
    assert rgb.shape == (2, h, w, 3) and a.shape == (2, h, w, 1)
    assert torch.allclose(rgb, rgb_sh, atol=1e-5)
    out, a2, _ = rasterize(means, quats, scales, opac, cols, vm, K, w, h, render_mode="RGB+ED", backend="cpu")
    assert out.shape == (2, h, w, 4)
    d = out[..., 3][a2[..., 0] > 0.5]
    assert d.min() > 2.0 and d.max() < 4.0  # expected depth lies within the Gaussians' depth range
    assert meta["means2d"].shape == (2, n, 2) and meta["radii"].shape == (2, n, 2)


def test_sh_direction_dependence():
    dirs = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0]])
    coeffs = torch.zeros(2, 4, 3)
    coeffs[:, 2] = 1.0  # the z band
    out = cr.eval_sh(1, dirs, coeffs)
    assert torch.allclose(out[0], torch.full((3,), cr._C1)) and torch.allclose(out[1], torch.full((3,), -cr._C1))


def test_cuda_without_gpu_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SparsevidError, match="--device cpu"):
        resolve_device("cuda")
    means, quats, scales, opac, cols, vm, K, _ = _scene(4, 16, 16)
    with pytest.raises(SparsevidError, match="CUDA"):
        rasterize(means, quats, scales, opac, cols, vm, K, 16, 16, backend="cuda")
    assert resolve_device("auto").type == "cpu"


# ---- numba kernels (sparsevid/gaussians/cpu_kernels.py) ------------------------------------
def _projected(n: int, w: int, h: int, dtype, channels: int, seed: int = 0):
    means, quats, scales, opac, _, vm, K, _ = _scene(n, w, h, dtype, seed=seed, cams=2)
    pr = cr.project_gaussians(means, quats, scales, opac, vm, K, w, h)
    cols = torch.rand(2, n, channels, generator=torch.Generator().manual_seed(seed + 7), dtype=dtype)
    leaves = [pr.means2d.detach().clone(), pr.conics.detach().clone(), cols,
              pr.opacities.detach().clone()]
    return [t.requires_grad_(True) for t in leaves], pr.radii, pr.depths.detach()


@pytest.mark.parametrize("channels", [1, 5])
def test_kernels_any_channel_count_match_dense(channels):
    w, h, n, dtype = 36, 34, 50, torch.float64
    (m2, cn, col, op), radii, depths = _projected(n, w, h, dtype, channels)
    bg = torch.rand(2, channels, generator=torch.Generator().manual_seed(2), dtype=dtype)
    wts = torch.randn(2, h, w, channels, generator=torch.Generator().manual_seed(3), dtype=dtype)
    outs = []
    for which in ("kernel", "dense"):
        for t in (m2, cn, col, op):
            t.grad = None
        if which == "kernel":
            isect = cr.isect_tiles(m2, radii, depths, w, h, 16)
            img, a = cr.composite(m2, cn, col, op, isect, w, h, bg)
        else:
            img, a = cr.composite_dense_reference(m2, cn, col, op, radii, depths, w, h, bg)
        ((img * wts).sum() - 2 * a.sum()).backward()
        outs.append((img.detach(), [t.grad.clone() for t in (m2, cn, col, op)]))
    (i1, g1), (i2, g2) = outs
    assert i1.shape == (2, h, w, channels)
    assert (i1 - i2).abs().max() < 1e-10
    for x, y in zip(g1, g2):
        assert y.abs().sum() > 0 and (x - y).norm() / y.norm() < 1e-9


def test_absgrad_is_sum_of_per_pixel_abs_gradients():
    w, h, n, dtype = 20, 17, 8, torch.float64
    (m2, cn, col, op), radii, depths = _projected(n, w, h, dtype, 3, seed=4)
    isect = cr.isect_tiles(m2, radii, depths, w, h, 16)
    wts = torch.randn(2, h, w, 3, generator=torch.Generator().manual_seed(5), dtype=dtype)
    img, _ = cr.composite(m2, cn, col, op, isect, w, h, absgrad=True)
    (img * wts).sum().backward()
    absgrad, grad = m2.absgrad.clone(), m2.grad.clone()
    # brute force: one backward per pixel
    ref = torch.zeros_like(m2)
    img_d, _ = cr.composite_dense_reference(m2, cn, col, op, radii, depths, w, h)
    per_pix = (img_d * wts).sum(-1)  # [2, h, w]
    for ci in range(2):
        for y in range(h):
            for x in range(w):
                g, = torch.autograd.grad(per_pix[ci, y, x], m2, retain_graph=True)
                ref += g.abs()
    assert absgrad.shape == m2.shape and ref.abs().sum() > 0
    assert torch.allclose(absgrad, ref, rtol=1e-9, atol=1e-12)
    assert (absgrad >= grad.abs() - 1e-12).all()


def test_kernels_deterministic_across_thread_counts(monkeypatch):
    from sparsevid.gaussians import cpu_kernels

    monkeypatch.setattr(cpu_kernels, "SMALL_IMAGE_PIXELS", 0)  # let the kernels use the pool
    w, h, n = 70, 50, 300
    results = []
    threads = torch.get_num_threads()
    try:
        for nt in (1, 2):
            torch.set_num_threads(nt)
            (m2, cn, col, op), radii, depths = _projected(n, w, h, torch.float32, 4, seed=6)
            isect = cr.isect_tiles(m2, radii, depths, w, h, 16)
            img, a = cr.composite(m2, cn, col, op, isect, w, h)
            (img.square().sum() + a.sum()).backward()
            results.append([img.detach(), a.detach(), m2.grad, cn.grad, col.grad, op.grad])
    finally:
        torch.set_num_threads(threads)
    for x, y in zip(*results):
        assert torch.equal(x, y)  # bitwise: per-intersection gradients reduced serially


def test_nothing_visible_gives_background_and_zero_gradients():
    w, h = 24, 20
    means, quats, scales, opac, cols, vm, K, bg = _scene(10, w, h, cams=1)
    means = means - torch.tensor([0.0, 0.0, 10.0])  # all behind the camera
    ps = [t.clone().requires_grad_(True) for t in (means, quats, scales, opac, cols)]
    img, a, meta = rasterize(*ps, vm, K, w, h, backgrounds=bg[:, :3], backend="cpu")
    assert meta["n_isects"] == 0
    assert torch.equal(img, bg[:, None, None, :3].expand(1, h, w, 3)) and torch.equal(a, torch.zeros(1, h, w, 1))
    (img.sum() + a.sum()).backward()
    for p in ps:
        assert p.grad is None or not p.grad.abs().any()


def test_jit_falls_back_when_no_cache_location(monkeypatch):
    """numba raises at decoration time when no cache dir is writable; we then compile uncached."""
    import numpy as np

    from sparsevid.gaussians import cpu_kernels

    real = cpu_kernels.njit
    calls = []

    def fake_njit(**kw):
        calls.append(kw["cache"])
        if kw["cache"]:
            raise RuntimeError("cannot cache function 'f': no locator available for file 'x.py'")
        return real(**kw)

    monkeypatch.setattr(cpu_kernels, "njit", fake_njit)

    @cpu_kernels._jit()
    def add_one(x):
        return x + 1

    assert calls == [True, False] and add_one(np.float32(1.0)) == 2.0


def test_kernels_are_not_imported_with_the_package():
    import subprocess
    import sys

    code = ("import sys, sparsevid.gaussians.rasterize, sparsevid.gaussians.cpu_raster; "
            "assert 'numba' not in sys.modules and 'sparsevid.gaussians.cpu_kernels' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_kernel_footprints_keep_elongated_saturating_and_odd_gaussians_exact():
    """The kernels visit each Gaussian over its footprint box only; thin rotated ellipses, opaque
    stacks that saturate pixels early (tile early exit) and a conic that is not positive definite
    (whole tile) must give the dense per-pixel result."""
    g = torch.Generator().manual_seed(11)
    w, h, n, dtype = 40, 36, 60, torch.float64
    m2 = torch.rand(1, n, 2, generator=g, dtype=dtype) * torch.tensor([w, h], dtype=dtype)
    ang = torch.rand(n, generator=g, dtype=dtype) * 3.1416
    sx = 0.3 + 12 * torch.rand(n, generator=g, dtype=dtype)  # std devs in px, up to 40:1 elongation
    sy = 0.3 + 0.5 * torch.rand(n, generator=g, dtype=dtype)
    c, s = torch.cos(ang), torch.sin(ang)
    cov_xx = c * c * sx ** 2 + s * s * sy ** 2
    cov_yy = s * s * sx ** 2 + c * c * sy ** 2
    cov_xy = c * s * (sx ** 2 - sy ** 2)
    det = cov_xx * cov_yy - cov_xy ** 2
    cn = torch.stack([cov_yy / det, -cov_xy / det, cov_xx / det], -1)[None]
    cn[0, 0] = torch.tensor([0.5, 1.0, 0.5], dtype=dtype)  # not positive definite
    op = (0.5 + 0.5 * torch.rand(1, n, generator=g, dtype=dtype)).clamp_max(0.999)
    col = torch.rand(1, n, 3, generator=g, dtype=dtype)
    r = torch.ceil(3.33 * torch.stack([cov_xx.sqrt(), cov_yy.sqrt()], -1))[None].to(torch.int32)
    r[0, 0] = torch.tensor([6, 6], dtype=torch.int32)
    depths = torch.rand(1, n, generator=g, dtype=dtype)
    leaves = [t.clone().requires_grad_(True) for t in (m2, cn, col, op)]
    wts = torch.randn(1, h, w, 3, generator=torch.Generator().manual_seed(3), dtype=dtype)
    outs = []
    for which in ("kernel", "dense"):
        for t in leaves:
            t.grad = None
        if which == "kernel":
            img, a = cr.composite(*leaves, cr.isect_tiles(leaves[0], r, depths, w, h, 16), w, h)
        else:
            img, a = cr.composite_dense_reference(*leaves, r, depths, w, h)
        ((img * wts).sum() - a.sum()).backward()
        outs.append((img.detach(), a.detach(), [t.grad.clone() for t in leaves]))
    (i1, a1, g1), (i2, a2, g2) = outs
    assert (a2 > 0.99).any()  # some pixels saturate (the early exit is exercised)
    assert (i1 - i2).abs().max() < 1e-10 and (a1 - a2).abs().max() < 1e-10
    for x, y in zip(g1, g2):
        assert y.abs().sum() > 0 and (x - y).norm() / y.norm() < 1e-9

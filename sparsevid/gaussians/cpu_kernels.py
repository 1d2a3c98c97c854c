"""numba kernels for the CPU rasterizer's per-pixel compositing (gsplat's ``rasterize_to_pixels``).

Imported lazily by :mod:`sparsevid.gaussians.cpu_raster` on the first CPU rasterization (never at
``import sparsevid``). Functions are compiled on first call per dtype (float32 for training,
float64 for exact tests) and cached on disk (``cache=True``: next to this file in
``__pycache__``, else numba's user-wide cache dir, else -- when nothing is writable -- not cached).

Rules (gsplat 1.5.3 ``RasterizeToPixels3DGSFwd/Bwd.cu``): pixel centres at +0.5,
``sigma = 0.5 (a dx^2 + c dy^2) + b dx dy`` with ``d = mean2d - pixel``, skip ``sigma < 0``,
``alpha = min(0.999, opacity * exp(-sigma))``, skip ``alpha < 1/255``, stop *before* a Gaussian
whose ``T * (1 - alpha) <= 1e-4``. The forward stores per pixel the final transmittance and the
index of the last contributing intersection (``last_ids``); the backward walks the tile's list
back to front from there, recovering ``T`` by division by ``1 - alpha`` like gsplat. Opacity
gradient ``exp(-sigma) dL/dalpha`` even where alpha is clamped; no sigma gradient there.

Race-free gradient accumulation: the work is partitioned by tile (``prange`` over tiles), and
every intersection (tile, Gaussian) belongs to exactly one tile, so the backward writes
per-*intersection* gradients ``[M, K]`` with no two threads touching the same row. A serial pass
(:func:`reduce_by_gaussian`) then sums them into per-Gaussian gradients in intersection order,
which makes the result deterministic and independent of the thread count (unlike per-thread
buffers or atomics). Its cost is O(M K), negligible next to the per-pixel work.

Numerics follow the input dtype: every constant comes from a typed ``consts`` array so that
float32 inputs stay float32 (numba promotes ``float32 * 0.5`` to float64). Per-intersection
gradient sums over the tile's pixels are accumulated in float64 and stored in the input dtype.
"""
from __future__ import annotations

import os

import numba
import numpy as np
from numba import njit, prange

# layout of the per-intersection / per-Gaussian gradient rows: [mx, my, a, b, c, opacity, colours...]
GRAD_MX, GRAD_MY, GRAD_A, GRAD_B, GRAD_C, GRAD_OPAC, GRAD_COL0 = range(7)
# consts array: [alpha threshold, alpha max, T min, 0.5, 1.0]
_I_THR, _I_AMAX, _I_TMIN, _I_HALF, _I_ONE = range(5)
SMALL_IMAGE_PIXELS = 1 << 14


def make_consts(dtype: np.dtype) -> np.ndarray:
    """The compositing constants in ``dtype`` (see module doc)."""
    return np.array([1.0 / 255.0, 0.999, 1e-4, 0.5, 1.0], dtype=dtype)


def _jit(**kw):
    """``numba.njit(cache=True, fastmath=False, **kw)``; without on-disk caching when numba finds
    no writable cache location (read-only install and home), instead of failing at decoration."""

    def deco(fn):
        try:
            return njit(cache=True, fastmath=False, **kw)(fn)
        except RuntimeError:  # "cannot cache function ...: no locator available"
            return njit(cache=False, fastmath=False, **kw)(fn)

    return deco


def configure_threads(torch_threads: int, pixels: int) -> int:
    """Thread count for the next kernel call: ``NUMBA_NUM_THREADS`` when set in the environment,
    else ``torch.get_num_threads()`` (capped at numba's pool size); 1 for small images
    (< 16k pixels), where waking the pool costs more than the work (a 309x175 coarse training view,
    54k pixels, runs 1.3x faster on 2 threads than on 1). Returns the count set."""
    cap = numba.config.NUMBA_NUM_THREADS
    if "NUMBA_NUM_THREADS" in os.environ:
        n = cap
    else:
        n = max(1, min(int(torch_threads), cap))
    if pixels < SMALL_IMAGE_PIXELS:
        n = 1
    if numba.get_num_threads() != n:
        numba.set_num_threads(n)
    return n


@_jit()
def _sigma_cutoff(opacity):  # pragma: no cover - jit
    """An exponent beyond which ``opacity * exp(-sigma) < 1/255`` for certain: log(255 opacity)
    plus a 1e-4 margin that covers exp/multiply rounding, so that the (cheap) test
    ``sigma > cutoff`` only skips Gaussians that the exact alpha test would skip too. Far
    pixels (most of a tile's list) then cost no exp()."""
    o = 255.0 * np.float64(opacity)
    if o <= 0.0:
        return -1.0
    return np.log(o) + 1e-4


@_jit()
def _pixel_centres(x0, y0, tile_size, dtype):  # pragma: no cover - jit
    """Pixel-centre coordinates (+0.5) of a tile's columns and rows, [tile_size] each in ``dtype``
    (so that float32 kernels never mix in float64 arithmetic)."""
    fxs = np.empty(tile_size, dtype)
    fys = np.empty(tile_size, dtype)
    for i in range(tile_size):
        fxs[i] = x0 + i + 0.5
        fys[i] = y0 + i + 0.5
    return fxs, fys


@_jit()
def _tile_box(t, tiles_per_img, tile_w, tile_size, width, height):  # pragma: no cover - jit
    """(image, y0, x0, tile width, tile height) of global tile ``t`` (edge tiles are cut to the image)."""
    img = t // tiles_per_img
    r = t - img * tiles_per_img
    y0 = (r // tile_w) * tile_size
    x0 = (r - (r // tile_w) * tile_w) * tile_size
    return img, y0, x0, min(tile_size, width - x0), min(tile_size, height - y0)


@_jit()
def _gather_tile(s, n, flat_ids, means2d, conics, opacities, colors):  # pragma: no cover - jit
    """The ``n`` Gaussians of a tile (from intersection ``s`` on) in contiguous local arrays:
    centres x/y [n], conic a/b/c [n], opacity [n], colours [n, D], sigma cut-off [n]."""
    D = colors.shape[1]
    gx = np.empty(n, colors.dtype)
    gy = np.empty(n, colors.dtype)
    ga = np.empty(n, colors.dtype)
    gb = np.empty(n, colors.dtype)
    gc = np.empty(n, colors.dtype)
    go = np.empty(n, colors.dtype)
    gcol = np.empty((n, D), colors.dtype)
    gsm = np.empty(n, colors.dtype)
    for k in range(n):
        g = flat_ids[s + k]
        gx[k] = means2d[g, 0]
        gy[k] = means2d[g, 1]
        ga[k] = conics[g, 0]
        gb[k] = conics[g, 1]
        gc[k] = conics[g, 2]
        go[k] = opacities[g]
        gsm[k] = _sigma_cutoff(opacities[g])
        for d in range(D):
            gcol[k, d] = colors[g, d]
    return gx, gy, ga, gb, gc, go, gcol, gsm


@_jit()
def _footprint(gx, gy, ga, gb, gc, cutoff, x0, y0, tw, th):  # pragma: no cover - jit
    """The tile-local pixel box ``(ix0, ix1, iy0, iy1)`` (inclusive; empty when ``ix0 > ix1`` or
    ``iy0 > iy1``) outside which a Gaussian's ``sigma`` exceeds ``cutoff`` for certain.

    ``sigma = d^T Q d / 2`` with the conic ``Q = [[a, b], [b, c]]``; the ellipse ``sigma <= s`` spans
    ``|dx| <= sqrt(2 s Q^-1_xx)`` and ``|dy| <= sqrt(2 s Q^-1_yy)``. The box is computed in float64
    with one pixel of margin, so every pixel the kernels would not skip lies inside it (a conic
    that is not positive definite gets the whole tile)."""
    if cutoff < 0.0:
        return 0, -1, 0, -1
    a = np.float64(ga)
    b = np.float64(gb)
    c = np.float64(gc)
    det = a * c - b * b
    if not (a > 0.0 and det > 0.0):
        return 0, tw - 1, 0, th - 1
    ex = np.sqrt(2.0 * np.float64(cutoff) * c / det) + 1.0
    ey = np.sqrt(2.0 * np.float64(cutoff) * a / det) + 1.0
    # pixel i of the tile has its centre at x0 + i + 0.5
    cx = np.float64(gx) - x0 - 0.5
    cy = np.float64(gy) - y0 - 0.5
    lo_x, hi_x = np.ceil(cx - ex), np.floor(cx + ex)
    lo_y, hi_y = np.ceil(cy - ey), np.floor(cy + ey)
    if hi_x < 0.0 or hi_y < 0.0 or lo_x > tw - 1 or lo_y > th - 1:
        return 0, -1, 0, -1
    return (int(max(lo_x, 0.0)), int(min(hi_x, tw - 1.0)), int(max(lo_y, 0.0)), int(min(hi_y, th - 1.0)))


@_jit(parallel=True)
def rasterize_fwd(means2d, conics, colors, opacities, offsets, counts, flat_ids, tile_size,
                  tile_w, tile_h, width, height, consts, out_img, out_t, out_last):  # pragma: no cover - jit
    """Front-to-back compositing of every tile (one ``prange`` iteration per tile).

    Gaussian-major: the tile's Gaussians are visited in depth order, each over the pixels of its
    footprint box only (:func:`_footprint`), with the per-pixel state (transmittance, colour, done)
    kept for the tile. Every pixel sees the same Gaussians in the same order with the same
    arithmetic as a per-pixel loop over the whole list, so the result is bit for bit that of
    gsplat's per-pixel rules (module doc); a tile stops once all its pixels are saturated.

    Args:
        means2d [G, 2], conics [G, 3], colors [G, D], opacities [G]: flattened projected
            Gaussians (G = C * N), all one float dtype.
        offsets, counts [n_tiles] int64: first intersection and list length of each tile
            (global tile id = image * tile_w * tile_h + ty * tile_w + tx).
        flat_ids [M] int64: Gaussian of each intersection, depth-sorted within each tile.
        consts: :func:`make_consts` of the float dtype.
        out_img [C, H, W, D] (zeros), out_t [C, H, W] (ones), out_last [C, H, W] int64 (-1):
            filled in place with the colour (no background), final transmittance and the global
            index of the last contributing intersection (-1: none).
    """
    thr, amax, tmin = consts[_I_THR], consts[_I_AMAX], consts[_I_TMIN]
    half, one = consts[_I_HALF], consts[_I_ONE]
    D = colors.shape[1]
    tiles_per_img = tile_w * tile_h
    n_tiles = offsets.shape[0]
    for t in prange(n_tiles):
        n = counts[t]
        if n == 0:
            continue
        s = offsets[t]
        img, y0, x0, tw, th = _tile_box(t, tiles_per_img, tile_w, tile_size, width, height)
        gx, gy, ga, gb, gc, go, gcol, gsm = _gather_tile(s, n, flat_ids, means2d, conics, opacities, colors)
        fxs, fys = _pixel_centres(x0, y0, tile_size, colors.dtype)
        T = np.empty((th, tw), colors.dtype)
        acc = np.zeros((th, tw, D), colors.dtype)
        last = np.empty((th, tw), np.int64)
        done = np.zeros((th, tw), np.bool_)
        for iy in range(th):
            for ix in range(tw):
                T[iy, ix] = one
                last[iy, ix] = -1
        live = th * tw
        for k in range(n):
            ix0, ix1, iy0, iy1 = _footprint(gx[k], gy[k], ga[k], gb[k], gc[k], gsm[k], x0, y0, tw, th)
            for iy in range(iy0, iy1 + 1):
                dy = gy[k] - fys[iy]
                for ix in range(ix0, ix1 + 1):
                    if done[iy, ix]:
                        continue
                    dx = gx[k] - fxs[ix]
                    sigma = half * (ga[k] * dx * dx + gc[k] * dy * dy) + gb[k] * dx * dy
                    if sigma < 0 or sigma > gsm[k]:
                        continue
                    alpha = min(amax, go[k] * np.exp(-sigma))
                    if alpha < thr:
                        continue
                    Tp = T[iy, ix]
                    next_t = Tp * (one - alpha)
                    if next_t <= tmin:
                        done[iy, ix] = True
                        live -= 1
                        continue
                    w = alpha * Tp
                    for d in range(D):
                        acc[iy, ix, d] += w * gcol[k, d]
                    T[iy, ix] = next_t
                    last[iy, ix] = k
            if live == 0:
                break
        for iy in range(th):
            for ix in range(tw):
                for d in range(D):
                    out_img[img, y0 + iy, x0 + ix, d] = acc[iy, ix, d]
                out_t[img, y0 + iy, x0 + ix] = T[iy, ix]
                out_last[img, y0 + iy, x0 + ix] = s + last[iy, ix] if last[iy, ix] >= 0 else -1


@_jit(parallel=True)
def rasterize_bwd(means2d, conics, colors, opacities, offsets, counts, flat_ids, tile_size,
                  tile_w, tile_h, width, height, consts, t_final, last_ids, g_img, g_t,
                  v_isect, v_abs):  # pragma: no cover - jit
    """Back-to-front gradient of :func:`rasterize_fwd` per tile (one ``prange`` iteration per tile).

    Gaussian-major like the forward: from the tile's last contributing Gaussian back to its first,
    each over its footprint box, with per-pixel state (transmittance recovered by division, the
    colour behind, upstream gradients). A pixel takes part from its own last contributor on. Each
    Gaussian's gradient sums its pixels in row-major order, as a per-pixel walk would.

    Args (beyond :func:`rasterize_fwd`'s inputs):
        t_final [C, H, W], last_ids [C, H, W] int64: the forward's outputs.
        g_img [C, H, W, D], g_t [C, H, W]: upstream gradients of the colour and of ``t_final``.
        v_isect [M, 6 + D] (zeros): filled with each intersection's gradient w.r.t. its Gaussian's
            (mx, my, a, b, c, opacity, colours), summed over the tile's pixels.
        v_abs [M, 2] or [0, 2]: when it has M rows, filled with sum over pixels of
            |d loss / d mean2d| per pixel (gsplat's ``absgrad``).
    """
    thr, amax = consts[_I_THR], consts[_I_AMAX]
    half, one = consts[_I_HALF], consts[_I_ONE]
    D = colors.shape[1]
    K = 6 + D
    want_abs = v_abs.shape[0] > 0
    tiles_per_img = tile_w * tile_h
    n_tiles = offsets.shape[0]
    for t in prange(n_tiles):
        n = counts[t]
        if n == 0:
            continue
        s = offsets[t]
        img, y0, x0, tw, th = _tile_box(t, tiles_per_img, tile_w, tile_size, width, height)
        gx, gy, ga, gb, gc, go, gcol, gsm = _gather_tile(s, n, flat_ids, means2d, conics, opacities, colors)
        fxs, fys = _pixel_centres(x0, y0, tile_size, colors.dtype)
        T = np.empty((th, tw), colors.dtype)
        gtt = np.empty((th, tw), colors.dtype)
        lastk = np.empty((th, tw), np.int64)
        gpix = np.empty((th, tw, D), colors.dtype)
        behind = np.zeros((th, tw, D), colors.dtype)  # sum over contributing k' > k of c_k' alpha_k' T_k'
        kmax = -1
        for iy in range(th):
            for ix in range(tw):
                lid = last_ids[img, y0 + iy, x0 + ix]
                lk = lid - s if lid >= 0 else -1
                lastk[iy, ix] = lk
                kmax = max(kmax, lk)
                t_fin = t_final[img, y0 + iy, x0 + ix]
                T[iy, ix] = t_fin
                gtt[iy, ix] = g_t[img, y0 + iy, x0 + ix] * t_fin
                for d in range(D):
                    gpix[iy, ix, d] = g_img[img, y0 + iy, x0 + ix, d]
        vloc = np.zeros((kmax + 1, K), np.float64)
        aloc = np.zeros((kmax + 1 if want_abs else 0, 2), np.float64)
        for k in range(kmax, -1, -1):
            ix0, ix1, iy0, iy1 = _footprint(gx[k], gy[k], ga[k], gb[k], gc[k], gsm[k], x0, y0, tw, th)
            for iy in range(iy0, iy1 + 1):
                dy = gy[k] - fys[iy]
                for ix in range(ix0, ix1 + 1):
                    if lastk[iy, ix] < k:
                        continue
                    dx = gx[k] - fxs[ix]
                    sigma = half * (ga[k] * dx * dx + gc[k] * dy * dy) + gb[k] * dx * dy
                    if sigma < 0 or sigma > gsm[k]:
                        continue
                    vis = np.exp(-sigma)
                    raw = go[k] * vis
                    alpha = min(amax, raw)
                    if alpha < thr:
                        continue
                    ra = one / (one - alpha)
                    Tp = T[iy, ix] * ra  # transmittance in front of Gaussian k
                    T[iy, ix] = Tp
                    fac = alpha * Tp
                    v_alpha = -gtt[iy, ix] * ra
                    for d in range(D):
                        gp = gpix[iy, ix, d]
                        vloc[k, GRAD_COL0 + d] += fac * gp
                        v_alpha += gp * (gcol[k, d] * Tp - behind[iy, ix, d] * ra)
                        behind[iy, ix, d] += gcol[k, d] * fac
                    vloc[k, GRAD_OPAC] += vis * v_alpha
                    if raw <= amax:
                        v_sigma = -raw * v_alpha
                        vmx = (ga[k] * dx + gb[k] * dy) * v_sigma
                        vmy = (gb[k] * dx + gc[k] * dy) * v_sigma
                        vloc[k, GRAD_MX] += vmx
                        vloc[k, GRAD_MY] += vmy
                        vloc[k, GRAD_A] += half * dx * dx * v_sigma
                        vloc[k, GRAD_B] += dx * dy * v_sigma
                        vloc[k, GRAD_C] += half * dy * dy * v_sigma
                        if want_abs:
                            aloc[k, 0] += abs(vmx)
                            aloc[k, 1] += abs(vmy)
        for k in range(kmax + 1):
            for j in range(K):
                v_isect[s + k, j] = vloc[k, j]
            if want_abs:
                v_abs[s + k, 0] = aloc[k, 0]
                v_abs[s + k, 1] = aloc[k, 1]


@_jit()
def reduce_by_gaussian(flat_ids, v_isect, out):  # pragma: no cover - jit
    """out[flat_ids[i]] += v_isect[i] for every intersection i, serially in order
    (deterministic). flat_ids [M] int64, v_isect [M, K], out [G, K] (zeros)."""
    K = v_isect.shape[1]
    for i in range(flat_ids.shape[0]):
        g = flat_ids[i]
        for j in range(K):
            out[g, j] += v_isect[i, j]

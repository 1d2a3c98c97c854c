"""Weight-free fixer: depth-guided reference reprojection with optical-flow alignment.

The input frames are sharp and exact; the render of a sparse-view reconstruction is blurry but
roughly right in geometry. So every novel view is rebuilt from the input frames, and the render
only fills what no input sees and arbitrates where the inputs contradict each other:

1. **Reference choice.** The nearest reference ``A`` and, when the novel camera lies *between*
   two references (the angle at the novel camera centre between the two is obtuse), the nearest
   reference ``B`` on the other side, with the interpolation fraction ``t = d_A / (d_A + d_B)``
   (camera distances: centre distance + rotation, both in units of the reference spacing).
   A novel camera at a reference camera is that reference (confidence 1).
2. **Depth-guided backward warp.** Unproject every novel pixel with the rendered depth, project it
   into the reference, and resample the reference there. Pixels that land outside the reference,
   outside its validity mask, or behind the reference's own rendered surface are not covered.
3. **Flow refinement.** The rendered depth is only roughly right, so the two warped references are
   misaligned by the depth error. For references on both sides of the novel camera that residual
   motion is (to first order) linear along the way from A to B, like frame interpolation: dense
   flow between the two *warped* references (OpenCV DIS, both ways) gives the residual, and each
   reference is shifted by its share (the linear-motion model of flow interpolation). Each
   correction is composed with the geometric map, so a reference is resampled once. The blurry
   render takes no part in this alignment, except where only one reference covers a pixel (there
   the other side shows the render, so the flow aligns to it). With a single reference (or a
   camera outside the span of the references) the warped reference is aligned to the render.
4. **Blend.** ``(1 - t) * A' + t * B'`` where both cover a pixel, the one that covers it
   elsewhere, the render where none does. The confidence is the blend weight: coverage, feathered
   at the edges of covered regions, times the forward-backward consistency of the flow and the
   photometric agreement of the two aligned references (where they disagree, the one closer to a
   low-pass of the render wins).

Without rendered depth the geometric map is the identity and the flow does all the alignment.
All images live in the renderer's undistorted pinhole canvas; see :mod:`sparsevid.fixer.base`.
"""
from __future__ import annotations

import dataclasses
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from sparsevid.imaging import (DIS_PRESETS, blend_bands, blur, fb_error, gauss_conf, gray_u8, long_side, make_dis,
                               px_scale, remap)
from sparsevid.fixer.base import Fixer, FixRequest, FixResult, register_fixer
from sparsevid.log import in_context
from sparsevid.geometry import camera_distances  # noqa: F401  (re-exported)



# ---------------------------------------------------------------------------------------------
# geometry
# ---------------------------------------------------------------------------------------------
def backward_warp_coords(depth: torch.Tensor, K: torch.Tensor, c2w: torch.Tensor,
                         K_ref: torch.Tensor, c2w_ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each novel-view pixel lands in a reference camera.

    The per-pixel work is ``z * (M @ [u, v, 1]) + K_ref t`` with ``M = K_ref R K^-1`` (the rigid
    novel->reference transform ``R, t`` folded into 3x3 / 3-vector constants computed in float64),
    so the whole map is a few fused element-wise operations.

    Args:
        depth: [B, H, W, 1] z-depth of the novel views.
        K, c2w: [B, 3, 3], [B, 4, 4] novel cameras.
        K_ref, c2w_ref: [B, 3, 3], [B, 4, 4] the reference camera paired with each novel view.

    Returns:
        uv_ref: [B, H, W, 2] pixel coordinates in the reference (pixel-centre convention).
        z_ref: [B, H, W, 1] z-depth of the point in the reference camera (<= 0: behind it;
            NaN where the novel depth is unknown).
    """
    b, h, w, _ = depth.shape
    f64 = torch.float64
    rel = torch.linalg.inv(c2w_ref.to(f64)) @ c2w.to(f64)                           # novel -> ref [B,4,4]
    kr = K_ref.to(f64)
    M = (kr @ rel[:, :3, :3] @ torch.linalg.inv(K.to(f64))).to(torch.float32)       # [B, 3, 3]
    kt = (kr @ rel[:, :3, 3:4])[..., 0].to(torch.float32)                           # [B, 3]
    dev = depth.device
    u = (torch.arange(w, device=dev, dtype=torch.float32) + 0.5).view(1, 1, w)
    v = (torch.arange(h, device=dev, dtype=torch.float32) + 0.5).view(1, h, 1)
    z = depth[..., 0].to(torch.float32)
    z = torch.where(torch.isfinite(z) & (z > 0), z, torch.full_like(z, float("nan")))

    def row(i: int) -> torch.Tensor:
        m = M[:, i].view(b, 3, 1, 1)
        return z * (m[:, 0] * u + m[:, 1] * v + m[:, 2]) + kt[:, i].view(b, 1, 1)

    px, py, zr = row(0), row(1), row(2)
    den = torch.where(zr.abs() < 1e-12, torch.full_like(zr, 1e-12), zr)
    uv_ref = torch.stack([px / den, py / den], -1)
    return uv_ref.to(depth.dtype), zr[..., None].to(depth.dtype)


def warp_coords_np(depth: np.ndarray, K: np.ndarray, c2w: np.ndarray, K_ref: np.ndarray,
                   c2w_ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`backward_warp_coords` for one view in numpy (single-threaded, fast on a busy CPU).

    Args:
        depth: [H, W] z-depth (<= 0 or non-finite: unknown). K, c2w, K_ref, c2w_ref: [3, 3], [4, 4].

    Returns:
        uv_ref [H, W, 2] float32 pixel-centre coordinates in the reference, z_ref [H, W] float32
        (NaN where the depth is unknown).
    """
    h, w = depth.shape
    rel = np.linalg.inv(np.asarray(c2w_ref, np.float64)) @ np.asarray(c2w, np.float64)
    M = (np.asarray(K_ref, np.float64) @ rel[:3, :3] @ np.linalg.inv(np.asarray(K, np.float64))).astype(np.float32)
    kt = (np.asarray(K_ref, np.float64) @ rel[:3, 3]).astype(np.float32)
    u = np.arange(w, dtype=np.float32)[None] + 0.5
    v = np.arange(h, dtype=np.float32)[:, None] + 0.5
    z = np.asarray(depth, np.float32)
    z = np.where(np.isfinite(z) & (z > 0), z, np.float32(np.nan))
    px = z * (M[0, 0] * u + M[0, 1] * v + M[0, 2]) + kt[0]
    py = z * (M[1, 0] * u + M[1, 1] * v + M[1, 2]) + kt[1]
    zr = z * (M[2, 0] * u + M[2, 1] * v + M[2, 2]) + kt[2]
    den = np.where(np.abs(zr) < 1e-12, np.float32(1e-12), zr)
    return np.stack([px / den, py / den], -1).astype(np.float32), zr.astype(np.float32)


def sample_image(img: torch.Tensor, uv: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Sample ``img`` [B, H, W, C] at pixel coordinates ``uv`` [B, h, w, 2] (pixel-centre
    convention); outside the image gives 0. Returns [B, h, w, C]."""
    h, w = img.shape[1:3]
    grid = torch.stack([uv[..., 0] * (2.0 / w) - 1.0, uv[..., 1] * (2.0 / h) - 1.0], -1)
    grid = torch.nan_to_num(grid, nan=-4.0, posinf=-4.0, neginf=-4.0)
    out = F.grid_sample(img.permute(0, 3, 1, 2), grid.to(img.dtype), mode=mode, padding_mode="zeros",
                        align_corners=False)
    return out.permute(0, 2, 3, 1)


def choose_references(dist: np.ndarray, centre: np.ndarray, ref_centres: np.ndarray, num_refs: int,
                      bracket_cos: float = -0.2) -> tuple[int, int | None, float]:
    """The references of one novel view.

    Args:
        dist: [R] view distances to the references (:func:`camera_distances`).
        centre: [3] novel camera centre; ref_centres: [R, 3].
        num_refs: 1 -> only the nearest reference.
        bracket_cos: the novel camera lies between two references when the cosine of the angle at
            its centre between the directions to them is below this (obtuse angle).

    Returns:
        (a, b, t): the nearest reference ``a``; ``b`` the nearest reference on the other side of the
        novel camera (None when there is none or ``num_refs < 2``); ``t = d_a / (d_a + d_b)`` the
        fraction of the way from ``a`` to ``b`` (0 without ``b``).
    """
    order = np.argsort(dist, kind="stable")
    a = int(order[0])
    if num_refs < 2 or len(dist) < 2:
        return a, None, 0.0
    va = ref_centres[a] - centre
    na = float(np.linalg.norm(va))
    for r in order[1:]:
        vr = ref_centres[r] - centre
        nr = float(np.linalg.norm(vr))
        if na < 1e-12 or nr < 1e-12:
            continue
        if float(va @ vr) / (na * nr) < bracket_cos:
            da, db = float(dist[a]), float(dist[r])
            return a, int(r), da / max(da + db, 1e-12)
    return a, None, 0.0


# ---------------------------------------------------------------------------------------------
# flow / image helpers (OpenCV, CPU)
# ---------------------------------------------------------------------------------------------
def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of [B, H, W, C] (reflect padding)."""
    if sigma <= 0:
        return x
    if x.device.type == "cpu" and x.shape[-1] <= 4:
        # OpenCV's separable blur is an order of magnitude faster than a depthwise conv on CPU
        arr = x.detach().float().contiguous().numpy()
        out = np.stack([cv2.GaussianBlur(a, (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101) for a in arr])
        out = out.reshape(x.shape)
        return torch.from_numpy(out).to(x.dtype)
    r = max(1, int(round(3 * sigma)))
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[-1]
    y = x.permute(0, 3, 1, 2)
    y = F.pad(y, (r, r, 0, 0), mode="reflect" if y.shape[-1] > r else "replicate")
    y = F.conv2d(y, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    y = F.pad(y, (0, 0, r, r), mode="reflect" if y.shape[-2] > r else "replicate")
    y = F.conv2d(y, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    return y.permute(0, 2, 3, 1)


# ---------------------------------------------------------------------------------------------
# the fixer
# ---------------------------------------------------------------------------------------------
@dataclass
class ReprojectConfig:
    """Settings of :class:`ReprojectFixer` (pixel sizes are for a 1000-pixel-wide canvas and scale
    with the canvas width).

    Attributes:
        num_refs: references per novel view: 1 = the nearest only; >= 2 = the nearest plus, when
            the novel camera lies between two references, the nearest one on the other side.
        depth_tolerance: relative depth difference allowed by the occlusion test (a point counts
            as hidden from a reference when it lies this much behind the reference's surface).
            Sparse-view splats have noisy, view-dependent depth, so this is loose.
        occlusion_filter_px: the reference depth is max-filtered over this radius before the
            occlusion test (depth edges and speckle do not read as occlusion).
        depth_median: median filter (3 or 5; else off) of the rendered depth against speckle.
        warp_smooth_px: Gaussian sigma of the smoothing of the depth-guided displacement field (the
            rendered depth is noisy at fine scale; the flow refines what the smoothing removes).
        use_flow: refine the depth-guided warp with DIS optical flow.
        flow_preset: DIS preset (ultrafast / fast / medium).
        flow_finest_scale: finest pyramid level DIS refines to (0 = full resolution; -1 = the
            preset's own, 1 for medium; None = by canvas size, the coarsest level at least
            ``flow_finest_min_width`` px wide: :func:`sparsevid.imaging.dis_finest_scale`).
        flow_finest_min_width: the narrowest finest level that ``flow_finest_scale`` None allows.
        flow_max_px: single-reference flow corrections larger than this are distrusted.
        threads: views fixed in parallel on worker threads (0 = one per CPU core).
        fb_tolerance_px: forward-backward flow error that halves the confidence (plus 5% of the
            flow magnitude).
        blend_power: the two references are blended with weights ``(1 - t)**p`` and ``t**p``
            (p > 1 favours the nearer reference).
        agree_sigma: colour difference (0..1 units, after a light blur) between the two aligned
            references that halves the confidence; 0 disables the check.
        photo_sigma: low-frequency colour difference between a reference and the render that
            halves that reference's weight where the references disagree (and a single
            reference's confidence); 0 disables it.
        photo_blur_px: blur applied before the comparisons with the render.
        blend_floor: where two references cover a pixel, the blend weight of the proposal over the
            render never drops below this (a disagreement between the references lowers the
            confidence reported for training, but the blurry render is rarely the better image).
        feather_px: confidence ramps up over this distance from uncovered regions.
        render_confidence: confidence reported where only the render is available (x alpha).
        cubic: resample the references with bicubic interpolation in the final warp (sharper than
            bilinear; every resampling of the reference softens it).
        detail_power: the two aligned references are blended in two bands: the low band (a Gaussian
            of ``detail_sigma_px``) with the blend weights, the fine detail with the weights raised
            to this power (1 = one plain blend; larger keeps the detail of the nearer reference
            only, so in-between views are as sharp as the inputs).
        detail_sigma_px: sigma of the low band (per 1000 px of the canvas's longer side).
        exact_tolerance: a novel camera closer than this (:func:`camera_distances` units) to a
            reference is that reference.
    """

    num_refs: int = 2
    depth_tolerance: float = 0.5
    occlusion_filter_px: float = 8.0
    depth_median: int = 5
    warp_smooth_px: float = 30.0
    use_flow: bool = True
    flow_preset: str = "medium"
    flow_finest_scale: int | None = None
    flow_finest_min_width: int = 400
    flow_max_px: float = 40.0
    fb_tolerance_px: float = 1.5
    blend_power: float = 1.0
    agree_sigma: float = 0.05
    photo_sigma: float = 0.05
    photo_blur_px: float = 4.0
    blend_floor: float = 1.0
    feather_px: float = 4.0
    render_confidence: float = 0.0
    cubic: bool = True
    detail_power: float = 1.0
    detail_sigma_px: float = 2.5
    exact_tolerance: float = 1e-3
    threads: int = 0  # views fixed in parallel (0 = one per CPU core); results do not depend on it


@dataclass
class _Refs:
    """References as numpy arrays (OpenCV friendly)."""

    images: np.ndarray          # [R, H, W, 3] float32
    valid: np.ndarray           # [R, H, W] float32
    depth: np.ndarray | None    # [R, H, W] float32 (0 = unknown)


@register_fixer("reproject")
class ReprojectFixer(Fixer):
    """Depth-guided reference reprojection + flow refinement (weight-free, the default)."""

    def __init__(self, config: ReprojectConfig | None = None, **overrides) -> None:
        """``config`` (None: the defaults) with ``overrides`` of its fields; the given config is
        never changed (the fixer keeps its own copy)."""
        unknown = [k for k in overrides if k not in {f.name for f in dataclasses.fields(ReprojectConfig)}]
        if unknown:
            raise TypeError(f"ReprojectFixer: unknown option {unknown[0]!r}")
        cfg = dataclasses.replace(config or ReprojectConfig(), **overrides)
        if cfg.flow_preset not in DIS_PRESETS:
            raise ValueError(f"flow_preset must be one of {sorted(DIS_PRESETS)}")
        self.config = cfg
        self._local = threading.local()  # one DIS object per worker thread (they are not thread-safe)

    @classmethod
    def option_names(cls) -> set[str]:
        """The fields of :class:`ReprojectConfig`."""
        return {f.name for f in dataclasses.fields(ReprojectConfig)}

    @classmethod
    def config_kwargs(cls, config, device=None) -> dict:
        """``num_refs`` = ``config.num_refs`` (the fixer runs where its tensors are)."""
        return {"num_refs": config.num_refs}

    # -- helpers --------------------------------------------------------------------------------
    def _flow(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """DIS flow from gray uint8 ``a`` to ``b`` (one DIS object per fixer, thread and image size)."""
        cfg, side = self.config, long_side(*a.shape[:2])
        per_side = self._local.__dict__.setdefault("dis", {})  # this thread's; the level depends on the size
        if side not in per_side:
            per_side[side] = make_dis(cfg.flow_preset, side, cfg.flow_finest_scale, cfg.flow_finest_min_width)
        return per_side[side].calc(a, b, None)

    def _geo_map(self, req: FixRequest, b: int, r: int, refs: _Refs,
                 grid: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Depth-guided map of novel view ``b`` into reference ``r``.

        Returns:
            mx, my: [H, W] float32 OpenCV sample coordinates in the reference.
            ok: [H, W] float32 in {0, 1}: the reference sees this pixel.
        """
        cfg = self.config
        h, w = req.size
        gx, gy = grid
        if req.depth is None:
            return gx.copy(), gy.copy(), refs.valid[r].copy()
        depth = np.nan_to_num(req.depth[b, ..., 0].detach().float().cpu().numpy(), nan=0.0, posinf=0.0, neginf=0.0)
        if cfg.depth_median in (3, 5):
            depth = cv2.medianBlur(np.ascontiguousarray(depth), cfg.depth_median)
        uv, z = warp_coords_np(depth, req.Ks[b].double().cpu().numpy(), req.c2ws[b].double().cpu().numpy(),
                               req.refs.Ks[r].double().cpu().numpy(), req.refs.c2ws[r].double().cpu().numpy())
        ok = np.isfinite(z) & (z > 0) & np.isfinite(uv).all(-1)
        uv = np.where(ok[..., None], uv, -1e4).astype(np.float32)
        ok &= (uv[..., 0] >= 0) & (uv[..., 0] <= w) & (uv[..., 1] >= 0) & (uv[..., 1] <= h)
        mx, my = uv[..., 0] - 0.5, uv[..., 1] - 0.5
        if cfg.warp_smooth_px > 0:
            # the rendered depth of a sparse reconstruction is noisy at fine scale: keep only the
            # smooth part of the geometric displacement (the flow refines the rest)
            sig = cfg.warp_smooth_px * px_scale(h, w)
            okf = ok.astype(np.float32)
            den = np.maximum(blur(okf, sig), 1e-4)
            disp = np.stack([np.where(ok, mx - gx, 0), np.where(ok, my - gy, 0)], -1).astype(np.float32)
            disp = blur(disp, sig) / den[..., None]
            mx = np.where(ok, gx + disp[..., 0], mx).astype(np.float32)
            my = np.where(ok, gy + disp[..., 1], my).astype(np.float32)
        ok &= remap(refs.valid[r], mx, my, border=cv2.BORDER_CONSTANT) > 0.999
        if refs.depth is not None:
            d_ref = cv2.remap(refs.depth[r], mx, my, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT)
            known = np.isfinite(d_ref) & (d_ref > 0)
            ok &= ~known | (z <= d_ref * (1 + cfg.depth_tolerance))
        return mx, my, ok.astype(np.float32)

    @staticmethod
    def _compose(mx: np.ndarray, my: np.ndarray, ok: np.ndarray, flow: np.ndarray,
                 grid: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Maps sampled at p + flow(p) (the geometric map followed by a flow correction)."""
        fx, fy = grid[0] + flow[..., 0], grid[1] + flow[..., 1]
        h, w = ok.shape
        inside_ = (fx >= -0.5) & (fx <= w - 0.5) & (fy >= -0.5) & (fy <= h - 0.5)
        mx2 = remap(mx, fx, fy)
        my2 = remap(my, fx, fy)
        ok2 = ((remap(ok, fx, fy) > 0.999) & inside_).astype(np.float32)
        return mx2, my2, ok2

    def _photo(self, img: np.ndarray, render: np.ndarray, px_scale: float) -> np.ndarray:
        """[H, W] low-frequency agreement of ``img`` with the render (1 = agree)."""
        cfg = self.config
        if cfg.photo_sigma <= 0:
            return np.ones(img.shape[:2], np.float32)
        s = cfg.photo_blur_px * px_scale
        diff = np.abs(blur(img, s) - blur(render, s)).mean(-1)
        return gauss_conf(diff, cfg.photo_sigma)

    # -- per view --------------------------------------------------------------------------------
    def _fix_view(self, req: FixRequest, b: int, refs: _Refs, choice: tuple[int, int | None, float],
                  exact: bool, grid: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Proposal [H, W, 3], its blend weight over the render [H, W] and its confidence [H, W]
        for novel view ``b``."""
        cfg = self.config
        render = req.renders[b].detach().float().cpu().numpy()
        h, w = render.shape[:2]
        scale = px_scale(h, w)
        a, rb, t = choice
        if exact:
            ok = refs.valid[a]
            return refs.images[a].copy(), ok.copy(), ok.copy()

        mxa, mya, oka = self._geo_map(req, b, a, refs, grid)
        img_a = refs.images[a]
        if rb is None:
            return self._fix_single(render, img_a, mxa, mya, oka, grid, scale)

        mxb, myb, okb = self._geo_map(req, b, rb, refs, grid)
        img_b = refs.images[rb]
        cons = np.ones((h, w), np.float32)
        if cfg.use_flow:
            wa = np.where(oka[..., None] > 0, remap(img_a, mxa, mya), render)
            wb = np.where(okb[..., None] > 0, remap(img_b, mxb, myb), render)
            ga, gb = gray_u8(wa), gray_u8(wb)
            fab, fba = self._flow(ga, gb), self._flow(gb, ga)
            # linear-motion model of the residual between the two warped references
            fta = -t * (1 - t) * fab + t * t * fba
            ftb = (1 - t) * (1 - t) * fab - t * (1 - t) * fba
            mxa, mya, oka = self._compose(mxa, mya, oka, fta, grid)
            mxb, myb, okb = self._compose(mxb, myb, okb, ftb, grid)
            err = fb_error(fab, fba)
            mag = np.linalg.norm(fab, axis=-1)
            tol = max(cfg.fb_tolerance_px * scale, 0.5)
            cons = gauss_conf(err, tol + 0.05 * mag)
        interp = cv2.INTER_CUBIC if cfg.cubic else cv2.INTER_LINEAR
        ra = remap(img_a, mxa, mya, interp=interp)
        rb_img = remap(img_b, mxb, myb, interp=interp)
        wa_ = (1 - t) ** cfg.blend_power * oka
        wb_ = t ** cfg.blend_power * okb
        both = oka * okb
        agree = np.ones((h, w), np.float32)
        if cfg.agree_sigma > 0:
            diff = np.abs(blur(ra, 1.0) - blur(rb_img, 1.0)).mean(-1)
            agree = gauss_conf(diff, cfg.agree_sigma)
        trust = agree * cons
        if cfg.photo_sigma > 0:
            # where the aligned references disagree, prefer the one closer to the render
            pa, pb = self._photo(ra, render, scale), self._photo(rb_img, render, scale)
            wa_ = wa_ * (trust + (1 - trust) * pa)
            wb_ = wb_ * (trust + (1 - trust) * pb)
            single = np.where(oka > 0, pa, pb)
        else:
            single = np.ones((h, w), np.float32)
        s = wa_ + wb_
        if cfg.detail_power != 1.0:
            blend = blend_bands([ra, rb_img], [wa_, wb_], cfg.detail_power, cfg.detail_sigma_px * scale)
        else:
            blend = (ra * wa_[..., None] + rb_img * wb_[..., None]) / np.maximum(s, 1e-6)[..., None]
        cover = np.maximum(oka, okb)
        trust = np.where(both > 0, trust, single)
        has = (s > 1e-6).astype(np.float32)
        weight = cover * has * (cfg.blend_floor + (1 - cfg.blend_floor) * trust)
        conf = cover * has * trust
        return blend, weight.astype(np.float32), conf.astype(np.float32)

    def _fix_single(self, render: np.ndarray, img: np.ndarray, mx: np.ndarray, my: np.ndarray, ok: np.ndarray,
                    grid: tuple[np.ndarray, np.ndarray], px_scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One reference, aligned to the render with forward-backward checked flow (without a second
        reference to cross-check, the blend weight is the confidence)."""
        cfg = self.config
        conf = ok
        if cfg.use_flow:
            warped = np.where(ok[..., None] > 0, remap(img, mx, my), render)
            gr, gw = gray_u8(render), gray_u8(warped)
            fwd, bwd = self._flow(gr, gw), self._flow(gw, gr)
            err = fb_error(fwd, bwd)
            mag = np.linalg.norm(fwd, axis=-1)
            tol = max(cfg.fb_tolerance_px * px_scale, 0.5)
            fc = gauss_conf(err, tol + 0.05 * mag) * (mag <= cfg.flow_max_px * px_scale)
            mx, my, ok = self._compose(mx, my, ok, fwd, grid)
            conf = ok * fc
        out = remap(img, mx, my, interp=cv2.INTER_CUBIC if cfg.cubic else cv2.INTER_LINEAR)
        if cfg.photo_sigma > 0:
            conf = conf * self._photo(out, render, px_scale)
        conf = conf.astype(np.float32)
        return out, conf, conf.copy()

    # -- whole batch ----------------------------------------------------------------------------
    def fix(self, request: FixRequest) -> FixResult:
        cfg = self.config
        req = request
        bsz = req.batch_size
        h, w = req.size
        dev, dt = req.renders.device, req.renders.dtype
        R = len(req.refs)
        refs = _Refs(req.refs.images.detach().float().cpu().numpy(),
                     (req.refs.valid[..., 0].detach().float().cpu().numpy() if req.refs.valid is not None
                      else np.ones((R, h, w), np.float32)),
                     (np.nan_to_num(req.refs.depth[..., 0].detach().float().cpu().numpy(), nan=0.0)
                      if req.refs.depth is not None else None))
        rad = int(round(cfg.occlusion_filter_px * px_scale(h, w)))
        if refs.depth is not None and rad > 0:
            kern = np.ones((2 * rad + 1, 2 * rad + 1), np.uint8)
            refs.depth = np.stack([cv2.dilate(dd, kern) for dd in refs.depth])
        dist = camera_distances(req.c2ws, req.refs.c2ws.to(req.c2ws.device)).cpu().numpy()      # [B, R]
        centres = req.c2ws[:, :3, 3].double().cpu().numpy()
        ref_centres = req.refs.c2ws[:, :3, 3].double().cpu().numpy()
        gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        valid = (req.valid[..., 0].detach().float().cpu().numpy() if req.valid is not None
                 else np.ones((bsz, h, w), np.float32))
        renders = req.renders.detach().float().cpu().numpy()

        def one(b: int):
            choice = choose_references(dist[b], centres[b], ref_centres, cfg.num_refs)
            exact = float(dist[b, choice[0]]) <= cfg.exact_tolerance
            img, weight, conf = self._fix_view(req, b, refs, choice, exact, (gx, gy))
            if cfg.feather_px > 0 and not exact:
                # ramp the weight up from the edges of covered regions so seams do not show
                rad = max(1, int(round(cfg.feather_px * px_scale(h, w))))
                hard = (weight > 0.05).astype(np.float32)
                eroded = cv2.erode(hard, np.ones((2 * rad + 1, 2 * rad + 1), np.uint8),
                                   borderType=cv2.BORDER_REPLICATE)
                ramp = np.clip(blur(eroded, rad / 2.0), 0, 1)
                weight, conf = weight * ramp, conf * ramp
            weight, conf = weight * valid[b], conf * valid[b]
            return weight[..., None] * img + (1 - weight[..., None]) * renders[b], weight, conf, choice

        # views are independent: fix them on worker threads (OpenCV and numpy release the GIL)
        workers = min(bsz, cfg.threads if cfg.threads > 0 else (os.cpu_count() or 1))
        if workers > 1:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                results = list(pool.map(in_context(one), range(bsz)))
        else:
            results = [one(b) for b in range(bsz)]
        outs, weights, confs, choices = zip(*results)
        ia = [c[0] for c in choices]
        ib = [-1 if c[1] is None else c[1] for c in choices]
        ts = [c[2] for c in choices]
        out_t = torch.from_numpy(np.clip(np.stack(outs), 0, 1)).to(dev, dt)
        conf_t = torch.from_numpy(np.stack(confs)[..., None]).to(dev, dt).clamp(0, 1)
        weight_t = torch.from_numpy(np.stack(weights)[..., None]).to(dev, dt).clamp(0, 1)
        conf_out = conf_t
        if cfg.render_confidence > 0:
            base = torch.ones_like(conf_t) if req.alpha is None else req.alpha.to(dt).clamp(0, 1)
            if req.valid is not None:
                base = base * req.valid.to(dt)
            conf_out = torch.maximum(conf_t, cfg.render_confidence * base)
        idx = torch.tensor(np.stack([ia, ib], 1), dtype=torch.long)
        return FixResult(out_t, conf_out.clamp(0, 1),
                         extras={"blend_weight": weight_t, "ref_index": idx, "ref_t": torch.tensor(ts),
                                 "coverage": (weight_t > 0.5).to(dt).mean((1, 2, 3))})


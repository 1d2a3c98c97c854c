"""Weight-free fixer: geometry-guided reference reprojection with optical-flow alignment.

For every novel view and each of its nearest reference views (the input frames):

1. **Geometric backward warp.** Unproject each novel pixel with the rendered depth, project it
   into the reference camera and note where it lands (``map_geo``). Pixels that land outside the
   reference, behind it, outside its validity mask, or behind the reference's own rendered
   surface (depth test, occlusion) are not covered by that reference.
2. **Flow alignment.** The rendered depth of a sparse-view reconstruction is only roughly right,
   so the warped reference is aligned to the render with dense optical flow (OpenCV DIS,
   render -> warped reference, forward-backward checked). The flow correction is composed with
   the geometric map so that the sharp reference is resampled once.
3. **Blend.** References are weighted by view proximity (inverse distance of the cameras) and
   by per-pixel confidence (coverage, occlusion, flow consistency, low-frequency agreement with
   the render). The result replaces the render where the confidence is high.

Without rendered depth the geometric map is the identity and the flow does all the alignment.
All images live in the renderer's undistorted pinhole canvas; see :mod:`sparsevid.fixer.base`.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from sparsevid.fixer.base import Fixer, FixRequest, FixResult, RefViews, register_fixer

_DIS_PRESETS = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
                "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}


# ---------------------------------------------------------------------------------------------
# geometry
# ---------------------------------------------------------------------------------------------
def pixel_grid(height: int, width: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """[H, W, 2] pixel-centre coordinates (u, v), top-left centre at (0.5, 0.5)."""
    v, u = torch.meshgrid(torch.arange(height, device=device, dtype=dtype) + 0.5,
                          torch.arange(width, device=device, dtype=dtype) + 0.5, indexing="ij")
    return torch.stack([u, v], -1)


def backward_warp_coords(depth: torch.Tensor, K: torch.Tensor, c2w: torch.Tensor,
                         K_ref: torch.Tensor, c2w_ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each novel-view pixel lands in a reference camera.

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
    dt = torch.float64
    uv = pixel_grid(h, w, depth.device, dt)
    ones = torch.ones_like(uv[..., :1])
    pix = torch.cat([uv, ones], -1).reshape(1, -1, 3).expand(b, -1, -1)            # [B, HW, 3]
    rays = pix @ torch.linalg.inv(K.to(dt)).transpose(1, 2)                          # [B, HW, 3]
    z = depth.to(dt).reshape(b, -1, 1)
    z = torch.where(torch.isfinite(z) & (z > 0), z, torch.full_like(z, float("nan")))
    pts_c = rays * z
    # novel camera -> reference camera in one rigid transform
    rel = torch.linalg.inv(c2w_ref.to(dt)) @ c2w.to(dt)                              # [B, 4, 4]
    pts_r = pts_c @ rel[:, :3, :3].transpose(1, 2) + rel[:, None, :3, 3]
    zr = pts_r[..., 2:3]
    proj = pts_r @ K_ref.to(dt).transpose(1, 2)
    uv_ref = proj[..., :2] / torch.where(zr.abs() < 1e-12, torch.full_like(zr, 1e-12), zr)
    return uv_ref.reshape(b, h, w, 2).to(depth.dtype), zr.reshape(b, h, w, 1).to(depth.dtype)


def sample_image(img: torch.Tensor, uv: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Sample ``img`` [B, H, W, C] at pixel coordinates ``uv`` [B, h, w, 2] (pixel-centre
    convention); outside the image gives 0. Returns [B, h, w, C]."""
    h, w = img.shape[1:3]
    grid = torch.stack([uv[..., 0] * (2.0 / w) - 1.0, uv[..., 1] * (2.0 / h) - 1.0], -1)
    grid = torch.nan_to_num(grid, nan=-4.0, posinf=-4.0, neginf=-4.0)
    out = F.grid_sample(img.permute(0, 3, 1, 2), grid.to(img.dtype), mode=mode, padding_mode="zeros",
                        align_corners=False)
    return out.permute(0, 2, 3, 1)


def inside(uv: torch.Tensor, height: int, width: int, margin: float = 0.5) -> torch.Tensor:
    """[..., 1] bool: ``uv`` [..., 2] lies inside the image (pixel centres +- ``margin``)."""
    u, v = uv[..., 0:1], uv[..., 1:2]
    return (u >= 0.5 - margin) & (u <= width - 0.5 + margin) & (v >= 0.5 - margin) & (v <= height - 0.5 + margin)


def camera_distances(c2ws: torch.Tensor, ref_c2ws: torch.Tensor, rot_weight: float = 1.0) -> torch.Tensor:
    """[B, R] view distance: camera-centre distance in units of the references' median spacing
    plus ``rot_weight`` x rotation angle in units of the references' median neighbour rotation
    (each spacing floored, so a static camera does not divide by zero)."""
    c = c2ws[:, :3, 3].double()
    cr = ref_c2ws[:, :3, 3].double()
    dt = torch.cdist(c, cr)
    rel = ref_c2ws[None, :, :3, :3].double().transpose(-1, -2) @ c2ws[:, None, :3, :3].double()
    cos = ((rel.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2).clamp(-1, 1)
    ang = torch.arccos(cos)                                                          # [B, R] rad
    t_scale, r_scale = reference_spacing(ref_c2ws)
    return dt / t_scale + rot_weight * ang / r_scale


def reference_spacing(ref_c2ws: torch.Tensor) -> tuple[float, float]:
    """(median nearest-neighbour centre distance, median nearest-neighbour rotation angle in rad)
    of the reference cameras, floored to stay positive."""
    c = ref_c2ws[:, :3, 3].double()
    r = ref_c2ws.shape[0]
    if r < 2:
        return 1.0, float(np.deg2rad(5.0))
    d = torch.cdist(c, c) + torch.eye(r, dtype=c.dtype, device=c.device) * 1e30
    rel = ref_c2ws[None, :, :3, :3].double().transpose(-1, -2) @ ref_c2ws[:, None, :3, :3].double()
    cos = ((rel.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2).clamp(-1, 1)
    ang = torch.arccos(cos) + torch.eye(r, dtype=c.dtype, device=c.device) * 1e30
    t = float(d.min(1).values.median())
    a = float(ang.min(1).values.median())
    scene = float(torch.linalg.norm(c - c.mean(0), dim=-1).max()) + 1e-9
    return max(t, 1e-3 * scene, 1e-9), max(a, float(np.deg2rad(0.5)))


# ---------------------------------------------------------------------------------------------
# flow helpers (OpenCV, CPU)
# ---------------------------------------------------------------------------------------------
def _gray_u8(img: np.ndarray) -> np.ndarray:
    """[H, W, 3] float 0..1 -> [H, W] uint8 gray."""
    g = img[..., 0] * 0.299 + img[..., 1] * 0.587 + img[..., 2] * 0.114
    return np.clip(g * 255.0 + 0.5, 0, 255).astype(np.uint8)


def dis_flow(a: np.ndarray, b: np.ndarray, preset: str = "medium") -> np.ndarray:
    """Dense flow [H, W, 2] float32 from gray uint8 ``a`` to ``b``: a(p) ~ b(p + flow(p))."""
    dis = cv2.DISOpticalFlow_create(_DIS_PRESETS[preset])
    return dis.calc(a, b, None)


def fb_error(fwd: np.ndarray, bwd: np.ndarray) -> np.ndarray:
    """[H, W] forward-backward inconsistency |fwd(p) + bwd(p + fwd(p))| in pixels."""
    h, w = fwd.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    bw = cv2.remap(bwd, gx + fwd[..., 0], gy + fwd[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return np.linalg.norm(fwd + bw, axis=-1)


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


def _erode(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Binary erosion of [B, H, W, 1] float masks by a square of ``radius``."""
    if radius <= 0:
        return mask
    m = mask.permute(0, 3, 1, 2)
    m = -F.max_pool2d(-m, 2 * radius + 1, stride=1, padding=radius)
    return m.permute(0, 2, 3, 1)


# ---------------------------------------------------------------------------------------------
# the fixer
# ---------------------------------------------------------------------------------------------
@dataclass
class ReprojectConfig:
    """Settings of :class:`ReprojectFixer` (pixel sizes are for a 1000-pixel-wide canvas and scale
    with the canvas width).

    Attributes:
        num_refs: nearest references blended per novel view.
        idw_power: view-proximity weight = 1 / distance**idw_power.
        depth_tolerance: relative depth difference allowed by the occlusion test.
        use_flow: align the warped reference to the render with DIS optical flow.
        flow_preset: DIS preset (ultrafast / fast / medium).
        flow_max_px: flow corrections larger than this are distrusted (confidence falls to 0).
        fb_tolerance_px: forward-backward error that halves the confidence.
        photo_sigma: low-frequency colour difference (0..1 units) that halves the confidence;
            0 disables the photometric check.
        photo_blur_px: blur applied before the photometric comparison.
        feather_px: confidence ramps up over this distance from uncovered regions.
        render_confidence: confidence reported where only the render is available (x alpha).
    """

    num_refs: int = 2
    idw_power: float = 2.0
    depth_tolerance: float = 0.05
    use_flow: bool = True
    flow_preset: str = "medium"
    flow_max_px: float = 40.0
    fb_tolerance_px: float = 1.5
    photo_sigma: float = 0.15
    photo_blur_px: float = 4.0
    feather_px: float = 4.0
    render_confidence: float = 0.0


@register_fixer("reproject")
class ReprojectFixer(Fixer):
    """Geometry-guided reference reprojection + flow alignment (weight-free, the default)."""

    def __init__(self, config: ReprojectConfig | None = None, **overrides) -> None:
        cfg = config or ReprojectConfig()
        for k, v in overrides.items():
            if not hasattr(cfg, k):
                raise TypeError(f"ReprojectFixer: unknown option {k!r}")
            setattr(cfg, k, v)
        if cfg.flow_preset not in _DIS_PRESETS:
            raise ValueError(f"flow_preset must be one of {sorted(_DIS_PRESETS)}")
        self.config = cfg

    # -- per (view, reference) ------------------------------------------------------------------
    def warp_reference(self, req: FixRequest, refs: RefViews, ref_idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Warp reference ``ref_idx[b]`` into novel view ``b`` for every view of the batch.

        Returns:
            warped: [B, H, W, 3] reference colours in the novel view.
            conf: [B, H, W, 1] per-pixel confidence of ``warped`` in [0, 1].
        """
        cfg = self.config
        b, h, w = req.renders.shape[:3]
        dev, dt = req.renders.device, req.renders.dtype
        px_scale = w / 1000.0
        r_img = refs.images[ref_idx].to(dt)
        r_valid = refs.valid[ref_idx].to(dt) if refs.valid is not None else torch.ones_like(r_img[..., :1])

        # 1. geometric map (identity without depth)
        if req.depth is not None:
            uv_geo, z_ref = backward_warp_coords(req.depth, req.Ks, req.c2ws, refs.Ks[ref_idx], refs.c2ws[ref_idx])
            geo_ok = torch.isfinite(z_ref) & (z_ref > 0) & torch.isfinite(uv_geo).all(-1, keepdim=True)
        else:
            uv_geo = pixel_grid(h, w, dev, dt).expand(b, h, w, 2).clone()
            z_ref = None
            geo_ok = torch.ones(b, h, w, 1, dtype=torch.bool, device=dev)
        uv_geo = torch.where(geo_ok, uv_geo, torch.full_like(uv_geo, -1e4))
        geo_ok = geo_ok & inside(uv_geo, h, w)
        geo_ok_f = geo_ok.to(dt) * (sample_image(r_valid, uv_geo) > 0.999).to(dt)

        # occlusion: the point must not lie behind the reference's own surface
        if z_ref is not None and refs.depth is not None:
            d_ref = sample_image(refs.depth[ref_idx].to(dt), uv_geo, mode="nearest")
            known = torch.isfinite(d_ref) & (d_ref > 0)
            visible = ~known | (z_ref <= d_ref * (1 + cfg.depth_tolerance))
            geo_ok_f = geo_ok_f * visible.to(dt)

        warped_geo = sample_image(r_img, uv_geo)
        uv = uv_geo
        conf = geo_ok_f
        # 2. flow alignment render -> warped reference, composed with the geometric map
        if cfg.use_flow:
            uv, flow_conf = self._flow_align(req.renders, warped_geo, geo_ok_f, uv_geo, px_scale)
            conf = conf * flow_conf
            ok2 = inside(uv, h, w).to(dt) * (sample_image(r_valid, uv) > 0.999).to(dt)
            conf = conf * ok2
        warped = sample_image(r_img, uv)

        # 3. low-frequency agreement with the render (rejects gross mismatches, keeps detail)
        if cfg.photo_sigma > 0:
            s = cfg.photo_blur_px * px_scale
            m = conf.clamp(0, 1)
            num = _gaussian_blur(warped * m, s)
            den = _gaussian_blur(m, s).clamp_min(1e-4)
            lo_w = num / den
            lo_r = _gaussian_blur(req.renders * m, s) / den
            diff = (lo_w - lo_r).abs().mean(-1, keepdim=True)
            conf = conf * torch.exp(-np.log(2.0) * (diff / cfg.photo_sigma) ** 2)

        # feather the edges of covered regions so seams do not show
        if cfg.feather_px > 0:
            rad = max(1, int(round(cfg.feather_px * px_scale)))
            hard = (conf > 0.05).to(dt)
            eroded = _erode(hard, rad)
            conf = conf * _gaussian_blur(eroded, rad / 2.0).clamp(0, 1)
        return warped.clamp(0, 1), conf.clamp(0, 1)

    def _flow_align(self, renders: torch.Tensor, warped: torch.Tensor, ok: torch.Tensor, uv_geo: torch.Tensor,
                    px_scale: float) -> tuple[torch.Tensor, torch.Tensor]:
        """DIS flow render -> warped reference per view; returns the composed map [B, H, W, 2] and
        the flow confidence [B, H, W, 1]."""
        cfg = self.config
        b, h, w = renders.shape[:3]
        dev, dt = renders.device, renders.dtype
        # uncovered pixels show the render itself, so the flow stays ~0 there
        filled = warped * ok + renders * (1 - ok)
        r_np = renders.detach().float().cpu().numpy()
        f_np = filled.detach().float().cpu().numpy()
        flows, confs = [], []
        max_px = cfg.flow_max_px * px_scale
        tol = max(cfg.fb_tolerance_px * px_scale, 0.5)
        for i in range(b):
            a, c = _gray_u8(r_np[i]), _gray_u8(f_np[i])
            fwd = dis_flow(a, c, cfg.flow_preset)
            bwd = dis_flow(c, a, cfg.flow_preset)
            err = fb_error(fwd, bwd)
            mag = np.linalg.norm(fwd, axis=-1)
            fc = np.exp(-np.log(2.0) * (err / (tol + 0.05 * mag)) ** 2) * (mag <= max_px)
            flows.append(fwd)
            confs.append(fc.astype(np.float32))
        flow = torch.from_numpy(np.stack(flows)).to(dev, dt)
        fconf = torch.from_numpy(np.stack(confs))[..., None].to(dev, dt)
        grid = pixel_grid(h, w, dev, dt)[None] + flow
        # compose: uv(p) = uv_geo(p + flow(p)); sample the map and its validity together
        uv = sample_image(uv_geo, grid)
        valid_at = sample_image(ok, grid)
        fconf = fconf * (valid_at > 0.999).to(dt) * inside(grid, h, w).to(dt)
        return uv, fconf

    # -- whole batch ----------------------------------------------------------------------------
    def fix(self, request: FixRequest) -> FixResult:
        cfg = self.config
        req = request
        b = req.batch_size
        dt = req.renders.dtype
        refs = req.refs.to(req.renders.device)
        k = max(1, min(cfg.num_refs, len(refs)))
        dist = camera_distances(req.c2ws, refs.c2ws)                                  # [B, R]
        dsel, idx = torch.topk(dist, k, dim=1, largest=False)                          # [B, k]
        wts = 1.0 / (dsel + 1e-3) ** cfg.idw_power
        wts = (wts / wts.sum(1, keepdim=True)).to(dt)                                  # [B, k]

        acc = torch.zeros_like(req.renders)
        acc_w = torch.zeros_like(req.renders[..., :1])
        cover = torch.zeros_like(req.renders[..., :1])
        for j in range(k):
            warped, conf = self.warp_reference(req, refs, idx[:, j])
            wj = wts[:, j].view(b, 1, 1, 1)
            acc = acc + warped * conf * wj
            acc_w = acc_w + conf * wj
            cover = torch.maximum(cover, conf)
        blend = acc / acc_w.clamp_min(1e-6)
        # a single confident reference is enough: a far reference that cannot see a pixel must
        # not veto the near one (that is how disocclusions get filled)
        conf = cover
        if req.valid is not None:
            conf = conf * req.valid.to(dt)
        out = conf * blend + (1 - conf) * req.renders
        conf_out = conf
        if cfg.render_confidence > 0:
            base = torch.ones_like(conf) if req.alpha is None else req.alpha.to(dt).clamp(0, 1)
            if req.valid is not None:
                base = base * req.valid.to(dt)
            conf_out = torch.maximum(conf, cfg.render_confidence * base)
        return FixResult(out.clamp(0, 1), conf_out.clamp(0, 1),
                         extras={"ref_index": idx, "ref_weight": wts, "coverage": conf.mean((1, 2, 3))})

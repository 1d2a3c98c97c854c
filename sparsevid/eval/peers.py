"""Weight-free baselines ("peers") that fill in a video from its key frames.

The same three algorithms as the reference scorer, so our benchmark reproduces its numbers:

* :func:`nearest`   -- every frame is the closest key frame in time (ties -> the earlier key);
* :func:`crossfade` -- linear blend of the two surrounding key frames (truncated to uint8);
* :func:`dis_flow`  -- DIS optical flow (OpenCV, MEDIUM preset) both ways between the surrounding keys;
  the flow from an in-between time t in [0, 1] to each key is approximated from the two key-to-key
  flows under a linear motion model (F_t->0 = -t(1-t) F_01 + t^2 F_10,
  F_t->1 = (1-t)^2 F_01 - t(1-t) F_10), both keys are backward-warped and blended (1-t, t).

Frames before the first key / after the last repeat that key.
"""
from __future__ import annotations

from typing import Callable, Iterator, Mapping

import cv2
import numpy as np

from sparsevid.errors import SparsevidError

Keyframes = Mapping[int, np.ndarray]


def _keys(keyframes: Keyframes) -> list[int]:
    if not keyframes:
        raise SparsevidError("peers need at least one key frame")
    return sorted(int(k) for k in keyframes)


def _segments(keys: list[int]) -> Iterator[tuple[int, int]]:
    yield from zip(keys[:-1], keys[1:])


def _fill_ends(out: list, keyframes: Keyframes, keys: list[int]) -> list[np.ndarray]:
    for f in range(len(out)):
        if out[f] is None:
            out[f] = keyframes[keys[0]] if f < keys[0] else keyframes[keys[-1]]
    return out


def nearest(keyframes: Keyframes, num_frames: int = 30) -> list[np.ndarray]:
    """Frame f = the key frame closest to f (the earlier one on a tie)."""
    keys = _keys(keyframes)
    return [keyframes[min(keys, key=lambda k: (abs(k - f), k))] for f in range(num_frames)]


def crossfade(keyframes: Keyframes, num_frames: int = 30) -> list[np.ndarray]:
    """Linear blend between the surrounding key frames, truncated to uint8."""
    keys = _keys(keyframes)
    out: list[np.ndarray | None] = [None] * num_frames
    for k0, k1 in _segments(keys):
        a, b = keyframes[k0].astype(np.float32), keyframes[k1].astype(np.float32)
        for f in range(k0, min(k1, num_frames - 1) + 1):
            t = (f - k0) / (k1 - k0)
            out[f] = np.clip((1 - t) * a + t * b, 0, 255).astype(np.uint8)
    return _fill_ends(out, keyframes, keys)


def _backward_warp(img: np.ndarray, flow: np.ndarray, gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """Sample ``img`` [H, W, 3] at (x + flow_x, y + flow_y); flow [H, W, 2] float32."""
    return cv2.remap(img, gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def dis_flow(keyframes: Keyframes, num_frames: int = 30,
             preset: int = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM) -> list[np.ndarray]:
    """DIS optical-flow interpolation between the surrounding key frames (see the module docstring)."""
    keys = _keys(keyframes)
    out: list[np.ndarray | None] = [None] * num_frames
    dis = cv2.DISOpticalFlow_create(preset)
    h, w = keyframes[keys[0]].shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    for k0, k1 in _segments(keys):
        a, b = keyframes[k0], keyframes[k1]
        grey_a, grey_b = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY), cv2.cvtColor(b, cv2.COLOR_RGB2GRAY)
        f01 = dis.calc(grey_a, grey_b, None)
        f10 = dis.calc(grey_b, grey_a, None)
        for f in range(k0, min(k1, num_frames - 1) + 1):
            t = (f - k0) / (k1 - k0)
            if t == 0 or t == 1:
                out[f] = a if t == 0 else b
                continue
            ft0 = -t * (1 - t) * f01 + t * t * f10
            ft1 = (1 - t) * (1 - t) * f01 - t * (1 - t) * f10
            out[f] = cv2.addWeighted(_backward_warp(a, ft0, gx, gy), 1 - t, _backward_warp(b, ft1, gx, gy), t, 0)
    return _fill_ends(out, keyframes, keys)


PEERS: dict[str, Callable[[Keyframes, int], list[np.ndarray]]] = {
    "nearest": nearest, "crossfade": crossfade, "dis_flow": dis_flow}

"""Regions fixed in the image (sparsevid.fuse.fixed): a burnt-in overlay and a bonnet over a moving view."""
from __future__ import annotations

from fractions import Fraction

import cv2
import numpy as np
import pytest

from sparsevid.fuse.fixed import FixedConfig, fixed_regions, noise_sigma
from sparsevid.fuse.fusion import FuseConfig, to_float
from sparsevid.fuse.stage import fuse_frames

KEYS = [0, 9, 19, 29]
H, W = 72, 128
BAND = 60  # rows from here down: the bonnet


def _overlay_clip(noise: float = 2.0, pan: float = 1.3, seed: int = 0) -> list[np.ndarray]:
    """A textured view panning ``pan`` px per frame, with a smooth dark band (a bonnet) over the bottom
    rows and white strokes (a burnt-in label) at the top left, both fixed in the image."""
    rng = np.random.default_rng(seed)
    tex = cv2.GaussianBlur(rng.random((H, W + 60, 3)).astype(np.float32), (0, 0), 2.0)
    tex = (tex - tex.min()) / (tex.max() - tex.min())
    frames = []
    for k in range(30):
        m = np.float32([[1, 0, -pan * k], [0, 1, 0]])
        img = cv2.warpAffine(tex, m, (W, H), flags=cv2.INTER_CUBIC) * 255
        x = np.linspace(0, 1, W)[None, :, None]
        img[BAND:] = 25 + 20 * x  # smooth paint
        img[4:12, 4:40:4] = 250  # strokes one pixel wide
        img[4:5, 4:40] = 250
        img = img + np.random.default_rng([seed, k]).normal(0, noise, img.shape)
        frames.append(np.clip(np.rint(img), 0, 255).astype(np.uint8))
    return frames


def test_noise_sigma_is_measured_from_one_image():
    rng = np.random.default_rng(0)
    smooth = cv2.GaussianBlur(rng.random((120, 160, 3)).astype(np.float32), (0, 0), 6.0) * 200
    for sigma in (1.0, 3.0, 8.0):
        assert noise_sigma(smooth + rng.normal(0, sigma, smooth.shape)) == pytest.approx(sigma, rel=0.15)


def test_the_overlay_and_the_bonnet_are_found_and_the_moving_view_is_not():
    frames = _overlay_clip()
    found = fixed_regions([to_float(frames[k]) for k in KEYS], FixedConfig())
    assert not found.camera_still
    assert found.noise * 255 == pytest.approx(2.0, rel=0.5)
    assert found.fixed[BAND + 1:].mean() > 0.7  # the bonnet
    assert found.fixed[16:BAND - 2].mean() < 0.01  # the moving view
    strokes = np.zeros((H, W), bool)
    strokes[5:12, 4:40:4] = True
    assert found.textured[strokes].mean() > 0.5  # the label's strokes are taken as they are
    assert found.textured[BAND + 3:].mean() < 0.05  # the smooth paint is not textured
    assert found.textured[16:BAND - 2].max() < 0.5


def test_a_still_camera_marks_nothing():
    frames = _overlay_clip(pan=0.0)
    found = fixed_regions([to_float(frames[k]) for k in KEYS], FixedConfig())
    assert found.camera_still and not found.any


def test_fixed_regions_keep_the_3d_route_off_the_bonnet_and_the_label_crisp():
    """A 3D route that paints the moving view over everything (as a model that cannot represent
    what moves with the camera does): the bonnet and the label stay as the inputs show them."""
    frames = _overlay_clip()
    keys = {k: frames[k] for k in KEYS}
    positions = [Fraction(i) for i in range(30)]
    clean = _overlay_clip(noise=0.0)
    # the stand-in 3D frame: the true frame with the view continued under the bonnet and the label
    rng = np.random.default_rng(5)
    wrong = [cv2.GaussianBlur(rng.random((H, W, 3)).astype(np.float32), (0, 0), 2.0) for _ in range(30)]
    frames3d = []
    for i in range(30):
        img = to_float(clean[i]).copy()
        img[BAND:] = wrong[i][BAND:]
        img[2:14, 2:42] = wrong[i][2:14, 2:42]
        frames3d.append((img, np.ones((H, W), np.float32)))
    held = [i for i in range(30) if i not in KEYS]

    def err(cfg, rows, cols=slice(None)):
        out = fuse_frames(positions, keys, cfg, frames3d).frames
        return np.mean([np.abs(out[i][rows, cols].astype(float) - clean[i][rows, cols]).mean() for i in held])

    on = FuseConfig(learned="off")
    off = FuseConfig(learned="off", fixed=FixedConfig(enabled=False))
    bonnet = slice(BAND + 1, None)
    assert err(on, bonnet) < 0.5 * err(off, bonnet)
    assert err(on, slice(4, 12), slice(4, 40)) < 0.5 * err(off, slice(4, 12), slice(4, 40))
    view = slice(16, BAND - 2)
    assert err(on, view) == pytest.approx(err(off, view), abs=0.3)  # the moving view as before

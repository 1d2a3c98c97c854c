"""The fused video's low band made consistent over time (sparsevid.fuse.temporal)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from sparsevid.data.camera import Camera
from sparsevid.data.synthetic import render, trajectory
from sparsevid.errors import SparsevidError
from sparsevid.eval.metrics import laplacian_variance
from sparsevid.fuse.temporal import LUMA, TemporalConfig, check_temporal, colour_part, smooth_low_band

KEYS = (0, 9, 19, 29)


def _clip(width: int = 160, height: int = 96, n: int = 30) -> list[np.ndarray]:
    f = 0.6 * width
    cam = Camera.pinhole(f, f, width / 2, height / 2, width, height)
    return [render(cam, p)[0] for p in trajectory(n, speed=0.02, yaw_rate=0.004)]


def _coarse_error(shape, seed: int, amplitude: float = 10.0) -> np.ndarray:
    """A smooth random error field (what a blend tipping one way leaves), [H, W, 3] float."""
    rng = np.random.default_rng(seed)
    h, w = shape[:2]
    small = rng.normal(0.0, 1.0, (3, 5, 3))
    field = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return amplitude * field / field.std()


def _rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)))


def test_independent_coarse_errors_shrink_and_the_detail_stays():
    """Each in-between frame of a moving scene carries its own smooth error; averaged over its
    motion-compensated neighbours, the error shrinks by a third or more, while the sharpness (variance of
    the Laplacian) stays within 3 % and the frames at input times come back untouched."""
    real = _clip()
    at_input = [i in KEYS for i in range(len(real))]
    noisy = [f if inp else np.clip(f + _coarse_error(f.shape, i), 0, 255).astype(np.uint8)
             for i, (f, inp) in enumerate(zip(real, at_input))]
    out = smooth_low_band(noisy, at_input, TemporalConfig(sigma=2.0, reach=2))
    held = [i for i in range(len(real)) if not at_input[i]]
    before = np.mean([_rmse(noisy[i], real[i]) for i in held])
    after = np.mean([_rmse(out[i], real[i]) for i in held])
    assert after < 0.67 * before, (before, after)
    for i in held:
        ratio = laplacian_variance(out[i]) / laplacian_variance(noisy[i])
        assert 0.97 < ratio < 1.03, (i, ratio)
    assert all(out[k] is noisy[k] for k in KEYS)


def _colour_noise(shape, seed: int, amplitude: float = 8.0) -> np.ndarray:
    """Fine random colour error, one value per pixel, that leaves the luma as it is, [H, W, 3] float."""
    return amplitude * colour_part(np.random.default_rng(seed).normal(0.0, 1.0, shape).astype(np.float32))


def test_colour_part_leaves_the_luma_and_is_a_projection():
    d = np.random.default_rng(0).normal(0.0, 1.0, (7, 5, 3)).astype(np.float32)
    c = colour_part(d)
    assert np.abs(c @ LUMA).max() < 1e-5
    assert np.allclose(colour_part(c), c, atol=1e-5)
    grey_change = np.ones((2, 2, 3), np.float32) * LUMA  # along the luma axis: no colour part
    assert np.abs(colour_part(grey_change)).max() < 1e-6


def test_colour_errors_shrink_in_every_band_and_the_grey_image_stays():
    """Fine colour errors of each in-between frame (above the low band, no luma) are left by the low band's
    mean, and taken out by ``colour_sigma`` 0: their RMS shrinks by a fifth or more (6.5 -> 4.8 grey levels;
    the clean inputs' warps add some of their own), while the grey image (what the sharpness is measured on)
    stays the one ``colour_sigma=None`` gives, within the rounding to 8 bits (but where a channel clips)."""
    real = _clip()
    at_input = [i in KEYS for i in range(len(real))]
    noisy = [f if inp else np.clip(f + _colour_noise(f.shape, i), 0, 255).astype(np.uint8)
             for i, (f, inp) in enumerate(zip(real, at_input))]
    held = [i for i in range(len(real)) if not at_input[i]]
    luma_only = smooth_low_band(noisy, at_input, TemporalConfig(colour_sigma=None))
    colour = smooth_low_band(noisy, at_input, TemporalConfig(colour_sigma=0.0))

    def err(frames):
        return np.mean([_rmse(frames[i], real[i]) for i in held])

    assert err(colour) < 0.8 * err(noisy), (err(noisy), err(colour))  # 6.5 -> 4.8 grey levels RMS
    assert err(luma_only) > 0.95 * err(noisy), (err(noisy), err(luma_only))
    for i in held:
        grey = [cv2.cvtColor(f[i], cv2.COLOR_RGB2GRAY).astype(int) for f in (luma_only, colour)]
        assert np.mean(np.abs(grey[0] - grey[1]) <= 1) > 0.99, i  # not where a channel clips at 0 or 255
    assert all(colour[k] is noisy[k] for k in KEYS)


def test_off_threads_and_bad_settings():
    """sigma None gives the frames back as they are; the result does not depend on the thread count;
    settings it cannot use are one-line errors."""
    real = _clip(width=96, height=64, n=12)
    at_input = [i in (0, 11) for i in range(12)]
    off = smooth_low_band(real, at_input, TemporalConfig(sigma=None))
    assert len(off) == len(real) and all(a is b for a, b in zip(off, real))
    one = smooth_low_band(real, at_input, TemporalConfig(), threads=1)
    two = smooth_low_band(real, at_input, TemporalConfig(), threads=2)
    assert len(one) == len(two) == len(real) and all(np.array_equal(a, b) for a, b in zip(one, two))
    assert not all(np.array_equal(a, b) for a, b in zip(one, real))  # it did smooth something
    # a still scene, frames all the same: nothing to average away, nothing changes
    still = [real[0]] * 5
    smoothed = smooth_low_band(still, [True, False, False, False, True])
    assert len(smoothed) == 5 and all(np.array_equal(a, real[0]) for a in smoothed)
    with pytest.raises(ValueError, match="input flags"):
        smooth_low_band(real, at_input[:-1])
    with pytest.raises(ValueError, match="threads must be 0 or more"):
        smooth_low_band(real, at_input, threads=-1)
    for bad, needle in ((TemporalConfig(sigma=0.0), "sigma must be positive"), (TemporalConfig(reach=0), "reach"),
                        (TemporalConfig(preset="slow"), "preset")):
        with pytest.raises(SparsevidError, match=needle):
            check_temporal(bad)

"""Undistorter: canvas geometry, point round trips, image round trips, per camera model."""
from __future__ import annotations

import numpy as np
import pytest

from sparsevid.data.camera import Camera
from sparsevid.poses.undistort import Undistorter

GOPRO = Camera("OPENCV", 848, 480, (501.6, 501.6, 424.0, 240.0, -0.1403, 0.0, 0.0, 0.0))
CAMERAS = {
    "PINHOLE": Camera("PINHOLE", 160, 120, (150.0, 152.0, 80.0, 60.0)),
    "SIMPLE_RADIAL": Camera("SIMPLE_RADIAL", 160, 120, (140.0, 81.0, 59.0, -0.12)),
    "OPENCV": Camera("OPENCV", 160, 120, (140.0, 142.0, 79.0, 61.0, -0.15, 0.03, 0.001, -0.0015)),
    "OPENCV_FISHEYE": Camera("OPENCV_FISHEYE", 160, 120, (90.0, 90.0, 80.0, 60.0, 0.04, -0.01, 0.002, 0.0)),
}


def _pixels(cam: Camera, n: int = 40) -> np.ndarray:
    u, v = np.meshgrid(np.linspace(0, cam.width, n), np.linspace(0, cam.height, n))
    return np.stack([u, v], -1).reshape(-1, 2)


@pytest.mark.parametrize("name", list(CAMERAS))
def test_point_round_trip_over_whole_image(name):
    cam = CAMERAS[name]
    und = Undistorter.for_camera(cam)
    uv = _pixels(cam)  # includes the image corners
    back = und.distort_points(und.undistort_points(uv))
    assert np.abs(back - uv).max() < 0.01
    # every source pixel lands inside the canvas, inside the valid mask
    assert und.source_valid.all()
    c = und.undistort_points(uv)
    assert (c[:, 0] >= -1e-6).all() and (c[:, 0] <= und.canvas_size[0] + 1e-6).all()
    assert (c[:, 1] >= -1e-6).all() and (c[:, 1] <= und.canvas_size[1] + 1e-6).all()


def test_gopro_canvas_is_sensible():
    und = Undistorter.for_camera(GOPRO)
    pin = und.pinhole
    assert pin.model == "PINHOLE" and (pin.fx, pin.fy) == (GOPRO.fx, GOPRO.fy)
    # barrel distortion: the undistorted field of view is wider than the frame, but not absurdly
    assert 848 < pin.width < 1.4 * 848 and 480 < pin.height < 1.4 * 480
    # symmetric lens centred in the frame -> symmetric padding, principal point at the canvas centre
    left, top, right, bottom = und.pad
    assert left == right and top == bottom
    assert pin.cx == pytest.approx(pin.width / 2) and pin.cy == pytest.approx(pin.height / 2)
    # the mask covers the input frame's K-rectangle and excludes the canvas corners
    assert und.mask[top:top + 480, left:left + 848][20:-20, 20:-20].all()
    assert not und.mask[0, 0] and not und.mask[-1, -1]
    assert 0.7 < und.mask.mean() < 0.95
    # the extreme corner pixel of the input lands within 1 px of the canvas corner
    corner = und.undistort_points(np.array([[0.0, 0.0]]))[0]
    assert corner.min() > -1e-6 and corner.max() < 1.0


def test_crop_mode_uses_input_K_and_scale():
    und = Undistorter.for_camera(GOPRO, scale=0.5, mode="crop")
    assert und.source.width == 424 and und.source.height == 240
    np.testing.assert_allclose(und.pinhole.K, GOPRO.scaled(0.5).K)
    assert und.canvas_size == (424, 240)
    assert und.mask.all()  # barrel: every pixel of the K-rectangle sees the image
    assert not und.source_valid.all()  # ... but the image corners fall outside it
    assert Undistorter.for_camera(GOPRO, scale=0.5, mode="crop") is und  # cached


def _smooth_image(w: int, h: int) -> np.ndarray:
    u, v = np.meshgrid(np.arange(w) / w, np.arange(h) / h)
    img = np.stack([0.5 + 0.4 * np.sin(6 * u + 2 * v), 0.5 + 0.4 * np.cos(5 * v - 3 * u), u * v], -1)
    return img.astype(np.float32)


@pytest.mark.parametrize("name", ["OPENCV", "OPENCV_FISHEYE", "SIMPLE_RADIAL"])
def test_image_round_trip(name):
    cam = CAMERAS[name]
    und = Undistorter.for_camera(cam)
    img = _smooth_image(cam.width, cam.height)
    canvas = und.undistort_image(img)
    assert canvas.shape == (und.canvas_size[1], und.canvas_size[0], 3) and canvas.dtype == np.float32
    assert np.all(canvas[~und.mask] == 0)
    back = und.distort_image(canvas)
    assert back.shape == img.shape
    err = np.abs(back - img)[4:-4, 4:-4]
    assert err.max() < 0.003 and err.mean() < 0.0003
    # uint8 and single-channel inputs keep their dtype / shape
    u8 = (img * 255).astype(np.uint8)
    assert und.distort_image(und.undistort_image(u8)).dtype == np.uint8
    depth = img[..., :1]
    assert und.distort_image(und.undistort_image(depth)).shape == depth.shape


def test_undistorted_image_is_a_pinhole_view():
    """A synthetic render through the lens, undistorted, equals a pinhole render on the canvas."""
    from sparsevid.data.synthetic import render, trajectory

    cam = CAMERAS["OPENCV"]
    und = Undistorter.for_camera(cam)
    c2w = trajectory(2)[0]
    distorted, _ = render(cam, c2w)
    pinhole, _ = render(und.pinhole, c2w)
    canvas = und.undistort_image(distorted)
    inner = und.mask.copy()
    inner[:, :] &= np.roll(und.mask, 3, 0) & np.roll(und.mask, -3, 0) & np.roll(und.mask, 3, 1) & np.roll(und.mask, -3, 1)
    diff = np.abs(canvas.astype(np.float32) - pinhole.astype(np.float32))[inner]
    assert np.median(diff) <= 2.0 and diff.mean() < 6.0  # unwarped frame: median 13, mean 21.6


def test_wrong_size_is_a_clear_error():
    from sparsevid.errors import SparsevidError

    und = Undistorter.for_camera(CAMERAS["OPENCV"])
    with pytest.raises(SparsevidError, match="expected 160x120"):
        und.undistort_image(np.zeros((10, 10, 3), np.uint8))


def test_fisheye_without_coefficients_is_still_a_fisheye():
    cam = Camera("OPENCV_FISHEYE", 160, 120, (100.0, 100.0, 80.0, 60.0, 0.0, 0.0, 0.0, 0.0))
    und = Undistorter.for_camera(cam)
    assert und.canvas_size[0] > 160 and und.canvas_size[1] > 120  # equidistant != pinhole
    uv = _pixels(cam, 20)
    assert np.abs(und.distort_points(und.undistort_points(uv)) - uv).max() < 0.01


def test_too_wide_lens_is_capped_not_fatal():
    cam = Camera("OPENCV_FISHEYE", 64, 48, (20.0, 20.0, 32.0, 24.0, 0.0, 0.0, 0.0, 0.0))  # ~180 deg
    und = Undistorter.for_camera(cam)
    assert und.canvas_size[0] <= 2.5 * 64 + 1 and und.canvas_size[1] <= 2.5 * 48 + 1
    assert und.mask.any() and und.source_valid.mean() > 0.3
    assert und.capped and "too wide" in und.capped_warning


def test_a_capped_canvas_is_reported_by_the_caller_once_not_by_each_scale(capsys):
    # the run builds the same lens at its training and output scales: building prints nothing, the
    # run warns once from the flag (it used to print the same warning twice)
    cam = Camera("OPENCV_FISHEYE", 64, 48, (20.0, 20.0, 32.0, 24.0, 0.0, 0.0, 0.0, 0.0))
    a, b = Undistorter.for_camera(cam, 0.5), Undistorter.for_camera(cam, 1.0)
    assert a.capped and b.capped and a.capped_warning == b.capped_warning
    assert "too wide" not in capsys.readouterr().err
    ok = Undistorter.for_camera(Camera("SIMPLE_RADIAL", 64, 48, (60.0, 32.0, 24.0, -0.05)))
    assert not ok.capped and ok.capped_warning is None


def test_a_lens_that_folds_inside_the_frame_gets_a_canvas_up_to_the_fold_not_the_cap():
    """A 320x180 copy of the shared clip got a SIMPLE_RADIAL model (k = -0.1633) that folds back just before the
    frame's corners. Border points past the fold map back onto the frame from the lens's far, turned-back branch
    (radius 2.86 against the fold's 1.43, where the Jacobian's determinant is positive again), and stretched the
    canvas to its 2.5x cap: 800x450, three quarters of it outside the frame, and the 3D route alone fell to 15.5 dB
    against 20.1 on the cropped canvas (review, session 37). The canvas now ends at the fold."""
    cam = Camera("SIMPLE_RADIAL", 320, 180, (190.68, 160.0, 90.0, -0.1633))
    und = Undistorter.for_camera(cam)
    assert und.capped and und.folds and "folds back before the frame's edge" in und.capped_warning
    w, h = und.canvas_size
    assert w < 1.6 * 320 and h < 1.6 * 180 and und.mask.mean() > 0.6
    # every canvas pixel inside the mask maps onto the frame and back
    uv = np.stack(np.nonzero(und.mask)[::-1], -1)[::97] + 0.5
    assert np.abs(und.undistort_points(und.distort_points(uv)) - uv).max() < 0.05
    # a lens that stays on its growing branch up to the corners is unchanged (the shared clip's own, 848x480)
    gopro = Undistorter.for_camera(Camera("SIMPLE_RADIAL", 848, 480, (505.3035, 424.0, 240.0, -0.1589)))
    assert not gopro.capped and not gopro.folds and gopro.canvas_size == (1236, 700)

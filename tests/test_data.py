"""Data loading/writing: format detection, COLMAP <-> transforms.json round trips for every
camera model, video/fps, key frames, the embedded demo, atomic writes and one-line errors."""
from __future__ import annotations

import json
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from sparsevid.cli import main
from sparsevid.data.camera import CAMERA_MODELS, Camera
from sparsevid.data.colmap import write_colmap
from sparsevid.data.images import index_files, parse_index, read_image, write_image
from sparsevid.data.load import demo_path, load_scene, parse_keyframes
from sparsevid.data.nerfstudio import GL_FLIP, write_transforms
from sparsevid.data.scene import Scene
from sparsevid.errors import SparsevidError
from sparsevid.io_utils import atomic_save, atomic_write_bytes, atomic_write_text

KEYS = [0, 9, 19, 29]

#: non-round parameters per model, for a 48x32 image
PARAMS: dict[str, tuple[float, ...]] = {
    "SIMPLE_PINHOLE": (30.123456789, 24.25, 15.75),
    "PINHOLE": (30.123456789, 29.87654321, 24.25, 15.75),
    "SIMPLE_RADIAL": (30.123456789, 24.25, 15.75, -0.0812345),
    "RADIAL": (30.123456789, 24.25, 15.75, -0.0812345, 0.0123456),
    "OPENCV": (30.123456789, 29.87654321, 24.25, 15.75, -0.1234567, 0.0123456, 0.0012345, -0.0023456),
    "OPENCV_FISHEYE": (30.123456789, 29.87654321, 24.25, 15.75, 0.0512345, -0.0112345, 0.0023456, -0.0012345),
}


def all_frames_scene(scene: Scene, camera: Camera | None = None, seed_names: bool = True) -> Scene:
    """Every frame of ``scene`` as an input frame (names in the seed layout's pattern)."""
    frames = sorted(scene.frames + scene.gt_frames, key=lambda f: f.index)
    if seed_names:
        frames = [replace(f, name=f"image_train_{f.index:06d}.png", path=None) for f in frames]
    return replace(scene, frames=frames, gt_frames=[], camera=camera or scene.camera)


def write_seed_layout(scene: Scene, root: Path, binary: bool = True) -> Path:
    """``root/colmap/sparse/0/{cameras,images,points3D}.bin`` + ``root/images/image_train_0000NN.png``."""
    write_colmap(scene, root / "colmap" / "sparse" / "0", images_dir=root / "images", binary=binary)
    return root


def assert_same_scene(a: Scene, b: Scene, tol: float = 1e-6) -> None:
    assert a.camera.model == b.camera.model
    assert (a.camera.width, a.camera.height) == (b.camera.width, b.camera.height)
    np.testing.assert_allclose(a.camera.params, b.camera.params, rtol=0, atol=tol)
    assert a.indices == b.indices
    assert [f.index for f in a.gt_frames] == [f.index for f in b.gt_frames]
    for fa, fb in zip(a.frames + a.gt_frames, b.frames + b.gt_frames):
        np.testing.assert_allclose(fa.c2w, fb.c2w, rtol=0, atol=tol)
        np.testing.assert_array_equal(fa.image, fb.image)


def one_line_error(capsys, argv: list[str]) -> str:
    """Run the CLI, check it failed with one line and no traceback, return that line."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    return err


# ---- atomic writes --------------------------------------------------------------------------
def test_atomic_writes(tmp_path):
    p = tmp_path / "sub" / "a.txt"
    atomic_write_text(p, "one")
    atomic_write_bytes(p, b"two")
    assert p.read_bytes() == b"two"

    def failing(tmp: Path) -> None:
        tmp.write_text("partial")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        atomic_save(p, failing)
    assert p.read_text() == "two"  # untouched
    assert sorted(x.name for x in p.parent.iterdir()) == ["a.txt"]  # no temp file left
    atomic_save(tmp_path / "img.png", lambda t: write_image(t, np.zeros((4, 5, 3), np.uint8)))
    assert read_image(tmp_path / "img.png").shape == (4, 5, 3)


# ---- frame indices --------------------------------------------------------------------------
@pytest.mark.parametrize("name,index", [("image_train_000009.png", 9), ("frame_0009.png", 9), ("0009.jpg", 9),
                                        ("IMG_1234.JPG", 1234), ("cover.png", None)])
def test_parse_index(name, index):
    assert parse_index(name) == index


def test_index_files_without_numbers_uses_name_order(tmp_path):
    paths = [tmp_path / n for n in ("b.png", "a.png", "c.png")]
    assert [(i, p.name) for i, p in index_files(paths)] == [(0, "a.png"), (1, "b.png"), (2, "c.png")]


def test_parse_keyframes():
    assert parse_keyframes("0,9, 19,29") == KEYS
    assert parse_keyframes(None) is None
    with pytest.raises(SparsevidError, match="comma-separated"):
        parse_keyframes("0;9")


# ---- COLMAP <-> transforms.json round trips -------------------------------------------------
@pytest.mark.parametrize("model", list(CAMERA_MODELS))
def test_roundtrip_colmap_transforms_every_model(tmp_path, tiny_scene, model):
    cam = Camera(model, 48, 32, PARAMS[model])
    scene = all_frames_scene(tiny_scene, cam)
    root = write_seed_layout(scene, tmp_path / "data" / "my_scene")
    model_dir = root / "colmap/sparse/0"
    assert {"cameras.bin", "images.bin", "points3D.bin"} <= {p.name for p in model_dir.glob("*.bin")}
    for extra in ("rigs.bin", "frames.bin"):  # COLMAP 4 extras; the seed layout has only the classic three
        (model_dir / extra).unlink(missing_ok=True)
    assert (root / "images" / "image_train_000029.png").is_file()

    from_colmap = load_scene(root, keyframes=KEYS)
    assert from_colmap.source == "colmap"
    assert from_colmap.indices == KEYS and len(from_colmap.gt_frames) == 26
    assert all(f.c2w is not None for f in from_colmap.gt_frames)  # held-out frames keep reference poses
    assert from_colmap.camera == cam
    for f in from_colmap.frames + from_colmap.gt_frames:
        np.testing.assert_allclose(f.c2w, scene.frames[f.index].c2w, rtol=0, atol=1e-9)
    np.testing.assert_allclose(from_colmap.points, tiny_scene.points, atol=1e-12)
    np.testing.assert_array_equal(from_colmap.point_colors, tiny_scene.point_colors)

    tj = write_transforms(from_colmap, tmp_path / "ns" / "transforms.json", write_images=True)
    from_ns = load_scene(tj.parent, keyframes=KEYS)
    assert from_ns.source == "nerfstudio"
    assert_same_scene(from_colmap, from_ns)
    order = np.lexsort(from_ns.points.T), np.lexsort(tiny_scene.points.T)
    np.testing.assert_allclose(from_ns.points[order[0]], tiny_scene.points[order[1]], atol=1e-5)  # float32 .ply
    np.testing.assert_array_equal(from_ns.point_colors[order[0]], tiny_scene.point_colors[order[1]])

    # and back: transforms.json -> COLMAP (sparse/0 layout) -> same again
    write_colmap(from_ns, tmp_path / "back" / "sparse" / "0", images_dir=tmp_path / "back" / "images")
    assert_same_scene(from_ns, load_scene(tmp_path / "back", keyframes=KEYS))


def test_transforms_json_uses_opengl_axes_and_nerfstudio_keys(tmp_path, tiny_scene):
    cam = Camera("OPENCV", 48, 32, PARAMS["OPENCV"])
    scene = replace(tiny_scene, camera=cam)
    meta = json.loads(write_transforms(scene, tmp_path / "transforms.json").read_text())
    for k in ("camera_model", "fl_x", "fl_y", "cx", "cy", "w", "h", "k1", "k2", "p1", "p2", "frames",
              "ply_file_path"):
        assert k in meta
    assert meta["camera_model"] == "OPENCV" and meta["k1"] == PARAMS["OPENCV"][4]
    assert len(meta["frames"]) == 30  # inputs + posed ground truth
    f0 = meta["frames"][0]
    np.testing.assert_allclose(np.array(f0["transform_matrix"]), scene.frames[0].c2w @ GL_FLIP, atol=1e-12)
    # OpenGL camera looks along -z: the camera's forward (OpenCV +z) is minus the third column
    np.testing.assert_allclose(-np.array(f0["transform_matrix"])[:3, 2], scene.frames[0].c2w[:3, 2], atol=1e-12)
    assert (tmp_path / meta["frames"][0]["file_path"]).is_file()  # frames without a file are written


def test_colmap_pose_is_world_to_camera(tmp_path, tiny_scene):
    import pycolmap

    write_colmap(tiny_scene, tmp_path / "sparse" / "0")
    rec = pycolmap.Reconstruction(tmp_path / "sparse" / "0")
    by_name = {im.name: im for im in rec.images.values()}
    for f in tiny_scene.frames:
        w2c = by_name[f.name].cam_from_world().matrix()
        np.testing.assert_allclose(w2c, np.linalg.inv(f.c2w)[:3], atol=1e-12)


def test_colmap_binary_is_classic_layout(tmp_path, tiny_scene):
    """cameras.bin / images.bin keep the classic record layout that COLMAP 3.x, gsplat's example
    trainer and nerfstudio read (they ignore COLMAP 4's extra rigs.bin / frames.bin)."""
    import struct

    from scipy.spatial.transform import Rotation

    cam = Camera("OPENCV", 48, 32, PARAMS["OPENCV"])
    model = write_colmap(replace(tiny_scene, camera=cam), tmp_path / "sparse" / "0", include_gt=False)
    b = (model / "cameras.bin").read_bytes()
    n, _cid, model_id, w, h = struct.unpack_from("<QIiQQ", b)
    assert (n, model_id, w, h) == (1, 4, 48, 32)  # 4 = OPENCV
    np.testing.assert_allclose(struct.unpack_from("<8d", b, 32), PARAMS["OPENCV"], rtol=0, atol=0)
    b = (model / "images.bin").read_bytes()
    n, _iid, qw, qx, qy, qz, tx, ty, tz, _cam = struct.unpack_from("<QI7dI", b)
    name = b[72:b.index(b"\0", 72)].decode()
    fr = next(f for f in tiny_scene.frames if f.name == name)
    w2c = np.linalg.inv(fr.c2w)
    assert n == 4
    np.testing.assert_allclose(Rotation.from_quat([qx, qy, qz, qw]).as_matrix(), w2c[:3, :3], atol=1e-12)
    np.testing.assert_allclose([tx, ty, tz], w2c[:3, 3], atol=1e-12)


def test_colmap_text_format(tmp_path, tiny_scene):
    root = write_seed_layout(all_frames_scene(tiny_scene), tmp_path / "scene", binary=False)
    assert (root / "colmap/sparse/0/images.txt").is_file()
    assert not (root / "colmap/sparse/0/images.bin").exists()
    scene = load_scene(root)
    assert len(scene.frames) == 30 and scene.gt_frames == []
    assert scene.camera == tiny_scene.camera
    for f in scene.frames:
        ref = (tiny_scene.frames + tiny_scene.gt_frames)
        np.testing.assert_allclose(f.c2w, next(r.c2w for r in ref if r.index == f.index), atol=1e-9)
    assert len(scene.points) == len(tiny_scene.points)


def test_colmap_model_folder_and_unregistered_images(tmp_path, tiny_scene):
    # model of the 4 inputs only; the other 26 images on disk become ground truth without pose
    write_colmap(tiny_scene, tmp_path / "sparse" / "0", images_dir=tmp_path / "images", include_gt=False)
    for f in tiny_scene.gt_frames:
        write_image(tmp_path / "images" / f.name, f.image)
    scene = load_scene(tmp_path / "sparse" / "0")  # the model folder itself also works
    assert scene.indices == KEYS and len(scene.gt_frames) == 26
    assert all(f.c2w is None for f in scene.gt_frames)


def test_colmap_images_in_a_subfolder_and_unregistered_images(tmp_path, tiny_scene):
    """Image names with a folder (``cam/frame_0000.png``, as COLMAP writes for images/cam/...): the images the
    model leaves out of that folder are ground truth too (they were not looked for outside the top level)."""
    import pycolmap

    model = tmp_path / "sparse" / "0"
    write_colmap(tiny_scene, model, include_gt=False)
    rec = pycolmap.Reconstruction(str(model))
    for im in rec.images.values():
        im.name = "cam/" + im.name
    rec.write(str(model))
    for f in tiny_scene.frames + tiny_scene.gt_frames:
        write_image(tmp_path / "images" / "cam" / f"frame_{f.index:04d}.png", f.image)
    scene = load_scene(tmp_path)
    assert scene.indices == KEYS and len(scene.gt_frames) == 26
    assert scene.frames[0].name == "cam/frame_0000.png" and scene.gt_frames[0].name == "cam/frame_0001.png"


# ---- images, fps, video, demo ---------------------------------------------------------------
def write_frames(folder: Path, scene: Scene, pattern: str = "frame_{:04d}.png") -> list[Path]:
    frames = sorted(scene.frames + scene.gt_frames, key=lambda f: f.index)
    return [write_image(folder / pattern.format(f.index), f.image) for f in frames]


def test_images_folder_keyframes_and_fps(tmp_path, tiny_scene):
    write_frames(tmp_path, tiny_scene)
    scene = load_scene(tmp_path)
    assert scene.source == "images" and scene.camera is None and not scene.has_poses
    assert len(scene.frames) == 30 and scene.fps == 30.0
    atomic_write_text(tmp_path / "frames_meta.json", json.dumps({"fps": 30000 / 1001}))
    scene = load_scene(tmp_path, keyframes=KEYS)
    assert scene.indices == KEYS and [f.index for f in scene.gt_frames] == [i for i in range(30) if i not in KEYS]
    assert scene.fps == Fraction(30000, 1001)  # the float in frames_meta.json, made exact
    atomic_write_text(tmp_path / "frames_meta.json", json.dumps({"fps": "30000/1001"}))  # as `inspect` prints it
    assert load_scene(tmp_path).fps == Fraction(30000, 1001)
    atomic_write_text(tmp_path / "frames_meta.json", json.dumps({"fps": 1e300}))
    with pytest.raises(SparsevidError, match="'fps' must be a frame rate from 0.01 to 10000 fps"):
        load_scene(tmp_path)
    atomic_write_text(tmp_path / "frames_meta.json", json.dumps({"fps": 30000 / 1001}))
    assert scene.time(9) == pytest.approx(9 * 1001 / 30000)
    assert load_scene(tmp_path, fps=24).fps == 24.0
    assert load_scene(tmp_path, fps=23.976).fps == Fraction(24000, 1001)
    np.testing.assert_array_equal(scene.frames[1].image, tiny_scene.frames[1].image)


def test_frames_numbered_from_1_or_100_start_the_video_at_their_first(tmp_path, tiny_scene, capsys):
    """frame_0100..frame_0129 used to give a 130-frame video whose first 100 frames were frame 100 held still, and
    1.png..30.png an invented frame 0; numbers that are timestamps made the camera path without end."""
    write_frames(tmp_path / "from100", tiny_scene, "frame_01{:02d}.png")  # frame_0100.png .. frame_0129.png
    scene = load_scene(tmp_path / "from100", keyframes=[100, 109, 119, 129])  # keyframes count as the files do
    assert scene.indices == KEYS and sorted(f.index for f in scene.gt_frames) == [i for i in range(30) if i not in KEYS]
    assert scene.frames[1].name == "frame_0109.png"
    np.testing.assert_array_equal(scene.frames[1].image, tiny_scene.frames[1].image)
    assert "the first frame is number 100: the video starts at it" in capsys.readouterr().err
    write_frames(tmp_path / "from1", tiny_scene, "{}.png")
    for f in (tmp_path / "from1").iterdir():  # 0.png..29.png -> 1.png..30.png
        f.rename(f.with_name(f"n{int(f.stem) + 1}.png"))
    assert load_scene(tmp_path / "from1", keyframes=[1, 10, 20, 30]).indices == KEYS
    # numbers that are timestamps (microseconds): renumbered from the first, then a camera path too long to make
    stamps = tmp_path / "stamps"
    for i, f in enumerate(sorted(tiny_scene.frames + tiny_scene.gt_frames, key=lambda f: f.index)):
        write_image(stamps / f"cam_{1700000000000000 + 33333 * i}.png", f.image)
    scene = load_scene(stamps)
    assert scene.indices[0] == 0 and scene.indices[-1] == 33333 * 29
    from sparsevid.path.camera_path import PathConfig

    assert PathConfig().frame_count(30, 29) == 30
    with pytest.raises(SparsevidError, match="number the input frames 0, 1, 2"):
        PathConfig().frame_count(scene.fps, scene.indices[-1])


def test_shifting_a_scene_moves_its_tracks_too(tiny_scene):
    tracks = [np.array([[9.0, 1.5, 2.5], [19.0, 3.0, 4.0]]), np.zeros((0, 3))]
    moved = replace(tiny_scene, point_tracks=tracks).shifted(-9)
    assert moved.indices == [k - 9 for k in KEYS] and moved.first_index == -9
    np.testing.assert_array_equal(moved.point_tracks[0][:, 0], [0.0, 10.0])
    assert moved.point_tracks[1].shape == (0, 3) and tiny_scene.shifted(0) is tiny_scene


def test_a_variable_frame_rate_video_keeps_its_frames_in_time(tmp_path, capsys, write_clip):
    """Frame i is shown at i / fps. A phone that dropped a frame averages 27.7 fps over this clip: each frame keeps
    its place on the nominal 30 fps grid (index = time x fps), the empty place becomes an in-between frame, and the
    run says so in one line. A constant-rate clip says nothing."""

    def _stamped_video(path: Path, pts: list[int]) -> Path:  # frame k is a flat 10 * k, shown at pts[k] / 30 s
        return write_clip([np.full((48, 64, 3), 10 * k, np.uint8) for k in range(len(pts))], path, pts=pts)

    cfr = load_scene(_stamped_video(tmp_path / "cfr.mp4", list(range(12))))
    assert cfr.indices == list(range(12)) and cfr.fps == 30
    assert "variable frame rate" not in capsys.readouterr().err
    vfr = load_scene(_stamped_video(tmp_path / "vfr.mp4", [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12]))
    assert vfr.fps == 30 and vfr.indices == [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12]
    assert [round(float(f.image.mean()) / 10) for f in vfr.frames] == list(range(12))  # each frame its own picture
    err = capsys.readouterr().err
    assert "variable frame rate: 1 of its 13 frame times at 30.000 fps hold no frame (the first: 5)" in err
    assert len(err.strip().splitlines()) == 1
    keyed = load_scene(tmp_path / "vfr.mp4", keyframes=[0, 6, 12])  # keyframes are places on that grid
    assert keyed.indices == [0, 6, 12] and 5 not in [f.index for f in keyed.gt_frames]
    capsys.readouterr()
    # a phone that slowed from 30 to 15 fps for most of the clip averages 18 fps: its shortest common interval
    # says 30, as FFmpeg's guess does, so every frame keeps its place on the 30 fps grid (it was put on an 18 fps
    # grid, which moved frames by up to half a frame and left one out)
    mixed = load_scene(_stamped_video(tmp_path / "mixed.mp4", [0, 2, 3, 4, 6, 8, 10, 12, 14, 16, 18, 20]))
    assert mixed.fps == 30 and mixed.indices == [0, 2, 3, 4, 6, 8, 10, 12, 14, 16, 18, 20]
    assert [round(float(f.image.mean()) / 10) for f in mixed.frames] == list(range(12))
    err = capsys.readouterr().err
    assert "9 of its 21 frame times at 30.000 fps hold no frame" in err and len(err.strip().splitlines()) == 1
    # mostly 10 fps with one short step: the guess (30) is no common interval, the average is the grid, and two
    # frames that round onto one place there keep one (said in the same line)
    slow = load_scene(_stamped_video(tmp_path / "slow.mp4", [0, 3, 4, 6, 9, 12, 15, 18, 21, 24, 27, 30]))
    assert slow.fps < 13 and len(set(slow.indices)) == len(slow.indices) == 11
    err = capsys.readouterr().err
    assert "1 frame fell on a time already taken and was left out" in err and len(err.strip().splitlines()) == 1


def test_phone_jpegs_with_an_exif_orientation_load_upright(tmp_path):
    """A phone's JPEG held upright is stored on its side with EXIF orientation 6 (turn a quarter clockwise): the
    frames load as viewers show them, as videos with a display matrix do (tests/test_video.py)."""
    from PIL import Image

    stored = np.full((48, 64, 3), 60, np.uint8)
    stored[:10, :20] = 255  # marks the stored top-left corner
    for i in range(3):
        im = Image.fromarray(stored)
        exif = im.getexif()
        exif[0x0112] = 6
        im.save(tmp_path / f"IMG_{i:04d}.jpg", exif=exif.tobytes(), quality=95)
    img = load_scene(tmp_path).frames[0].image
    want = np.rot90(stored, k=-1)
    assert img.shape == want.shape == (64, 48, 3) and np.abs(img.astype(int) - want).mean() < 4


def make_video(path: Path, n: int = 12, rate: Fraction = Fraction(30000, 1001)) -> Path:
    import av

    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=rate)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for i in range(n):
            img = np.full((48, 64, 3), (10 + 20 * i) % 250, np.uint8)
            for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return path


def test_video_fps_and_keyframes(tmp_path):
    video = make_video(tmp_path / "clip.mp4")
    scene = load_scene(video, keyframes=[0, 5, 11])
    assert scene.source == "video"
    assert scene.fps == Fraction(30000, 1001)  # exact rational from the stream
    assert isinstance(scene.fps, Fraction)
    assert scene.indices == [0, 5, 11] and len(scene.gt_frames) == 9
    assert scene.frames[0].image.shape == (48, 64, 3) and scene.frames[0].image.dtype == np.uint8
    assert abs(float(scene.frames[1].image.mean()) - (10 + 20 * 5)) < 4  # decoded in order
    assert load_scene(tmp_path).source == "video"  # a folder holding one video


def test_video_fps_stays_exact_without_an_ntsc_guess(tmp_path):
    """A stream at exactly 2997/100 fps is not NTSC 30000/1001: the stream's rate is kept as is."""
    scene = load_scene(make_video(tmp_path / "clip.mp4", n=4, rate=Fraction(2997, 100)))
    assert scene.fps == Fraction(2997, 100)


def test_demo_loads():
    d = demo_path()
    for name in ("LICENSE-APACHE", "LICENSE-MIT", "LICENSE.txt", "frames_meta.json"):
        assert (d / name).is_file()
    scene = load_scene(d)
    assert scene.indices == KEYS and scene.gt_frames == []
    assert scene.image_size == (848, 480)
    assert scene.fps == Fraction(30000, 1001)


def test_demo_matches_shared_clip(shared_case):
    for i in KEYS:
        np.testing.assert_array_equal(read_image(demo_path() / f"frame_{i:04d}.png"),
                                      read_image(shared_case / f"frame_{i:04d}.png"))


# ---- one-line errors ------------------------------------------------------------------------
def test_error_missing_path(tmp_path, capsys):
    err = one_line_error(capsys, ["inspect", str(tmp_path / "nope")])
    assert "nope: input not found" in err and "->" in err


def test_error_empty_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert "empty: no frames found" in one_line_error(capsys, ["inspect", str(tmp_path / "empty")])


def test_error_corrupt_image(tmp_path, tiny_scene, capsys):
    paths = write_frames(tmp_path, tiny_scene)
    paths[3].write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    err = one_line_error(capsys, ["inspect", str(tmp_path)])
    assert "frame_0003.png: cannot decode image" in err and "replace or delete" in err


def test_error_different_sizes(tmp_path, tiny_scene, capsys):
    write_frames(tmp_path, tiny_scene)
    write_image(tmp_path / "frame_0004.png", np.zeros((10, 12, 3), np.uint8))
    err = one_line_error(capsys, ["inspect", str(tmp_path)])
    assert "different sizes" in err and "frame_0004.png is 12x10" in err


def test_error_fewer_than_two_frames(tmp_path, tiny_scene, capsys):
    write_image(tmp_path / "frame_0000.png", tiny_scene.frames[0].image)
    assert "need at least 2 input frames, found 1" in one_line_error(capsys, ["inspect", str(tmp_path)])
    write_image(tmp_path / "frame_0001.png", tiny_scene.frames[1].image)
    err = one_line_error(capsys, ["inspect", str(tmp_path), "--keyframes", "1"])
    assert "need at least 2 input frames, found 1" in err


def test_error_duplicate_indices(tmp_path, tiny_scene, capsys):
    write_image(tmp_path / "a_0001.png", tiny_scene.frames[0].image)
    write_image(tmp_path / "b_0001.png", tiny_scene.frames[1].image)
    err = one_line_error(capsys, ["inspect", str(tmp_path)])
    assert "duplicate frame index 1: a_0001.png and b_0001.png" in err


def test_error_partial_colmap_model(tmp_path, tiny_scene, capsys):
    root = write_seed_layout(tiny_scene, tmp_path / "s")
    (root / "colmap/sparse/0/images.bin").unlink()
    err = one_line_error(capsys, ["inspect", str(root)])
    assert "partial COLMAP model: missing images.bin" in err and "sparse/0" in err


@pytest.mark.parametrize("name", ["cameras.bin", "images.bin", "points3D.bin"])
def test_error_unreadable_colmap_model(tmp_path, tiny_scene, capsys, name):
    root = write_seed_layout(tiny_scene, tmp_path / "s")
    data = (root / "colmap/sparse/0" / name).read_bytes()
    (root / "colmap/sparse/0" / name).write_bytes(data[:len(data) // 2])
    err = one_line_error(capsys, ["inspect", str(root)])
    assert "unreadable COLMAP model" in err and "re-export" in err


def test_error_empty_colmap_folder(tmp_path, tiny_scene, capsys):
    write_frames(tmp_path / "images", tiny_scene)
    (tmp_path / "sparse" / "0").mkdir(parents=True)
    assert "COLMAP model folder is empty" in one_line_error(capsys, ["inspect", str(tmp_path)])


def test_error_colmap_images_missing_on_disk(tmp_path, tiny_scene, capsys):
    root = write_seed_layout(all_frames_scene(tiny_scene), tmp_path / "s")
    (root / "images" / "image_train_000012.png").unlink()
    err = one_line_error(capsys, ["inspect", str(root)])
    assert "image_train_000012.png referenced by the COLMAP model is missing" in err


@pytest.mark.parametrize("drop,expected", [("frames", "missing key 'frames'"),
                                           ("transform_matrix", "missing key 'transform_matrix' in frame 0"),
                                           ("file_path", "missing key 'file_path' in frame 0"),
                                           ("fl_x", "missing key 'fl_x'")])
def test_error_transforms_missing_keys(tmp_path, tiny_scene, capsys, drop, expected):
    tj = write_transforms(tiny_scene, tmp_path / "transforms.json", write_images=True)
    meta = json.loads(tj.read_text())
    if drop in meta:
        del meta[drop]
    else:
        del meta["frames"][0][drop]
    tj.write_text(json.dumps(meta))
    err = one_line_error(capsys, ["inspect", str(tj)])
    assert "transforms.json" in err and expected in err


def test_error_transforms_images_missing_on_disk(tmp_path, tiny_scene, capsys):
    tj = write_transforms(tiny_scene, tmp_path / "transforms.json", write_images=True)
    (tmp_path / "images" / "frame_0019.png").unlink()
    err = one_line_error(capsys, ["inspect", str(tmp_path)])
    assert "frame_0019.png referenced by transforms.json is missing" in err and tj.exists()


def test_error_transforms_different_intrinsics(tmp_path, tiny_scene, capsys):
    tj = write_transforms(tiny_scene, tmp_path / "transforms.json", write_images=True)
    meta = json.loads(tj.read_text())
    meta["frames"][2]["fl_x"] = meta["fl_x"] * 1.1
    tj.write_text(json.dumps(meta))
    assert "must share one camera" in one_line_error(capsys, ["inspect", str(tj)])


@pytest.mark.parametrize("key,value,expected", [
    ("fl_x", float("nan"), "key 'fl_x' is not a finite number"),
    ("fl_x", -94.6, "implausible camera intrinsics: focal length fx -94.6 px"),
    ("fl_y", 1e9, "implausible camera intrinsics: focal length fy"),
    ("cx", 5000.0, "implausible camera intrinsics: principal point"),
    ("k1", float("inf"), "key 'k1' is not a finite number"),
    ("fps", 1e6, "'fps' must be a frame rate from 0.01 to 10000 fps"),
    ("fps", 1e300, "'fps' must be a frame rate from 0.01 to 10000 fps"),
    ("fps", 0.0001, "'fps' must be a frame rate from 0.01 to 10000 fps"),
    ("fps", [30], "'fps' must be a number or a ratio"),
])
def test_error_transforms_impossible_values(tmp_path, tiny_scene, capsys, key, value, expected):
    """Values no camera or video has: one line naming the file, as a COLMAP model's are (not a traceback in the
    undistortion, or a negative focal length used as it is)."""
    tj = write_transforms(tiny_scene, tmp_path / "transforms.json", write_images=True)
    meta = json.loads(tj.read_text())
    meta[key] = value
    tj.write_text(json.dumps(meta))  # NaN and Infinity as Python's json writes and reads them
    err = one_line_error(capsys, ["inspect", str(tj)])
    assert "transforms.json" in err and expected in err, err


def test_transforms_masks_are_said_to_be_unused(tmp_path, tiny_scene, capsys):
    tj = write_transforms(tiny_scene, tmp_path / "transforms.json", write_images=True)
    meta = json.loads(tj.read_text())
    for fm in meta["frames"][:2]:
        fm["mask_path"] = "masks/" + Path(fm["file_path"]).name
    tj.write_text(json.dumps(meta))
    load_scene(tj)
    err = capsys.readouterr().err
    assert "transforms.json: 2 frames have a mask_path; sparsevid does not use masks" in err


def test_transforms_fps_as_a_ratio(tmp_path, tiny_scene):
    tj = write_transforms(tiny_scene, tmp_path / "transforms.json", write_images=True)
    meta = json.loads(tj.read_text())
    meta["fps"] = "30000/1001"  # as frames_meta.json and --fps take it
    tj.write_text(json.dumps(meta))
    assert load_scene(tj).fps == Fraction(30000, 1001)


def test_error_undecodable_video(tmp_path, capsys):
    (tmp_path / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x13" * 500)
    err = one_line_error(capsys, ["inspect", str(tmp_path / "broken.mp4")])
    assert "broken.mp4: cannot decode video" in err and "re-encode" in err


def test_error_video_too_long(tmp_path):
    from sparsevid.data.video import read_video

    video = make_video(tmp_path / "clip.mp4")
    with pytest.raises(SparsevidError, match="video too long: more than 4 frames of 64x48.*--start / --end"):
        read_video(video, max_bytes=4 * 64 * 48 * 3)


def test_a_video_is_decoded_only_up_to_its_last_keyframe(tmp_path, capsys):
    """The output ends at the last keyframe, yet every frame of the video was decoded and held: a 10 s 4K clip was
    refused as too long (14 GiB) for keyframes 0,9,19,29. Decoding now stops there (and no truncation warning);
    a camera path made longer than the inputs still gets the frames after it."""
    from sparsevid.data.video import read_video

    video = make_video(tmp_path / "clip.mp4", n=40)
    one = 64 * 48 * 3
    scene = load_scene(video, keyframes=[0, 5, 11], until_last_keyframe=True)  # as run and poses read it
    assert max(f.index for f in scene.frames + scene.gt_frames) == 11 and len(scene.gt_frames) == 9
    # a window with keyframes: the decode stops at the last keyframe, short of --end, which is no error
    windowed = load_scene(video, keyframes=[0, 5, 11], start="f2", end="f35", until_last_keyframe=True)
    assert windowed.indices == [0, 5, 11] and max(f.index for f in windowed.gt_frames) == 10
    assert "header announces" not in capsys.readouterr().err
    with pytest.raises(SparsevidError, match="video too long"):
        read_video(video, max_bytes=20 * one)
    assert len(read_video(video, max_bytes=20 * one, until=11).frames) == 12
    longer = load_scene(video, keyframes=[0, 5, 11])  # inspect lists every frame
    assert max(f.index for f in longer.gt_frames) == 39


def test_a_clip_cut_without_reencoding_is_not_called_damaged(tmp_path, capsys):
    """`ffmpeg -ss 0.3 -i IN -c copy OUT` keeps the packets before the cut and hides them with an edit list: the
    header counts them, the decoder shows only the frames after the cut. That was warned about as a truncated or
    damaged file; a file that really lost frames still is, without calling its gaps a variable frame rate."""
    import av

    src = make_video(tmp_path / "clip.mp4", n=30, rate=Fraction(30))
    cut = tmp_path / "cut.mp4"
    with av.open(str(src)) as inp, av.open(str(cut), "w") as out:
        ins = inp.streams.video[0]
        outs = out.add_stream_from_template(ins)
        for pkt in inp.demux(ins):
            if pkt.dts is None:
                continue
            pkt.pts -= 9 * 512 if pkt.pts is not None else 0  # the first 9 frames before time 0
            pkt.dts -= 9 * 512
            pkt.stream = outs
            out.mux(pkt)
    scene = load_scene(cut)
    err = capsys.readouterr().err
    assert "header announces" not in err and "variable frame rate" not in err, err
    assert scene.indices == list(range(21))  # FFmpeg's mp4 muxer writes the edit list that hides the first 9


def test_error_keyframes_not_in_input(tmp_path, tiny_scene, capsys):
    write_frames(tmp_path, tiny_scene)
    err = one_line_error(capsys, ["inspect", str(tmp_path), "--keyframes", "0,9,31,40"])
    assert "keyframes 31,40 not in the input (30 frames, indices 0..29)" in err
    err = one_line_error(capsys, ["inspect", str(tmp_path), "--keyframes", "0,9,31"])
    assert "keyframe 31 not in the input (30 frames, indices 0..29)" in err


def test_a_run_folder_is_not_read_as_a_clip_and_a_poster_does_not_hide_the_video(tmp_path, capsys):
    """`inspect OUT` read a run's contact sheet as a one-frame clip ("need at least 2 input frames"), and a folder
    holding clip.mp4 and poster.jpg was read as that one image."""
    from sparsevid.outdir import RUN_MARKER

    out = tmp_path / "out"
    out.mkdir()
    (out / RUN_MARKER).write_text("")
    write_image(out / "contact_sheet.png", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(SparsevidError, match="output folder of a sparsevid run, not a clip") as e:
        load_scene(out)
    assert e.value.one_line().endswith("-> pass the clip it was made from")  # nothing more is known
    # the clip its run.json names, and its poses folder where it has one (not a poses folder it lacks)
    (out / "run.json").write_text('{"config": {"input": "/data/walk.mp4"}}')
    with pytest.raises(SparsevidError) as e:
        load_scene(out)
    assert e.value.one_line().endswith("-> pass the clip it was made from (/data/walk.mp4)")
    (out / "poses").mkdir()
    (out / "poses" / "transforms.json").write_text("{}")
    (out / "run.json").write_text('{"config": {"input": null}}')
    with pytest.raises(SparsevidError) as e:
        load_scene(out)
    assert f"(a run of the embedded demo: {demo_path()}), or {out / 'poses'} for the poses" in e.value.one_line()
    clip = tmp_path / "clip"
    clip.mkdir()
    make_video(clip / "clip.mp4", n=12)
    write_image(clip / "poster.jpg", np.zeros((8, 8, 3), np.uint8))
    scene = load_scene(clip)
    assert scene.source == "video" and len(scene.frames) == 12
    assert "reading the video clip.mp4" in capsys.readouterr().err


def test_float_tiff_frames_are_read_and_hdr_ones_refused(tmp_path, capfd):
    """32-bit float TIFFs were called "corrupt or not an image", after a line of OpenCV's own."""
    import cv2

    rgb = np.random.default_rng(0).integers(0, 256, (12, 16, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "f.tif"), rgb[:, :, ::-1].astype(np.float32) / 255.0)
    np.testing.assert_array_equal(read_image(tmp_path / "f.tif"), rgb)
    cv2.imwrite(str(tmp_path / "hdr.tif"), rgb[:, :, ::-1].astype(np.float32) / 25.0)
    with pytest.raises(SparsevidError, match="float image with values from 0 to 10.2"):
        read_image(tmp_path / "hdr.tif")
    assert "WARN" not in capfd.readouterr().err


@pytest.mark.parametrize("change, expected", [
    (lambda fm: fm.update(transform_matrix=(np.array(fm["transform_matrix"]) @ np.diag([-1, 1, 1, 1])).tolist()),
     "frame 9 (images/frame_0009.png): transform_matrix's rotation is a mirror (determinant -1"),
    (lambda fm: fm.update(transform_matrix="identity"), "frame 9 (images/frame_0009.png): transform_matrix must be 4x4"),
    (lambda fm: fm.update(transform_matrix=[[1, 0, 0], [0, 1]]), "transform_matrix must be 4x4 finite numbers"),
    (lambda fm: fm.update(transform_matrix=(2 * np.array(fm["transform_matrix"])).tolist()), "last row is"),
    (lambda fm: fm.update(transform_matrix=(np.diag([2, 2, 2, 1]) @ np.array(fm["transform_matrix"])).tolist()),
     "rotation is not orthonormal"),
    (lambda fm: fm.update(file_path="images/frame_0000.png"), "frames 0 and 9 both name the image"),
])
def test_error_transforms_pose_that_is_no_camera_pose(tmp_path, tiny_scene, capsys, change, expected):
    """A mirrored rotation (a half-done OpenGL/OpenCV conversion) ran to a traceback in the camera path, exit 1; a
    text matrix was a traceback even in `inspect`; a duplicate file_path swapped two poses without a word; a last row
    other than [0, 0, 0, 1] was read one way here and another there. Each is one line naming the frame, at load."""
    tj = write_transforms(tiny_scene, tmp_path / "transforms.json", write_images=True)
    meta = json.loads(tj.read_text())
    change(meta["frames"][[f["file_path"] for f in meta["frames"]].index("images/frame_0009.png")])
    tj.write_text(json.dumps(meta))
    err = one_line_error(capsys, ["inspect", str(tmp_path)])
    assert expected in err


def test_transforms_rotations_rounded_in_the_file_are_made_exact(tmp_path, tiny_scene):
    tj = write_transforms(tiny_scene, tmp_path / "transforms.json", write_images=True)
    meta = json.loads(tj.read_text())
    for fm in meta["frames"]:
        fm["transform_matrix"] = np.round(np.array(fm["transform_matrix"]), 4).tolist()
    tj.write_text(json.dumps(meta))
    for f in load_scene(tmp_path).frames:
        r = f.c2w[:3, :3]
        np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)


def test_colmap_quaternions_are_normalised_and_a_zero_one_refused(tmp_path, tiny_scene, capsys):
    """COLMAP normalises a text model's quaternions when it reads them; pycolmap keeps them as written, which ran
    into "a key pose's rotation is not orthonormal" at the camera path; a zero quaternion was read as no turn."""
    root = write_seed_layout(all_frames_scene(tiny_scene), tmp_path / "scene", binary=False)
    for name in ("frames.txt", "rigs.txt"):  # the layout of COLMAP before 3.12, where images.txt holds the poses
        (root / "colmap/sparse/0" / name).unlink()
    images = root / "colmap/sparse/0/images.txt"
    lines = images.read_text().splitlines()
    k = next(i for i, ln in enumerate(lines) if ln.endswith("image_train_000009.png"))
    parts = lines[k].split()
    parts[1:5] = [f"{2 * float(v):.17g}" for v in parts[1:5]]
    lines[k] = " ".join(parts)
    images.write_text("\n".join(lines) + "\n")
    scene = load_scene(root)
    want = next(f.c2w for f in tiny_scene.frames + tiny_scene.gt_frames if f.index == 9)
    np.testing.assert_allclose(next(f.c2w for f in scene.frames if f.index == 9), want, atol=1e-9)
    parts[1:5] = ["0", "0", "0", "0"]
    lines[k] = " ".join(parts)
    images.write_text("\n".join(lines) + "\n")
    err = one_line_error(capsys, ["inspect", str(root)])
    assert "image image_train_000009.png: its pose (quaternion [0.0, 0.0, 0.0, 0.0]" in err


def test_poses_written_with_opencv_axes_are_named_in_a_warning(tmp_path, tiny_scene, capsys):
    """A transforms.json whose transform_matrix are in OpenCV axes (COLMAP's) ran without a word and rendered the
    scene from behind the cameras. Its points then lie behind the cameras as read: one warning line."""
    from sparsevid.geometry import GL_FLIP

    tj = write_transforms(tiny_scene, tmp_path / "transforms.json", write_images=True)
    meta = json.loads(tj.read_text())
    assert meta.get("ply_file_path")
    load_scene(tmp_path)
    assert "OpenCV axes" not in capsys.readouterr().err
    for fm in meta["frames"]:
        fm["transform_matrix"] = (np.array(fm["transform_matrix"]) @ GL_FLIP).tolist()
    tj.write_text(json.dumps(meta))
    load_scene(tmp_path)
    err = capsys.readouterr().err
    assert "are its transform_matrix written with OpenCV axes?" in err and len(err.strip().splitlines()) == 1



def test_odd_image_files(tmp_path, capsys):
    """A grey or RGBA float TIFF was "corrupt" (with an OpenCV line on stderr); a frame name near the 255-byte limit
    failed when written (the temporary name was longer); a name that is not UTF-8 crashed OpenCV's writer (a
    segfault); an empty file was "corrupt"; numbered frames in HEIC were left out without a word."""
    import os

    import cv2

    from sparsevid.data.images import list_image_files, read_image, write_image

    g = (np.arange(48 * 64).reshape(48, 64) % 256).astype(np.float32) / 255
    cv2.imwrite(str(tmp_path / "g.tif"), g)
    cv2.imwrite(str(tmp_path / "rgba.tif"), np.dstack([g, g * 0.5, g * 0.25, np.ones_like(g)]).astype(np.float32))
    grey = read_image(tmp_path / "g.tif")
    assert grey.shape == (48, 64, 3) and np.array_equal(grey[..., 0], np.round(g * 255).astype(np.uint8))
    assert np.array_equal(read_image(tmp_path / "rgba.tif")[..., 2], np.round(g * 255).astype(np.uint8))  # B
    assert capsys.readouterr().err == ""
    long = tmp_path / ("x" * 238 + "_0000.png")
    write_image(long, grey)
    assert np.array_equal(read_image(long), grey)
    latin = Path(os.fsdecode(bytes(tmp_path) + b"/fr\xe9me_0001.png"))
    write_image(latin, grey)
    assert np.array_equal(read_image(latin), grey)
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(SparsevidError, match="the file is empty"):
        read_image(tmp_path / "empty.png")
    clip = tmp_path / "clip"
    clip.mkdir()
    for i in (0, 1, 3):
        write_image(clip / f"frame_{i:04d}.png", grey)
    (clip / "frame_0002.heic").write_bytes(b"x")
    (clip / "cover.heic").write_bytes(b"x")  # not a numbered frame
    assert [p.name for p in list_image_files(clip)] == ["frame_0000.png", "frame_0001.png", "frame_0003.png"]
    load_scene(clip)
    err = capsys.readouterr().err
    assert "1 numbered frame in a format sparsevid does not read is left out (frame_0002.heic)" in err
    assert len(err.strip().splitlines()) == 1  # said once
    write_image(tmp_path / "f_0000.jfif", grey)  # read as JPEG, written back as one (the pose stage copies inputs)
    assert np.abs(read_image(tmp_path / "f_0000.jfif").astype(int) - grey).mean() < 3

"""``tools/gpu/pack_cases.py``: clips packed for the device machine come back lossless, and the packed poses load
as the same posed scene, reading the packed WebP frames."""
from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import cv2
import numpy as np

from sparsevid.data.load import load_scene
from sparsevid.data.nerfstudio import write_transforms
from sparsevid.data.synthetic import make_scene

TOOL = Path(__file__).resolve().parents[1] / "tools" / "gpu" / "pack_cases.py"


def _tool():
    spec = importlib.util.spec_from_file_location("pack_cases", TOOL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_packed_clip_is_lossless_and_its_poses_load_from_the_packed_frames(tmp_path):
    scene = make_scene(48, 32)
    poses = write_transforms(scene, tmp_path / "runs" / "clip" / "poses" / "transforms.json", write_images=True)
    case = tmp_path / "cases" / "clip"
    case.mkdir(parents=True)
    for f in sorted((poses.parent / "images").iterdir()):
        shutil.copy(f, case / f.name)
    (case / "frames_meta.json").write_text("{}")
    out = tmp_path / "packed"
    assert _tool().main([str(out), str(case), "--runs", str(tmp_path / "runs")]) == 0

    pngs = sorted(case.glob("frame_*.png"))
    assert pngs and (out / "cases" / "clip" / "frames_meta.json").is_file()
    for png in pngs:
        webp = out / "cases" / "clip" / (png.stem + ".webp")
        assert np.array_equal(cv2.imread(str(webp)), cv2.imread(str(png))), webp.name

    packed = load_scene(out / "poses" / "clip" / "transforms.json")
    original = load_scene(poses)
    assert len(packed.frames) == len(original.frames) > 0
    for a, b in zip(packed.frames, original.frames):
        assert a.index == b.index and a.c2w is not None
        assert np.array_equal(a.image, b.image)
        assert np.allclose(a.c2w, b.c2w)

    # and back on the device: --unpack gives PNG cases equal to the originals, the other files with them
    back = tmp_path / "unpacked"
    assert _tool().main([str(out), "clip", "--unpack", str(back)]) == 0
    assert sorted(p.name for p in (back / "clip").iterdir()) == sorted(p.name for p in case.iterdir())
    for png in pngs:
        assert np.array_equal(cv2.imread(str(back / "clip" / png.name)), cv2.imread(str(png))), png.name

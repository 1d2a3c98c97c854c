"""`sparsevid inspect`: frames, roles, times, camera, poses and points as printed."""
from __future__ import annotations

import re

from sparsevid.cli import main
from sparsevid.data.colmap import write_colmap

KEYS = [0, 9, 19, 29]


def rows(out: str) -> dict[int, str]:
    """Table rows by frame index -> role text."""
    found = {}
    for line in out.splitlines():
        m = re.match(r"^\W*?(\d+)\s*[│|]\s*(input|ground truth)\s*[│|]", line)
        if m:
            found[int(m.group(1))] = m.group(2)
    return found


def test_inspect_shared_clip_keyframes(shared_case, capsys):
    assert main(["inspect", str(shared_case), "--keyframes", "0,9,19,29"]) == 0
    out = capsys.readouterr().out
    assert "4 input frames, 26 ground-truth frames" in out
    r = rows(out)
    assert sorted(i for i, role in r.items() if role == "input") == KEYS
    assert sorted(i for i, role in r.items() if role == "ground truth") == [i for i in range(30) if i not in KEYS]
    assert "848x480" in out and "fps: 29.97" in out
    assert "0.3003" in out  # frame 9 at 9 / 29.97 s
    assert "ground-truth only: 1, 2, 3, 4, 5, 6, 7, 8, 10," in out


def test_inspect_demo_by_default(capsys):
    assert main(["inspect"]) == 0
    out = capsys.readouterr().out
    assert "4 input frames, 0 ground-truth frames" in out
    assert sorted(rows(out)) == KEYS
    assert "camera: unknown" in out and "poses: no" in out


def test_inspect_posed_colmap(tmp_path, tiny_scene, capsys):
    write_colmap(tiny_scene, tmp_path / "sparse" / "0", images_dir=tmp_path / "images")
    assert main(["inspect", str(tmp_path), "--keyframes", "0,29", "--fps", "24"]) == 0
    out = capsys.readouterr().out
    assert "2 input frames, 28 ground-truth frames" in out
    assert "camera: PINHOLE 48x32: fx=28.8, fy=28.8, cx=24, cy=16" in out
    assert "poses: yes" in out and "points: 2000" in out and "fps: 24" in out
    assert "source: colmap" in out
    # the rate as inspect prints it is accepted back, and a bad one is one line (it was argparse's usage text)
    assert main(["inspect", str(tmp_path), "--fps", "30000/1001"]) == 0
    assert "fps: 29.97 (30000/1001)" in capsys.readouterr().out
    assert main(["inspect", str(tmp_path), "--fps", "abc"]) == 2
    err = capsys.readouterr().err
    assert "--fps must be a frame rate" in err and len(err.strip().splitlines()) == 1

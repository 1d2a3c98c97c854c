"""The failure matrix of the CLI: bad input and faults give one line naming the fix, exit code 2,
no traceback, and no file outside the output folder created, changed or removed."""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from sparsevid.cli import main
from sparsevid.data.load import demo_path


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` -> sha1 of its bytes (folders as '<dir>')."""
    snap = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        snap[rel] = "<dir>" if p.is_dir() else hashlib.sha1(p.read_bytes()).hexdigest()
    return snap


@pytest.fixture
def four(tmp_path) -> Path:
    """A folder holding the 4 demo frames (frames 0, 9, 19, 29 of the shared clip)."""
    d = tmp_path / "in" / "four"
    d.mkdir(parents=True)
    for p in sorted(demo_path().glob("frame_*.png")):
        shutil.copy(p, d / p.name)
    return d


def run_cli(argv, capsys) -> tuple[int, str]:
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    return rc, err


def assert_one_line_error(rc: int, err: str, *needles: str) -> None:
    assert rc == 2, err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert "->" in lines[0], "the message names a fix"
    for n in needles:
        assert n in lines[0], (n, lines[0])


# ---- 1. --overwrite never deletes the input -----------------------------------------------------
def test_poses_overwrite_refuses_input_folder(tmp_path, four, capsys):
    ds = tmp_path / "out" / "ds2"
    shutil.copytree(four, ds / "images")
    before = snapshot(tmp_path)
    rc, err = run_cli(["poses", ds, "-o", ds], capsys)
    assert_one_line_error(rc, err)
    rc, err = run_cli(["poses", ds, "-o", ds, "--overwrite"], capsys)
    assert_one_line_error(rc, err, "input")
    assert snapshot(tmp_path) == before


def test_poses_overwrite_refuses_images_subfolder_as_input(tmp_path, four, capsys):
    ds = tmp_path / "out" / "ds3"
    shutil.copytree(four, ds / "images")
    (ds / ".sparsevid-poses").touch()
    (ds / "transforms.json").write_text("{}")
    before = snapshot(tmp_path)
    rc, err = run_cli(["poses", ds / "images", "-o", ds, "--overwrite"], capsys)
    assert_one_line_error(rc, err, "input")
    assert snapshot(tmp_path) == before


def test_run_overwrite_refuses_input_inside_run(tmp_path, four, capsys):
    out = tmp_path / "OUT"
    shutil.copytree(four, out / "poses" / "images")
    (out / ".sparsevid-run").touch()
    (out / "run.json").write_text("{}")
    before = snapshot(tmp_path)
    rc, err = run_cli(["run", out / "poses" / "images", "-o", out, "--overwrite", "--device", "cpu"], capsys)
    assert_one_line_error(rc, err, "input")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("cmd", ["poses", "run"])
def test_overwrite_refuses_foreign_folder(tmp_path, four, capsys, cmd):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    (foreign / "images").mkdir()
    (foreign / "images" / "a.png").write_bytes(b"x")
    before = snapshot(tmp_path)
    rc, err = run_cli([cmd, four, "-o", foreign, "--overwrite"], capsys)
    assert_one_line_error(rc, err, "refusing")
    assert snapshot(tmp_path) == before


def test_overwrite_removes_only_known_outputs(tmp_path):
    from sparsevid.pipeline import MARKER, prepare_output

    out = tmp_path / "run"
    (out / "frames").mkdir(parents=True)
    (out / "frames" / "frame_0000.png").write_bytes(b"x")
    (out / "run.json").write_text("{}")
    (out / "notes.txt").write_text("user file")
    (out / MARKER).touch()
    prepare_output(out, resume=False, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == sorted([MARKER, "notes.txt"])
    assert (out / "notes.txt").read_text() == "user file"


def test_marker_only_folder_counts_as_empty(tmp_path):
    from sparsevid.pipeline import MARKER, prepare_output

    out = tmp_path / "run"
    out.mkdir()
    (out / MARKER).touch()
    prepare_output(out, resume=False, overwrite=False)  # no --overwrite needed
    assert (out / MARKER).exists()


def test_output_under_a_file(tmp_path, four, capsys):
    afile = tmp_path / "afile.txt"
    afile.write_text("x")
    before = snapshot(tmp_path)
    rc, err = run_cli(["run", four, "-o", afile / "sub", "--device", "cpu"], capsys)
    assert_one_line_error(rc, err)
    assert snapshot(tmp_path) == before

"""Regression guards for time to video (issue 15), by counting work instead of timing it: pose
attempts, compilations, checkpoints, and the compile-cache folders the user can see and clear."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from sparsevid import caches
from sparsevid.data.synthetic import make_scene
from sparsevid.gaussians.trainer import CHECKPOINT_NAME, Trainer, TrainConfig, TrainView


def _views(width=32, height=24):
    sc = make_scene(width=width * 4, height=height * 4)
    K = sc.camera.K.copy()
    K[:2] /= 4
    views = [TrainView(image=cv2.resize(f.image, (width, height), interpolation=cv2.INTER_AREA), K=K, c2w=f.c2w)
             for f in sc.frames]
    keep = np.random.default_rng(1).choice(len(sc.points), 150, replace=False)
    return views, sc.points[keep], sc.point_colors[keep]


def test_demo_poses_take_at_most_two_mapper_attempts(tmp_path, capsys):
    """The embedded demo is posed by the first rung of the ladder (plus the focal refit): a change
    that makes it walk further down the ladder costs seconds to minutes per clip."""
    from sparsevid.cli import main
    from sparsevid.data.load import demo_path

    assert main(["-q", "poses", str(demo_path()), "-o", str(tmp_path / "p")]) == 0
    rep = json.loads((tmp_path / "p" / "poses_report.json").read_text())
    assert len(rep["attempts"]) <= 2, [a["name"] for a in rep["attempts"]]
    assert rep["attempt"].startswith("features/")


def test_degenerate_input_runs_no_mapper_attempt(tmp_path, monkeypatch, capsys):
    """Four identical frames fail before any mapper attempt (they used to run 16 attempts, 176 s)."""
    from sparsevid.cli import main
    from sparsevid.data.load import demo_path
    from sparsevid.poses import sfm

    calls = []
    real = sfm._attempt
    monkeypatch.setattr(sfm, "_attempt", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    src = tmp_path / "same"
    src.mkdir()
    first = cv2.imread(str(sorted(demo_path().glob("frame_*.png"))[0]))
    for i in (0, 9, 19, 29):
        cv2.imwrite(str(src / f"frame_{i:04d}.png"), cv2.resize(first, (212, 120)))
    assert main(["-q", "poses", str(src), "-o", str(tmp_path / "p")]) == 2
    assert calls == []


def test_short_training_writes_one_checkpoint(tmp_path, monkeypatch):
    """With the default time-based interval a short run saves once, at the end (a ~0.3 GB CUDA
    checkpoint every 1000 steps used to cost seconds of a 10-second training)."""
    views, pts, cols = _views()
    saves = []
    monkeypatch.setattr(Trainer, "save_checkpoint", lambda self, p: saves.append(self.step) or p)
    tr = Trainer(TrainConfig(steps=30, quiet=True), views, pts, cols, device="cpu", run_dir=tmp_path)
    tr.train()
    assert saves == [30]
    saves.clear()
    tr = Trainer(TrainConfig(steps=30, quiet=True, checkpoint_every=10), views, pts, cols, device="cpu",
                 run_dir=tmp_path / "b")
    tr.train()
    assert saves == [10, 20, 30]
    saves.clear()
    tr = Trainer(TrainConfig(steps=30, quiet=True, checkpoint_seconds=0.0), views, pts, cols, device="cpu",
                 run_dir=tmp_path / "c")
    tr.train()
    assert saves == list(range(1, 31))
    assert not (tmp_path / CHECKPOINT_NAME).exists()  # the patched save wrote nothing


def test_cache_folders_follow_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # ~ without XDG_CACHE_HOME
    assert caches.cache_root({}) == tmp_path / "home" / ".cache" / "sparsevid"
    env = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    assert caches.cache_root(env) == tmp_path / "xdg" / "sparsevid"
    env["SPARSEVID_CACHE"] = str(tmp_path / "mine")
    assert caches.configure(env)["inductor"] == tmp_path / "mine" / "inductor"
    assert env["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "mine" / "inductor")
    env2 = {"TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "theirs"), "SPARSEVID_CACHE": str(tmp_path / "mine")}
    caches.configure(env2)  # the user's own choice is kept
    assert env2["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "theirs")


def test_cache_command_lists_and_clears_only_its_folders(tmp_path, monkeypatch, capsys):
    from sparsevid.cli import main

    monkeypatch.setenv("SPARSEVID_CACHE", str(tmp_path / "sv"))
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "ext"))
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "nb"))
    ind = tmp_path / "sv" / "inductor" / "fxgraph"
    ind.mkdir(parents=True)
    (ind / "g.bin").write_bytes(b"x" * 1000)
    gs = tmp_path / "ext" / "py311_cu130" / "gsplat_cuda"
    gs.mkdir(parents=True)
    (gs / "gsplat_cuda.so").write_bytes(b"y" * 2000)
    other = tmp_path / "ext" / "py311_cu130" / "someone_elses_ext"
    other.mkdir()
    (other / "keep.so").write_bytes(b"z")
    (tmp_path / "nb" / "gaussians_1d4a").mkdir(parents=True)  # numba's subfolder per source folder
    (tmp_path / "nb" / "gaussians_1d4a" / "cpu_kernels._x-1.py311.nbi").write_bytes(b"n" * 10)
    (tmp_path / "nb" / "cpu_kernels._y-1.py311.nbc").write_bytes(b"n" * 10)
    (tmp_path / "sv" / "difix").mkdir(parents=True)  # the Difix prompt embeddings (it was neither listed nor cleared)
    (tmp_path / "sv" / "difix" / "prompt_ab.safetensors").write_bytes(b"d" * 300)
    assert main(["cache"]) == 0
    out = capsys.readouterr().out
    assert "inductor" in out and str(ind.parent) in out and str(gs) in out and "numba" in out
    assert f"0.0 MB  {tmp_path / 'sv' / 'difix'}  -- the Difix prompt embeddings" in out
    assert main(["cache", "--clear", "inductor"]) == 0
    assert not ind.parent.exists() and gs.exists() and (tmp_path / "sv" / "difix").exists()
    assert main(["cache", "--clear"]) == 0
    assert not gs.exists() and other.exists() and not list((tmp_path / "nb").rglob("*.nb*"))
    assert not (tmp_path / "sv" / "difix").exists()
    assert main(["cache", "--clear", "bogus"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown cache" in err[0]
    assert main(["cache", "--clear", "bogus", "--build"]) == 2  # --build no longer skips the --clear check
    capsys.readouterr()
    mine = tmp_path / "my_inductor"  # TORCHINDUCTOR_CACHE_DIR set to a folder of the user's: never removed
    (mine / "other").mkdir(parents=True)
    (mine / "other" / "k.bin").write_bytes(b"keep")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(mine))
    assert main(["cache", "--clear", "inductor"]) == 0
    assert (mine / "other" / "k.bin").read_bytes() == b"keep"
    assert "kept inductor" in capsys.readouterr().out


def test_gsplat_build_is_found_where_torch_keeps_extensions(tmp_path):
    env = {"TORCH_EXTENSIONS_DIR": str(tmp_path / "ext")}
    assert not caches.gsplat_built(env)
    so = tmp_path / "ext" / "py312_cu130" / "gsplat_cuda" / "gsplat_cuda.so"
    so.parent.mkdir(parents=True)
    assert not caches.gsplat_built(env)  # a folder left by an interrupted build is not a build
    so.write_bytes(b"x")
    assert caches.gsplat_built(env)


def test_cache_build_readies_the_cpu_kernels_and_builds_nothing_for_cuda_without_it(capsys):
    from sparsevid.cli import main

    seconds = caches.build(cuda=False, say=lambda line: None)
    assert set(seconds) == {"numba"} and seconds["numba"] >= 0.0
    numba_entry = next(e for e in caches.entries() if e.name == "numba")
    assert numba_entry.bytes > 0  # the kernels are on disk for the next process
    if not torch.cuda.is_available():
        assert main(["cache", "--build"]) == 0
        out = capsys.readouterr().out
        assert "numba" in out and "gsplat" not in out


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (checked on the H200: tools/gpu/setup_round.sh)")
def test_cache_build_makes_gsplat_ready_for_a_run():
    seconds = caches.build(cuda=True, say=lambda line: None)
    assert "gsplat" in seconds and caches.gsplat_built()
    from gsplat.cuda._backend import _C

    assert _C is not None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (checked on the H200: tools/gpu/ttv_round.sh)")
def test_cuda_training_compiles_the_loss_once_per_canvas():
    """Two trainings of the same canvas size in one process: the second compiles nothing; the first
    compiles at most the loss's graphs (a recompile per step or per densification would be minutes)."""
    from torch._dynamo.utils import counters

    views, pts, cols = _views(64, 48)
    counters.clear()
    Trainer(TrainConfig(steps=40, quiet=True, compile_loss=True), views, pts, cols, device="cuda").train()
    first = counters["stats"]["unique_graphs"]
    assert 1 <= first <= 3
    Trainer(TrainConfig(steps=40, quiet=True, compile_loss=True), views, pts, cols, device="cuda").train()
    assert counters["stats"]["unique_graphs"] == first

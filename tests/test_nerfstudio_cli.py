"""``sparsevid run --from-nerfstudio`` where nerfstudio is not installed (the main environment): a one-line error
that says where it runs, before any work. The route itself is tested in tests/ns_plugin (``make test-nerfstudio``)."""
from __future__ import annotations

import importlib.util

import pytest

from sparsevid.cli import main


@pytest.mark.skipif(importlib.util.find_spec("nerfstudio") is not None, reason="nerfstudio is installed here")
def test_from_nerfstudio_without_nerfstudio_is_one_line(tmp_path, capsys):
    cfg = tmp_path / "config.yml"
    cfg.write_text("method_name: sparsevid-nerfacto\n")
    assert main(["run", "--from-nerfstudio", str(cfg), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs nerfstudio" in err[0] and "make test-nerfstudio" in err[0]
    assert not (tmp_path / "out").exists()  # nothing written


def test_learned_pose_corrections_are_named_in_a_warning(capsys):
    """nerfacto's camera optimizer moves each training camera; --from-nerfstudio renders at the dataset's poses
    without those corrections (0.5 degrees after 200 steps, more after 30k) and said nothing."""
    import math
    from types import SimpleNamespace

    import torch

    from sparsevid.nerfstudio.video import _say_pose_corrections

    adj = torch.zeros(4, 6)
    opt = SimpleNamespace(config=SimpleNamespace(mode="SO3xR3"), pose_adjustment=adj)
    _say_pose_corrections(SimpleNamespace(camera_optimizer=opt))
    assert capsys.readouterr().err == ""  # none learned
    adj[2, 3:] = torch.tensor([0.0, math.radians(0.54), 0.0])
    _say_pose_corrections(SimpleNamespace(camera_optimizer=opt))
    err = capsys.readouterr().err
    assert "pose corrections of up to 0.54 degrees" in err and "camera-optimizer.mode off" in err
    opt.config.mode = "off"
    _say_pose_corrections(SimpleNamespace(camera_optimizer=opt))
    _say_pose_corrections(SimpleNamespace())
    assert capsys.readouterr().err == ""

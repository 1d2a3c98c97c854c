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

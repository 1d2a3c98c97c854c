"""``import sparsevid`` loads zlib before pycolmap can (pycolmap 4.2's wheel otherwise breaks every later zlib
user: PNG writing aborts), and refuses with what to do when pycolmap came first (sparsevid._native)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from sparsevid._native import loaded_libraries, zlib_loaded_by_pycolmap


def test_load_order_rule():
    core = "/venv/site-packages/pycolmap/_core.cpython-311-x86_64-linux-gnu.so"
    assert zlib_loaded_by_pycolmap(["", "libc.so.6", core, "/lib/x86_64-linux-gnu/libz.so.1"])
    assert not zlib_loaded_by_pycolmap(["", "/lib/x86_64-linux-gnu/libz.so.1", core])
    assert not zlib_loaded_by_pycolmap(["", core])  # no zlib at all
    assert not zlib_loaded_by_pycolmap(["", "/lib/libz.so.1"])  # no pycolmap


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's link map")
def test_this_process_loaded_zlib_before_any_pycolmap():
    libs = [name.rsplit("/", 1)[-1] for name in loaded_libraries()]
    assert any(n.startswith("libz.so") for n in libs) and not zlib_loaded_by_pycolmap()


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's link map")
def test_pycolmap_after_sparsevid_leaves_png_writing_working_and_before_it_is_refused():
    pytest.importorskip("pycolmap")
    ok = _python("import sparsevid, pycolmap, cv2, numpy as np\n"
                 "for i in range(3): assert cv2.imencode('.png', np.full((32, 32, 3), i, np.uint8))[0]\n"
                 "from PIL import Image; import io; Image.new('RGB', (8, 8)).save(io.BytesIO(), 'PNG'); print('ok')")
    assert ok.returncode == 0 and ok.stdout.strip() == "ok", ok.stderr[-2000:]
    refused = _python("import pycolmap\nimport sparsevid")
    assert refused.returncode == 1
    assert "ImportError: pycolmap was imported before sparsevid" in refused.stderr
    assert "import sparsevid (or zlib) before pycolmap" in refused.stderr
    # something else that loaded zlib first (OpenCV here) makes the order safe: no refusal
    assert _python("import cv2, pycolmap, sparsevid").returncode == 0

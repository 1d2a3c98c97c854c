"""``sparsevid view`` in a real browser: the CLI serves a tiny CPU run's output folder, headless
Chromium (Debian's, driven by playwright) loads the page, and the test checks that

* the 3D canvas is not blank (pixel variance of the canvas region of a screenshot), and
* the browser received one camera frustum per path frame (``cameras.json``), counted from the
  viser websocket messages the page got (not from the server's own bookkeeping).

Skipped without /usr/bin/chromium, playwright or viser (``.ci/run`` installs chromium).
"""
from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (apt-get install chromium)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A default-config CPU run on a 64x48 posed synthetic scene (4 key frames, 40 steps)."""
    from sparsevid.data.nerfstudio import write_transforms
    from sparsevid.data.synthetic import make_scene
    from sparsevid.pipeline import named_config, run_pipeline

    tmp = tmp_path_factory.mktemp("viewer_browser")
    ds = tmp / "ds"
    write_transforms(make_scene(width=64, height=48), ds / "transforms.json", write_images=True)
    cfg = named_config("default", input=ds, output=tmp / "out", keyframes=[0, 9, 19, 29], device="cpu", steps=40)
    cfg.progressive.fix_steps = [20]
    run_pipeline(cfg)
    return tmp / "out"


def _decode_viser_frame(payload: bytes) -> list[dict]:
    """The messages of one viser websocket frame: [8 B msgpack size][8 B compressed size][zstd msgpack]..."""
    import msgspec
    import zstandard

    comp_len = int.from_bytes(payload[8:16], "little")
    inner = zstandard.ZstdDecompressor().decompress(payload[16:16 + comp_len],
                                                    max_output_size=int.from_bytes(payload[:8], "little"))
    return list(msgspec.msgpack.decode(inner)["messages"])


def test_viewer_in_headless_chromium(tiny_run, tmp_path):
    pytest.importorskip("viser")
    pytest.importorskip("zstandard")
    pytest.importorskip("msgspec")
    sync_api = pytest.importorskip("playwright.sync_api")
    from PIL import Image

    n_path = len(json.loads((tiny_run / "cameras.json").read_text())["frames"])
    assert n_path >= 20
    port = _free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    log = open(tmp_path / "view.log", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "sparsevid", "view", str(tiny_run), "--port", str(port),
                             "--render-size", "64"], stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"sparsevid view exited: {(tmp_path / 'view.log').read_text()}"
            try:
                if urllib.request.urlopen(url, timeout=2).status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "sparsevid view did not answer within 60 s"
            time.sleep(0.3)

        frustums: dict[str, dict] = {}  # scene-node name -> the last CameraFrustumMessage the browser got
        removed: set[str] = set()

        def on_frame(payload) -> None:
            if not isinstance(payload, (bytes, bytearray)):
                return
            for m in _decode_viser_frame(bytes(payload)):
                if m.get("type") == "CameraFrustumMessage":
                    frustums[m["name"]] = m
                    removed.discard(m["name"])
                elif m.get("type") == "RemoveSceneNodeMessage":
                    removed.add(m["name"])

        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                         args=["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
                                               "--ignore-gpu-blocklist"])
            try:
                page = browser.new_page(viewport={"width": 1100, "height": 700})
                page.on("websocket", lambda ws: ws.on("framereceived", on_frame))
                page.goto(url, wait_until="load")
                canvas = page.locator("canvas").first
                canvas.wait_for(state="visible", timeout=30_000)
                # the frustums arrive over the websocket; then give WebGL a few frames to draw
                deadline = time.monotonic() + 30
                while sum(1 for k in frustums if k.startswith("/path/")) < n_path and time.monotonic() < deadline:
                    page.wait_for_timeout(250)
                page.wait_for_timeout(2000)
                # only the WebGL canvas counts: hide the GUI panel and notifications drawn over it
                page.add_style_tag(content="body * { visibility: hidden !important; } "
                                           "canvas { visibility: visible !important; }")
                page.wait_for_timeout(500)
                box = canvas.bounding_box()
                shot = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
                shot.save(tmp_path / "viewer.png")  # kept for a look when the test fails
            finally:
                browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()

    # (b) one frustum per path frame, the input cameras among them
    path_frustums = sorted(k for k in frustums if k.startswith("/path/") and k not in removed)
    assert len(path_frustums) == n_path, path_frustums
    inputs = json.loads((tiny_run / "cameras.json").read_text())["frames"]
    n_inputs = sum(1 for f in inputs if f.get("is_input"))
    assert sum(1 for k in path_frustums if k.startswith("/path/input_")) == n_inputs == 4

    # (a) the 3D canvas is drawn: the canvas region is not one flat colour
    assert box is not None and box["width"] > 100 and box["height"] > 100
    x0, y0 = int(box["x"]), int(box["y"])
    region = np.asarray(shot)[y0:y0 + int(box["height"]), x0:x0 + int(box["width"])].astype(np.float64)
    assert region.size > 0
    assert region.std(axis=(0, 1)).max() > 5.0, f"canvas looks blank (std {region.std(axis=(0, 1))})"
    distinct = len(np.unique(region.reshape(-1, 3)[::7].astype(np.uint8), axis=0))
    assert distinct > 50, f"canvas has only {distinct} distinct colours"

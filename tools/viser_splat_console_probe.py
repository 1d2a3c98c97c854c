"""viser 1.1.1 alone (no sparsevid): 50 well-formed Gaussian splats in a bare ViserServer, the page opened in headless
Chromium; prints the console errors. It prints THREE.BufferGeometry.computeBoundingSphere(): Computed radius is NaN,
the line `sparsevid view` shows on runs with Gaussians: it is viser's own, not from our arrays.

    python tools/viser_splat_console_probe.py     # needs viser, playwright and /usr/bin/chromium
"""
import socket

import numpy as np
import viser
from playwright.sync_api import sync_playwright


def main() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = viser.ViserServer(host="127.0.0.1", port=port, verbose=False)
    n = 50
    rng = np.random.default_rng(0)
    srv.scene.add_gaussian_splats("/g", centers=rng.normal(size=(n, 3)).astype(np.float32),
                                  covariances=np.tile(np.eye(3, dtype=np.float32) * 0.01, (n, 1, 1)),
                                  rgbs=rng.random((n, 3)).astype(np.float32), opacities=np.full((n, 1), 0.8, np.float32))
    msgs = []
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                               args=["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
                                     "--ignore-gpu-blocklist"])
        page = b.new_page(viewport={"width": 900, "height": 600})
        page.on("console", lambda m: msgs.append((m.type, m.text[:150])))
        page.goto(f"http://127.0.0.1:{port}/", wait_until="load")
        page.wait_for_timeout(6000)
        b.close()
    print([m for m in msgs if m[0] == "error"])
    srv.stop()


if __name__ == "__main__":
    main()

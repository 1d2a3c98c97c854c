"""The viser wiring of ``sparsevid view``: the Gaussians as splats, the path cameras as frustums
(inputs in another colour), a time slider that shows the output frame beside the live CPU render
from the path camera (and moves the browser's camera there), the pose report and the quality
estimate. The content comes from :mod:`sparsevid.viewer.scene`; this module only places it.
"""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from sparsevid.errors import SparsevidError
from sparsevid.viewer import scene as vs

#: frustum colours (RGB 0..255)
PATH_COLOR = (90, 140, 230)
INPUT_COLOR = (240, 140, 30)
CURRENT_COLOR = (230, 30, 60)
#: long side of the output frame shown in the GUI panel (the browser gets a smaller image)
PANEL_LONG_SIDE = 480

INSTALL_HINT = "pip install 'sparsevid[view]' (or: pip install viser)"


def require_viser():
    """Import viser, or raise a one-line error that says how to install it."""
    try:
        import viser
    except ImportError as e:
        raise SparsevidError("the viewer needs the viser package, which is not installed",
                             fix=INSTALL_HINT) from e
    return viser


class _LatestRenderer:
    """Renders the latest requested frame in one background thread (a slider drag queues no
    backlog: requests made while a render runs collapse into the last one)."""

    def __init__(self, fn) -> None:
        self._fn = fn
        self._want: int | None = None
        self._cv = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._loop, name="sparsevid-view-render", daemon=True)
        self._thread.start()

    def request(self, k: int) -> None:
        with self._cv:
            self._want = k
            self._cv.notify()

    def stop(self) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while True:
            with self._cv:
                while self._want is None and not self._stop:
                    self._cv.wait()
                if self._stop:
                    return
                k, self._want = self._want, None
            try:
                self._fn(k)
            except Exception as e:  # a failed render must not kill the viewer
                from sparsevid.log import warn

                warn(f"view: render of frame {k} failed ({e!r})")


def free_port(host: str, port: int, tries: int = 100) -> int:
    """The first port from ``port`` that ``host`` can listen on (at most ``tries``, below 65536), or a one-line
    error: an unknown ``--host``, an address that is not this machine's, or no free port."""
    import errno
    import socket

    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        raise SparsevidError(f"--host {host}: unknown address ({getattr(e, 'strerror', None) or e})",
                             fix="pass an address of this machine, e.g. --host 127.0.0.1 or --host 0.0.0.0") from None
    family, address = infos[0][0], infos[0][4][0]
    for p in range(port, min(port + tries, 65536)):
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((address, p))
                return p
            except OSError as e:
                if e.errno == errno.EADDRINUSE:
                    continue
                raise SparsevidError(f"--host {host}: cannot listen there ({e.strerror or e})",
                                     fix="pass an address of this machine, e.g. --host 127.0.0.1 or --host 0.0.0.0"
                                     ) from None
    raise SparsevidError(f"no free port from {port} to {min(port + tries, 65536) - 1} on {host}",
                         fix="pass another --port, e.g. --port 8080")


class Viewer:
    """A running viewer of one output folder (:func:`start`); :meth:`stop` ends it."""

    def __init__(self, out: Path, host: str = "127.0.0.1", port: int = 8080,
                 render_long_side: int = vs.RENDER_LONG_SIDE) -> None:
        viser = require_viser()
        self.out = Path(out)
        self.render_long_side = render_long_side
        self.scene = vs.load_output(self.out)
        port = free_port(host, port)  # viser waits for ever on an address it cannot bind
        self.server = viser.ViserServer(host=host, port=port, label=f"sparsevid · {self.out.name}", verbose=False)
        self._lock = threading.Lock()
        self._frame_k = 0
        self._connect_hooked = False
        self._renderer = _LatestRenderer(self._render_live)
        self._build()

    # ---- layout ---------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return int(self.server.get_port())

    @property
    def url(self) -> str:
        host = self.server.get_host()
        host = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
        return f"http://{host}:{self.port}/"

    def _build(self) -> None:
        s, sc, gui = self.scene, self.server.scene, self.server.gui
        sc.reset()
        gui.reset()
        self.splats = None
        if s.gaussians is not None:
            self.splats = vs.splat_arrays(s.gaussians)
            sc.add_gaussian_splats("/gaussians", **self.splats)
        self.frustum_scale = vs.frustum_scale(s.cameras, None if self.splats is None else self.splats["centers"])
        self.frustums = []
        for k, cam in enumerate(s.cameras):
            image = None
            if cam.is_input:  # the input cameras: orange, thicker, with their frame on the frustum
                img = s.frame(k)
                image = None if img is None else vs.fit_long_side(img, 160)
            self.frustums.append(sc.add_camera_frustum(
                f"/path/{'input' if cam.is_input else 'frame'}_{cam.index:04d}", fov=cam.fov_y, aspect=cam.aspect,
                scale=self.frustum_scale,
                thickness=(0.04 if cam.is_input else 0.015) * self.frustum_scale,
                color=INPUT_COLOR if cam.is_input else PATH_COLOR, image=image, format="jpeg",
                wxyz=cam.wxyz, position=cam.position))
        self.current = None
        if s.cameras:
            up = vs.up_direction(s.cameras)
            sc.set_up_direction(tuple(float(x) for x in up))
            c0 = s.cameras[0]
            self.current = sc.add_camera_frustum("/current", fov=c0.fov_y, aspect=c0.aspect,
                                                 scale=1.3 * self.frustum_scale, thickness=0.05 * self.frustum_scale,
                                                 color=CURRENT_COLOR, wxyz=c0.wxyz, position=c0.position)
            self.server.initial_camera.position = tuple(float(x) for x in c0.position)
            self.server.initial_camera.look_at = tuple(float(x) for x in c0.position + c0.c2w[:3, 2])
            self.server.initial_camera.up = tuple(float(x) for x in up)

        gui.add_markdown(f"**sparsevid** · `{self.out}`")
        if s.notes:
            gui.add_markdown("\n".join(f"- {n}" for n in s.notes))
        n = s.num_frames
        with gui.add_folder("Time"):
            self.caption = gui.add_markdown(vs.frame_caption(s, 0) if n else "no frames")
            self.slider = gui.add_slider("frame", min=0, max=max(n - 1, 1), step=1, initial_value=0,
                                         disabled=n <= 1,
                                         marks=tuple((c.index, "in") for c in s.cameras if c.is_input) or None)
            self.follow = gui.add_checkbox("view from the path camera", True, disabled=not s.cameras,
                                           hint="move the 3D view to the path camera of the frame")
            blank = np.zeros((9, 16, 3), np.uint8)
            self.frame_image = gui.add_image(blank, label="output frame (frames/)")
            self.render_image = gui.add_image(
                blank, label=f"live render, path camera (CPU, {self.render_long_side} px)"
                if s.has_3d else "live render: needs the Gaussians and cameras.json")
        with gui.add_folder("Run"):
            self.pose_md = gui.add_markdown(vs.pose_markdown(s))
            self.quality_md = gui.add_markdown(vs.quality_markdown(s))
            reload = gui.add_button("reload the folder", hint="re-read OUT (a run still writing its outputs)")
        gui.add_markdown(f"frustums: {len(s.cameras)} path cameras, inputs in orange; "
                         f"{0 if self.splats is None else len(self.splats['centers'])} Gaussians")

        @self.slider.on_update
        def _(_event) -> None:
            self.show_frame(int(self.slider.value))

        @self.follow.on_update
        def _(_event) -> None:
            if self.follow.value:
                self._move_clients(int(self.slider.value))

        @reload.on_click
        def _(_event) -> None:
            self.reload()

        if not self._connect_hooked:  # once: reload() rebuilds the rest
            self._connect_hooked = True

            @self.server.on_client_connect
            def _(client) -> None:
                if self.follow.value:
                    self._move_client(client, int(self.slider.value))

        if n:
            self.show_frame(0)

    # ---- behaviour --------------------------------------------------------------------------
    def reload(self) -> None:
        """Re-read the folder (a running run writes more of it) and rebuild the scene and GUI."""
        self.scene = vs.load_output(self.out)
        self._build()

    def show_frame(self, k: int) -> None:
        """Frame ``k``: the output frame, the live render (in the background), the caption, the
        current-camera frustum and (when following) the browser's camera."""
        s = self.scene
        self._frame_k = k
        caption = vs.frame_caption(s, k)
        try:
            img = s.frame(k)
        except SparsevidError as e:  # a damaged PNG: said on the panel, not a traceback and the last image
            img = None
            caption += f"\n\n**frame {k} is unreadable**: {e.message}"
            self.frame_image.image = np.zeros_like(np.asarray(self.frame_image.image))
        self.caption.content = caption
        if img is not None:
            self.frame_image.image = vs.fit_long_side(img, PANEL_LONG_SIDE)
        cam = s.camera_at(k)
        if cam is not None and self.current is not None:
            self.current.wxyz = cam.wxyz
            self.current.position = cam.position
        if self.follow.value:
            self._move_clients(k)
        if s.has_3d and cam is not None:
            self._renderer.request(k)

    def _render_live(self, k: int) -> None:
        cam = self.scene.camera_at(k)
        if cam is None or self.scene.gaussians is None:
            return
        img = vs.render_view(self.scene.gaussians, cam, self.render_long_side)
        self.render_image.image = img

    def _move_client(self, client, k: int) -> None:
        cam = self.scene.camera_at(k)
        if cam is None:
            return
        with client.atomic():
            client.camera.fov = cam.fov_y
            client.camera.wxyz = cam.wxyz
            client.camera.position = cam.position

    def _move_clients(self, k: int) -> None:
        for client in self.server.get_clients().values():
            self._move_client(client, k)

    def stop(self) -> None:
        self._renderer.stop()
        self.server.stop()


def start(out: str | Path, host: str = "127.0.0.1", port: int = 8080,
          render_long_side: int = vs.RENDER_LONG_SIDE) -> Viewer:
    """Start the viewer of output folder ``out`` (serves in background threads; returns at once)."""
    return Viewer(Path(out), host=host, port=port, render_long_side=render_long_side)

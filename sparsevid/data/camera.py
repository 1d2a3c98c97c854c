"""Camera intrinsics with lens distortion, in COLMAP's camera models.

Conventions (used everywhere in sparsevid):
  * pixel coordinates: (u, v) with the centre of the top-left pixel at (0.5, 0.5)
    (COLMAP's convention), u to the right, v down;
  * normalised coordinates: (x, y) = (X/Z, Y/Z) in the camera frame, OpenCV axes
    (x right, y down, z forward);
  * ``distort`` maps undistorted normalised coordinates to distorted ones, ``undistort``
    inverts it numerically.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from sparsevid.errors import SparsevidError

#: parameter names per supported COLMAP model, in COLMAP's order
CAMERA_MODELS: dict[str, tuple[str, ...]] = {
    "SIMPLE_PINHOLE": ("f", "cx", "cy"),
    "PINHOLE": ("fx", "fy", "cx", "cy"),
    "SIMPLE_RADIAL": ("f", "cx", "cy", "k"),
    "RADIAL": ("f", "cx", "cy", "k1", "k2"),
    "OPENCV": ("fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2"),
    "OPENCV_FISHEYE": ("fx", "fy", "cx", "cy", "k1", "k2", "k3", "k4"),
}


@dataclass(frozen=True)
class Camera:
    """One camera (frames of one video share it).

    Attributes:
        model: a key of :data:`CAMERA_MODELS`.
        width, height: image size in pixels.
        params: the model's parameters in COLMAP order.
    """

    model: str
    width: int
    height: int
    params: tuple[float, ...]

    def __post_init__(self) -> None:
        if self.model not in CAMERA_MODELS:
            raise SparsevidError(f"unsupported camera model {self.model!r}",
                                 fix=f"use one of {', '.join(CAMERA_MODELS)}")
        n = len(CAMERA_MODELS[self.model])
        if len(self.params) != n:
            raise SparsevidError(f"camera model {self.model} needs {n} parameters, got {len(self.params)}")
        object.__setattr__(self, "params", tuple(float(p) for p in self.params))
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))

    # ---- named access ---------------------------------------------------------------
    def _p(self) -> dict[str, float]:
        return dict(zip(CAMERA_MODELS[self.model], self.params))

    @property
    def fx(self) -> float:
        p = self._p()
        return p.get("fx", p.get("f"))

    @property
    def fy(self) -> float:
        p = self._p()
        return p.get("fy", p.get("f"))

    @property
    def cx(self) -> float:
        return self._p()["cx"]

    @property
    def cy(self) -> float:
        return self._p()["cy"]

    @property
    def K(self) -> np.ndarray:
        """[3, 3] float64 pinhole matrix."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def is_fisheye(self) -> bool:
        return self.model == "OPENCV_FISHEYE"

    @property
    def distortion(self) -> dict[str, float]:
        """Distortion coefficients by name (k1, k2, k3, k4, p1, p2); missing ones are 0."""
        p = self._p()
        d = {k: 0.0 for k in ("k1", "k2", "k3", "k4", "p1", "p2")}
        if self.model == "SIMPLE_RADIAL":
            d["k1"] = p["k"]
        for k in d:
            if k in p:
                d[k] = p[k]
        return d

    @property
    def has_distortion(self) -> bool:
        # a fisheye (equidistant) lens is not a pinhole even with all coefficients 0
        return self.is_fisheye or any(abs(v) > 0 for v in self.distortion.values())

    def implausible(self) -> str | None:
        """What makes these intrinsics impossible for a real camera (None: nothing): a size outside 1-99999 px, a
        parameter that is not a finite number, a focal length outside 1/1000-1000 times the long side (or not
        positive), a principal point more than a frame outside the frame, a distortion coefficient beyond 1000.
        What a corrupted model file or a hand-edited one decodes to."""
        size = max(self.width, self.height)
        if not (0 < self.width < 100_000 and 0 < self.height < 100_000):
            return f"size {self.width}x{self.height}"
        if not all(np.isfinite(self.params)):
            return "a parameter that is not a finite number"
        for name, f in (("fx", self.fx), ("fy", self.fy)):
            if not 1e-3 * size < f < 1e3 * size:
                return f"focal length {name} {f:.4g} px for a {self.width}x{self.height} frame"
        if not (-self.width < self.cx < 2 * self.width and -self.height < self.cy < 2 * self.height):
            return f"principal point ({self.cx:.4g}, {self.cy:.4g}) for a {self.width}x{self.height} frame"
        big = [k for k, v in self.distortion.items() if not abs(v) < 1e3]
        return f"distortion {big[0]} {self.distortion[big[0]]:.4g}" if big else None

    # ---- constructors / transforms -------------------------------------------------
    @staticmethod
    def pinhole(fx: float, fy: float, cx: float, cy: float, width: int, height: int) -> "Camera":
        return Camera("PINHOLE", width, height, (fx, fy, cx, cy))

    def scaled(self, scale: float) -> "Camera":
        """The same lens at a different resolution (``width*scale`` rounded)."""
        return self.resized(max(1, round(self.width * scale)), max(1, round(self.height * scale)))

    def resized(self, w: int, h: int) -> "Camera":
        """The same lens on frames resized to ``w`` x ``h``: focal lengths and principal point scaled per axis (a
        single focal ``f`` by the mean of the two scales); distortion is in normalised coordinates and stays."""
        sx, sy = w / self.width, h / self.height
        names = CAMERA_MODELS[self.model]
        new = []
        for name, v in zip(names, self.params):
            if name in ("fx", "cx"):
                v = v * sx
            elif name in ("fy", "cy"):
                v = v * sy
            elif name == "f":
                v = v * (sx + sy) / 2
            new.append(v)
        return replace(self, width=w, height=h, params=tuple(new))

    def to_pinhole(self) -> "Camera":
        """The same intrinsics with the distortion dropped."""
        return Camera.pinhole(self.fx, self.fy, self.cx, self.cy, self.width, self.height)

    def with_params(self, **named: float) -> "Camera":
        p = self._p()
        p.update(named)
        return replace(self, params=tuple(p[n] for n in CAMERA_MODELS[self.model]))

    # ---- distortion ----------------------------------------------------------------
    def distort(self, xy: np.ndarray) -> np.ndarray:
        """Undistorted normalised coords [..., 2] -> distorted normalised coords [..., 2]."""
        xy = np.asarray(xy, dtype=np.float64)
        d = self.distortion
        x, y = xy[..., 0], xy[..., 1]
        if self.is_fisheye:
            r = np.sqrt(x * x + y * y)
            th = np.arctan(r)
            th2 = th * th
            thd = th * (1 + th2 * (d["k1"] + th2 * (d["k2"] + th2 * (d["k3"] + th2 * d["k4"]))))
            s = np.where(r > 1e-12, thd / np.maximum(r, 1e-12), 1.0)
            return np.stack([x * s, y * s], -1)
        r2 = x * x + y * y
        radial = 1 + r2 * (d["k1"] + r2 * d["k2"])
        xd = x * radial + 2 * d["p1"] * x * y + d["p2"] * (r2 + 2 * x * x)
        yd = y * radial + d["p1"] * (r2 + 2 * y * y) + 2 * d["p2"] * x * y
        return np.stack([xd, yd], -1)

    def undistort(self, xyd: np.ndarray, iters: int = 100) -> np.ndarray:
        """Distorted normalised coords [..., 2] -> undistorted ones [..., 2] (Newton iterations
        with a numerical Jacobian; exact to ~1e-10 inside the lens's monotonic range)."""
        xyd = np.asarray(xyd, dtype=np.float64)
        if not self.has_distortion:
            return xyd.copy()
        xy = xyd.copy()
        eps = 1e-7
        for _ in range(iters):
            f = self.distort(xy) - xyd
            jx = (self.distort(xy + [eps, 0.0]) - self.distort(xy - [eps, 0.0])) / (2 * eps)
            jy = (self.distort(xy + [0.0, eps]) - self.distort(xy - [0.0, eps])) / (2 * eps)
            a, b, c, dd = jx[..., 0], jy[..., 0], jx[..., 1], jy[..., 1]
            det = a * dd - b * c
            det = np.where(np.abs(det) < 1e-12, 1e-12, det)
            dx = (dd * f[..., 0] - b * f[..., 1]) / det
            dy = (-c * f[..., 0] + a * f[..., 1]) / det
            xy = xy - np.stack([dx, dy], -1)
            if np.max(np.abs(f)) < 1e-12:
                break
        return xy

    # ---- pixels <-> rays -------------------------------------------------------------
    def pixel_to_normalized(self, uv: np.ndarray) -> np.ndarray:
        """Pixel coords [..., 2] (distorted image) -> undistorted normalised coords [..., 2]."""
        uv = np.asarray(uv, dtype=np.float64)
        xyd = np.stack([(uv[..., 0] - self.cx) / self.fx, (uv[..., 1] - self.cy) / self.fy], -1)
        return self.undistort(xyd)

    def normalized_to_pixel(self, xy: np.ndarray) -> np.ndarray:
        """Undistorted normalised coords [..., 2] -> pixel coords [..., 2] in the distorted image."""
        xyd = self.distort(xy)
        return np.stack([xyd[..., 0] * self.fx + self.cx, xyd[..., 1] * self.fy + self.cy], -1)

    def to_dict(self) -> dict:
        return {"model": self.model, "width": self.width, "height": self.height,
                "params": dict(zip(CAMERA_MODELS[self.model], self.params))}

    @staticmethod
    def from_dict(d: dict) -> "Camera":
        names = CAMERA_MODELS[d["model"]]
        p = d["params"]
        return Camera(d["model"], d["width"], d["height"], tuple(p[n] for n in names) if isinstance(p, dict) else tuple(p))

"""Standard 3DGS exports: ``.ply`` (the INRIA layout that splat viewers open) and ``.splat``,
both written by gsplat's own exporter (:func:`gsplat.export_splats`, gsplat is pinned), atomically.

PLY vertex properties, all ``float``, binary little endian: x y z f_dc_0..2 f_rest_0..(3(K-1)-1)
opacity scale_0..2 rot_0..3 (gsplat writes no normals; :func:`load_ply` also reads files that have
them). ``f_rest`` is channel-major (all R coefficients, then G, then B), scales are logs, opacity is
a logit, rot is (w, x, y, z), as written by the reference implementation.

``.splat`` (antimatter15's viewer format): 32 bytes per Gaussian, sorted along a Morton curve:
position 3 x float32, scale 3 x float32 (linear, not log), colour RGBA 4 x uint8 (DC colour and
sigmoid opacity), rotation 4 x uint8 (w, x, y, z normalised, ``q * 128 + 128``). It holds no
higher-order SH. :func:`load_splat` reads it back.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Literal

import numpy as np
import torch
from torch import Tensor

from sparsevid.errors import SparsevidError
from sparsevid.io_utils import atomic_write_bytes

ExportFormat = Literal["ply", "splat", "ply_compressed"]
#: file name suffix per export format
SUFFIX: dict[str, str] = {"ply": ".ply", "splat": ".splat", "ply_compressed": ".compressed.ply"}
_SPLAT_DTYPE = np.dtype([("pos", "<f4", 3), ("scale", "<f4", 3), ("rgba", "u1", 4), ("rot", "u1", 4)])


def _export_tensors(params: dict[str, Tensor]) -> dict[str, Tensor]:
    """Raw parameters -> detached float32 CPU tensors in the shapes gsplat's exporter asserts
    (means [N,3], scales [N,3], quats [N,4], opacities [N], sh0 [N,1,3], shN [N,K,3]), without the
    Gaussians that hold a NaN/inf (gsplat drops those too, but a NaN opacity would make it drop all)."""
    def get(k: str) -> Tensor:
        v = params[k]
        return (v.detach() if torch.is_tensor(v) else torch.as_tensor(np.asarray(v))).to("cpu", torch.float32)

    n = len(params["means"])
    out = {"means": get("means").reshape(n, 3), "scales": get("scales").reshape(n, 3),
           "quats": get("quats").reshape(n, 4), "opacities": get("opacities").reshape(n),
           "sh0": get("sh0").reshape(n, -1, 3)[:, :1, :].contiguous(),
           "shN": get("shN").reshape(n, -1, 3) if "shN" in params else torch.zeros(n, 0, 3)}
    ok = torch.ones(n, dtype=torch.bool)
    for v in out.values():
        ok &= torch.isfinite(v.reshape(n, -1)).all(1)
    if not bool(ok.all()):
        out = {k: v[ok].contiguous() for k, v in out.items()}
    return out


def splat_bytes(params: dict[str, Tensor], fmt: ExportFormat = "ply") -> bytes:
    """The file content of ``params`` in one of gsplat's export formats (``ply``, ``splat``,
    ``ply_compressed``), through :func:`gsplat.export_splats`."""
    try:
        from gsplat import export_splats
    except ImportError:  # gsplat 1.4 (nerfstudio's pin) has no exporter
        import gsplat

        raise SparsevidError(f"exporting Gaussians needs gsplat's exporter (gsplat >= 1.5); this environment has "
                             f"gsplat {getattr(gsplat, '__version__', '?')}",
                             fix="install gsplat==1.5.3 (the nerfstudio environment pins 1.4.0: there, export "
                                 "with `ns-export gaussian-splat`)") from None

    t = _export_tensors(params)
    if fmt == "ply_compressed" and len(t["means"]) == 0:
        raise SparsevidError("no Gaussians to export as a compressed PLY")
    return export_splats(t["means"], t["scales"], t["quats"], t["opacities"], t["sh0"], t["shN"], format=fmt)


def save_ply(path: str | Path, params: dict[str, Tensor]) -> Path:
    """Write raw Gaussian parameters (``means, quats, scales (log), opacities (logit), sh0 [N,1,3],
    shN [N,K-1,3]``) as a 3DGS .ply through gsplat's exporter (atomic)."""
    return atomic_write_bytes(path, splat_bytes(params, "ply"))


def export_gaussians(params: dict[str, Tensor], out_dir: Path, name: str = "point_cloud",
                     formats: Iterable[ExportFormat] = ("ply", "splat")) -> list[Path]:
    """Write the Gaussians in every format of ``formats`` as ``out_dir/<name><suffix>`` (atomically),
    through :func:`gsplat.export_splats`: by default ``point_cloud.ply`` (3DGS PLY, every viewer)
    and ``point_cloud.splat`` (antimatter15's format); ``"ply_compressed"`` adds SuperSplat's
    ``point_cloud.compressed.ply``.

    Args:
        params: the trainer's raw parameters (``trainer.params``: means, quats, scales, opacities,
            sh0, shN), on any device.
        out_dir: the folder (created when missing).

    Returns:
        The written paths, in the order of ``formats``.
    """
    out_dir = Path(out_dir)
    paths = []
    for fmt in formats:
        if fmt not in SUFFIX:
            raise SparsevidError(f"unknown export format {fmt!r}", fix=f"use one of {', '.join(SUFFIX)}")
        paths.append(atomic_write_bytes(out_dir / f"{name}{SUFFIX[fmt]}", splat_bytes(params, fmt)))
    return paths


def load_ply(path: str | Path) -> dict[str, Tensor]:
    """Read a 3DGS .ply (float properties, binary little endian) -> raw parameter tensors (float32)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise SparsevidError(f"cannot read ({e.strerror})", fix="check the path", path=path) from e
    end = raw.find(b"end_header\n")
    if not raw.startswith(b"ply") or end < 0:
        raise SparsevidError("not a PLY file", fix="pass a .ply written by sparsevid or a 3DGS trainer", path=path)
    lines = raw[:end].decode("ascii", errors="replace").splitlines()
    if "format binary_little_endian 1.0" not in lines:
        raise SparsevidError("only binary little endian PLY is supported", path=path,
                             fix="re-export the splat as binary little endian")
    n, names = 0, []
    for ln in lines:
        tok = ln.split()
        if tok[:2] == ["element", "vertex"]:
            n = int(tok[2]) if len(tok) > 2 and tok[2].isdigit() else -1
            if n < 0:
                raise SparsevidError(f"unreadable vertex count in the header: {ln!r}", path=path,
                                     fix="re-export the splat (the file is damaged)")
        elif tok[:1] == ["property"]:
            if tok[1] != "float":
                raise SparsevidError(f"unsupported property type {tok[1]}", path=path,
                                     fix="export all Gaussian properties as float")
            names.append(tok[2])
    start = end + len("end_header\n")
    if len(raw) - start < 4 * n * len(names):
        raise SparsevidError(f"the file is cut short: {len(raw) - start} bytes of Gaussians where the header "
                             f"announces {n} x {len(names)} floats ({4 * n * len(names)} bytes)", path=path,
                             fix="re-export the splat, or train again (an interrupted copy?)")
    body = np.frombuffer(raw, dtype="<f4", count=n * len(names), offset=start)
    table = body.reshape(n, len(names))
    col = {k: i for i, k in enumerate(names)}
    missing = [k for k in ("x", "f_dc_0", "opacity", "scale_0", "rot_0") if k not in col]
    if missing:
        raise SparsevidError(f"not a 3DGS splat (missing {', '.join(missing)})", path=path,
                             fix="pass a .ply holding Gaussians, not a plain point cloud")

    def get(keys: list[str]) -> Tensor:
        return torch.from_numpy(np.ascontiguousarray(table[:, [col[k] for k in keys]]))

    n_rest = sum(1 for k in names if k.startswith("f_rest_"))
    rest = get([f"f_rest_{i}" for i in range(n_rest)]).reshape(n, 3, n_rest // 3).transpose(1, 2)
    return {"means": get(["x", "y", "z"]), "quats": get([f"rot_{i}" for i in range(4)]),
            "scales": get([f"scale_{i}" for i in range(3)]), "opacities": get(["opacity"])[:, 0],
            "sh0": get(["f_dc_0", "f_dc_1", "f_dc_2"])[:, None, :], "shN": rest.contiguous()}


def load_splat(path: str | Path) -> dict[str, np.ndarray]:
    """Read a ``.splat`` file (see the module docstring) -> ``means`` [N,3], ``scales`` [N,3]
    (linear), ``rgba`` [N,4] uint8 (DC colour, opacity), ``quats`` [N,4] (w, x, y, z, unit length up
    to the 8-bit quantisation), in the file's (Morton) order."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise SparsevidError(f"cannot read ({e.strerror})", fix="check the path", path=path) from e
    if len(raw) % _SPLAT_DTYPE.itemsize:
        raise SparsevidError(f"not a .splat file ({len(raw)} bytes is not a multiple of {_SPLAT_DTYPE.itemsize})",
                             path=path, fix="pass a .splat written by sparsevid or gsplat")
    rec = np.frombuffer(raw, dtype=_SPLAT_DTYPE)
    return {"means": rec["pos"].copy(), "scales": rec["scale"].copy(), "rgba": rec["rgba"].copy(),
            "quats": (rec["rot"].astype(np.float32) - 128.0) / 128.0}

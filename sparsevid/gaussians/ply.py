"""Standard 3DGS ``.ply`` export/import (the INRIA layout that splat viewers open).

Vertex properties, all ``float``, binary little endian: x y z nx ny nz f_dc_0..2 f_rest_0..(3(K-1)-1)
opacity scale_0..2 rot_0..3. ``f_rest`` is channel-major (all R coefficients, then G, then B), scales
are logs, opacity is a logit, rot is (w, x, y, z), as written by the reference implementation.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from sparsevid.errors import SparsevidError
from sparsevid.io_utils import atomic_write_bytes


def _fields(n_rest: int) -> list[str]:
    return (["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
            + [f"f_rest_{i}" for i in range(n_rest)]
            + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"])


def save_ply(path: str | Path, params: dict[str, Tensor]) -> Path:
    """Write raw Gaussian parameters (``means, quats, scales (log), opacities (logit), sh0 [N,1,3],
    shN [N,K-1,3]``) as a 3DGS .ply (atomic)."""
    def arr(k: str) -> np.ndarray:
        v = params[k]
        return (v.detach().cpu().numpy() if torch.is_tensor(v) else np.asarray(v)).astype(np.float32)

    means, n = arr("means"), len(params["means"])
    sh0 = arr("sh0").reshape(n, -1, 3)[:, 0, :]
    shn = arr("shN").reshape(n, -1, 3) if "shN" in params else np.zeros((n, 0, 3), np.float32)
    rest = shn.transpose(0, 2, 1).reshape(n, -1)  # channel-major
    cols = [means, np.zeros((n, 3), np.float32), sh0, rest, arr("opacities").reshape(n, 1),
            arr("scales").reshape(n, 3), arr("quats").reshape(n, 4)]
    data = np.ascontiguousarray(np.concatenate(cols, 1), dtype="<f4")
    names = _fields(rest.shape[1])
    header = "ply\nformat binary_little_endian 1.0\n" + f"element vertex {n}\n"
    header += "".join(f"property float {f}\n" for f in names) + "end_header\n"
    return atomic_write_bytes(path, header.encode("ascii") + data.tobytes())


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
    lines = raw[:end].decode("ascii").splitlines()
    if "format binary_little_endian 1.0" not in lines:
        raise SparsevidError("only binary little endian PLY is supported", path=path,
                             fix="re-export the splat as binary little endian")
    n, names = 0, []
    for ln in lines:
        tok = ln.split()
        if tok[:2] == ["element", "vertex"]:
            n = int(tok[2])
        elif tok[:1] == ["property"]:
            if tok[1] != "float":
                raise SparsevidError(f"unsupported property type {tok[1]}", path=path,
                                     fix="export all Gaussian properties as float")
            names.append(tok[2])
    body = np.frombuffer(raw, dtype="<f4", count=n * len(names), offset=end + len("end_header\n"))
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

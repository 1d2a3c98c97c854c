"""Novel-view fixers (weight-free reprojection, Difix), progressive 3D updates, post-render
enhancement. See :mod:`sparsevid.fixer.base` for the interface."""
from sparsevid.fixer.base import (DEFAULT_FIXER, Fixer, FixerConfig, FixRequest, FixResult, RefViews,
                                  available_fixers, build_fixer, get_fixer, register_fixer)

__all__ = ["DEFAULT_FIXER", "Fixer", "FixerConfig", "FixRequest", "FixResult", "RefViews",
           "available_fixers", "build_fixer", "get_fixer", "register_fixer"]

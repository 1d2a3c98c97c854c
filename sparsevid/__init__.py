"""sparsevid: a handful of frames of a short video in, the full video out."""
import os as _os

# OpenMP workers that spin-wait between parallel regions (GNU libgomp's default) starve each other
# and the numba kernels on a busy few-core CPU: measured 25x slower small torch ops on a shared
# 2-core machine. Sleeping workers cost microseconds per region instead. Must be set before torch
# loads libgomp; an explicit OMP_WAIT_POLICY in the environment wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# zlib before pycolmap can load it: see sparsevid._native (pycolmap 4.2 otherwise breaks PNG writing)
import zlib as _zlib  # noqa: E402,F401

from sparsevid._native import check_load_order as _check_load_order  # noqa: E402

_check_load_order()

__version__ = "0.1.0"

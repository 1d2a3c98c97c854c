"""nerfstudio 1.1.5 with PyTorch >= 2.6.

nerfstudio's checkpoints hold the learning rates of its exponential-decay schedules as numpy float64 scalars
(optimizer ``param_groups[*]["lr"]``, scheduler ``_last_lr``), and it reads them back with ``torch.load`` without
``weights_only``, which PyTorch 2.6 turned on by default: ``ns-render``, ``ns-export``, ``ns-eval`` and
``ns-train --load-checkpoint`` then refuse every checkpoint (``Unsupported global: numpy.core.multiarray.scalar``).
:func:`allow_numpy_scalars` adds the numpy scalar and dtype types to PyTorch's weights-only allowlist -- the way
PyTorch's message recommends (``torch.serialization.add_safe_globals``); plain data, no code runs. It is called when
nerfstudio loads this plugin (every ``ns-*`` command discovers the methods), so it also applies to checkpoints of
nerfstudio's own methods.
"""
from __future__ import annotations

import numpy as np
import torch


def allow_numpy_scalars() -> None:
    """Allow numpy scalars (as nerfstudio's checkpoints hold them) in ``torch.load(weights_only=True)``."""
    dtypes = [getattr(np.dtypes, name) for name in ("Float64DType", "Float32DType", "Float16DType", "Int64DType",
                                                    "Int32DType", "BoolDType") if hasattr(np, "dtypes")
              and hasattr(np.dtypes, name)]
    try:
        scalar = np._core.multiarray.scalar  # numpy >= 2
    except AttributeError:
        scalar = np.core.multiarray.scalar  # numpy 1.x
    torch.serialization.add_safe_globals([scalar, np.dtype, *dtypes])

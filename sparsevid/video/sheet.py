"""Contact sheets: many frames tiled into one labelled image."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from sparsevid.errors import SparsevidError
from sparsevid.video.io import write_image


def contact_sheet(frames: Sequence[np.ndarray], labels: Sequence[str] | None = None, cols: int = 6,
                  tile_width: int | None = 320, gap: int = 4, background: int = 16) -> np.ndarray:
    """Tile frames into one image.

    Args:
        frames: T x [H, W, 3] uint8 (sizes may differ; every tile is resized to frame 0's aspect).
        labels: T strings drawn in a bar above each tile, or None.
        cols: tiles per row.
        tile_width: width of each tile in pixels (None = frame 0's width).
        gap: pixels between tiles.
        background: grey level of the background.

    Returns:
        [H', W', 3] uint8 RGB.
    """
    if len(frames) == 0:
        raise SparsevidError("contact sheet: no frames")
    if labels is not None and len(labels) != len(frames):
        raise SparsevidError(f"contact sheet: {len(labels)} labels for {len(frames)} frames")
    h0, w0 = frames[0].shape[:2]
    tw = int(tile_width or w0)
    th = max(1, round(h0 * tw / w0))
    bar = 0 if labels is None else max(14, th // 10)
    cols = max(1, min(int(cols), len(frames)))
    rows = math.ceil(len(frames) / cols)
    H = rows * (th + bar) + (rows + 1) * gap
    W = cols * tw + (cols + 1) * gap
    sheet = np.full((H, W, 3), background, np.uint8)
    font_scale = bar / 28.0
    for i, f in enumerate(frames):
        r, c = divmod(i, cols)
        y = gap + r * (th + bar + gap)
        x = gap + c * (tw + gap)
        tile = f if f.shape[:2] == (th, tw) else cv2.resize(f, (tw, th), interpolation=cv2.INTER_AREA)
        if tile.ndim == 2:
            tile = np.repeat(tile[..., None], 3, -1)
        sheet[y + bar:y + bar + th, x:x + tw] = tile[..., :3]
        if labels is not None:
            cv2.putText(sheet, str(labels[i]), (x + 3, y + bar - max(3, bar // 5)), cv2.FONT_HERSHEY_SIMPLEX,
                        font_scale, (235, 235, 235), 1, cv2.LINE_AA)
    return sheet


def write_contact_sheet(path: str | Path, frames: Sequence[np.ndarray], labels: Sequence[str] | None = None,
                        cols: int = 6, tile_width: int | None = 320) -> Path:
    """Build a :func:`contact_sheet` and write it as PNG, atomically."""
    return write_image(path, contact_sheet(frames, labels, cols, tile_width))

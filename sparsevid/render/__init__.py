"""Render the camera path in the input lens."""
from sparsevid.render.frames import RenderedPath, distort_frames, render_frames, render_path, to_uint8

__all__ = ["RenderedPath", "distort_frames", "render_frames", "render_path", "to_uint8"]

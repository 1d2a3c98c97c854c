"""Shared fixtures (kept small): a tiny posed synthetic scene and the shared real clip."""
from __future__ import annotations

from pathlib import Path

import pytest

from sparsevid.data.scene import Scene
from sparsevid.data.synthetic import make_scene

SHARED_CASE = Path("/work/shared/cases/gopro_sidewalk")


@pytest.fixture(scope="session")
def tiny_scene() -> Scene:
    """30 frames of 48x32, PINHOLE, inputs 0/9/19/29, 26 ground-truth frames, all posed, with points.
    Session-scoped: copy with ``dataclasses.replace`` before changing it."""
    return make_scene(width=48, height=32, num_frames=30)


@pytest.fixture
def shared_case() -> Path:
    """The real 30-frame test clip; the test is skipped where /work/shared is absent."""
    if not (SHARED_CASE / "frame_0000.png").is_file():
        pytest.skip("shared clip /work/shared/cases/gopro_sidewalk not available")
    return SHARED_CASE


@pytest.fixture(scope="session")
def write_clip():
    """``tools/phone_clip.py``'s :func:`write_clip`: frames written as a phone records them (a display matrix, HDR,
    time stamps with gaps)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("phone_clip", Path(__file__).resolve().parents[1] / "tools" /
                                                  "phone_clip.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.write_clip

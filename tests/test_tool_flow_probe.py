"""``tools/flow_accuracy_probe.py --timing`` (BENCHMARKS.md, session 34): the content's trajectory is recovered
from consecutive frames, and the pipeline's local quadratic reproduces motion that is quadratic in time between
its inner keys."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np

TOOL = Path(__file__).resolve().parents[1] / "tools" / "flow_accuracy_probe.py"


def _tool():
    spec = importlib.util.spec_from_file_location("flow_accuracy_probe", TOOL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_local_quadratic_is_exact_for_quadratic_motion_between_inner_keys():
    """Each key follows the parabola through its neighbours; an outer key (0, 29) has no key on its far side and
    moves linearly, as in ``fuse.fusion`` (``quadratic_shift`` only where a key has one)."""
    probe = _tool()
    t = np.arange(30, dtype=float)
    p = np.stack([0.5 * t + 0.02 * t ** 2, -0.3 * t], -1)
    middle = np.arange(10, 19)
    assert np.allclose(probe.local_quadratic(p, middle), p[middle], atol=1e-9)
    linear = np.stack([np.interp(middle, probe.KEYS, p[probe.KEYS, d]) for d in range(2)], -1)
    assert np.abs(linear - p[middle]).max() > 0.3
    # constant velocity: every model through the keys is exact everywhere
    held = np.array([i for i in range(30) if i not in probe.KEYS])
    q = np.stack([0.7 * t, -0.3 * t], -1)
    assert np.allclose(probe.local_quadratic(q, held), q[held], atol=1e-9)


def test_trajectories_follow_a_translating_picture():
    probe = _tool()
    rng = np.random.default_rng(0)
    big = cv2.GaussianBlur(rng.integers(0, 256, (200, 260)).astype(np.float32), (0, 0), 2.0)
    big = cv2.normalize(big, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    # content moves 2 px right and 1 px down per frame
    moved = [cv2.warpAffine(big, np.float32([[1, 0, 2 * i], [0, 1, i]]), (260, 200)) for i in range(30)]
    frames = [np.ascontiguousarray(m[30:150, 20:200]) for m in moved]
    traj = probe.trajectories(frames)
    t = np.arange(30)
    # chained DIS drifts by a few hundredths of a pixel a step: 5 % of the distance bounds it here (a drift that grows
    # evenly is absorbed by every model through the keys)
    for third in traj:
        assert np.all(np.abs(third[:, 0] - 2 * t) < 0.3 + 0.05 * 2 * t)
        assert np.all(np.abs(third[:, 1] - t) < 0.3 + 0.05 * t)

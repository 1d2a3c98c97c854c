"""Per-pixel fusion of candidate frames: the 2D route (flow warps of the neighbouring keys) and
the 3D route (depth-guided, flow-refined reprojection of the inputs through the Gaussian model).

Every candidate ``i`` of an output frame comes with a weight map ``w_i(x)``: its own confidence
(flow forward-backward consistency, 3D coverage), times how near in time its key is, times the
*route gain* ``g_r(x)`` of its route. The route gains come from the leave-one-out check
(:mod:`sparsevid.fuse.loo`): each interior input frame is rebuilt by both routes from the other
inputs, and the smoothed squared error of each route, ``E_r(x)``, gives inverse-variance gains
``g_r = (1 / E_r) / sum_s (1 / E_s)``. So a region where the 3D route failed on the held-out input
(moving water, people, wrong depth) falls back to the 2D route there, and vice versa.

Blending misaligned images averages their fine detail away (the in-between frames look softer
than the inputs, and the video pulses). So the fusion is two-band: the low band (a Gaussian blur
of ``band_sigma``) is the weighted average of all candidates; the detail band is averaged with
the weights raised to ``detail_power``, which for large powers keeps the fine detail of the single
most trusted candidate only. ``detail_power = 1`` is the plain weighted average.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Sequence

import cv2
import numpy as np

from sparsevid.fuse.fixed import FixedConfig
from sparsevid.fuse.flow2d import (FlowConfig, Features, LearnedFlow, PairFlow, chosen_pair_flow, consistency,
                                   interpolate_pair, pair_flow, quadratic_shift, sift_features)
from sparsevid.fuse.temporal import TemporalConfig
from sparsevid.imaging import blend_bands, blur, gray_u8, grid, long_side, px_scale, remap
from sparsevid.render.frames import to_uint8


@dataclass
class FuseConfig:
    """The fusion stage.

    Attributes:
        detail_power: exponent on the candidate weights in the detail band (1 = plain weighted
            average, softest; 8 = detail from one candidate, sharpest); None = chosen by the
            leave-one-out check as the smallest of ``detail_choices`` whose rebuilt inputs reach
            ``target_sharpness`` (else the sharpest choice). The default 1 is the measured best
            trade: with the guided 3D candidates it is ahead of flow interpolation on PSNR, SSIM and
            sharpness at once; larger powers buy sharpness with PSNR (BENCHMARKS.md, "fusion").
        detail_choices: the powers the leave-one-out check tries.
        target_sharpness: wanted sharpness of an in-between frame relative to a real frame
            (variance of the Laplacian, as the reference scorer measures it).
        band_sigma: Gaussian sigma of the low band, in pixels per 1000 px of the frame's longer side.
        region_sigma: smoothing of the leave-one-out error maps, in pixels per 1000 px of the longer side
            (route gains vary over regions of about this size).
        conf_floor: added to every candidate's confidence so weights never all vanish.
        mode: "fuse" (both routes, per pixel; the 2D route alone when no 3D model passes its
            checks), "2d" (the 2D route only: no poses, no training), "3d" (the 3D route only, as
            Difix3D+ does; a pose failure is then an error).
        guided: the 3D route contributes the inputs aligned to its frame by flow (sharp; see
            :func:`guided_candidates`) besides its frame itself; False: its frame alone.
        threads: output frames fused in parallel (0 = one per CPU core); results do not depend on it.
        distance_gains: scale the 2D route's leave-one-out error to each output frame's distance to
            its nearer input before the route gains (see :meth:`~sparsevid.fuse.loo.LooResult.gains_at`):
            the held-out inputs sit ~10 frames from the others, most output frames 1-5, where flow errs
            less. Measured +0.04 dB (shared clip, CPU), +0.26 and +0.15 dB (the synthetic moving-object
            and strong-rotation clips); BENCHMARKS.md, "distance-scaled route gains".
        loo_models: the 3D route's leave-one-out rebuild of an interior input comes from Gaussians
            trained without that input (same settings and seed; one more training per interior
            input). False: from the run's own model, which was trained on that input too -- its
            depth there has seen the frame, so the check flatters the 3D route exactly where it
            fails between the inputs (moving objects, wrong depth; BENCHMARKS.md, "leak-free
            leave-one-out"). With these models the 3D route's leave-one-out error is as far from
            its inputs as the 2D route's, so ``distance_gains`` scales both (gains unchanged).
        loo_at_path: the 3D route's leave-one-out also renders each held-out input where the camera
            path through the other inputs puts it (as the in-between frames are rendered: see
            :class:`~sparsevid.fuse.route3d.LeaveOneOut3D`), besides at its own camera. The rebuilds
            and the estimate then see what the path misses between its knots (a walk's bounce, hand
            shake), and an output frame's 3D error is the own-camera error plus the path's extra error
            scaled to its distance (:meth:`~sparsevid.fuse.loo.LooResult.gains_at`). False: the own
            camera only, which flatters the 3D route where the path errs. Not used with ``loo_models``
            (those rebuilds stay at the inputs' own cameras). Off by default: under strong rotation the
            path through three inputs far apart misses far more than the path through four, and the
            check then distrusts a 3D route that serves the video well (BENCHMARKS.md, session 8).
        path_check_db: a guard on the 3D route that sees what its leave-one-out at the inputs' own cameras
            cannot (the model was trained on the held-out input): each held-out input is also rebuilt where
            the camera path through the other inputs puts it, and when that rebuild is worse than the best 2D
            route's (flow or learned) by more than this many dB on *every* held-out input, the 3D route is
            left out (a model whose poses are off between its inputs: it fits each input and nothing between
            them). Only the decision uses it; the route gains and the estimate stay as without it. None: no
            check. With ``loo_at_path`` the path's rebuilds are used throughout instead.
        learned: the learned 2D route (:mod:`sparsevid.fuse.learned`): "auto" (RIFE 4.25 when its
            weights are installed), "rife" (required), "off".
        learned_passes: test-time passes of the learned route averaged per frame (1, 2: + the keys
            swapped, 4: + both mirrored left-right, 8: + the four upside down); each pass costs one
            more network run per frame (the CPU profile sets ``RunConfig.cpu_learned_passes``). 8
            gained +0.01 to +0.03 dB on four real clips on the H200 and lost 0.09 on the one without a
            3D route (BENCHMARKS.md, session 18), so the default stays 4.
        learned_scale: the learned route's resolution, as the reference RIFE inference's ``scale``
            (1, 2: its flow blocks at twice the resolution, the finest at twice the frame's; one of
            0.25, 0.5, 1, 2, 4); None = by frame size (:func:`sparsevid.eval.rife.auto_scale`: 2 up to
            1024 px on the longer side).
        learned_adapt_steps: fine-tune the learned route's network on the clip's own inputs first
            (:func:`sparsevid.fuse.learned.adapt_learned`: each input from two others, Adam steps of 4
            crops; 0 = the pretrained network). ~5 s on an H200; the CPU profile caps it
            (``RunConfig.cpu_learned_adapt_steps``, 0: minutes on 2 cores). The leave-one-out check
            rebuilds the held-out inputs with the pretrained network (the adapted one has learnt them),
            so it under- rather than over-trusts the adapted route. Measured in BENCHMARKS.md,
            "RIFE fine-tuned on the clip's own inputs".
        learned_adapt_lr: the fine-tuning's learning rate.
        learned_adapt_zoom: the fine-tuning also sees each triplet's windows shrunk by a random factor,
            down to the video's spacing over the triplet's (``adapt_learned``'s ``zoom``): its pairs are
            2-3 times as far apart as the video's, and shrunk that much their motion in pixels is the
            video's. Off: on the H200 it moved the video by -0.08 to +0.02 dB on five real clips
            (BENCHMARKS.md, session 18).
        drop_learned_db: leave the learned route out when the 2D route's leave-one-out rebuilds are
            better without it by more than this many dB (None: never). Not at any loss: the rebuilds span
            twice the inputs' spacing (19-20 frames), where RIFE degrades faster than flow, so the
            comparison is biased against it. With a margin of 0 it left the route out on bikes_street and
            bikes_traffic, where the rebuilds were 0.12 and 0.46 dB worse with it and keeping it gained
            +0.98 and +0.54 dB on the held-out frames (BENCHMARKS.md, "the learned route kept"); a route
            that only makes noise costs the rebuilds ~3 dB and is still left out. Its leave-one-out
            errors set its gains either way.
        guided_mirrors: :attr:`FlowConfig.mirrors` of the flows that align the inputs to the 3D route's
            frame (:func:`guided_candidates`; two per output frame); None = ``flow.mirrors``. 1: averaging
            them too measured the same video within 0.03 dB on the CPU for ~25 % more fusing time
            (BENCHMARKS.md, "flows averaged over mirrorings").
        hedge: where the routes' frames disagree by more than the leave-one-out's expected errors allow,
            move their gains towards equal shares (:func:`route_gains` with the routes' frames): the held-out inputs only show
            where each route erred at *their* times, and an object moving where none of them saw it (a car
            crossing behind a fence between the inputs) is painted over by a static 3D model the
            leave-one-out trusted there. Measured in BENCHMARKS.md, "real clips of our own" (session 12).
        rigid_check: where the 3D model's geometry cannot explain the motion between two neighbouring
            inputs (:mod:`sparsevid.fuse.rigid`: optical flow against the flow the model's depth and the
            cameras give), the scene moved by itself, and the 3D route's expected error at the frames between
            them is at least its disagreement with the 2D routes (:func:`route_gains`, ``suspect``). Leak-free
            where the leave-one-out is not (the model was trained on the held-out input), for two flows per
            pair of inputs.
        rigid_net: the disagreement charged to the 3D route there is net of the 2D routes' own expected
            error (:func:`route_gains`, ``suspect_net``): where they are unreliable themselves, disagreeing with
            them says little against the 3D route. False: the whole disagreement (sessions 13-26). Measured on
            12 clips with a 3D route (CPU, BENCHMARKS.md session 27): +0.32 dB on a street with traffic whose
            2D routes fail, +0.11 on a dashcam clip, within +-0.03 dB elsewhere.
        rigid_tolerance: how far (px per 1000 px of the longer side) the optical flow may be from a pixel's epipolar
            segment before the pixel counts as moved by itself (half-way at this distance).
        rigid_photo: where the optical flow is inconsistent (an object too fast or too close for it), the
            check compares the frames themselves instead: the other input searched along each pixel's
            epipolar segment and ``rigid_tolerance`` to either side, both low-passed; a smallest RMS difference
            of this much (0..1 range) counts half-way as moved (:func:`sparsevid.fuse.rigid.photo_error`).
            None: the flow's test only.
        rigid_depth_factor: how far off (a factor either way) the model's depth may be before a pixel that
            moved along its epipolar line counts as moved by itself (:func:`sparsevid.fuse.rigid.epipolar_segment`):
            a sparse-view model's depth is rough, and a depth error moves a pixel along that line only.
        flow: the 2D route's flow settings.
        fixed: regions fixed in the image (a burnt-in clock, a bonnet, a mount: :mod:`sparsevid.fuse.fixed`):
            no 3D route there, and their textured pixels taken from the inputs as they are.
        temporal: the fused video's low band made consistent over time (:mod:`sparsevid.fuse.temporal`):
            each in-between frame's content below 2 px taken from the mean of itself and its two output
            frames on each side, moved onto it by optical flow.
    """

    detail_power: float | None = 1.0
    detail_choices: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)
    target_sharpness: float = 0.7
    band_sigma: float = 2.5
    region_sigma: float = 40.0
    conf_floor: float = 0.05
    mode: str = "fuse"
    guided: bool = True
    threads: int = 0
    distance_gains: bool = True
    loo_models: bool = False
    loo_at_path: bool = False
    path_check_db: float | None = 1.0
    drop_learned_db: float | None = 1.0
    learned: str = "auto"
    learned_passes: int = 4
    learned_scale: float | None = None
    learned_adapt_steps: int = 100
    learned_adapt_lr: float = 3e-6
    learned_adapt_zoom: bool = False
    guided_mirrors: int | None = 1
    hedge: bool = True
    rigid_check: bool = True
    rigid_net: bool = True
    rigid_tolerance: float = 6.0
    rigid_photo: float | None = 0.1
    rigid_depth_factor: float = 2.0
    flow: FlowConfig = field(default_factory=FlowConfig)
    fixed: FixedConfig = field(default_factory=FixedConfig)
    temporal: TemporalConfig = field(default_factory=TemporalConfig)


# ---------------------------------------------------------------------------------------------
# time: where each output frame sits between the keys
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Bracket:
    """An output frame's position among the keys: keys ``k0 <= pos <= k1`` (source frame indices)
    and ``t = (pos - k0) / (k1 - k0)``; ``k0 == k1`` (t = 0) when the frame is at a key or
    outside the keys' span (then it holds the end key)."""

    k0: int
    k1: int
    t: float

    @property
    def at_key(self) -> bool:
        return self.k0 == self.k1 or self.t == 0.0 or self.t == 1.0

    @property
    def key(self) -> int:
        """The key this frame *is* (when ``at_key``), else the nearer key."""
        return self.k1 if self.t > 0.5 else self.k0

    def distance(self) -> float:
        """Distance in source frames to the nearer key."""
        return min(self.t, 1.0 - self.t) * (self.k1 - self.k0)


def bracket(position: float | Fraction, keys: Sequence[int]) -> Bracket:
    """The keys around source position ``position`` (``time * scene_fps``, exact when a Fraction)."""
    keys = sorted(int(k) for k in keys)
    if position in keys:
        return Bracket(int(position), int(position), 0.0)
    if position <= keys[0]:
        return Bracket(keys[0], keys[0], 0.0)
    if position >= keys[-1]:
        return Bracket(keys[-1], keys[-1], 0.0)
    for k0, k1 in zip(keys[:-1], keys[1:]):
        if k0 <= position <= k1:
            t = float(Fraction(position) - k0) / (k1 - k0) if isinstance(position, Fraction) \
                else (float(position) - k0) / (k1 - k0)
            return Bracket(k0, k1, t)
    raise AssertionError("unreachable")


# ---------------------------------------------------------------------------------------------
# candidates and blending
# ---------------------------------------------------------------------------------------------
@dataclass
class Candidate:
    """One candidate image of an output frame.

    Attributes:
        image: [H, W, 3] float32 in [0, 1].
        weight: [H, W] float32 >= 0 (confidence x time weight, before the route gain).
        route: "2d" or "3d".
    """

    image: np.ndarray
    weight: np.ndarray
    route: str


def flow_candidates(a: np.ndarray, b: np.ndarray, t: float, flow: PairFlow, cfg: FuseConfig,
                    shifts: tuple[np.ndarray | None, np.ndarray | None] = (None, None)) -> list[Candidate]:
    """The 2D route's two candidates for time ``t`` between keys ``a`` and ``b`` (float images);
    ``shifts``: each key's displacement beyond the linear motion (:meth:`PairFlows.shifts`)."""
    wa, wb, ca, cb = interpolate_pair(a, b, t, flow, cfg.flow, *shifts)
    return [Candidate(wa, (1.0 - t) * (ca + cfg.conf_floor), "2d"),
            Candidate(wb, t * (cb + cfg.conf_floor), "2d")]


def guided_candidates(guide: np.ndarray, guide_weight: np.ndarray, a: np.ndarray, b: np.ndarray, t: float,
                      cfg: FuseConfig) -> list[Candidate]:
    """The 3D route's candidates for time ``t`` between keys ``a`` and ``b`` (float images).

    The 3D route's frame ``guide`` is in the right place but soft: its references were resampled
    several times on the way (undistortion, depth-guided warp, re-distortion). So each key is
    aligned to it by dense flow (``guide -> key``) and resampled once, bicubic: the key's own
    detail, where the 3D route put it. Where the flow is inconsistent (the key does not see the
    point, or the guide is wrong there), the key's weight drops and the guide itself takes over.
    """
    gu = to_uint8(guide)
    out = []
    for key, tw in ((a, 1.0 - t), (b, t)):
        fl = pair_flow(gu, to_uint8(key), cfg.flow if cfg.guided_mirrors is None
                       else dataclasses.replace(cfg.flow, mirrors=cfg.guided_mirrors))
        h, w = guide.shape[:2]
        gx, gy = grid(h, w)
        mx, my = gx + fl.fab[..., 0], gy + fl.fab[..., 1]
        warped = np.clip(remap(key, mx, my, cv2.INTER_CUBIC if cfg.flow.cubic else cv2.INTER_LINEAR), 0, 1)
        inside = (mx >= -0.5) & (mx <= w - 0.5) & (my >= -0.5) & (my <= h - 0.5)
        c = consistency(fl.err_ab, np.linalg.norm(fl.fab, axis=-1), long_side(h, w), cfg.flow) * inside
        out.append(Candidate(warped, tw * c * guide_weight + 1e-6, "3d"))
    out.append(Candidate(guide, cfg.conf_floor + 0.1 * guide_weight, "3d"))
    return out


def learned_candidate(image: np.ndarray) -> Candidate:
    """The learned 2D route's candidate (see :mod:`sparsevid.fuse.learned`): its frame, unit weight
    (the network has no confidence output; its route gain carries the leave-one-out's)."""
    return Candidate(image, np.ones(image.shape[:2], np.float32), "learned")


def route3d_candidates(guide: np.ndarray, guide_weight: np.ndarray, a: np.ndarray, b: np.ndarray, t: float,
                       cfg: FuseConfig) -> list[Candidate]:
    """The 3D route's candidates: :func:`guided_candidates`, or (``cfg.guided`` False) its frame."""
    if cfg.guided:
        return guided_candidates(guide, guide_weight, a, b, t, cfg)
    return [Candidate(guide, guide_weight + cfg.conf_floor, "3d")]


def fuse(cands: Sequence[Candidate], gains: dict[str, np.ndarray | float] | None, detail_power: float,
         cfg: FuseConfig) -> np.ndarray:
    """Blend one frame's candidates (see the module docstring) -> [H, W, 3] float32 in [0, 1]."""
    gains = gains or {}
    weights = [c.weight * gains.get(c.route, 1.0) for c in cands]
    out = blend_bands([c.image for c in cands], weights, detail_power, cfg.band_sigma * px_scale(*cands[0].image.shape[:2]))
    return np.clip(out, 0.0, 1.0)


def to_float(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float32) / 255.0 if img.dtype == np.uint8 else img.astype(np.float32)


def far_keys(keys: Sequence[int], k0: int, k1: int) -> tuple[int | None, int | None]:
    """The keys on the far side of ``k0`` (before it) and of ``k1`` (after it), among ``keys``, through which
    the quadratic motion runs (:meth:`PairFlows.shifts`); None where there is none, or where it is nearer than
    a third of the span ``k1 - k0`` (its flow's error would be extrapolated over more than three times the
    distance it was measured on)."""
    order = sorted(keys)
    i0, i1 = order.index(k0), order.index(k1)
    span = k1 - k0
    before = order[i0 - 1] if i0 > 0 and 3 * (k0 - order[i0 - 1]) >= span else None
    after = order[i1 + 1] if i1 + 1 < len(order) and 3 * (order[i1 + 1] - k1) >= span else None
    return before, after


class PairFlows:
    """Flows between key pairs (:func:`~sparsevid.fuse.flow2d.chosen_pair_flow`: DIS and, with ``learned``, GMFlow
    among the candidates), computed once per pair and kept (and each key's SIFT features for
    :attr:`FlowConfig.prealign`, found once per key)."""

    def __init__(self, keys: dict[int, np.ndarray], cfg: FlowConfig, learned: LearnedFlow | None = None):
        self.keys, self.cfg, self.learned, self._cache, self._features = keys, cfg, learned, {}, {}

    def __call__(self, k0: int, k1: int) -> PairFlow:
        if (k0, k1) not in self._cache:
            feats = (self.features(k0), self.features(k1)) if self.cfg.prealign == "always" else None
            self._cache[(k0, k1)] = chosen_pair_flow(self.keys[k0], self.keys[k1], self.cfg, feats, self.learned)
        return self._cache[(k0, k1)]

    def features(self, k: int) -> Features:
        """Key ``k``'s SIFT features (:func:`~sparsevid.fuse.flow2d.sift_features`)."""
        if k not in self._features:
            self._features[k] = sift_features(gray_u8(self.keys[k]))
        return self._features[k]

    def flow(self, src: int, dst: int) -> np.ndarray:
        """The flow from key ``src`` to key ``dst`` ([H, W, 2]), from the pair computed in key order."""
        return self(src, dst).fab if src < dst else self(dst, src).fba

    def shifts(self, keys: Sequence[int], k0: int, k1: int, t: float) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Each key's displacement beyond the linear motion at ``t`` between keys ``k0 < k1``, under
        :attr:`FlowConfig.motion` "quadratic" (:func:`~sparsevid.fuse.flow2d.quadratic_shift`): for ``k0``
        through its flows to ``k1`` and to the key before it, for ``k1`` through its flows to ``k0`` and
        to the key after it, among ``keys`` (the inputs the frame is made from); None for a key with no
        key on its far side, or one nearer than a third of the span (its flow's error would be
        extrapolated over more than three times the distance it was measured on), and for "linear" motion."""
        if self.cfg.motion != "quadratic":
            return None, None
        span = k1 - k0
        before, after = far_keys(keys, k0, k1)
        sa = None if before is None else quadratic_shift(self.flow(k0, k1), self.flow(k0, before), span,
                                                          before - k0, t * span)
        sb = None if after is None else quadratic_shift(self.flow(k1, k0), self.flow(k1, after), -span,
                                                         after - k1, (t - 1.0) * span)
        return sa, sb


def route_gains(errors: dict[str, np.ndarray], region_sigma_px: float,
                images: dict[str, np.ndarray] | None = None,
                suspect: dict[str, np.ndarray] | None = None, hedge: bool = True,
                suspect_net: bool = True) -> dict[str, np.ndarray]:
    """Inverse-variance route gains from per-route squared-error maps ``[H, W]`` (see the module
    docstring); the maps are smoothed over ``region_sigma_px`` first.

    ``images``: the routes' own frames (:func:`route_images`; ``FuseConfig.hedge``). Where they disagree
    by more than the expected errors allow, the gains hedge. If route ``r``'s frame is ``truth + e_r``
    with independent errors of variance ``E_r``, the spread of the ``N`` routes' frames around their
    plain mean has expectation ``(N - 1) / N * mean_r(E_r)``. Where the observed spread (smoothed over
    the same region) is larger, something the expected errors did not foresee is in the frame there (an
    object that moved where no held-out input saw it), and which route is right cannot be told. The
    excess ``X = N / (N - 1) * spread - mean_r(E_r)`` is charged to every route alike, which explains the
    spread and moves the gains towards equal shares: the average of disagreeing guesses, the smallest
    expected squared error when it is unknown which one is right. The spread is taken around the plain
    mean, not the gain-weighted one, so that confident gains do not hide the disagreement they ignore.
    Routes without a frame in ``images`` take no part in the spread and get no excess.

    ``suspect``: route -> [H, W] in [0, 1], where that route is known to be wrong in a way its
    leave-one-out errors do not show (the 3D route where the scene moved by itself between the inputs:
    :mod:`sparsevid.fuse.rigid`). There its expected error is at least its squared disagreement with
    the plain mean of the other routes' frames (what it would be if they were right), smoothed like the
    rest; so it gives way where it disagrees with them, and nothing changes where it agrees. With
    ``suspect_net`` the charge is net of the other routes' own expected error (their mean): the squared
    disagreement of two guesses is the sum of both errors, so only what exceeds theirs is the suspect
    route's; where the others are no better than the disagreement, it is not charged. This comes
    before the hedge, which then sees the suspect route's larger expected error and hedges less.
    Needs ``images``, with the suspect route and at least one other. ``hedge`` False: ``images`` serve
    ``suspect`` only (``FuseConfig.hedge``)."""
    err = {r: np.maximum(blur(e.astype(np.float32), region_sigma_px), 1e-6) for r, e in errors.items()}
    seen = [r for r in err if images is not None and r in images]
    for r, rho in (suspect or {}).items():
        others = [q for q in seen if q != r]
        if r not in seen or not others:
            continue
        d = np.mean((images[r] - sum(images[q] for q in others) / len(others)) ** 2, axis=-1)
        charge = blur((rho * d).astype(np.float32), region_sigma_px)
        if suspect_net:
            charge = np.maximum(charge - sum(err[q] for q in others) / len(others), 0.0)
        err[r] = np.maximum(err[r], charge)
    if hedge and len(seen) >= 2:
        n = len(seen)
        mean = sum(images[r] for r in seen) / n
        spread = blur((sum(np.mean((images[r] - mean) ** 2, axis=-1) for r in seen) / n).astype(np.float32),
                      region_sigma_px)
        excess = np.maximum(n / (n - 1) * spread - sum(err[r] for r in seen) / n, 0.0)
        err.update({r: err[r] + excess for r in seen})
    inv = {r: 1.0 / e for r, e in err.items()}
    tot = sum(inv.values())
    return {r: (v / tot).astype(np.float32) for r, v in inv.items()}


def route_images(cands: Sequence[Candidate]) -> dict[str, np.ndarray]:
    """Each route's own frame: its candidates averaged with their weights (before the route gains)."""
    out: dict[str, np.ndarray] = {}
    for r in dict.fromkeys(c.route for c in cands):
        cs = [c for c in cands if c.route == r]
        w = sum(c.weight for c in cs)
        out[r] = sum(c.image * c.weight[..., None] for c in cs) / np.maximum(w, 1e-12)[..., None]
    return out


def sharpness(img: np.ndarray) -> float:
    """Variance of the Laplacian of the grey image (the reference scorer's sharpness)."""
    from sparsevid.eval.metrics import laplacian_variance

    return laplacian_variance(img if img.dtype == np.uint8 else to_uint8(img))

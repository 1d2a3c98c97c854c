"""The 3D route's frames for the fusion: renders of the trained Gaussians at the path cameras,
fixed by the fixer against the input frames (Difix3D+ post-render enhancement), back in the
input lens, each with its blend weight (how much of the frame comes from the inputs rather than
the render). Also the same route for one input rebuilt from the others (leave-one-out)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from typing import Sequence

import cv2
import numpy as np
import torch

from sparsevid.data.camera import Camera
from sparsevid.data.scene import Scene
from sparsevid.eval.metrics import match_size
from sparsevid.fixer.base import Fixer, FixRequest, RefViews
from sparsevid.fixer.enhance import EnhanceConfig, chunk_size, enhance_stream
from sparsevid.fuse.flow2d import FlowConfig, pair_flow
from sparsevid.log import in_context, progress
from sparsevid.fuse.rigid import epipolar_segment, nonrigid_map, photo_error
from sparsevid.imaging import grid, long_side, remap
from sparsevid.gaussians.trainer import TrainView
from sparsevid.data.timebase import fps_fraction
from sparsevid.path.camera_path import CameraPath, PathFrames
from sparsevid.poses.undistort import Undistorter
from sparsevid.render.frames import PathRenderer, RenderedPath, to_uint8


def input_views(scene: Scene, und: Undistorter) -> list[TrainView]:
    """The input frames undistorted onto the canvas of ``und``, with its validity mask."""
    mask = und.mask.astype(np.float32)[..., None]
    views = []
    for f in scene.frames:
        img = match_size(f.image, und.size[::-1])
        canvas = und.undistort_image(img.astype(np.float32) / 255.0)
        views.append(TrainView(image=canvas, K=und.pinhole.K, c2w=f.c2w, mask=mask, kind="input"))
    return views


def input_refs(scene: Scene, und: Undistorter, render) -> RefViews:
    """Input frames on the canvas of ``und``, with the model's depth rendered at the input cameras
    (``render`` is the trainer's render function)."""
    views = input_views(scene, und)
    imgs = torch.from_numpy(np.stack([v.image for v in views]))
    Ks = torch.from_numpy(np.stack([v.K for v in views])).float()
    c2ws = torch.from_numpy(np.stack([v.c2w for v in views]))
    wc, hc = und.canvas_size
    with torch.no_grad():
        depth = render(c2ws.float(), Ks, wc, hc)["depth"].detach().cpu().float()
    valid = torch.from_numpy(np.stack([v.mask for v in views]))
    return RefViews(imgs, Ks, c2ws, depth, valid)


#: the widest canvas :func:`rigid_check` works on (px); wider ones are downscaled for it
RIGID_WIDTH = 512


def rigid_check(refs: RefViews, und: Undistorter, order: Sequence[int], tolerance: float, flow: FlowConfig,
                photo_tolerance: float | None = None, depth_factor: float = 2.0
                ) -> dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]:
    """Where the scene moved by itself between each pair of neighbouring inputs, as far as the model's
    geometry can tell (:mod:`sparsevid.fuse.rigid`).

    Args:
        refs: the inputs on the canvas of ``und`` with the model's depth at their cameras
            (:func:`input_refs`), in the order of ``order`` (their indices).
        tolerance: :func:`~sparsevid.fuse.rigid.nonrigid_map`'s, px per 1000 px of the longer side (also the
            radius of :func:`~sparsevid.fuse.rigid.photo_error`'s search).
        photo_tolerance: :func:`~sparsevid.fuse.rigid.nonrigid_map`'s (None: the flow's test only).
        depth_factor: how far off the model's depth may be (:func:`~sparsevid.fuse.rigid.epipolar_segment`).
        flow: the optical flow's settings (DIS on the canvas images; ``flow.fb_tolerance`` also sets
            how consistent a flow must be to count).

    Returns:
        (k0, k1) -> (map at ``k0``, map at ``k1``): [H, W] float32 in [0, 1] in the input lens, each in its
        own frame's pixels (1: surely moved other than the still geometry says; 0 where the segment
        leaves the other input's lens). The check runs on the
        canvas downscaled to at most :data:`RIGID_WIDTH` px on its longer side (its tolerances are per 1000 px
        of it): the fusion uses the maps over regions of ~4 % of that side.
    """
    if refs.depth is None or len(refs.images) != len(order):
        raise ValueError("rigid_check needs the inputs' depth, one view per input in `order`")
    imgs = refs.images.numpy()
    depth = refs.depth[..., 0].numpy()
    Ks, c2ws = refs.Ks.numpy().astype(np.float64), refs.c2ws.numpy().astype(np.float64)
    valid = np.ones(depth.shape, np.float32) if refs.valid is None else refs.valid[..., 0].numpy()
    hc, wc = depth.shape[1:]
    if long_side(hc, wc) > RIGID_WIDTH:  # the check is about regions: at most RIGID_WIDTH px on the longer side
        cams = [Camera.pinhole(K[0, 0], K[1, 1], K[0, 2], K[1, 2], wc, hc).scaled(RIGID_WIDTH / long_side(hc, wc))
                for K in Ks]
        size = (cams[0].width, cams[0].height)
        imgs = np.stack([cv2.resize(x, size, interpolation=cv2.INTER_AREA) for x in imgs])
        depth = np.stack([cv2.resize(x, size, interpolation=cv2.INTER_NEAREST_EXACT) for x in depth])
        valid = np.stack([cv2.resize(x, size, interpolation=cv2.INTER_NEAREST_EXACT) for x in valid])
        Ks = np.stack([c.K for c in cams]).astype(np.float64)
    h, w = depth.shape[1:]
    gx, gy = grid(h, w)
    side = long_side(h, w)  # the tolerances are per 1000 px of the longer side
    out = {}
    for i, (k0, k1) in enumerate(zip(order, order[1:])):
        pf = pair_flow(to_uint8(imgs[i]), to_uint8(imgs[i + 1]), flow)
        maps = []
        for a, b, fl, err in ((i, i + 1, pf.fab, pf.err_ab), (i + 1, i, pf.fba, pf.err_ba)):
            seg = epipolar_segment(depth[a], Ks[a], c2ws[a], c2ws[b], Ks[b], depth_factor)
            photo = None if photo_tolerance is None else photo_error(imgs[a], imgs[b], seg,
                                                                     tolerance * side / 1000.0)
            mid = np.nan_to_num(0.5 * (seg[0] + seg[1]), nan=-1e4)
            seen = remap(valid[b], gx + mid[..., 0], gy + mid[..., 1], border=cv2.BORDER_CONSTANT)  # b's lens
            m = nonrigid_map(seg, fl, err, side, tolerance, flow.fb_tolerance, photo,
                             photo_tolerance or 0.1) * valid[a] * seen
            if m.shape != (hc, wc):
                m = cv2.resize(m, (wc, hc), interpolation=cv2.INTER_LINEAR)
            maps.append(_to_lens(und, m))
        out[(int(k0), int(k1))] = (maps[0], maps[1])
    return out


def moved_fractions(maps: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """``"k0-k1"`` -> the part of the frame that moved by itself between those inputs (the mean of
    :func:`rigid_check`'s two maps, rounded to 4 places)."""
    return {f"{k0}-{k1}": round(float(0.5 * (m0.mean() + m1.mean())), 4) for (k0, k1), (m0, m1) in maps.items()}


def _to_lens(und: Undistorter, x: np.ndarray) -> np.ndarray:
    """A canvas image or map [Hc, Wc(, C)] in [0, 1] -> the input lens (float32, clipped to [0, 1])."""
    return np.clip(und.distort_image(np.ascontiguousarray(x, np.float32)), 0, 1)


def _distort_pair(und: Undistorter, img: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Canvas image [Hc, Wc, 3] and weight [Hc, Wc] -> the input lens (float32)."""
    return _to_lens(und, img), _to_lens(und, weight)


def path_frames_3d(rendered: PathRenderer | RenderedPath, path: PathFrames, und: Undistorter, refs: RefViews | None,
                   fixer: Fixer | None, enhance: EnhanceConfig) -> list[tuple[np.ndarray, np.ndarray]]:
    """The 3D route for every path frame: (image [H, W, 3] float32, weight [H, W] float32) in the
    input lens. With a fixer, the post-render enhancement (weight = its smoothed blend weight);
    without, the plain render (weight = its opacity).

    ``rendered``: the path's canvases, rendered a chunk at a time as they are needed (a :class:`PathRenderer`: the
    run holds a few chunks of canvases at once, not every frame's render, depth, opacity and fixed frame), or already
    rendered (:func:`~sparsevid.render.frames.render_path`
    with ``keep_canvas``). The same frames either way."""
    T = len(path)
    mask = und.mask.astype(np.float32)
    wc, hc = und.canvas_size
    out: list[tuple[np.ndarray, np.ndarray]] = []
    if fixer is None or refs is None:
        step = chunk_size(enhance, wc * hc)
        with progress() as p:
            task = p.add_task("rendering", total=T, status=f"{wc}x{hc} canvas")
            for s in range(0, T, step):
                rgb, _, alpha = rendered.canvas(slice(s, min(T, s + step)))
                out.extend(_distort_pair(und, i, a[..., 0] * mask) for i, a in zip(rgb, alpha))
                p.update(task, advance=len(rgb))
        return out
    valid = torch.from_numpy(mask)[None, ..., None].expand(T, -1, -1, -1)
    Ks = torch.from_numpy(np.broadcast_to(und.pinhole.K, (T, 3, 3)).copy()).float()
    for _, res in enhance_stream(fixer, rendered.canvas, Ks, torch.from_numpy(path.c2ws), refs, valid=valid,
                                 times=torch.from_numpy(path.seconds), config=enhance,
                                 status=f"{type(fixer).__name__}, each {wc}x{hc} canvas rendered as it goes"):
        imgs = res.images.cpu().float().numpy()
        weights = res.extras["blend_weight"][..., 0].cpu().float().numpy()
        del res  # its confidences and raw weights, before the frames below
        out.extend(_distort_pair(und, i, w) for i, w in zip(imgs, weights))
        del imgs, weights  # views of the chunk: not held while the next one is rendered and fixed
    return out


class LeaveOneOut3D:
    """``route3d(target, refs)`` for :func:`sparsevid.fuse.loo.leave_one_out`: render the model at
    input ``target``'s camera and fix it from the inputs ``refs`` only.

    The model itself was trained on every input, so its *depth* at the held-out camera has seen
    that frame; its colours are not used (the fixer rebuilds the frame from the other inputs).
    Without a fixer (``fixer`` None: no post-render enhancement) the held-out input is rendered as
    is. That flatters the 3D route where the model fits its training views well, but it still
    catches a model that fits nothing (too few steps, wrong poses), which would otherwise enter
    the fusion unchecked.

    ``at_path``: render where the camera path through the *other* inputs puts ``target``'s time
    (:meth:`held_out_pose`), as every in-between frame is rendered, instead of at ``target``'s own
    estimated camera. The check then also sees what the path misses between its knots (the bounce
    of a walk, hand shake), as the 2D route's rebuild does."""

    def __init__(self, scene: Scene, und: Undistorter, render, refs: RefViews | None, fixer: Fixer | None,
                 at_path: bool = False):
        self.scene, self.und, self.render, self.refs, self.fixer = scene, und, render, refs, fixer
        self.order = [f.index for f in scene.frames]
        self.at_path = at_path

    def __call__(self, target: int, ref_keys: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        return self._fix(target, ref_keys, self._render(target, ref_keys))

    def held_out(self, targets: Sequence[int]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Each of ``targets`` rebuilt from all the other inputs: rendered one after the other, then
        fixed on parallel threads (the weight-free fixer's OpenCV work releases the GIL); the same
        result as calling this object per target."""
        targets = list(targets)
        renders = [self._render(t, [q for q in self.order if q != t]) for t in targets]
        jobs = [(t, [q for q in self.order if q != t], r) for t, r in zip(targets, renders)]
        with ThreadPoolExecutor(max_workers=max(1, len(jobs))) as pool:
            return dict(zip(targets, pool.map(in_context(lambda j: self._fix(*j)), jobs)))

    def held_out_pose(self, target: int, ref_keys: Sequence[int]) -> np.ndarray:
        """[4, 4] camera-to-world of input ``target`` for the check: its own camera, or (``at_path``)
        the camera path through the inputs ``ref_keys`` at its time."""
        if not self.at_path:
            return self.scene.frames[self.order.index(target)].c2w
        refs = sorted(ref_keys)
        c2ws = np.stack([self.scene.frames[self.order.index(q)].c2w for q in refs])
        path = CameraPath.from_indices(refs, self.scene.fps, c2ws)
        return path.at([Fraction(int(target)) / fps_fraction(self.scene.fps)])[0][0]

    def _render(self, target: int, ref_keys: Sequence[int]) -> dict[str, torch.Tensor]:
        wc, hc = self.und.canvas_size
        K = torch.from_numpy(self.und.pinhole.K[None]).float()
        c2w = torch.from_numpy(np.ascontiguousarray(self.held_out_pose(target, ref_keys))[None])
        with torch.no_grad():
            r = self.render(c2w.float(), K, wc, hc)
        return {"K": K, "c2w": c2w, "rgb": r["rgb"].detach().cpu().float(),
                "depth": r["depth"].detach().cpu().float(), "alpha": r["alpha"].detach().cpu().float()}

    def _fix(self, target: int, ref_keys: Sequence[int], r: dict[str, torch.Tensor]) -> tuple[np.ndarray, np.ndarray]:
        valid = torch.from_numpy(self.und.mask.astype(np.float32))[None, ..., None]
        if self.fixer is None:  # the plain render, weighted by its opacity, as path_frames_3d without a fixer
            return _distort_pair(self.und, r["rgb"][0].numpy(), (r["alpha"] * valid)[0, ..., 0].numpy())
        refs = self.refs.select([self.order.index(k) for k in ref_keys])
        res = self.fixer.fix(FixRequest(r["rgb"], r["K"], r["c2w"], refs, depth=r["depth"], alpha=r["alpha"],
                                        valid=valid))
        weight = res.extras.get("blend_weight", res.confidence)
        return _distort_pair(self.und, res.images[0].cpu().float().numpy(), weight[0, ..., 0].cpu().float().numpy())

"""The trainer's view set: the view type, views from a scene, view sampling and per-view tensors.

:class:`TrainView` is the one view type of training: an image on the undistorted pinhole canvas with
its camera, a per-pixel mask (validity x confidence: pixels a pseudo view is unsure of weigh less or
nothing) and a per-sample loss weight (pseudo views of the progressive updates get lower ones).
:class:`ViewSampler` picks the view of each step from the trainer's own generator (saved in
checkpoints): a shuffled pass over the real inputs, interleaved with a shuffled pass over the pseudo
views for ``TrainConfig.pseudo_fraction`` of the steps. :func:`view_tensors` uploads a view to the
device once (the trainer caches the result).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from sparsevid.errors import SparsevidError


@dataclass
@dataclass
class TrainView:
    """One training image in the undistorted pinhole canvas.

    Attributes:
        image: [H, W, 3] float32 RGB in 0..1.
        K: [3, 3] pinhole intrinsics of the canvas.
        c2w: [4, 4] camera-to-world, OpenCV axes.
        mask: [H, W, 1] float32 validity x per-pixel confidence (0 = ignore the pixel).
        weight: per-sample loss weight (pseudo-views get lower weights).
        kind: "input" or "pseudo".
        round: progressive-update round that produced the view (0 for inputs).
    """

    image: np.ndarray
    K: np.ndarray
    c2w: np.ndarray
    mask: np.ndarray | None = None
    weight: float = 1.0
    kind: str = "input"
    round: int = 0

    def __post_init__(self) -> None:
        img = np.asarray(self.image)
        if img.dtype == np.uint8:
            img = img.astype(np.float32) / 255.0
        self.image = np.ascontiguousarray(img, dtype=np.float32)
        if self.image.ndim != 3 or self.image.shape[2] != 3:
            raise SparsevidError(f"TrainView image must be [H, W, 3], got {self.image.shape}")
        H, W = self.image.shape[:2]
        self.mask = (np.ones((H, W, 1), np.float32) if self.mask is None
                     else np.asarray(self.mask, dtype=np.float32).reshape(H, W, 1))
        self.K = np.asarray(self.K, dtype=np.float64)
        self.c2w = np.asarray(self.c2w, dtype=np.float64)

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    def to_dict(self) -> dict:
        return {"image": self.image, "K": self.K, "c2w": self.c2w, "mask": self.mask,
                "weight": float(self.weight), "kind": self.kind, "round": int(self.round)}


def downscaled(v: TrainView, scale: float) -> TrainView:
    """``v`` at ``scale`` x its resolution: area-averaged image and mask, and the intrinsics of
    :meth:`Camera.scaled <sparsevid.data.camera.Camera.scaled>` (size rounded, K scaled per axis by
    the exact size ratio, so the canvas keeps its field of view). ``scale >= 1`` returns ``v``."""
    if scale >= 1.0:
        return v
    import cv2

    from sparsevid.data.camera import Camera

    K = v.K
    cam = Camera.pinhole(K[0, 0], K[1, 1], K[0, 2], K[1, 2], v.width, v.height).scaled(scale)
    size = (cam.width, cam.height)
    image = cv2.resize(v.image, size, interpolation=cv2.INTER_AREA)
    mask = cv2.resize(v.mask[..., 0], size, interpolation=cv2.INTER_AREA)[..., None]
    return TrainView(image=image, K=cam.K, c2w=v.c2w, mask=mask, weight=v.weight, kind=v.kind, round=v.round)


def view_from_dict(d: dict) -> TrainView:
    """The inverse of :meth:`TrainView.to_dict` (checkpoints)."""
    return TrainView(**d)


class ViewSampler:
    """Which view trains at each step; state = the generator and the current passes (checkpointed)."""

    def __init__(self, seed: int):
        self.generator = torch.Generator().manual_seed(seed)
        self.order: dict[str, list[int]] = {"input": [], "pseudo": []}

    def next(self, views: list[TrainView], pseudo_fraction: float) -> int:
        """Index of the next training view: a shuffled pass over the real inputs, interleaved with
        a shuffled pass over the pseudo views for ``pseudo_fraction`` of the steps."""
        pseudo = [i for i, v in enumerate(views) if v.kind != "input"]
        kind = "input"
        if pseudo and len(pseudo) < len(views):
            if float(torch.rand(1, generator=self.generator)) < pseudo_fraction:
                kind = "pseudo"
        elif pseudo:
            kind = "pseudo"
        order = self.order[kind]
        if not order:
            pool = pseudo if kind == "pseudo" else [i for i in range(len(views)) if i not in set(pseudo)]
            order.extend(pool[j] for j in torch.randperm(len(pool), generator=self.generator).tolist())
        return order.pop()

    def state(self) -> dict:
        """``view_order`` (the generator's state) and ``order`` (the passes), as in checkpoints."""
        return {"view_order": self.generator.get_state(), "order": {k: list(v) for k, v in self.order.items()}}

    def load_state(self, rng: dict) -> None:
        self.generator.set_state(rng["view_order"])
        self.order = {k: [int(i) for i in v] for k, v in rng["order"].items()}


def view_tensors(v: TrainView, device: torch.device) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """(image [1,H,W,3], mask [1,H,W,1], viewmat [1,4,4], K [1,3,3], weight [1]) of ``v`` on ``device``."""
    vm = torch.from_numpy(np.linalg.inv(v.c2w)).float()[None]
    return (torch.from_numpy(v.image).to(device)[None],
            torch.from_numpy(v.mask).to(device)[None],
            vm.to(device), torch.from_numpy(v.K).float()[None].to(device),
            torch.tensor([float(v.weight)], dtype=torch.float32, device=device))


def views_from_scene(scene, scale: float = 1.0, mode: str = "full") -> list[TrainView]:
    """Posed input frames of a :class:`~sparsevid.data.scene.Scene` -> TrainViews on the undistorted
    pinhole canvas (``mode="full"``: padded canvas covering the whole field of view + validity mask;
    ``"crop"``: the input K and size) at ``scale`` x the input resolution."""
    from sparsevid.poses.undistort import Undistorter

    if not scene.has_poses:
        unposed = [f.index for f in scene.frames if f.c2w is None]
        if scene.camera is not None and len(unposed) < len(scene.frames):
            raise SparsevidError(f"inputs {unposed} have no pose in the {scene.source} model", path=scene.root,
                                 fix="choose --keyframes among its posed frames (sparsevid inspect lists them), or "
                                     "use `sparsevid run`, which estimates the poses")
        raise SparsevidError("the scene has no camera poses", path=scene.root,
                             fix="run `sparsevid poses` first, or pass a COLMAP/transforms.json input")
    und = Undistorter.for_camera(scene.camera, scale=scale, mode=mode)
    if und.capped_warning:
        from sparsevid.log import warn
        warn(und.capped_warning)
    w, h = und.size
    views = []
    for f in scene.frames:
        img = f.image
        if (img.shape[1], img.shape[0]) != (w, h):
            import cv2

            img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        canvas = und.undistort_image(img)
        views.append(TrainView(image=canvas, K=und.pinhole.K, c2w=f.c2w,
                               mask=und.mask.astype(np.float32)[..., None], kind="input"))
    return views

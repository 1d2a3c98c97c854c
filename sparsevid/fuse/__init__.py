"""The fusion: every output frame from per-pixel candidates of the 2D route (flow between neighbouring inputs),
the learned route (RIFE 4.25) and the 3D route (the Gaussians' frame and the inputs reprojected through it),
weighted by a leave-one-out check on the inputs (``loo``); :func:`fuse_frames` is the stage."""
from sparsevid.fuse.checks import check_fuse_config
from sparsevid.fuse.flow2d import FlowConfig
from sparsevid.fuse.fusion import FuseConfig
from sparsevid.fuse.stage import FusedFrames, fuse_frames
from sparsevid.fuse.temporal import TemporalConfig

__all__ = ["FuseConfig", "FlowConfig", "TemporalConfig", "FusedFrames", "fuse_frames", "check_fuse_config"]

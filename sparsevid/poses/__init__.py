"""Camera poses: structure-from-motion with a validated fallback ladder (``sfm``), trajectory
alignment and pose-error metrics (``align``), full-field-of-view undistortion (``undistort``)."""
from sparsevid.poses.align import (align_poses, relative_rotations_deg, rotation_errors_deg,
                                   similarity_from_poses, umeyama_sim3)
from sparsevid.poses.sfm import PoseConfig, estimate_poses

__all__ = ["PoseConfig", "estimate_poses", "align_poses", "umeyama_sim3", "similarity_from_poses",
           "rotation_errors_deg", "relative_rotations_deg"]

"""The camera path: one camera per output frame at its exact time."""
from sparsevid.path.camera_path import CameraPath, PathConfig, PathFrames, interpolate_pose, source_index_of

__all__ = ["CameraPath", "PathConfig", "PathFrames", "interpolate_pose", "source_index_of"]

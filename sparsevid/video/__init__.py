"""Video output: MP4 (PyAV, H.264), PNG frames, contact sheets, cameras.json."""
from sparsevid.video.cameras_json import cameras_dict, opencv_to_opengl, write_cameras_json
from sparsevid.video.io import (read_frames, read_image, read_video, write_frames, write_image,
                                write_video)
from sparsevid.video.sheet import contact_sheet, write_contact_sheet

__all__ = ["cameras_dict", "contact_sheet", "opencv_to_opengl", "read_frames", "read_image",
           "read_video", "write_cameras_json", "write_contact_sheet", "write_frames", "write_image",
           "write_video"]

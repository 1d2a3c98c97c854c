"""Pick a loader from what the input path holds, and apply the key-frame selection.

Inputs, in the order they are recognised:
  * ``transforms.json`` (or a folder holding one): nerfstudio, posed;
  * a COLMAP model: ``DATA/sparse/0``, ``DATA/colmap/sparse/0`` (binary or text), images in ``DATA/images``;
  * a video file (mp4/mov/mkv/...), or a folder holding exactly one video and no images;
  * a folder of images (or ``DATA/images``) without poses.
"""
from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from sparsevid.data.colmap import find_colmap_model, read_colmap
from sparsevid.data.images import IMAGE_EXTS, list_image_files, read_images_folder
from sparsevid.data.nerfstudio import read_transforms
from sparsevid.data.scene import Scene
from sparsevid.data.timebase import parse_fps
from sparsevid.data.video import VIDEO_EXTS, TimePoint, is_video_file, parse_window, read_video
from sparsevid.errors import SparsevidError
from sparsevid.log import info

_DEMO_DIR = Path(__file__).resolve().parent / "demo"


def demo_path() -> Path:
    """Folder of the embedded demo: frames 0, 9, 19, 29 of the GoPro sidewalk clip (PNG,
    848x480) with ``frames_meta.json`` (fps) and the clip's license files."""
    if not (_DEMO_DIR / "frame_0000.png").is_file():
        raise SparsevidError("the embedded demo frames are not installed",
                             fix="reinstall sparsevid (pip install -e .) from a full checkout", path=_DEMO_DIR)
    return _DEMO_DIR


def parse_int_list(text: str | None, flag: str, *, minimum: int = 0, example: str = "0,9,19,29") -> list[int] | None:
    """Parse a list of integers given on the command line: separated by commas and/or spaces
    (``"0,9,19,29"``, ``"0 9 19 29"``, ``"0, 9, 19, 29"``), each ``>= minimum``, none twice.

    Returns the sorted list; None for None (the option was not given).

    Raises:
        SparsevidError: an empty list, a token that is not an integer, a value below ``minimum``,
            or a duplicate -- one line naming ``flag``.
    """
    if text is None:
        return None
    fix = f"write it like {flag} {example}"
    tokens = [t for t in re.split(r"[,\s]+", str(text).strip()) if t]
    if not tokens:
        raise SparsevidError(f"{flag} is empty", fix=f"{fix}, or leave {flag} out")
    values = []
    for t in tokens:
        try:
            values.append(int(t))
        except ValueError:
            raise SparsevidError(f"{flag} takes comma-separated integers; {t!r} in {text!r} is not one",
                                 fix=fix) from None
    low = [v for v in values if v < minimum]
    if low:
        raise SparsevidError(f"{flag} values must be >= {minimum}, got {low[0]}", fix=fix)
    dup = sorted({v for v in values if values.count(v) > 1})
    if dup:
        raise SparsevidError(f"{flag} lists {', '.join(map(str, dup))} more than once", fix=f"give each value once: {fix}")
    return sorted(values)


def parse_keyframes(text: str | None, flag: str = "--keyframes") -> list[int] | None:
    """``"0,9,19,29"`` or ``"0 9 19 29"`` -> ``[0, 9, 19, 29]`` (sorted); None -> None (every frame).

    The one parser of key-frame lists (``run``, ``poses``, ``train``, ``inspect``, ``eval``); see
    :func:`parse_int_list` for what it refuses (empty, not a number, negative, duplicates)."""
    return parse_int_list(text, flag, minimum=0)


def _detect_and_read(path: Path, start: TimePoint | None = None, end: TimePoint | None = None,
                     until: int | None = None) -> Scene:
    windowed = start is not None or end is not None

    def not_a_video(scene: Scene) -> Scene:
        if windowed:
            flag = "--start" if start is not None else "--end"
            raise SparsevidError(f"{flag} trims a video input; this input is {scene.source or 'not a video'} "
                                 f"({len(scene.frames) + len(scene.gt_frames)} frames)",
                                 fix="leave --start/--end out and pick frames with --keyframes", path=path)
        return scene

    if not path.exists():
        raise SparsevidError("input not found", fix="check the path (a folder of frames, a video, "
                             "a COLMAP dataset or a transforms.json)", path=path)
    if path.is_file():
        if path.suffix.lower() == ".json":
            return not_a_video(read_transforms(path))
        if path.suffix.lower() in VIDEO_EXTS:
            return read_video(path, start=start, end=end, until=until)
        if path.suffix.lower() in IMAGE_EXTS:
            raise SparsevidError("a single image is not enough (need at least 2 frames)",
                                 fix="pass the folder that holds the frames", path=path)
        raise SparsevidError(f"unsupported input file type {path.suffix or '(none)'}",
                             fix="pass a folder of frames, a video (" + ", ".join(VIDEO_EXTS) + ") or a transforms.json",
                             path=path)
    from sparsevid.outdir import RUN_MARKER

    if (path / RUN_MARKER).is_file():  # its contact sheet would pass for a one-frame clip
        raise SparsevidError("this is the output folder of a sparsevid run, not a clip", path=path,
                             fix=_run_folder_hint(path))
    if (path / "transforms.json").is_file():
        return not_a_video(read_transforms(path / "transforms.json"))
    model = find_colmap_model(path)
    if model is not None:
        return not_a_video(read_colmap(model))
    images = list_image_files(path)
    videos = sorted(p for p in path.iterdir() if is_video_file(p))
    if len(images) == 1 and len(videos) == 1:  # a video and its poster or thumbnail: the clip is the video
        info(f"{path.name}: reading the video {videos[0].name} (the one image beside it, {images[0].name}, "
             "is not a clip)")
        return read_video(videos[0], start=start, end=end, until=until)
    if images:
        return not_a_video(read_images_folder(path))
    if (path / "images").is_dir() and list_image_files(path / "images"):
        return not_a_video(read_images_folder(path / "images"))
    if len(videos) == 1:
        return read_video(videos[0], start=start, end=end, until=until)
    if len(videos) > 1:
        raise SparsevidError(f"folder holds {len(videos)} videos and no images",
                             fix="pass one video file", path=path)
    held = sorted(p.name for p in path.iterdir() if not p.name.startswith("."))
    what = "an empty folder" if not held else \
        f"the folder holds {len(held)} other file{'s' if len(held) > 1 else ''} (e.g. {held[0]})"
    raise SparsevidError(f"no frames found: no images, video, COLMAP model or transforms.json ({what})",
                         fix="pass a folder of frames, a video, a COLMAP dataset or a transforms.json", path=path)


def apply_keyframes(scene: Scene, keyframes: list[int] | None, where: Path | None = None,
                    windowed: bool = False) -> Scene:
    """Make ``keyframes`` the input frames; every other frame becomes a ground-truth frame.

    With None the scene is returned unchanged. ``where``: the input as the user gave it, named by an
    error (default: the scene's folder); ``windowed``: a video read from ``--start``, whose indices count from the
    window's first frame (the error says so). Ground-truth frames keep their poses (a
    posed dataset's poses of held-out frames serve as a reference).
    """
    if keyframes is None:
        return scene
    keys = sorted(set(keyframes))
    pool = sorted(scene.frames + scene.gt_frames, key=lambda f: f.index)
    have = [f.index for f in pool]
    missing = [k for k in keys if k not in have]
    if missing:
        rng = f"{have[0]}..{have[-1]}" if have else "none"
        raise SparsevidError(
            f"keyframe{'s' if len(missing) > 1 else ''} {','.join(map(str, missing))} not in the input "
            f"({len(have)} frame{'s' if len(have) != 1 else ''}, indices {rng})",
            fix="pick --keyframes among the input's frame indices (see sparsevid inspect)"
                + ("; inside a --start window they count from its first frame, 0" if windowed else ""),
            path=where if where is not None else scene.root)
    frames = [f for f in pool if f.index in keys]
    gt = [f for f in pool if f.index not in keys]
    return replace(scene, frames=frames, gt_frames=gt)  # unposed inputs of a posed model: see resolve_poses


def from_first_frame(scene: Scene, where: Path) -> Scene:
    """The scene with its first frame (input or ground truth) numbered 0, so the video starts at it: frames named
    from 1 (ffmpeg's ``%d``, nerfstudio's ``frame_00001``) or from 100 are numbered from 0 from here on (one
    info line; ``--keyframes`` count as the file names do). The numbers between two files are frames the output
    fills in (4 files 0, 9, 19, 29: a 30-frame video); numbers that are not frame numbers (timestamps) give a
    camera path that :meth:`~sparsevid.path.camera_path.PathConfig.frame_count` refuses beyond its limit."""
    if not scene.frames + scene.gt_frames:
        return scene
    first = scene.first_index
    if first:
        last = max(f.index for f in scene.frames + scene.gt_frames)
        info(f"{where.name or where}: the first frame is number {first}: the video starts at it (numbered 0 in the "
             f"outputs, so input {last} is output frame {last - first})")
    return scene.shifted(-first)


def load_scene(path: str | Path, keyframes: list[int] | None = None, fps: float | None = None,
               start: TimePoint | float | str | None = None, end: TimePoint | float | str | None = None,
               renumber: bool = True, until_last_keyframe: bool = False) -> Scene:
    """Load any supported input (see the module doc) as a :class:`Scene`.

    Args:
        path: folder of images, video file, COLMAP dataset/model folder, transforms.json or a
            folder holding one.
        keyframes: frame indices to use as inputs; the other frames become ``gt_frames``.
            None: every frame the loader marks as input is an input.
        fps: frames per second; None reads it from the video stream or ``frames_meta.json``
            (``fps`` key) or transforms.json, else 30.
        start, end: a window of a video input, as ``--start``/``--end`` take it: seconds (``2.5``), a frame
            number (``"f75"``) or a parsed :class:`~sparsevid.data.video.TimePoint` (see
            :func:`~sparsevid.data.video.parse_time`): only it is decoded, and frame indices (so
            ``keyframes``) count from its first frame. Any other input refuses them.
        renumber: number the frames from the first one (0), as :func:`from_first_frame` says; False keeps
            the numbers of the file names (``Scene.number_offset`` says by how much they differ).
        until_last_keyframe: decode a video given ``keyframes`` only up to the last one (``run`` without
            ``--path.num-frames`` / ``--path.duration``, whose video ends there, and ``poses``: its later frames would
            only fill memory; a 10 s 4K clip is 14 GiB decoded). False: to its end (``inspect`` lists them all).

    Returns:
        A :class:`Scene` with at least 2 input frames, sorted by index.
    """
    path = Path(path).expanduser()
    if not all(t is None or isinstance(t, TimePoint) for t in (start, end)):  # seconds or "f75", as the flags
        start, end = parse_window(*(None if t is None else t.text if isinstance(t, TimePoint) else str(t)
                                    for t in (start, end)))
    until = max(keyframes) if keyframes and until_last_keyframe else None
    scene = _detect_and_read(path, start, end, until)
    scene = apply_keyframes(scene, keyframes, where=path, windowed=start is not None)
    if renumber:
        scene = from_first_frame(scene, path)
    if fps is not None:
        scene = replace(scene, fps=parse_fps(fps, "--fps"))  # a video's sound keeps the file's rate (AudioSource)
    if len(scene.frames) < 2:
        raise SparsevidError(f"need at least 2 input frames, found {len(scene.frames)}",
                             fix="add frames or pick at least 2 --keyframes", path=path)
    return scene


def _run_folder_hint(run: Path) -> str:
    """What to pass instead of a run folder: the clip it was made from (as its run.json or config.yaml names
    it; the demo's path for a run of the embedded demo) and its poses folder, where it has one."""
    from sparsevid.runinfo import recorded_input

    src = recorded_input(run)
    clip = f"the clip it was made from ({src})" if src else f"the clip it was made from (a run of the embedded " \
        f"demo: {demo_path()})" if (run / "run.json").is_file() or (run / "config.yaml").is_file() else \
        "the clip it was made from"
    poses = run / "poses" / "transforms.json"
    return f"pass {clip}" + (f", or {poses.parent} for the poses the run estimated" if poses.is_file() else "")


"""``sparsevid inspect``: what sparsevid sees in an input (frames, times, camera, poses, points)."""
from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from sparsevid.cli.flags import input_path
from sparsevid.data.load import demo_path, load_scene, parse_keyframes
from sparsevid.data.video import add_window_args, parse_window
from sparsevid.data.scene import Scene


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "inspect", help="show the frames, times, camera, poses and points sparsevid reads from an input",
        description="Load an input the way `sparsevid run` does and print what was found: every frame with its "
                    "index, size, time stamp and pose, which frames are inputs and which are ground truth only, "
                    "the camera and the sparse points. Nothing is written.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("input", nargs="?", type=input_path, default=None,
                   help="folder of frames, video file, COLMAP dataset (DATA/sparse/0 + DATA/images) or "
                        "transforms.json; default: the embedded demo (4 frames of a GoPro clip)")
    p.add_argument("--keyframes", default=None,
                   help="comma-separated frame indices used as inputs, e.g. 0,9,19,29; the other frames "
                        "become ground truth; default: every frame the input provides")
    p.add_argument("--fps", default=None,
                   help="frames per second (29.97 or 30000/1001); default: read from the video, frames_meta.json "
                        "or transforms.json, else 30")
    add_window_args(p)
    p.set_defaults(func=run)
    return p


def _camera_line(scene: Scene) -> str:
    cam = scene.camera
    if cam is None:
        return "unknown (the pose stage estimates it)"
    params = ", ".join(f"{k}={v:.6g}" for k, v in cam.to_dict()["params"].items())
    return f"{cam.model} {cam.width}x{cam.height}: {params}"


def scene_table(scene: Scene) -> Table:
    """A rich table with one row per frame (inputs and ground truth), sorted by index."""
    table = Table(title=f"{len(scene.frames)} input frames, {len(scene.gt_frames)} ground-truth frames",
                  title_justify="left")
    for col, kw in (("index", {"justify": "right"}), ("role", {}), ("file", {}), ("size", {}),
                    ("time (s)", {"justify": "right"}), ("pose", {})):
        table.add_column(col, **kw)
    inputs = {id(f) for f in scene.frames}
    for f in sorted(scene.frames + scene.gt_frames, key=lambda f: f.index):
        is_input = id(f) in inputs
        table.add_row(str(f.index), "[bold green]input[/]" if is_input else "[dim]ground truth[/]", Text(f.name),
                      f"{f.width}x{f.height}", f"{scene.time(f.index):.4f}", "yes" if f.c2w is not None else "no")
    return table


def summary_lines(scene: Scene, given: str | Path | None = None) -> list[str]:
    """The scene-level facts as ``key: value`` lines; ``given``: the input as the user named it (a video
    file rather than its folder; default: the scene's folder)."""
    gt = [f.index for f in scene.gt_frames]
    n_pts = 0 if scene.points is None else len(scene.points)
    return [
        f"source: {scene.source} ({given if given is not None else scene.root})",
        f"fps: {float(scene.fps):.6g}" + ("" if scene.fps.denominator == 1 else f" ({scene.fps})"),
        f"camera: {_camera_line(scene)}",
        f"poses: {'yes' if scene.has_poses else 'no'} "
        f"({sum(f.c2w is not None for f in scene.frames)}/{len(scene.frames)} input frames posed)",
        f"points: {n_pts}",
        f"input frames: {', '.join(map(str, scene.indices))}",
        f"ground-truth only: {', '.join(map(str, gt)) if gt else 'none'}",
    ] + ([f"sound: {scene.audio.description} (audio stream {scene.audio.stream} of the file; run puts the part "
          "under the output frames into video.mp4)"] if scene.audio is not None else [])


def run(args: argparse.Namespace) -> int:
    path = args.input if args.input is not None else demo_path()
    keyframes = parse_keyframes(args.keyframes)
    start, end = parse_window(args.start, args.end)
    scene = load_scene(path, keyframes=keyframes, fps=args.fps, start=start, end=end)
    out = Console(highlight=False)
    out.print(scene_table(scene))
    for line in summary_lines(scene, path):
        out.print(line, markup=False)
    if start is not None or end is not None:
        out.print(f"video window: --start {args.start or '0'} --end {args.end or '(the end)'}; "
                  "indices and times count from the window's first frame")
    return 0

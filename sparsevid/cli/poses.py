"""``sparsevid poses``: estimate the camera and the input frames' poses (pycolmap, CPU) and write
them as a dataset that loads as a scene (COLMAP model + transforms.json + images + report)."""
from __future__ import annotations

import argparse
import contextlib
from pathlib import Path


from sparsevid.cli.flags import FlagDoc, add_flags, apply_flags, config_flags, input_path, section_titles
from sparsevid.data.load import load_scene, parse_keyframes
from sparsevid.data.timebase import parse_fps
from sparsevid.data.video import add_window_args, parse_window
from sparsevid.errors import SparsevidError
from sparsevid.geometry import rotation_angle_deg
from sparsevid.log import info
from sparsevid.outdir import prepare_output
from sparsevid.poses.align import align_poses
from sparsevid.poses.sfm import POSES_REPORT, PoseConfig, check_pose_config, estimate_poses, save_pose_outputs

#: what ``poses`` writes into OUT (removed first with --overwrite)
OUTPUTS = ("sparse", "images", "transforms.json", POSES_REPORT, "sparse_pc.ply", "frames_meta.json",
           "colmap.log")
MARKER = ".sparsevid-poses"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "poses", help="estimate camera intrinsics and poses of the input frames (COLMAP via pycolmap, CPU)",
        description="Run structure-from-motion on the input frames with a validated fallback ladder and write "
                    "OUT/sparse/0 (COLMAP binary), OUT/transforms.json (nerfstudio), OUT/images and "
                    "OUT/poses_report.json. Existing poses in the input are ignored (and used as a reference "
                    "in the report).",
        usage="sparsevid poses INPUT -o OUT [--keyframes I,J,...] [--focal F] [--pose.FIELD VALUE ...] "
              "(every flag below)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("input", type=input_path, help="folder of frames, video file, COLMAP dataset or transforms.json")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--keyframes", default=None,
                   help="frame indices used as inputs, e.g. 0,9,19,29 (or \"0 9 19 29\"); default: every frame")
    p.add_argument("--fps", default=None,
                   help="frames per second (29.97 or 30000/1001); default: from the input, else 30")
    add_window_args(p)
    p.add_argument("--overwrite", action="store_true", help="replace the outputs of an earlier run in OUTPUT")
    add_flags(p, pose_flags(), titles=section_titles(PoseConfig, "pose"))
    p.set_defaults(func=run)
    return p


def pose_flags():
    """``--pose.FIELD`` for every PoseConfig field (as in ``run``); ``--focal`` and ``--seed`` are aliases."""
    return config_flags(PoseConfig, {
        "focal": FlagDoc(aliases=("--focal",), example="600",
                         help="focal length in pixels at the input resolution (held fixed); none: EXIF, else "
                              "estimated from the data where the motion allows, else an 80 deg field-of-view prior"),
        "seed": FlagDoc(aliases=("--seed",), help="random seed"),
    }, prefix="pose")


def run(args: argparse.Namespace) -> int:
    out = Path(args.output).expanduser()  # a quoted or `--output=~/x` tilde, as the shell would
    keyframes = parse_keyframes(args.keyframes)  # every argument checked before any work
    start, end = parse_window(args.start, args.end)
    cfg = PoseConfig()
    apply_flags(cfg, args, pose_flags())
    check_pose_config(cfg)
    if args.fps is not None:
        parse_fps(args.fps, "--fps")
    if not Path(args.input).expanduser().exists():
        raise SparsevidError("input not found", path=args.input,
                             fix="check the path (a folder of frames, a video, a COLMAP dataset or a transforms.json)")
    if Path(args.input).expanduser().resolve() == out.expanduser().resolve():
        raise SparsevidError("the output folder is the input folder; poses writes OUT/images and would replace "
                             "the input", fix="choose another -o", path=out)
    # the input read before the folder is touched: one that does not load leaves it as it was, even with --overwrite
    scene = load_scene(args.input, keyframes=keyframes, fps=args.fps, start=start, end=end, until_last_keyframe=True)
    with contextlib.ExitStack() as hold:  # the folder's lock, held while poses writes it
        prepare_output(out, marker=MARKER, outputs=OUTPUTS, protect=(args.input,),
                       overwrite=args.overwrite, hold=hold, resumable=False)  # fail before the expensive part
        return _estimate(args, out, cfg, scene)


def _estimate(args: argparse.Namespace, out: Path, cfg: PoseConfig, scene) -> int:
    reference = scene.c2ws() if scene.has_poses else None
    colmap_log: list[str] = []
    scene, report = estimate_poses(scene, cfg, colmap_log, work_dir=out)
    if reference is not None:
        err = rotation_angle_deg(align_poses(scene.c2ws(), reference), reference)
        report["rotation_error_vs_input_poses_deg"] = [round(float(e), 4) for e in err]
        info(f"rotation error vs the input's own poses (after similarity alignment): max {err.max():.3f} deg")
    if args.start is not None or args.end is not None:  # the frame indices count from this window's first frame
        report["video_window"] = {"start": args.start, "end": args.end}
    save_pose_outputs(scene, report, out, "".join(colmap_log))
    info(f"wrote {out}/sparse/0, {out}/transforms.json, {out}/images, {out}/poses_report.json")
    return 0

"""Pack clips for the device machine (its carry is at most 64 MiB): each clip's frames as lossless WebP, and the
poses made on the 2-core machine with transforms.json pointing at those WebP frames.

    python tools/gpu/pack_cases.py OUT CASE... [--runs RUNS]
    python tools/gpu/pack_cases.py OUT [CLIP...] --unpack DST     # on the device: back to PNG cases in DST/<clip>

OUT gets ``cases/<clip>/frame_XXXX.webp`` (plus the clip's other small files, e.g. ``frames_meta.json``) and, where
``RUNS/<clip>/poses/transforms.json`` exists (the pose stage's artifact of a ``sparsevid run ... -o RUNS/<clip>``),
``poses/<clip>/`` with ``transforms.json``, ``sparse_pc.ply`` and ``poses_report.json``. Clips with no poses there
(no model passed) take the 2D route on the device, as ``run`` does. The device scripts (``real_round.sh``,
``setup_round.sh``) read OUT as ``DATA``; carry OUT and the wheels (``.whl4``). Used with OUT=.device_r2 in session 16.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import cv2

POSE_FILES = ("sparse_pc.ply", "poses_report.json")


def pack_frames(case: Path, dst: Path) -> int:
    dst.mkdir(parents=True, exist_ok=True)
    n = 0
    for f in sorted(case.iterdir()):
        if f.suffix == ".png" and f.name.startswith("frame_"):
            img = cv2.imread(str(f), cv2.IMREAD_UNCHANGED)
            if not cv2.imwrite(str(dst / (f.stem + ".webp")), img, [cv2.IMWRITE_WEBP_QUALITY, 101]):  # 101: lossless
                raise SystemExit(f"could not write {dst / (f.stem + '.webp')}")
            n += 1
        elif f.is_file() and f.suffix != ".png":
            shutil.copy(f, dst / f.name)
    return n


def pack_poses(transforms: Path, name: str, dst: Path) -> None:
    """Copy the pose artifact, its frames' paths rewritten to ``../../cases/<name>/<stem>.webp``."""
    dst.mkdir(parents=True, exist_ok=True)
    data = json.loads(transforms.read_text())
    for frame in data["frames"]:
        frame["file_path"] = f"../../cases/{name}/{Path(frame['file_path']).stem}.webp"
    (dst / "transforms.json").write_text(json.dumps(data, indent=1))
    for extra in POSE_FILES:
        if (transforms.parent / extra).exists():
            shutil.copy(transforms.parent / extra, dst / extra)


def unpack(data: Path, dst: Path, names: list[str]) -> None:
    """On the device: each packed clip (all of ``data/cases`` when ``names`` is empty) back to a case folder of PNG
    frames under ``dst``, its other files copied."""
    for case in [data / "cases" / n for n in names] or sorted((data / "cases").iterdir()):
        out = dst / case.name
        out.mkdir(parents=True, exist_ok=True)
        for f in sorted(case.iterdir()):
            if f.suffix == ".webp":
                cv2.imwrite(str(out / (f.stem + ".png")), cv2.imread(str(f), cv2.IMREAD_UNCHANGED))
            else:
                shutil.copy(f, out / f.name)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("cases", nargs="*", type=Path)
    ap.add_argument("--runs", type=Path, help="folder of default runs, one per clip, whose poses to pack")
    ap.add_argument("--unpack", type=Path, metavar="DST",
                    help="the other way, on the device: OUT's clips (CASE... names them; default all) to PNG cases in DST")
    args = ap.parse_args(argv)
    if args.unpack:
        unpack(args.out, args.unpack, [str(c) for c in args.cases])
        return 0
    if not args.cases:
        ap.error("name at least one CASE to pack")
    for case in args.cases:
        n = pack_frames(case, args.out / "cases" / case.name)
        transforms = args.runs / case.name / "poses" / "transforms.json" if args.runs else None
        posed = transforms is not None and transforms.exists()
        if posed:
            pack_poses(transforms, case.name, args.out / "poses" / case.name)
        print(f"{case.name}: {n} frames, {'poses' if posed else 'no poses'}")
    size = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(f"{args.out}: {size / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

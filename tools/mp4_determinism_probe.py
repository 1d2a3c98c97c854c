"""Whether :func:`sparsevid.video.io.write_video` codes the same frames into the same file: a clip's frames resized to
each size, encoded ``--repeats`` times (in this process, with other allocations between encodings as a run has
them, or ``--fresh`` in a new process each), and the distinct files counted, with how far apart their decoded
frames are.

    python tools/mp4_determinism_probe.py ../shared/cases/gopro_sidewalk --sizes 848x480,424x240,160x120,160x90
    python tools/mp4_determinism_probe.py ../shared/cases/gopro_sidewalk --sizes 424x240,160x90 --fresh
"""
from __future__ import annotations

import argparse
import collections
import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

import sparsevid  # noqa: F401  (zlib before anything that may load pycolmap)
from sparsevid.video.io import read_image, read_video, write_video


def frames_at(case: Path, size: tuple[int, int]) -> list[np.ndarray]:
    return [cv2.resize(read_image(p), size, interpolation=cv2.INTER_AREA) for p in sorted(case.glob("frame_*.png"))]


def encode_once(case: Path, size: tuple[int, int], path: Path) -> str:
    write_video(frames_at(case, size), path, 30, announce_padding=False)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("case", type=Path, help="folder of frame_*.png")
    p.add_argument("--sizes", default="848x480,424x240,160x120,160x90", help="WxH,WxH,...")
    p.add_argument("--repeats", type=int, default=8)
    p.add_argument("--fresh", action="store_true", help="one new process per encoding")
    p.add_argument("--once", default=None, help=argparse.SUPPRESS)  # WxH:PATH, the child of --fresh
    args = p.parse_args()
    if args.once:
        wh, path = args.once.split(":", 1)
        w, h = map(int, wh.split("x"))
        print(encode_once(args.case, (w, h), Path(path)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        for text in args.sizes.split(","):
            w, h = map(int, text.split("x"))
            files: dict[str, Path] = {}
            count: collections.Counter = collections.Counter()
            held = []
            for k in range(args.repeats):
                path = Path(tmp) / f"v{w}x{h}_{k}.mp4"
                if args.fresh:
                    digest = subprocess.run([sys.executable, __file__, str(args.case), "--once", f"{w}x{h}:{path}"],
                                            capture_output=True, text=True, check=True).stdout.split()[-1]
                else:
                    held.append(np.random.default_rng(k).integers(0, 255, 1 << 20, np.uint8))  # other allocations
                    digest = encode_once(args.case, (w, h), path)
                count[digest] += 1
                files.setdefault(digest, path)
            decoded = [read_video(f)[0] for f in files.values()]
            apart = max((int(np.abs(a.astype(int) - b.astype(int)).max()) for other in decoded[1:]
                         for a, b in zip(decoded[0], other)), default=0)
            print(f"{w}x{h}: {len(count)} distinct file(s) over {args.repeats} encodings "
                  f"({' + '.join(map(str, sorted(count.values())))}); decoded, at most {apart} grey levels apart"
                  + (" (a fresh process each)" if args.fresh else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())

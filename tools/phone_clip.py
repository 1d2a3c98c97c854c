"""A clip as a phone records it, from a folder of frames: held upright (stored on its side with a display matrix) and
HDR (10-bit BT.2020, HLG or PQ), to check that `sparsevid run` reads phone clips as players show them (BENCHMARKS.md,
session 22).

    python tools/phone_clip.py CASE OUT [--portrait] [--hdr hlg|pq|none] [--crf 4] [--drop 5,14]

CASE holds frame_0000.png ... (landscape, as a test case). Writes OUT/clip.mov and OUT/truth/frame_NNNN.png, the frames
a viewer sees (turned to portrait with ``--portrait``), to score against:

    sparsevid run OUT/clip.mov --keyframes 0,9,19,29 -o RUN
    python ../shared/bench/score.py OUT/truth --pred RUN/frames
"""
from __future__ import annotations

import argparse
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sparsevid.data.hdr import sdr_to_hdr  # noqa: E402
from sparsevid.video.io import read_frames, write_frames  # noqa: E402

TRC = {"hlg": ("HLG", "arib-std-b67"), "pq": ("PQ", "smpte2084")}


def write_clip(frames: list[np.ndarray], path: Path, hdr: str = "none", rotation: int = 0,
               pts: list[int] | None = None, crf: int = 4) -> Path:
    """Write [H, W, 3] uint8 RGB frames (as the sensor stores them) as H.264 at 30 fps, the way a phone records.

    Args:
        hdr: "none" (8-bit BT.709, tagged), "hlg" or "pq" (graded with :func:`sdr_to_hdr`, 10-bit BT.2020, tagged).
        rotation: the display matrix's turn, degrees counter-clockwise (an iPhone held upright: -90; 0: none).
        pts: each frame's time in 1/30 s (default 0, 1, 2, ...; gaps make a variable frame rate).
    """
    import av

    h, w = frames[0].shape[:2]
    fmt = "mov" if path.suffix == ".mov" else "mp4"
    with av.open(str(path), "w", format=fmt) as c:
        st = c.add_stream("libx264", rate=30)
        st.width, st.height = w - w % 2, h - h % 2
        if hdr == "none":
            st.pix_fmt, params = "yuv420p", "colorprim=bt709:transfer=bt709:colormatrix=bt709"
        else:
            st.pix_fmt, params = "yuv420p10le", f"colorprim=bt2020:transfer={TRC[hdr][1]}:colormatrix=bt2020nc"
        st.options = {"crf": str(crf), "x264-params": params}
        if rotation:
            st.set_display_rotation(rotation)
        for k, img in zip(pts if pts is not None else range(len(frames)), frames):
            img = np.ascontiguousarray(img[: st.height, : st.width])
            if hdr == "none":
                vf = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p", dst_colorspace="itu709")
            else:
                vf = av.VideoFrame.from_ndarray(sdr_to_hdr(img, TRC[hdr][0]), format="rgb48le").reformat(
                    format="yuv420p10le", dst_colorspace="bt2020")
            vf.pts, vf.time_base = k, Fraction(1, 30)
            for pk in st.encode(vf):
                c.mux(pk)
        for pk in st.encode():
            c.mux(pk)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("case", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--portrait", action="store_true", help="the viewer sees the frames turned a quarter turn "
                                                            "clockwise; the file stores them as given, with a -90 "
                                                            "degree display matrix (an iPhone held upright)")
    ap.add_argument("--hdr", choices=("hlg", "pq", "none"), default="hlg")
    ap.add_argument("--crf", type=int, default=4)
    ap.add_argument("--drop", default="", metavar="I,J", help="frames the phone dropped: not in the file, the others "
                                                             "keep their time stamps (a variable frame rate)")
    a = ap.parse_args()
    frames = read_frames(a.case)
    stored = [frames[i] for i in sorted(frames)]
    seen = [np.ascontiguousarray(np.rot90(f, k=-1)) if a.portrait else f for f in stored]
    write_frames(seen, a.out / "truth")
    drop = {int(k) for k in a.drop.split(",") if k}
    kept = [k for k in range(len(stored)) if k not in drop]
    write_clip([stored[k] for k in kept], a.out / "clip.mov", a.hdr, -90 if a.portrait else 0, kept, a.crf)
    h, w = stored[0].shape[:2]
    print(f"{a.out / 'clip.mov'}: {len(kept)} frames, stored {w}x{h}, seen {seen[0].shape[1]}x{seen[0].shape[0]}, "
          f"{a.hdr.upper() if a.hdr != 'none' else 'SDR'}; truth in {a.out / 'truth'}")


if __name__ == "__main__":
    main()

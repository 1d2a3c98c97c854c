"""Image files: reading/writing single images, frame indices from file names, and the loader
for a plain folder of images without poses (camera and c2w stay None; the pose stage fills
them in).
"""
from __future__ import annotations

import json
import re
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from sparsevid.data.scene import Frame, Scene
from sparsevid.data.timebase import parse_fps
from sparsevid.errors import SparsevidError
from sparsevid.io_utils import atomic_save

#: file extensions read as images (lower case)
IMAGE_EXTS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".jfif", ".bmp", ".tif", ".tiff", ".webp")
#: image formats phones and cameras write that sparsevid does not read: a numbered frame in one is named in a warning
UNREAD_IMAGE_EXTS: tuple[str, ...] = (".heic", ".heif", ".avif", ".jxl", ".dng", ".raw", ".cr2", ".cr3", ".nef",
                                      ".arw", ".orf", ".rw2", ".gif")

#: name of the optional metadata file next to the images (``{"fps": 29.97, ...}``)
FRAMES_META = "frames_meta.json"

_TRAILING_NUMBER = re.compile(r"(\d+)$")


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTS and not path.name.startswith(".")


def list_image_files(folder: Path, say_unread: bool = False) -> list[Path]:
    """Image files directly inside ``folder`` (not recursive), sorted by name. ``say_unread``: numbered frames
    beside them in a format sparsevid does not read (:data:`UNREAD_IMAGE_EXTS`: a phone's HEIC, a camera's raw) are
    named in one warning line (they would otherwise be in-between frames to make, without a word)."""
    found = sorted(p for p in folder.iterdir() if is_image_file(p))
    if found and say_unread:
        unread = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in UNREAD_IMAGE_EXTS
                        and not p.name.startswith(".") and parse_index(p.name) is not None)
        if unread:
            from sparsevid.log import warn

            warn(f"{folder.name or folder}: {len(unread)} numbered frame{'s' if len(unread) > 1 else ''} in a format "
                 f"sparsevid does not read {'are' if len(unread) > 1 else 'is'} left out ({', '.join(unread[:3])}"
                 f"{', ...' if len(unread) > 3 else ''}) -> convert {'them' if len(unread) > 1 else 'it'} to PNG or "
                 "JPEG")
    return found


def parse_index(name: str) -> int | None:
    """Frame index from a file name: the number at the end of the stem.

    ``image_train_000009.png``, ``frame_0009.png`` and ``0009.jpg`` all give 9; a name
    without a trailing number gives None.
    """
    m = _TRAILING_NUMBER.search(Path(name).stem)
    return int(m.group(1)) if m else None


def index_files(paths: list[Path]) -> list[tuple[int, Path]]:
    """Assign a frame index to every file, sorted by index.

    Indices come from the file names (:func:`parse_index`); when some name has no trailing
    number, the files are numbered 0, 1, ... in name order instead. Two files with the same
    index are an error.
    """
    parsed = [parse_index(p.name) for p in paths]
    if any(i is None for i in parsed):
        from sparsevid.log import warn

        odd = [p.name for p, i in zip(paths, parsed) if i is None]
        warn(f"{len(odd)} of {len(paths)} file names have no frame number at the end (e.g. {odd[0]!r}): "
             f"numbering the frames 0..{len(paths) - 1} in name order (--keyframes refers to these numbers; "
             "name the files like frame_0009.png to keep the video's frame numbers)")
        pairs = list(enumerate(sorted(paths, key=lambda p: p.name)))
    else:
        pairs = list(zip(parsed, paths))
    seen: dict[int, Path] = {}
    for idx, p in pairs:
        if idx in seen:
            raise SparsevidError(
                f"duplicate frame index {idx}: {seen[idx].name} and {p.name}",
                fix="keep one file per frame index (the number at the end of the file name)",
                path=p.parent)
        seen[idx] = p
    return sorted(pairs, key=lambda t: t[0])


_PNG_SIGNATURE = bytes((0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A))
#: the IEND chunk every complete PNG file ends with (length 0, type, CRC)
_PNG_END = bytes((0, 0, 0, 0)) + b"IEND" + bytes((0xAE, 0x42, 0x60, 0x82))


def png_truncated(data: np.ndarray) -> bool:
    """Whether the file bytes ``data`` (uint8) are a PNG cut short: its signature without the closing
    IEND chunk (within the last 64 bytes: some writers append a little after it)."""
    head = data[:8].tobytes()
    return head == _PNG_SIGNATURE and _PNG_END not in data[-64:].tobytes()


def read_image(path: Path) -> np.ndarray:
    """Read an image file as [H, W, 3] uint8 RGB (alpha dropped, 16-bit scaled to 8-bit)."""
    path = Path(path)
    if not path.is_file():
        raise SparsevidError("image file not found", fix="check the path or restore the file", path=path)
    data = np.fromfile(path, dtype=np.uint8)
    if png_truncated(data):  # checked here: libpng would print a line of its own on stderr before failing
        raise SparsevidError("cannot decode image (a PNG file cut short: it has no end chunk)",
                             fix="replace or delete this file", path=path)
    if not data.size:
        raise SparsevidError("cannot decode image (the file is empty, 0 bytes)", fix="replace or delete this file",
                             path=path)
    img = _decode_quietly(data, cv2.IMREAD_COLOR)
    if img is None:  # float samples (a TIFF): read as they are (grey, RGB or RGBA), then made 8-bit colour
        img = _float_to_8bit(_as_bgr(_decode_quietly(data, cv2.IMREAD_UNCHANGED)), path)
    if img is None or img.ndim != 3 or img.shape[0] == 0 or img.shape[1] == 0:
        raise SparsevidError("cannot decode image (corrupt or not an image)",
                             fix="replace or delete this file", path=path)
    return np.ascontiguousarray(img[:, :, ::-1])


def _decode_quietly(data: np.ndarray, flags: int) -> np.ndarray | None:
    """``cv2.imdecode`` without OpenCV's own warning lines on stderr (the caller says what is wrong)."""
    log = cv2.utils.logging
    level = log.getLogLevel()
    log.setLogLevel(log.LOG_LEVEL_SILENT)  # a decoder's failed assertion is an ERROR line too
    try:
        return cv2.imdecode(data, flags)
    finally:
        log.setLogLevel(level)


def _as_bgr(img: np.ndarray | None) -> np.ndarray | None:
    """An image as OpenCV decodes it unchanged ([H, W], [H, W, 1], [H, W, 3] or [H, W, 4]) as [H, W, 3] BGR."""
    if img is None:
        return None
    if img.ndim == 2 or img.shape[2] == 1:
        return np.repeat(img.reshape(img.shape[0], img.shape[1], 1), 3, axis=2)
    return img[:, :, :3] if img.shape[2] == 4 else img


def _float_to_8bit(img: np.ndarray | None, path: Path) -> np.ndarray | None:
    """A float image (0 = black, 1 = white, as display values) as uint8; other images unchanged."""
    if img is None or img.dtype.kind != "f":
        return img
    if not np.isfinite(img).all() or img.min() < -1e-3 or img.max() > 1.0 + 1e-3:
        raise SparsevidError(f"a float image with values from {np.nanmin(img):.3g} to {np.nanmax(img):.3g} (HDR or "
                             "linear light?): only 0-1 display values are read", path=path,
                             fix="convert the frames to 8- or 16-bit images first")
    return np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)


def write_image(path: Path, image: np.ndarray) -> Path:
    """Write [H, W, 3] uint8 RGB to ``path`` atomically; the format follows the extension."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected [H, W, 3] uint8, got {image.shape} {image.dtype}")
    bgr = np.ascontiguousarray(image[:, :, ::-1])

    def _write(tmp: Path) -> None:
        # encoded here and written by Python: OpenCV's own file writing crashes on a name that is not UTF-8
        ext = {".jfif": ".jpg"}.get(tmp.suffix.lower(), tmp.suffix or ".png")  # OpenCV knows JFIF as .jpg
        try:
            ok, data = cv2.imencode(ext, bgr)
        except cv2.error:
            ok = False
        if not ok:
            raise SparsevidError("cannot write image", fix="check the extension (png, jpg, ...)", path=path)
        with open(tmp, "wb") as f:
            f.write(data.tobytes())

    return atomic_save(path, _write)


def check_same_size(frames: list[Frame], where: Path) -> None:
    """All frames must have the size of the first one."""
    if not frames:
        return
    w, h = frames[0].width, frames[0].height
    for f in frames[1:]:
        if (f.width, f.height) != (w, h):
            raise SparsevidError(
                f"images have different sizes: {frames[0].name} is {w}x{h}, {f.name} is {f.width}x{f.height}",
                fix="use frames of one video (resize them to one size)", path=where)


def read_fps_meta(*folders: Path) -> Fraction | None:
    """The ``fps`` of the first ``frames_meta.json`` found in ``folders`` as an exact rate (see
    :func:`~sparsevid.data.timebase.fps_fraction`: 29.97 -> 30000/1001), or None."""
    for folder in folders:
        meta = Path(folder) / FRAMES_META
        if not meta.is_file():
            continue
        try:
            fps = json.loads(meta.read_text())["fps"]
        except (ValueError, KeyError, TypeError) as e:
            raise SparsevidError(f"cannot read 'fps' ({type(e).__name__}: {e})",
                                 fix='write it as {"fps": 30.0} or delete the file', path=meta) from None
        return fps_value(fps, meta, 'write it as {"fps": 30.0} or delete the file')
    return None


def fps_value(fps: object, path: Path, fix: str) -> Fraction:
    """The ``fps`` value of the JSON file ``path`` (a number, or a ratio like ``"30000/1001"``) as an exact rate,
    checked as ``--fps`` is (:func:`~sparsevid.data.timebase.parse_fps`); a one-line error naming the file and
    ``fix`` otherwise."""
    if isinstance(fps, bool) or not isinstance(fps, (int, float, str)):
        raise SparsevidError(f"'fps' must be a number or a ratio like \"30000/1001\", got {fps!r}", fix=fix,
                             path=path)
    try:
        return parse_fps(fps, "'fps'")
    except SparsevidError as e:
        raise SparsevidError(e.message, fix=fix, path=path) from None


def read_images_folder(folder: Path) -> Scene:
    """A folder of images without poses -> :class:`Scene` with every image as an input frame.

    The frame index of each image comes from its file name (see :func:`index_files`).
    """
    folder = Path(folder)
    files = list_image_files(folder, say_unread=True)
    if not files:
        raise SparsevidError("no images found (looked for " + ", ".join(IMAGE_EXTS) + ")",
                             fix="pass a folder of frames, a video, a COLMAP dataset or a transforms.json",
                             path=folder)
    frames = [Frame(index=i, image=read_image(p), name=p.name, path=p) for i, p in index_files(files)]
    check_same_size(frames, folder)
    fps = read_fps_meta(folder)
    return Scene(frames=frames, camera=None, fps=fps if fps is not None else Fraction(30), source="images",
                 root=folder)

"""Exact frame rates as fractions (29.97 fps is 30000/1001, not 2997/100)."""
from __future__ import annotations

from fractions import Fraction

from sparsevid.errors import SparsevidError


def fps_fraction(fps: float | int | str | Fraction) -> Fraction:
    """The exact rational frame rate for ``fps``.

    NTSC-style rates given as decimals (23.976, 29.97, 47.952, 59.94, 119.88 -- any
    ``n * 1000 / 1001`` within 0.005) become ``n * 1000 / 1001``; other rates are made rational with
    a denominator of at most 1001. A :class:`Fraction` or a ``"30000/1001"`` string is kept exactly.
    """
    if isinstance(fps, str):
        try:
            fps = Fraction(fps) if "/" in fps else float(fps)
        except (ValueError, ZeroDivisionError):
            raise SparsevidError(f"frame rate must be a positive number or a fraction like 30000/1001, got {fps!r}",
                                 fix="give e.g. 30, 29.97 or 30000/1001") from None
    if isinstance(fps, Fraction):
        out = fps
    else:
        f = float(fps)
        if not f > 0 or f != f or f == float("inf"):
            raise SparsevidError(f"frame rate must be a positive number, got {fps!r}")
        if abs(f - round(f)) < 1e-9:
            out = Fraction(round(f))
        else:
            n = round(f * 1.001)
            ntsc = Fraction(n * 1000, 1001)
            out = ntsc if abs(f - float(ntsc)) < 0.005 else Fraction(f).limit_denominator(1001)
    if out <= 0:
        raise SparsevidError(f"frame rate must be positive, got {fps!r}")
    return out


#: the frame rates a user may give (``--fps``, ``--out-fps``, ``frames_meta.json``): a frame per 100 s to 10000 a
#: second; beyond that a rate is a typo (1e300 made the whole run, then failed in the video encoder)
MIN_FPS, MAX_FPS = Fraction(1, 100), Fraction(10000)


def parse_fps(value: float | int | str | Fraction, flag: str = "--fps") -> Fraction:
    """A frame rate a user gave -- a number (``29.97``) or an exact ratio (``"30000/1001"``) -- as
    :func:`fps_fraction` makes it exact; a one-line error naming ``flag`` for anything else (not a number,
    not positive, outside :data:`MIN_FPS`..:data:`MAX_FPS`)."""
    try:
        out: Fraction | None = fps_fraction(value.strip() if isinstance(value, str) else value)
    except (ValueError, TypeError, ZeroDivisionError, OverflowError, SparsevidError):
        out = None
    if out is None or not MIN_FPS <= out <= MAX_FPS:
        raise SparsevidError(f"{flag} must be a frame rate from {float(MIN_FPS):g} to {float(MAX_FPS):g} fps, "
                             f"got {value}", fix=f"pass e.g. {flag} 29.97 (or 30000/1001)")
    return out

"""HDR video (HLG or PQ, as phones record it by default) turned into the SDR frames the pipeline works on.

A phone's HDR clip is 10-bit BT.2020 with the HLG (ARIB STD-B67) or PQ (SMPTE ST 2084) transfer. Read as 8-bit RGB
as it is, its colours look pale and flat (BT.2020 primaries shown as BT.709 ones, HDR code values shown as SDR
ones), and so would the output video. The conversion follows ITU-R BT.2408's HDR -> SDR mapping, with the transfer
functions and primaries of `colour-science`:
- the HDR grade's display light: HLG through its EOTF at a 1000 cd/m2 nominal peak (BT.2100), PQ as it is (absolute);
- HDR reference white, 203 cd/m2 (HLG's 75 % signal), becomes SDR's 100 %;
- BT.2020 -> BT.709 primaries;
- the luminance above ``KNEE`` (80 % of reference white) rolls off smoothly towards SDR's peak instead of
  being cut (sky, lamps);
- BT.1886 encoding (gamma 2.4), 8 bits.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

#: FFmpeg's AVColorTransferCharacteristic values of the two HDR transfers
TRANSFERS = {16: "PQ", 18: "HLG"}
#: HDR reference white, cd/m2 (ITU-R BT.2408): SDR's 100 %
REFERENCE_WHITE = 203.0
#: HLG's nominal peak display luminance for its EOTF, cd/m2 (BT.2100)
HLG_PEAK = 1000.0
#: relative luminance (1 = reference white) above which highlights are compressed into SDR's range
KNEE = 0.8


def hdr_transfer(vf) -> str | None:
    """The HDR transfer ("HLG" or "PQ") of a decoded PyAV frame, or None for SDR."""
    return TRANSFERS.get(int(vf.color_trc))


def rolloff(y: np.ndarray, knee: float = KNEE) -> np.ndarray:
    """Relative luminance (1 = reference white, any >= 0) -> [0, 1): itself up to ``knee``, then an exponential
    shoulder with the same slope at the knee, approaching 1."""
    head = 1.0 - knee
    return np.where(y <= knee, y, knee + head * (1.0 - np.exp(-(y - knee) / head)))


@lru_cache(maxsize=None)
def _code_table(transfer: str) -> np.ndarray:
    """Per-channel part of the transfer for every 16-bit code value [65536] float32: PQ's EOTF (cd/m2); HLG's inverse
    OETF (scene light, 0..1; its OOTF mixes the channels, so it is applied after the table)."""
    from colour.models import eotf_ST2084, oetf_inverse_BT2100_HLG

    codes = np.arange(65536, dtype=np.float64) / 65535.0
    with np.errstate(invalid="ignore", divide="ignore"):  # colour evaluates both branches of HLG's curve (and 0 ** -x)
        table = eotf_ST2084(codes) if transfer == "PQ" else oetf_inverse_BT2100_HLG(codes)
    return table.astype(np.float32)


def hdr_to_sdr(codes: np.ndarray, transfer: str) -> np.ndarray:
    """HDR code values -> SDR.

    Args:
        codes: [..., 3] uint16 BT.2020 R'G'B' code values (0..65535; HLG or PQ encoded).
        transfer: "HLG" or "PQ".

    Returns:
        [..., 3] float32 BT.709 R'G'B' in [0, 1], BT.1886 (gamma 2.4) encoded.
    """
    import colour
    from colour.models import ootf_BT2100_HLG

    if transfer not in TRANSFERS.values():
        raise ValueError(f"unknown HDR transfer {transfer!r}")
    light = _code_table(transfer)[codes]
    if transfer == "HLG":
        with np.errstate(invalid="ignore", divide="ignore"):  # black pixels: colour takes 0 ** -x, then discards it
            light = ootf_BT2100_HLG(light, L_B=0, L_W=HLG_PEAK).astype(np.float32)
    to709 = colour.matrix_RGB_to_RGB("ITU-R BT.2020", "ITU-R BT.709").astype(np.float32)
    rel = np.maximum((light / np.float32(REFERENCE_WHITE)) @ to709.T, 0.0)  # BT.2020 colours outside BT.709
    y = rel @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    scale = np.where(y > KNEE, rolloff(y) / np.maximum(y, 1e-12), 1.0).astype(np.float32)
    return np.clip(rel * scale[..., None], 0.0, 1.0) ** np.float32(1 / 2.4)  # BT.1886's inverse with a black of 0


def sdr_to_hdr(img: np.ndarray, transfer: str) -> np.ndarray:
    """The inverse of :func:`hdr_to_sdr` below the shoulder: an SDR picture graded as an HDR clip's code values, as a
    phone would record the scene (to build test clips; SDR values above ``KNEE ** (1 / 2.4)``, 91 %, come back
    compressed).

    Args:
        img: [..., 3] uint8 BT.709 RGB (BT.1886 encoded).
        transfer: "HLG" or "PQ".

    Returns:
        [..., 3] uint16 BT.2020 R'G'B' code values.
    """
    import colour
    from colour.models import eotf_inverse_BT2100_HLG, eotf_inverse_ST2084

    light = (img.astype(np.float64) / 255.0) ** 2.4 @ colour.matrix_RGB_to_RGB("ITU-R BT.709", "ITU-R BT.2020").T
    nits = np.maximum(light, 0.0) * REFERENCE_WHITE
    with np.errstate(invalid="ignore", divide="ignore"):  # colour evaluates both branches of HLG's curve
        code = eotf_inverse_BT2100_HLG(nits, L_B=0, L_W=HLG_PEAK) if transfer == "HLG" else eotf_inverse_ST2084(nits)
    return np.clip(code * 65535.0 + 0.5, 0, 65535).astype(np.uint16)


def frame_to_sdr(vf) -> np.ndarray:
    """A decoded PyAV frame with an HDR transfer -> [H, W, 3] uint8 BT.709 RGB (see the module doc). The YUV -> RGB
    matrix and range are the frame's own (BT.2020), at 16 bits."""
    sdr = hdr_to_sdr(vf.to_ndarray(format="rgb48le"), hdr_transfer(vf))
    return np.clip(sdr * 255.0 + 0.5, 0, 255).astype(np.uint8)

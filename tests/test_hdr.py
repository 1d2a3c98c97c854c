"""HDR (HLG, PQ) video inputs are tone-mapped to SDR BT.709 (sparsevid.data.hdr)."""
from __future__ import annotations

import numpy as np
import pytest

from sparsevid.data.hdr import KNEE, REFERENCE_WHITE, hdr_to_sdr, rolloff, sdr_to_hdr

colour = pytest.importorskip("colour")
from colour.models import eotf_inverse_ST2084  # noqa: E402


def test_reference_white_is_near_sdr_white_and_grey_stays_grey():
    u16 = lambda v: np.full(3, round(float(v) * 65535), np.uint16)  # noqa: E731
    hlg_white = u16(0.75)  # HLG's reference white signal (BT.2408)
    pq_white = u16(eotf_inverse_ST2084(REFERENCE_WHITE))
    gamma_white = rolloff(np.array(1.0)) ** (1 / 2.4)  # what the shoulder leaves of 100 %
    for code, transfer in ((hlg_white, "HLG"), (pq_white, "PQ")):
        sdr = hdr_to_sdr(code, transfer)
        assert np.allclose(sdr, gamma_white, atol=0.005) and 0.95 < sdr[0] < 1.0
        assert np.allclose(hdr_to_sdr(np.zeros(3, np.uint16), transfer), 0.0, atol=1e-6)
        ramp = hdr_to_sdr(np.linspace(0, 65535, 50).astype(np.uint16)[:, None].repeat(3, 1), transfer)
        assert np.all(np.diff(ramp[:, 1]) >= -1e-6) and ramp.max() <= 1.0  # monotonic (to float32 rounding)
        assert np.allclose(ramp[:, 0], ramp[:, 2], atol=1e-9)  # grey stays grey
    assert float(rolloff(np.array(KNEE))) == pytest.approx(KNEE) and float(rolloff(np.array(3.0))) < 1.0
    sdr = _sdr_picture()  # grading and mapping back are inverse below the shoulder
    for transfer in ("HLG", "PQ"):
        back = hdr_to_sdr(sdr_to_hdr(sdr, transfer), transfer) * 255
        assert np.abs(back - sdr).max() < 0.6


def _sdr_picture(h: int = 64, w: int = 96) -> np.ndarray:
    """Colour bars and a ramp, all below the shoulder (so the round trip can be exact)."""
    img = np.zeros((h, w, 3), np.uint8)
    bars = np.array([[200, 40, 40], [40, 180, 60], [50, 70, 200], [210, 200, 60], [120, 120, 120], [30, 30, 30]])
    for i, c in enumerate(bars):
        img[: h // 2, i * w // 6:(i + 1) * w // 6] = c
    img[h // 2:] = np.linspace(10, 215, w)[None, :, None].astype(np.uint8)
    return img


@pytest.mark.parametrize("transfer", ["HLG", "PQ"])
def test_a_phone_hdr_clip_is_read_as_the_sdr_picture_it_grades(tmp_path, transfer, capsys, write_clip):
    import av

    from sparsevid.data.video import read_video

    sdr = _sdr_picture()
    write_clip([sdr] * 3, tmp_path / "hdr.mp4", transfer.lower())  # graded with sdr_to_hdr, 10-bit, tagged
    with av.open(str(tmp_path / "hdr.mp4")) as c:
        naive = next(c.decode(video=0)).to_ndarray(format="rgb24")  # the code values shown as SDR
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy noise on the user's terminal
        read = read_video(tmp_path / "hdr.mp4").frames[0].image
    err = lambda img: float(np.abs(img[2:-2, 2:-2].astype(int) - sdr[2:-2, 2:-2]).mean())  # noqa: E731
    assert err(read) < 4.0, err(read)
    assert err(naive) > 4 * err(read) + 8, (err(naive), err(read))  # pale and flat without the mapping
    # the saturated bars keep their saturation (the naive read pulls them towards grey)
    red_read, red_naive = read[8, 8].astype(int), naive[8, 8].astype(int)
    assert red_read[0] - red_read[1] > 140 and red_naive[0] - red_naive[1] < red_read[0] - red_read[1] - 30
    assert f"HDR video ({transfer}" in capsys.readouterr().err

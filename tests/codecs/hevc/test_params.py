"""Parameter sets and levels (checked against the spec's tables and by FFmpeg parsing our
VPS/SPS/PPS)."""

from __future__ import annotations

import io
from fractions import Fraction

import av
import numpy as np
import pytest

from codeclab.codecs.hevc.params import StreamParams, pick_level


def test_level_choice_follows_table_a8():
    assert pick_level(416, 240, Fraction(30)) == 60          # level 2
    assert pick_level(416, 240, Fraction(60)) == 63          # 2.1 by sample rate
    assert pick_level(1920, 1080, Fraction(30)) == 120       # 4
    assert pick_level(1920, 1080, Fraction(60)) == 123       # 4.1
    assert pick_level(3840, 2160, Fraction(60)) == 153       # 5.1
    assert pick_level(8192, 64, Fraction(1)) == 150          # side limit sqrt(8 * MaxLumaPs): 8444 at level 5


@pytest.mark.parametrize("bd,w,h,fps", [(8, 138, 90, Fraction(30000, 1001)), (10, 64, 64, Fraction(50)),
                                         (8, 200, 120, Fraction(25))])
def test_flat_mid_grey_picture_and_headers_read_by_ffmpeg(bd, w, h, fps):
    """Every CU on a flat picture predicts DC with all cbf = 0: FFmpeg must decode flat
    mid-grey, with the conformance-window size, the VUI rate and the right profile."""
    from codeclab.codecs.hevc.encoder import PictureEncoder

    mid = 1 << (bd - 1)
    dt = np.uint8 if bd == 8 else np.uint16
    planes = [np.full((h, w), mid, dt), np.full((h // 2, w // 2), mid, dt), np.full((h // 2, w // 2), mid, dt)]
    p = StreamParams(w, h, bd, 5, 1, 32, fps, True, False, True, False)
    pic = PictureEncoder(p).encode(planes)
    with av.open(io.BytesIO(pic.data * 3), format="hevc") as c:
        s = c.streams.video[0]
        frames = list(c.decode(video=0))
        assert s.codec_context.profile == ("Main" if bd == 8 else "Main 10")
        assert s.codec_context.framerate == fps and s.base_rate == fps  # from the VUI timing
    assert len(frames) == 3
    f = frames[0]
    assert (f.width, f.height) == (w, h)
    assert f.format.name == ("yuv420p" if bd == 8 else "yuv420p10le")
    for pl in f.planes:
        a = np.from_dlpack(pl)
        assert a.min() == a.max() == mid

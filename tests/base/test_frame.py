"""Frame/VideoFormat and the codec registry: the contracts every layer relies on."""

from fractions import Fraction

import numpy as np
import pytest

from codeclab.base.errors import FormatError
from codeclab.base.frame import Frame, VideoFormat


@pytest.mark.parametrize(
    "pix_fmt, chroma, depth, shapes",
    [
        ("yuv420p", "420", 8, ((6, 8), (3, 4), (3, 4))),
        ("yuv420p10le", "420", 10, ((6, 8), (3, 4), (3, 4))),
        ("yuv422p", "422", 8, ((6, 8), (6, 4), (6, 4))),
        ("yuv444p12le", "444", 12, ((6, 8), (6, 8), (6, 8))),
        ("gray10le", "400", 10, ((6, 8),)),
    ],
)
def test_format_from_pix_fmt(pix_fmt, chroma, depth, shapes):
    fmt = VideoFormat.from_pix_fmt(pix_fmt, 8, 6, fps=Fraction(50))
    assert (fmt.chroma, fmt.bit_depth, fmt.plane_shapes, fmt.pix_fmt) == (chroma, depth, shapes, pix_fmt)
    assert fmt.frame_bytes == sum(h * w for h, w in shapes) * (1 if depth == 8 else 2)


def test_format_rejects_bad_values():
    with pytest.raises(FormatError, match="unsupported pixel format"):
        VideoFormat.from_pix_fmt("rgb24", 8, 8)
    with pytest.raises(FormatError, match="odd dimension"):
        VideoFormat(7, 8, "420")
    with pytest.raises(FormatError):
        VideoFormat(8, 8, "420", bit_depth=17)


def test_frame_validates_planes():
    fmt = VideoFormat(8, 6, "420", 10)
    f = Frame.blank(fmt)
    assert f.y.dtype == np.uint16 and int(f.y[0, 0]) == 512
    with pytest.raises(FormatError, match="dtype"):
        Frame(tuple(p.astype(np.uint8) for p in f.planes), fmt)
    with pytest.raises(FormatError, match="shape"):
        Frame((f.planes[0], f.planes[0], f.planes[0]), fmt)

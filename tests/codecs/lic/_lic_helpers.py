"""Helpers shared by the lic tests (imported by name: tests/ has no packages)."""

from __future__ import annotations

import numpy as np

from codeclab.base.frame import Frame, VideoFormat

SMALL = dict(n=16, m=32, nz=16, ch=32, hidden=32, lambdas=[0.0035, 0.013, 0.0483])



def textured_frame(width: int, height: int, bit_depth: int = 8, seed: int = 0) -> Frame:
    """A smooth gradient plus noise: something with structure, in the legal range."""
    fmt = VideoFormat(width, height, "420", bit_depth)
    rng = np.random.default_rng(seed)
    top = fmt.max_value
    planes = []
    for h, w in fmt.plane_shapes:
        yy, xx = np.mgrid[0:h, 0:w]
        base = 0.25 + 0.5 * (np.sin(xx / 7.0) * np.cos(yy / 5.0) * 0.5 + 0.5)
        v = base * top + rng.normal(0, top * 0.03, (h, w))
        planes.append(np.clip(np.rint(v), 0, top).astype(fmt.dtype))
    return Frame(tuple(planes), fmt)

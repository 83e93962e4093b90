"""Synthetic frames for tests (plain functions; ``conftest.py`` wraps them as fixtures).

A module of its own, not ``conftest``: several test folders have a ``conftest.py``, so
``from conftest import ...`` would depend on which one pytest imported last.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from codeclab.base.frame import Frame, VideoFormat

#: the repository's root (the folder of tests/)
REPO = Path(__file__).resolve().parents[1]
#: real pictures and clips shared by the team (absent on some machines: tests skip)
MEDIA = REPO.parent / "shared" / "media"


def synth_format(pix_fmt: str = "yuv420p", width: int = 64, height: int = 48, fps: Any = 25, **kw: Any) -> VideoFormat:
    return VideoFormat.from_pix_fmt(pix_fmt, width, height, fps=Fraction(fps), **kw)


def synth_frames(pix_fmt: str = "yuv420p", n: int = 4, width: int = 64, height: int = 48, *, fps: Any = 25,
                 seed: int = 0, kind: str = "noise", **kw: Any) -> list[Frame]:
    """``n`` frames with ``Frame.index == Frame.pts == i``.

    ``kind="noise"``: uniform random samples over the full bit depth (every bit exercised;
    what bit-exact round trips want). ``kind="smooth"``: moving gradients that a lossy codec
    reproduces well.
    """
    fmt = synth_format(pix_fmt, width, height, fps, **kw)
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n):
        planes = []
        for k, (h, w) in enumerate(fmt.plane_shapes):
            if kind == "noise":
                p = rng.integers(0, fmt.max_value + 1, (h, w))
            else:
                yy, xx = np.mgrid[0:h, 0:w]
                t = (xx * (3 + k) + yy * 2 + 4 * i) / (w * 3 + h * 2 + 40)
                p = np.round((0.15 + 0.7 * t) * fmt.max_value)
            planes.append(p.astype(fmt.dtype))
        frames.append(Frame(tuple(planes), fmt, i, i))
    return frames


def same_pixels(a: Frame, b: Frame) -> bool:
    return len(a.planes) == len(b.planes) and all(np.array_equal(x, y) for x, y in zip(a.planes, b.planes))


def random_quant_batch(log2: int, nb: int, seed: int, qp: int = 27):
    """A QuantBatch of ``nb`` random n x n blocks with a transform-like decay of magnitudes."""
    from codeclab.codecs.hevc.quantizer import QuantBatch

    rng = np.random.default_rng(seed)
    n = 1 << log2
    decay = np.exp(-np.add.outer(np.arange(n), np.arange(n)) * 3.0 / n)
    c = np.round(rng.laplace(0, 200, (nb, n, n)) * decay).astype(np.int32)
    c_idx = rng.integers(0, 3, nb)
    return QuantBatch(c, log2, c_idx, rng.integers(0, 3, nb) if log2 <= 3 else 0,
                      qp, 10.0, False, 8, initial_rate_state(c_idx, qp), True)


def initial_rate_state(c_idx: np.ndarray, qp: int) -> np.ndarray:
    """(B, RATE_K) rate states of an I slice's initial contexts for blocks of components c_idx."""
    from codeclab.bitstream.cabac import init_contexts
    from codeclab.codecs.hevc.quantizer import extract_rate_state
    from codeclab.codecs.hevc.tables import INIT_VALUES_I

    full = init_contexts(INIT_VALUES_I, qp)
    per = [extract_rate_state(full, None, c, 1 if c == 0 else 0) for c in range(3)]
    return np.stack([per[int(c)] for c in np.atleast_1d(c_idx)])

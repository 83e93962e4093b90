"""Compile (and cache) the HEVC encoder's numba code ahead of its first use.

    python -m codeclab.codecs.hevc.precompile

A cold compile of the compiled search takes minutes of CPU (docs/hevc.md, "Compile time");
``./run`` runs this once after installing (and again when the sources change), so the demo,
the tests and every later process load the cache instead. It codes a small synthetic
picture with every preset and both compiled quantizers at 8 and 10 bit, then a P picture
predicted from it (low-delay P, two references), which reaches every compiled function of
the search, the slice writer and the in-loop filters.
"""

from __future__ import annotations

import time
from fractions import Fraction

import numpy as np

__all__ = ["precompile"]


def precompile() -> float:
    """Code the warm-up pictures; the CPU seconds it took."""
    from codeclab.codecs.hevc.encoder import PictureEncoder
    from codeclab.codecs.hevc.params import SliceInfo, StreamParams
    from codeclab.codecs.hevc.quantizer import EncoderQuantizer
    from codeclab.codecs.hevc.search import PRESETS

    t0 = time.process_time()
    rng = np.random.default_rng(1)
    y = np.cumsum(rng.integers(-3, 4, (72, 96)), axis=1) % 256
    planes = [y, y[::2, ::2] // 2 + 64, y[1::2, 1::2] // 2 + 32]
    for bd in (8, 10):
        pl = [p * (1 << (bd - 8)) for p in planes]
        for preset in PRESETS:
            for quant in ("sq", "rdoq"):
                sp = StreamParams(96, 72, bd, 6, 2, 30, Fraction(25), True, True, True, True, max_refs=2)
                enc = PictureEncoder(sp, EncoderQuantizer(quant, 30), preset)
                first = enc.encode(pl).decoded
                moved = [np.roll(p, 3, axis=1) for p in pl]
                dpb = {0: first, -1: first._replace(poc=-1)}
                enc.encode(moved, SliceInfo("P", 1, 32, idr=False, refs=(-1, -2)), dpb)
                dpb = {0: first, 2: first._replace(poc=2)}
                enc.encode(moved, SliceInfo("B", 1, 33, idr=False, refs=(-1, 1), num_ref=(2, 2)), dpb)
    return time.process_time() - t0


if __name__ == "__main__":
    print(f"hevc: numba code compiled and cached ({precompile():.0f} s of CPU)")

"""Sample conversions every layer shares: R'G'B' -> Y'CbCr, bit depth, colour-matrix names.

One implementation of each, so that a source reading PNG, the learned codec's trainer and
the codecs' internal bit-depth changes all compute the same numbers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from codeclab.base.errors import UsageError

__all__ = ["KR_KB", "MATRICES", "parse_matrix", "rgb_to_yuv", "convert_depth"]

#: (Kr, Kb) of each matrix (ITU-R BT.709, BT.601, BT.2020 non-constant luminance)
KR_KB = {"bt709": (0.2126, 0.0722), "bt601": (0.299, 0.114), "bt2020nc": (0.2627, 0.0593)}

#: accepted spellings -> our matrix name
MATRICES = {"bt709": "bt709", "709": "bt709", "bt601": "bt601", "601": "bt601", "smpte170m": "bt601",
            "bt470bg": "bt601", "bt2020nc": "bt2020nc", "bt2020": "bt2020nc", "2020": "bt2020nc"}


def parse_matrix(matrix: str | None, where: Path | str = "") -> tuple[str, str] | tuple[None, None]:
    """``"bt709"``, ``"bt601:full"`` ... -> (matrix, range); ``None`` -> (None, None)."""
    if matrix is None:
        return None, None
    name, _, rng = matrix.lower().replace("/", ":").partition(":")
    rng = {"": "limited", "limited": "limited", "tv": "limited", "mpeg": "limited",
           "full": "full", "pc": "full", "jpeg": "full"}.get(rng, "?")
    if name not in MATRICES or rng == "?":
        raise UsageError(f"{where}: unknown colour matrix {matrix!r} "
                         "(want bt709, bt601 or bt2020nc, optionally followed by :limited or :full)")
    return MATRICES[name], rng


def rgb_to_yuv(r: np.ndarray, g: np.ndarray, b: np.ndarray, depth: int, matrix: str = "bt709",
               range: str = "limited", chroma: str = "444") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """R'G'B' samples of ``depth`` bits -> Y'CbCr planes of ``depth`` bits.

    Y = Kr R + Kg G + Kb B, Cb = (B - Y) / (2 - 2 Kb), Cr = (R - Y) / (2 - 2 Kr) on
    normalised values; limited range scales to 219/224 steps above 16/128 (times
    2^(depth-8)), full range to 2^depth - 1 with chroma centred on 2^(depth-1).
    ``chroma="420"`` crops odd sizes to even and averages Cb/Cr over 2x2 before rounding
    (the learned codec's training input); the default keeps 4:4:4.
    """
    if chroma not in ("444", "420"):
        raise UsageError(f"rgb_to_yuv: chroma {chroma!r} is not 444 or 420")
    if chroma == "420":
        h, w = r.shape[0] & ~1, r.shape[1] & ~1
        r, g, b = r[:h, :w], g[:h, :w], b[:h, :w]
    kr, kb = KR_KB[matrix]
    peak = (1 << depth) - 1
    x = np.stack([r, g, b]).astype(np.float64) / peak
    y = kr * x[0] + (1 - kr - kb) * x[1] + kb * x[2]
    cb = (x[2] - y) / (2 - 2 * kb)
    cr = (x[0] - y) / (2 - 2 * kr)
    if chroma == "420":
        h, w = y.shape
        cb = cb.reshape(h // 2, 2, w // 2, 2).mean((1, 3))
        cr = cr.reshape(h // 2, 2, w // 2, 2).mean((1, 3))
    scale = 1 << (depth - 8)
    if range == "full":
        ys, yo, cs = peak, 0.0, peak
    else:
        ys, yo, cs = 219 * scale, 16 * scale, 224 * scale
    dtype = np.uint8 if depth == 8 else np.uint16
    half = 1 << (depth - 1)
    return tuple(np.clip(np.rint(v), 0, peak).astype(dtype)  # type: ignore[return-value]
                 for v in (yo + ys * y, half + cs * cb, half + cs * cr))


def convert_depth(planes: tuple[np.ndarray, ...], src: int, dst: int) -> tuple[np.ndarray, ...]:
    """Exact left shift up, round-half-up right shift down (HM's bit-depth conversion)."""
    if src == dst:
        return planes
    dtype = np.uint8 if dst == 8 else np.uint16
    if dst > src:
        return tuple((p.astype(np.uint16) << (dst - src)).astype(dtype) for p in planes)
    s = src - dst
    top = (1 << dst) - 1
    return tuple(np.minimum((p.astype(np.uint32) + (1 << (s - 1))) >> s, top).astype(dtype) for p in planes)

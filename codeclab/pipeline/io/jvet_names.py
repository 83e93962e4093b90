"""Geometry of raw ``.yuv`` files from their JVET/MPEG-style names.

Raw files carry no header, so the test-sequence community writes the geometry into the
name: ``BasketballPass_416x240_50.yuv``, ``MarketPlace_1920x1080_60fps_10bit_420.yuv``,
``Name_416x240_50Hz_8bit_P420.yuv``. The rule used here, token by token (``_``-separated,
extension removed):

- exactly one ``WxH`` token (required; the sequence name is what comes before it);
- the token right after it, if it is a number with an optional ``fps``/``Hz``/``p``
  suffix, is the frame rate (29.97, 59.94, 23.976 and 119.88 mean the NTSC ``N*1000/1001``
  rates);
- anywhere after the size: ``8bit``/``10bit``/``10b`` give the bit depth, ``420``/``P420``/
  ``yuv420``/``444``/``400``... the chroma format, and an FFmpeg name such as
  ``yuv420p10le`` gives both;
- other tokens (``crop``, ``jvet``, ``bt709``, ``videoRange``...) are ignored.

A name that breaks the rule (no size, two sizes, two different bit depths or chroma
formats) parses to ``None`` rather than to a guess: a wrong guess at raw geometry silently
produces garbage pictures.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import PurePath

from codeclab.base.frame import PIX_FMTS

__all__ = ["JvetName", "parse_jvet_name"]

_SIZE = re.compile(r"^(\d+)[xX](\d+)$")
_FPS = re.compile(r"^(\d+(?:\.\d+)?)(?:fps|hz|p)?$", re.IGNORECASE)
_DEPTH = re.compile(r"^(\d+)b(?:its?)?$", re.IGNORECASE)
_CHROMA = re.compile(r"^(?:p|yuv)?(420|422|444|400)p?$", re.IGNORECASE)
_NTSC = {"23.976": Fraction(24000, 1001), "29.97": Fraction(30000, 1001),
         "59.94": Fraction(60000, 1001), "119.88": Fraction(120000, 1001)}
#: the 1000/1001 rates that names and command lines write rounded
NTSC_RATES = tuple(_NTSC.values())
_PIX_FMT_TOKENS = {name: key for key, name in PIX_FMTS.items()}


@dataclass(frozen=True)
class JvetName:
    """What a raw file's name says; ``None`` where the name is silent."""

    name: str
    width: int
    height: int
    fps: Fraction | None = None
    bit_depth: int | None = None
    chroma: str | None = None

    @property
    def size(self) -> tuple[int, int]:
        return (self.width, self.height)


def _fps(token: str) -> Fraction | None:
    m = _FPS.match(token)
    if not m:
        return None
    value = m.group(1)
    fps = _NTSC.get(value) or Fraction(value)
    return fps if fps > 0 else None


def parse_jvet_name(name: str | PurePath) -> JvetName | None:
    """Parse a file name (or path) per the rule in the module docstring; ``None`` if it does not fit."""
    stem = PurePath(name).name
    if "." in stem:
        stem = stem.rsplit(".", 1)[0]
    tokens = stem.split("_")
    sizes = [i for i, t in enumerate(tokens) if _SIZE.match(t)]
    if len(sizes) != 1:
        return None
    at = sizes[0]
    m = _SIZE.match(tokens[at])
    assert m is not None
    width, height = int(m.group(1)), int(m.group(2))
    if width <= 0 or height <= 0:
        return None
    rest = tokens[at + 1:]
    fps = _fps(rest[0]) if rest else None
    if fps is not None:
        rest = rest[1:]
    depths: set[int] = set()
    chromas: set[str] = set()
    for t in rest:
        if (d := _DEPTH.match(t)) is not None:
            depths.add(int(d.group(1)))
        elif (c := _CHROMA.match(t)) is not None:
            chromas.add(c.group(1))
        elif t.lower() in _PIX_FMT_TOKENS:
            chroma, depth = _PIX_FMT_TOKENS[t.lower()]
            chromas.add(chroma)
            depths.add(depth)
        elif _fps(t) is not None and not t.isdigit():
            return None  # a second frame rate ("50fps") somewhere else: ambiguous
    if len(depths) > 1 or len(chromas) > 1:
        return None
    depth = depths.pop() if depths else None
    if depth is not None and not 8 <= depth <= 16:
        return None
    return JvetName("_".join(tokens[:at]), width, height, fps, depth, chromas.pop() if chromas else None)

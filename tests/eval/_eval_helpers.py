"""Helpers of the eval tests: tiny JVET-named raw sequences, a catalogue, configs.

A uniquely named module (not conftest) so that test files can import it by name in a
full-suite run where other conftest.py files exist.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

REPO = HERE.parents[1]  # tests/eval -> the repository
MEDIA = REPO.parent / "shared" / "media"


def write_yuv(path: Path, w: int, h: int, frames: int, depth: int = 8, seed: int = 0) -> None:
    """Smooth moving gradient plus noise, 4:2:0 planar: compressible, not trivial."""
    rng = np.random.default_rng(seed)
    dtype = np.uint8 if depth == 8 else np.uint16
    peak = (1 << depth) - 1
    out = []
    for t in range(frames):
        for ph, pw in ((h, w), (h // 2, w // 2), (h // 2, w // 2)):
            y, x = np.mgrid[0:ph, 0:pw]
            base = 0.5 + 0.35 * np.sin((x + 3 * t) / (pw / 6.0)) * np.cos(y / (ph / 4.0))
            v = base * peak + rng.normal(0, peak / 40, (ph, pw))
            out.append(np.clip(np.rint(v), 0, peak).astype(dtype).tobytes())
    path.write_bytes(b"".join(out))


CATALOGUE = """
[[sequence]]
name = "Ripple"
class = "T1"
file = "Ripple_64x64_30.yuv"
width = 64
height = 64
fps = 30
frames = 3

[[sequence]]
name = "Wave10"
class = "T2"
file = "Wave10_64x48_25fps_10bit_420.yuv"
width = 64
height = 48
fps = 25
bit_depth = 10
frames = 3

[[sequence]]
name = "Absent"
class = "T2"
file = "Absent_64x64_30.yuv"
width = 64
height = 64
fps = 30
frames = 3
"""


def experiment_toml(catalogue: Path, *, qps=(22, 27, 32, 37), sleep: float = 0.0, extra: str = "") -> str:
    return f"""
name = "tiny"
catalogue = "{catalogue}"
anchor = "fq-round"
qps = {list(qps)}
imports = ["_eval_fakecodec"]

[frames]
count = 2

[[codec]]
label = "fq-round"
name = "fakeq"
options = {{ offset = 0.5, sleep = {sleep} }}

[[codec]]
label = "fq-deadzone"
name = "fakeq"
options = {{ offset = 0.3, sleep = {sleep} }}
{extra}
"""

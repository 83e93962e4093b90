"""numba compile time of our HEVC encoder: a cold compile (empty cache) and a warm start.

    .venv/bin/python benchmarks/bench_hevc_compile.py

Each measurement is a fresh interpreter that codes one small picture with every preset and
both compiled quantizers (sq, rdoq), 8- and 10-bit, with ``NUMBA_CACHE_DIR`` pointing at a
new empty folder (cold: everything is compiled and cached) and then at the same folder
again (warm: everything loads from the cache). Printed: CPU seconds (user + system) of each
process and of the encodes alone, so the difference is numba's. This is what the first use
after installing costs (the test suite pays it once), and what every later process pays.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import json, resource, time
from fractions import Fraction
import numpy as np
from codeclab.codecs.hevc.encoder import PictureEncoder
from codeclab.codecs.hevc.params import StreamParams
from codeclab.codecs.hevc.quantizer import EncoderQuantizer
rng = np.random.default_rng(1)
y = np.cumsum(rng.integers(-3, 4, (72, 96)), axis=1) % 256
planes = [y, y[::2, ::2] // 2 + 64, y[1::2, 1::2] // 2 + 32]
enc_s = 0.0
for bd in (8, 10):
    pl = [p * (1 << (bd - 8)) for p in planes]
    for preset in ("fast", "medium", "slow"):
        for quant in ("sq", "rdoq"):
            sp = StreamParams(96, 72, bd, 6, 3, 30, Fraction(25), True, True, True, True)
            enc = PictureEncoder(sp, EncoderQuantizer(quant, 30), preset)
            enc.encode(pl)  # first call: compile or load
            t0 = time.process_time()
            enc.encode(pl)
            enc_s += time.process_time() - t0
print(json.dumps({"encode_s": enc_s}))
"""


def run(cache: str) -> dict[str, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD], env=dict(os.environ, NUMBA_CACHE_DIR=cache),
                         capture_output=True, text=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"cpu_s": cpu, "wall_s": time.perf_counter() - t0, **json.loads(out.stdout.splitlines()[-1])}


def main() -> None:
    with tempfile.TemporaryDirectory() as cache:
        cold = run(cache)
        warm = run(cache)
    for name, r in (("cold (empty cache)", cold), ("warm (cached)", warm)):
        print(f"{name:<20} CPU {r['cpu_s']:6.1f} s  wall {r['wall_s']:6.1f} s  "
              f"(of which encoding {r['encode_s']:.1f} s)")


if __name__ == "__main__":
    main()

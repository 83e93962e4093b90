"""numba compile time of our HEVC encoder: a cold compile (empty cache) and a warm start.

    .venv/bin/python benchmarks/bench_hevc_compile.py

Each measurement is a fresh interpreter that runs ``codeclab.codecs.hevc.precompile`` (one
small picture with every preset and both compiled quantizers, 8- and 10-bit) twice, with
``NUMBA_CACHE_DIR`` pointing at a new empty folder (cold: everything is compiled and cached)
and then at the same folder again (warm: everything loads from the cache). Printed: CPU
seconds (user + system) of each process and of the encodes alone (the second run of the
warm-up), so the difference is numba's. ``./run`` pays the cold compile once after
installing (and after the sources change); every later process pays the warm start.
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
import json
from codeclab.codecs.hevc.precompile import precompile
precompile()  # first calls: compile (cold) or load the cache (warm)
print(json.dumps({"encode_s": precompile()}))
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

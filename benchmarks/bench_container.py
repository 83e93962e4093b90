"""What the .clc container costs over writing/reading the same payloads as one flat file.

    .venv/bin/python benchmarks/bench_container.py [--packets 500] [--kib 64]

The anchor is measured in the same run: the payloads concatenated into a plain file
(write + fsync + rename, like the writer) and read back with ``f.read`` per packet. The
container adds a 26-byte record header, JSON metrics, a CRC-32 per packet and the index.
Timings include the page cache, so they say more about CPU overhead than about disks.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path

from codeclab.base.frame import VideoFormat
from codeclab.codecs.base import Packet
from codeclab.pipeline.clc.container import ClcReader, ClcWriter, StreamHeader


def _best(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--packets", type=int, default=500)
    ap.add_argument("--kib", type=int, default=64, help="payload size of each packet")
    a = ap.parse_args()
    rnd = random.Random(0)
    payloads = [rnd.randbytes(a.kib << 10) for _ in range(a.packets)]
    mib = a.packets * (a.kib << 10) / 2**20
    with tempfile.TemporaryDirectory() as d:
        flat, clc = Path(d) / "flat.bin", Path(d) / "c.clc"

        def write_flat() -> None:
            tmp = flat.with_suffix(".tmp")
            with open(tmp, "wb") as f:
                for p in payloads:
                    f.write(p)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, flat)

        def write_clc() -> None:
            with ClcWriter(clc, StreamHeader("bench", VideoFormat(1920, 1080))) as w:
                for i, p in enumerate(payloads):
                    w.write(Packet(p, i, i), {"bits": 8 * len(p), "psnr_y": 38.5, "encode_s": 0.1})

        def read_flat() -> None:
            with open(flat, "rb") as f:
                for _ in payloads:
                    f.read(a.kib << 10)

        def read_clc() -> None:
            with ClcReader(clc) as r:
                for _ in r:
                    pass

        order = list(range(a.packets))
        rnd.shuffle(order)

        def random_clc() -> None:
            with ClcReader(clc) as r:
                for i in order:
                    r.read_packet(i)

        rows = [("write", _best(write_flat), _best(write_clc)), ("sequential read", _best(read_flat), _best(read_clc)),
                ("random read", _best(read_flat), _best(random_clc))]
        overhead = clc.stat().st_size - flat.stat().st_size
    print(f"{a.packets} packets x {a.kib} KiB ({mib:.0f} MiB); container adds {overhead} bytes "
          f"({overhead / a.packets:.0f} per packet)")
    print(f"{'':16} {'flat MiB/s':>11} {'.clc MiB/s':>11} {'.clc/flat time':>15}")
    for name, t_flat, t_clc in rows:
        print(f"{name:16} {mib / t_flat:11.0f} {mib / t_clc:11.0f} {t_clc / t_flat:15.2f}")


if __name__ == "__main__":
    main()

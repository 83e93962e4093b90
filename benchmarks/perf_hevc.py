"""Where our HEVC encoder's CPU time goes, by compiled function, with Linux ``perf``.

    perf record -F 2000 --call-graph dwarf,64 -o hevc.data \\
        .venv/bin/python benchmarks/perf_hevc.py encode [--preset medium] [--reps 2] [--quant rdoq]
    .venv/bin/python benchmarks/perf_hevc.py report hevc.data [--top 40]

``encode`` codes 832x480 centre windows of four training pictures (``../shared/media/train``:
Aqua, TwoWings, Wood, Float-into-MATE; never the validation pictures) at QP 32 with HM's
all-intra tools and ``--quant rdoq`` (or ``--quant Q``; ``--names A B ..``: other training
pictures, e.g. the textured Elephants OneStandsOut BytheWater SafeLanding), after one
warm-up encode, and writes
``/tmp/perf-<pid>.map``: the address and size of every function numba has loaded (perf
reads the map to name samples in JIT code, which it otherwise shows as bare addresses).
It prints the encode seconds per picture (wall clock: on a busy machine more than its CPU;
with its split into the decisions, the in-loop filters and the final CABAC pass) and the
bits of each picture, so it also times one commit against another (without perf;
each checkout compiles its own numba cache; on shared cores alternate the runs and compare
their spreads, and the mean of each picture's fastest rep, which other processes on the
machine inflate least):

    git worktree add /tmp/ab COMMIT
    PYTHONPATH=/tmp/ab .venv/bin/python benchmarks/perf_hevc.py encode --preset medium
    .venv/bin/python benchmarks/perf_hevc.py encode --preset medium

``report`` prints the share of samples per function (self time, numba's mangled names cut
to ``module.function``) and, for samples in numba's reference counting (``NRT_incref`` /
``NRT_decref``, atomic increments and decrements), the function that called it: those two
are leaf functions that push little, so the return address is among the first words of the
user stack perf copied with each sample (``--call-graph dwarf,64``): the first of them that
falls in a compiled function names the caller.
"""

from __future__ import annotations

import argparse
import bisect
import collections
import os
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_overfit import ROOT, load_picture  # noqa: E402

TRAIN = ROOT.parent / "shared" / "media" / "train"
NAMES = ["Aqua", "TwoWings", "Wood", "Float-into-MATE"]
NRT = ("NRT_incref", "NRT_decref")


def short(sym: str) -> str:
    """``_ZN8codeclab6codecs4hevc6search11_satd_modesB3v40...`` -> ``search._satd_modes``."""
    if not sym.startswith("_ZN"):
        return sym
    s, parts = sym[3:], []
    while s and s[0].isdigit():
        k = re.match(r"\d+", s).group()  # type: ignore[union-attr]
        s = s[len(k):]
        parts.append(s[:int(k)])
        s = s[int(k):]
    return ".".join(parts[-2:]) or sym


def write_perf_map() -> int:
    """Every symbol numba's execution engine defines, as ``/tmp/perf-<pid>.map`` lines
    (start, size up to the next symbol, name). Returns the count."""
    from numba.core.registry import cpu_target

    eng = cpu_target.target_context.codegen()._engine
    rows = sorted((a, n) for n in eng._defined_symbols if (a := eng._ee.get_function_address(n)))
    with open(f"/tmp/perf-{os.getpid()}.map", "w") as f:
        for i, (a, n) in enumerate(rows):
            size = min(rows[i + 1][0] - a if i + 1 < len(rows) else 4096, 1 << 20)
            f.write(f"{a:x} {size:x} {n}\n")
    return len(rows)


def encode(preset: str, reps: int, quant: str = "rdoq", names: list[str] | None = None) -> None:
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    from codeclab.codecs.base import get_codec, make_options
    from codeclab.pipeline.transcode import code_frames

    frames = [load_picture(TRAIN / f"{n}.png", 832, 480) for n in names or NAMES]
    spec = get_codec("hevc")
    opts = make_options(spec, dict(gop="ai", ctb=64, max_tu_depth=2, transform_skip=True, qp=32,
                                   preset=preset, quant=quant))
    list(code_frames([frames[0]], spec, opts, ms_ssim=False))  # compile / load, not profiled
    print(f"perf map: {write_perf_map()} symbols", file=sys.stderr)
    t, enc, bits = time.process_time(), 0.0, []
    best = [float("inf")] * len(frames)
    parts = dict.fromkeys(("decide_s", "filter_s", "write_s"), 0.0)
    for _ in range(reps):
        for i, f in enumerate(frames):
            coded = list(code_frames([f], spec, opts, ms_ssim=False))[0]
            enc += coded.metrics["encode_s"]
            best[i] = min(best[i], coded.metrics["encode_s"])
            bits.append(coded.metrics["bits"])
            for k in parts:
                parts[k] += coded.packets[0].props[k]
    n = reps * len(frames)
    split = ", ".join(f"{k[:-2]} {1000 * v / n:.1f}" for k, v in parts.items())
    print(f"{preset}: encode {enc / n:.3f} s per picture (its wall clock, one thread; ms: {split}; "
          f"each picture's fastest of the {reps} reps: {sum(best) / len(frames):.3f} s); "
          f"{(time.process_time() - t) / n:.3f} s CPU with decode and metrics; bits {bits[:len(frames)]}",
          file=sys.stderr)


def _load_map(pid: int) -> tuple[list[int], list[tuple[int, int, str]]]:
    rows = []
    for line in open(f"/tmp/perf-{pid}.map"):
        a, s, n = line.split(" ", 2)
        rows.append((int(a, 16), int(s, 16), n.strip()))
    rows.sort()
    return [r[0] for r in rows], rows


def report(data: Path, top: int) -> None:
    flat = subprocess.run(["perf", "report", "-i", str(data), "--no-children", "--sort", "sym", "--stdio"],
                          capture_output=True, text=True, check=True).stdout
    print(f"self time by function ({data})")
    shown = 0
    for line in flat.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+\[.\]\s+(\S+)", line)
        if m and shown < top:
            print(f"  {m.group(1):>6}%  {short(m.group(2))}")
            shown += 1
    raw = subprocess.run(["perf", "report", "-D", "-i", str(data)], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    pid = next(int(m.group(1)) for ln in raw if (m := re.search(r"PERF_RECORD_SAMPLE\(IP, 0x\w+\): (\d+)/", ln)))
    addrs, rows = _load_map(pid)
    nrt = {n: (a, a + s) for a, s, n in rows if n in NRT}

    def name_at(a: int) -> str | None:
        i = bisect.bisect_right(addrs, a) - 1
        return short(rows[i][2]) if i >= 0 and a < rows[i][0] + rows[i][1] else None

    callers: collections.Counter[str] = collections.Counter()
    total = in_nrt = 0
    chunk: list[int] = []
    i = 0
    while i < len(raw):
        line = raw[i]
        if line.startswith(". ... raw event"):
            chunk, i = [], i + 1
            while i < len(raw) and raw[i].startswith(".  "):
                chunk += [int(h, 16) for h in raw[i][8:56].split()]
                i += 1
            continue
        m = re.search(r"PERF_RECORD_SAMPLE\(IP, 0x\w+\): \d+/\d+: 0x(\w+)", line)
        if m:
            total += 1
            ip = int(m.group(1), 16)
            if any(a <= ip < b for a, b in nrt.values()):
                in_nrt += 1
                j = i
                while j < min(i + 60, len(raw) - 1) and "ustack:" not in raw[j]:
                    j += 1
                if (mo := re.search(r"offset 0x(\w+)", raw[j])):
                    off = int(mo.group(1), 16)
                    words = [int.from_bytes(bytes(chunk[off + 8 * k:off + 8 * k + 8]), "little") for k in range(4)]
                    callers[next((n for w in words if (n := name_at(w))), "(not found)")] += 1
        i += 1
    print(f"\nreference counting: {100 * in_nrt / max(total, 1):.1f} % of {total} samples; by caller:")
    for k, v in callers.most_common(top):
        print(f"  {100 * v / max(in_nrt, 1):6.1f}%  {k}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("encode", help="encode the training windows (run under perf record)")
    e.add_argument("--preset", default="medium")
    e.add_argument("--reps", type=int, default=2)
    e.add_argument("--quant", default="rdoq")
    e.add_argument("--names", nargs="+", help=f"training pictures, without .png (default: {' '.join(NAMES)})")
    r = sub.add_parser("report", help="self time and reference-counting callers of a perf.data")
    r.add_argument("data", type=Path)
    r.add_argument("--top", type=int, default=40)
    a = ap.parse_args(argv)
    if a.cmd == "encode":
        if not TRAIN.is_dir():
            print(f"perf_hevc: {TRAIN} not found (the shared media)", file=sys.stderr)
            return 2
        encode(a.preset, a.reps, a.quant, a.names)
    else:
        if not a.data.is_file():
            print(f"perf_hevc: {a.data}: no such perf data file", file=sys.stderr)
            return 2
        report(a.data, a.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())

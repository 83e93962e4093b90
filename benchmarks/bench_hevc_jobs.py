"""``transcode --jobs``: frame-parallel coding of codec ``hevc``, against one job, in one run.

    .venv/bin/python benchmarks/bench_hevc_jobs.py [--jobs 1 2] [--preset fast] [--no-hd] [--no-demo]
        [--repeat 3]

Two inputs, each coded by the ``codeclab transcode`` command (a child process: what a user
runs, metrics and MS-SSIM included) once per ``--jobs`` value, QP 32, ``--preset fast``:

- the demo clip shipped in the package (12 frames, 320x240, 8-bit 4:2:0);
- four 1920x1080 frames: the ``../shared/media/hd`` photographs as one 4:2:0 8-bit
  ``.y4m`` clip (skipped where the folder is absent, or with ``--no-hd``).

Printed per run: wall seconds, CPU seconds (user + system of the command and every worker
it waited for: ``getrusage(RUSAGE_CHILDREN)``), peak memory (the largest sum of the
resident sets of the command and its workers, sampled every 50 ms from ``/proc``) and the
largest resident set of a single process; then the wall speed-up and the CPU ratio against
the first ``--jobs`` value. The streams of every run must be byte-identical. The machine
may be shared: compare ratios within one run; ``--repeat N`` runs each value N times,
interleaved, and keeps the least wall and CPU time of each.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HD = REPO.parent / "shared" / "media" / "hd"
CODECLAB = Path(sys.executable).parent / "codeclab"


@dataclass(frozen=True)
class Run:
    wall_s: float
    cpu_s: float
    peak_tree_mb: float
    max_proc_mb: float
    stream: bytes


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            out += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    return out


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _tree_rss_kb(root: int) -> tuple[int, int]:
    """Resident sets of ``root`` and its descendants, in kB (from /proc): (sum, largest)."""
    todo, sizes = [root], []
    while todo:
        pid = todo.pop()
        sizes.append(_rss_kb(pid))
        todo += _children(pid)
    return sum(sizes), max(sizes)


def run(src: Path, out: Path, jobs: int, preset: str, frames: int | None) -> Run:
    cmd = [str(CODECLAB), "transcode", str(src), "-o", str(out), "--codec", "hevc", "-x", "gop=ai", "--qp", "32",
           "--preset", preset, "--jobs", str(jobs), "-q"]
    if frames:
        cmd += ["--frames", str(frames)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd)
    peak = [0, 0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            total, largest = _tree_rss_kb(proc.pid)
            peak[0], peak[1] = max(peak[0], total), max(peak[1], largest)
            stop.wait(0.05)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    rc = proc.wait()
    wall = time.perf_counter() - t0
    stop.set()
    th.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if rc != 0:
        sys.exit(f"{' '.join(cmd)}: exit {rc}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Run(wall, cpu, peak[0] / 1024, peak[1] / 1024, out.read_bytes())


def hd_clip(folder: Path, dst: Path) -> Path | None:
    """The hd photographs as one 4:2:0 8-bit .y4m clip (None where they are absent)."""
    from dataclasses import replace

    from codeclab.pipeline.io.sinks import open_sink
    from codeclab.pipeline.io.sources import open_source

    pngs = sorted(folder.glob("*_1920x1080.png"))
    if not pngs:
        return None
    frames = []
    for k, p in enumerate(pngs):
        with open_source(p, to_pix_fmt="yuv420p") as s:
            f = next(iter(s))
        frames.append(replace(f, index=k, pts=k))
    with open_sink(dst, frames[0].format) as sink:
        for f in frames:
            sink.write(f)
    return dst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--no-hd", action="store_true", help="skip the 1920x1080 clip")
    ap.add_argument("--no-demo", action="store_true", help="skip the demo clip")
    ap.add_argument("--repeat", type=int, default=1, help="runs per --jobs value, interleaved; the least wall "
                    "and CPU time are printed (default 1)")
    a = ap.parse_args()
    from codeclab.pipeline.demo import demo_clip

    with tempfile.TemporaryDirectory(prefix="bench-jobs-") as tmp:
        inputs: list[tuple[str, Path, int | None]] = []
        if not a.no_demo:
            inputs.append(("demo clip 320x240, 12 frames", demo_clip(), None))
        if not a.no_hd:
            hd = hd_clip(HD, Path(tmp) / "hd_1920x1080.y4m")
            if hd is not None:
                inputs.append(("hd photographs 1920x1080, 4 frames", hd, None))
        for label, src, n in inputs:
            print(f"{label}, preset {a.preset}, QP 32:")
            tries: dict[int, list[Run]] = {j: [] for j in a.jobs}
            for _ in range(a.repeat):  # interleaved, so that load from others falls on every value
                for j in a.jobs:
                    tries[j].append(run(src, Path(tmp) / f"j{j}.hevc", j, a.preset, n))
            runs = {j: Run(min(r.wall_s for r in rs), min(r.cpu_s for r in rs), max(r.peak_tree_mb for r in rs),
                           max(r.max_proc_mb for r in rs), rs[0].stream) for j, rs in tries.items()}
            for j, r in runs.items():
                assert all(t.stream == r.stream for t in tries[j])
                print(f"  --jobs {j}: wall {r.wall_s:6.2f} s  CPU {r.cpu_s:6.2f} s  peak memory (all processes) "
                      f"{r.peak_tree_mb:6.0f} MB  largest process {r.max_proc_mb:5.0f} MB")
            ref = runs[a.jobs[0]]
            for j, r in runs.items():
                assert r.stream == ref.stream, f"--jobs {j} wrote different bytes"
                if j != a.jobs[0]:
                    print(f"  --jobs {j} vs {a.jobs[0]}: wall speed-up x{ref.wall_s / r.wall_s:.2f}, "
                          f"CPU ratio x{r.cpu_s / ref.cpu_s:.2f}, streams identical")


if __name__ == "__main__":
    main()

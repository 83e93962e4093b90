"""Frame-parallel coding (``code_frames(jobs=N)``, ``transcode --jobs``): the ordered,
bounded scheduler on a thread pool, then a fake lossless ``frame_parallel`` codec in real
spawned workers: same packets in the same order as one job, bounded frames in flight,
a worker's failure or death as one clean error, Ctrl-C with no output and no workers left.
(Identical HEVC streams for --jobs 1 and 2: tests/codecs/hevc/test_hevc_cli.py.)"""

from __future__ import annotations

import concurrent.futures as cf
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from _parallel_fakecodec import SPEC, ParOptions
from _procs import alive, children
from _synth import REPO, synth_frames

from codeclab.base.errors import CodecError
from codeclab.base.pool import ordered_map
from codeclab.cli import main
from codeclab.codecs.base import get_codec
from codeclab.pipeline.io.sinks import open_sink
from codeclab.pipeline.transcode import code_frames, transcode

HERE = Path(__file__).resolve().parent


def _write_y4m(path: Path, frames: list) -> None:
    with open_sink(path, frames[0].format) as s:
        for f in frames:
            s.write(f)


def test_ordered_map_keeps_input_order_and_a_bounded_window():
    """Tasks finish in reverse order; results still come in input order, and never more
    than ``window`` items are pulled and not yet handed back."""
    pulled, handed, worst = [], [], [0]
    lock = threading.Lock()

    def items():
        for i in range(20):
            with lock:
                pulled.append(i)
                worst[0] = max(worst[0], len(pulled) - len(handed))
            yield i

    def fn(i: int) -> int:
        time.sleep(0.002 * (4 - i % 4))  # within each group of four, the last finishes first
        return i * i

    with cf.ThreadPoolExecutor(3) as ex:
        for item, fut in ordered_map(ex, fn, items(), window=4):
            assert fut.done()
            handed.append(item)
            assert fut.result() == item * item
    assert handed == list(range(20))
    assert worst[0] <= 4


def test_ordered_map_closed_early_cancels_what_has_not_started():
    started = []

    def fn(i: int) -> int:
        started.append(i)
        time.sleep(0.05)
        return i

    with cf.ThreadPoolExecutor(1) as ex:
        it = ordered_map(ex, fn, range(100), window=5)
        assert next(it)[0] == 0
        it.close()
    assert len(started) <= 3


def test_ordered_map_hands_back_a_failed_task_with_its_item():
    def fn(i: int) -> int:
        if i == 2:
            raise ValueError("two")
        return i

    with cf.ThreadPoolExecutor(2) as ex:
        got = []
        for item, fut in ordered_map(ex, fn, range(5), window=2):
            if item == 2:
                with pytest.raises(ValueError, match="two"):
                    fut.result()
                break
            got.append(fut.result())
    assert got == [0, 1]


def test_two_workers_give_one_workers_packets_in_order_with_bounded_frames_in_flight():
    frames = synth_frames("yuv420p", n=8, width=64, height=48)
    serial = list(code_frames(frames, SPEC, ParOptions(), ms_ssim=False))
    pulled, consumed, worst = [0], [0], [0]

    def source():
        for f in frames:
            pulled[0] += 1
            worst[0] = max(worst[0], pulled[0] - consumed[0])
            yield f

    out = []
    for cf_ in code_frames(source(), SPEC, ParOptions(sleep=0.4), ms_ssim=False, jobs=2):
        out.append(cf_)
        consumed[0] += 1
    assert [c.source.index for c in out] == list(range(8))
    assert [p.data for c in out for p in c.packets] == [p.data for c in serial for p in c.packets]
    assert all(c.metrics["psnr_y"] == 100.0 for c in out)  # lossless: decoded = source
    assert len({c.packets[0].props["pid"] for c in out} - {os.getpid()}) == 2  # both workers coded
    assert worst[0] <= 2 * 2 + 1  # the window (2 x jobs) plus the frame being measured here


def test_a_failing_worker_is_one_codec_error_and_leaves_no_output(tmp_path, capsys):
    src, out = tmp_path / "in.y4m", tmp_path / "o.clc"
    _write_y4m(src, synth_frames("yuv420p", n=6, width=64, height=48))
    with pytest.raises(CodecError, match=r"frame 2 failed in a worker process: RuntimeError: fake failure on frame 2"):
        transcode(src, out, SPEC, ParOptions(fail_at=2), progress=False, jobs=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.y4m"]
    assert get_codec("par-test") is SPEC
    assert main(["transcode", str(src), "-o", str(out), "--codec", "par-test", "-x", "fail_at=3", "--jobs", "2",
                 "--metrics", str(tmp_path / "m.csv"), "-q"]) == 1
    err = capsys.readouterr().err
    assert err == "codeclab: error: codec par-test: frame 3 failed in a worker process: RuntimeError: fake failure " \
                  "on frame 3\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.y4m"]


def test_a_worker_that_dies_is_one_codec_error(tmp_path):
    src, out = tmp_path / "in.y4m", tmp_path / "o.clc"
    _write_y4m(src, synth_frames("yuv420p", n=4, width=64, height=48))
    with pytest.raises(CodecError, match=r"worker process .*died"):
        transcode(src, out, SPEC, ParOptions(die_at=1), progress=False, jobs=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.y4m"]


def test_codec_that_codes_in_order_gets_one_job_and_a_note(tmp_path, capsys):
    src = tmp_path / "in.y4m"
    _write_y4m(src, synth_frames("yuv420p", n=2, width=64, height=48))
    assert not get_codec("x265").frame_parallel
    assert main(["transcode", str(src), "-o", str(tmp_path / "o.mp4"), "--jobs", "2"]) == 0
    err = capsys.readouterr().err
    assert "codeclab: note: codec x265 codes frames in order; --jobs 2 is ignored" in err


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to find the workers")
def test_ctrl_c_leaves_no_output_and_no_workers(tmp_path):
    src, out, csv = tmp_path / "in.y4m", tmp_path / "o.clc", tmp_path / "m.csv"
    _write_y4m(src, synth_frames("yuv420p", n=40, width=64, height=48))
    code = (f"import sys; sys.path[:0] = [{str(HERE)!r}, {str(REPO / 'tests')!r}]; import _parallel_fakecodec; "
            "from codeclab.cli import main; sys.exit(main(sys.argv[1:]))")
    proc = subprocess.Popen([sys.executable, "-c", code, "transcode", str(src), "-o", str(out), "--metrics",
                             str(csv), "--codec", "par-test", "-x", "sleep=3", "--jobs", "2", "-q"],
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        workers: list[int] = []
        while time.monotonic() < deadline and len(workers) < 2 and proc.poll() is None:
            time.sleep(0.2)
            workers = children(proc.pid, b"spawn_main")  # pool workers, not the resource tracker
        time.sleep(0.5)
        os.kill(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert len(workers) == 2
    assert proc.returncode == 130, err
    assert err == "codeclab: interrupted\n"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(p) for p in workers):
        time.sleep(0.1)
    assert not any(alive(p) for p in workers)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.y4m"]


def test_jobs_must_be_positive(tmp_path):
    from codeclab.base.errors import UsageError

    src = tmp_path / "in.y4m"
    _write_y4m(src, synth_frames("yuv420p", n=1))
    with pytest.raises(UsageError, match="jobs"):
        transcode(src, tmp_path / "o.clc", SPEC, ParOptions(), progress=False, jobs=0)


def test_a_codec_that_cannot_be_sent_to_a_worker_is_one_codec_error(make_frames):
    """A plugin spec built around a lambda does not pickle: a CodecError, not a traceback."""
    from dataclasses import replace

    spec = replace(SPEC, name="par-lambda", make_encoder=lambda fmt, o: SPEC.make_encoder(fmt, o))
    with pytest.raises(CodecError, match=r"par-lambda: frame 0 could not be passed to or from a worker process"):
        list(code_frames(make_frames(n=3), spec, ParOptions(), ms_ssim=False, jobs=2))

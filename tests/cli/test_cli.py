"""The ``codeclab`` command end to end: bad input through a real subprocess, good runs checked by FFmpeg."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
from _synth import MEDIA, synth_frames

from codeclab import cli
from codeclab.cli import codec_flags
from codeclab.pipeline.io.sinks import open_sink
from codeclab.pipeline.io.sources import FrameRange, open_source


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    e = dict(os.environ)
    e.pop("CODECLAB_DEBUG", None)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "codeclab.cli", *args], cwd=cwd, capture_output=True, text=True,
                          env=e, timeout=timeout)


def assert_one_line_error(r: subprocess.CompletedProcess, *needles: str, code: int = 1) -> None:
    assert r.returncode == code, r.stderr
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("codeclab: error: ")
    for n in needles:
        assert n in lines[0], lines[0]


def _y4m(path: Path, n: int = 3, pix_fmt: str = "yuv420p", **kw) -> Path:
    frames = synth_frames(pix_fmt, n=n, kind="smooth", **kw)
    with open_sink(path, frames[0].format) as s:
        for f in frames:
            s.write(f)
    return path


def _mp4(path: Path, n: int = 12) -> Path:
    frames = synth_frames("yuv420p", n=n, width=128, height=96, kind="noise", seed=5)
    with open_sink(path, frames[0].format, codec="libx264", options={"crf": "20", "g": "1"}) as s:
        for f in frames:
            s.write(f)
    return path


# ---------------------------------------------------------------------------------------
# bad input: exit status, one line naming file and problem, no traceback, no output left


BAD_CASES = {
    "missing": (lambda d: d / "missing.mp4", [], ["missing.mp4", "no such file"], 1),
    "not_video": (lambda d: (d / "notes.mp4").write_text("just text\n") and d / "notes.mp4", [],
                  ["notes.mp4", "not a video"], 1),
    "truncated_yuv": (lambda d: (d / "t.yuv").write_bytes(b"\x80" * (64 * 48 * 3 // 2 * 2 + 77)) and d / "t.yuv",
                      ["--size", "64x48"], ["t.yuv", "trailing bytes"], 1),
    "wrong_dimensions": (lambda d: (d / "w.yuv").write_bytes(b"\x80" * (64 * 48 * 3 // 2 * 2)) and d / "w.yuv",
                         ["--size", "50x48"], ["w.yuv", "50x48"], 1),
    "odd_dimensions": (lambda d: (d / "o.yuv").write_bytes(b"\x80" * 1000) and d / "o.yuv",
                       ["--size", "63x47"], ["o.yuv", "63x47"], 1),
    "unknown_pix_fmt": (lambda d: (d / "p.yuv").write_bytes(b"\x80" * 4608) and d / "p.yuv",
                        ["--size", "64x48", "--pix-fmt", "yuv999p"], ["p.yuv", "yuv999p"], 1),
    "raw_without_size": (lambda d: (d / "n.yuv").write_bytes(b"\x80" * 4608) and d / "n.yuv", [], ["n.yuv", "--size"], 2),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input_transcode(tmp_path, case):
    make, extra, needles, code = BAD_CASES[case]
    src = make(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    r = run_cli("transcode", str(src), "-o", "out.mp4", "--metrics", "m.csv", "--recon", "r.y4m", *extra, cwd=tmp_path)
    assert_one_line_error(r, *needles, code=code)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing left behind, not even temp files


def test_bad_input_convert_and_metrics(tmp_path):
    (tmp_path / "t.yuv").write_bytes(b"\x80" * (64 * 48 * 3 // 2 + 5))
    r = run_cli("convert", "t.yuv", "-o", "o.y4m", "--size", "64x48", cwd=tmp_path)
    assert_one_line_error(r, "t.yuv", "trailing bytes")
    r = run_cli("metrics", "missing.y4m", "t.yuv", "--size", "64x48", "--csv", "m.csv", cwd=tmp_path)
    assert_one_line_error(r, "missing.y4m", "no such file")
    _y4m(tmp_path / "a.y4m", n=2)
    _y4m(tmp_path / "b.y4m", n=2, width=96)
    r = run_cli("metrics", "a.y4m", "b.y4m", cwd=tmp_path)
    assert_one_line_error(r, "b.y4m", "96x48")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.y4m", "b.y4m", "t.yuv"]


def test_corrupted_mp4_midway_leaves_nothing(tmp_path):
    good = _mp4(tmp_path / "good.mp4", n=12)
    data = bytearray(good.read_bytes())
    mdat = data.find(b"mdat")
    half = mdat + (len(data) - mdat) // 2
    for i in range(half, min(len(data), half + 4000), 7):  # damage the second half of the samples
        data[i] ^= 0x5A
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(bytes(data))
    good.unlink()
    r = run_cli("transcode", "bad.mp4", "-o", "o.mp4", "--metrics", "m.json", cwd=tmp_path)
    assert_one_line_error(r, "bad.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.mp4"]


def test_truncated_mp4(tmp_path):
    good = _mp4(tmp_path / "good.mp4", n=6)
    (tmp_path / "cut.mp4").write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    good.unlink()
    r = run_cli("transcode", "cut.mp4", "-o", "o.mp4", cwd=tmp_path)
    assert_one_line_error(r, "cut.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.mp4"]


@pytest.mark.parametrize("args,needle", [
    (["--codec", "nope"], "unknown codec 'nope'"),
    (["--qp", "abc"], "option qp"),
    (["--qp", "22", "--crf", "20"], "not both"),
    (["-x", "quant=rdoq"], "x265 has no option 'quant'"),
    (["-x", "novalue"], "KEY=VALUE"),
    (["-o", "out.avi"], "out.avi"),
    (["--metrics", "m.txt"], "m.txt"),
    (["-o", "nodir/out.mp4"], "does not exist"),
    (["-o", "in.y4m"], "overwrite the input"),
])
def test_usage_errors_exit_2(tmp_path, args, needle):
    _y4m(tmp_path / "in.y4m", n=1)
    if "-o" not in args:
        args = ["-o", "out.mp4", *args]
    r = run_cli("transcode", "in.y4m", *args, cwd=tmp_path)
    assert_one_line_error(r, needle, code=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.y4m"]


def test_argparse_errors_exit_2(tmp_path):
    r = run_cli("transcode", "in.y4m", cwd=tmp_path)  # -o missing
    assert r.returncode == 2 and "Traceback" not in r.stderr and "-o" in r.stderr
    r = run_cli("frobnicate", cwd=tmp_path)
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_debug_env_shows_the_traceback(tmp_path):
    r = run_cli("info", "missing.mp4", cwd=tmp_path, env={"CODECLAB_DEBUG": "1"})
    assert r.returncode != 0 and "Traceback" in r.stderr and "InputError" in r.stderr


def test_ctrl_c_exits_130_and_removes_temp_outputs(tmp_path):
    frames = synth_frames("yuv420p", n=400, width=320, height=240, kind="noise", seed=2)
    with open_sink(tmp_path / "big.y4m", frames[0].format) as s:
        for f in frames:
            s.write(f)
    del frames
    e = dict(os.environ)
    e.pop("CODECLAB_DEBUG", None)
    p = subprocess.Popen([sys.executable, "-m", "codeclab.cli", "transcode", "big.y4m", "-o", "o.mp4",
                          "--metrics", "m.csv", "--recon", "r.yuv", "--preset", "slow"], cwd=tmp_path,
                         stderr=subprocess.PIPE, text=True, env=e)
    deadline = time.monotonic() + 60
    while not any(q.name.endswith(".part.mp4") for q in tmp_path.iterdir()):
        assert p.poll() is None, p.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.3)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "Traceback" not in err
    assert sorted(q.name for q in tmp_path.iterdir()) == ["big.y4m"]


# ---------------------------------------------------------------------------------------
# good runs


def test_transcode_end_to_end(tmp_path):
    _y4m(tmp_path / "in.y4m", n=4, pix_fmt="yuv420p10le", width=128, height=96)
    r = run_cli("transcode", "in.y4m", "-o", "out.mp4", "--qp", "30", "--preset", "fast", "--metrics", "m.csv",
                "--recon", "rec.mkv", "--start", "1", "--frames", "2", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "out.mp4: x265, 2 frames 128x96 yuv420p10le" in r.stdout
    rows = list(csv.DictReader((tmp_path / "m.csv").open()))
    assert [int(row["frame"]) for row in rows] == [1, 2]
    assert all(float(row["qp"]) == 30.0 and row["pict_type"] == "I" for row in rows)
    with av.open(str(tmp_path / "out.mp4")) as c:
        s = c.streams.video[0]
        assert s.codec_context.name == "hevc" and s.format.name == "yuv420p10le"
        dec = [tuple(np.from_dlpack(p).copy() for p in f.planes) for f in c.decode(s)]
    with open_source(tmp_path / "rec.mkv") as rec:
        rf = list(rec)
    assert len(dec) == len(rf) == 2
    assert all(np.array_equal(a, b.view(np.uint16)) for f, d in zip(rf, dec) for a, b in zip(f.planes, d))
    assert sum(int(row["bits"]) for row in rows) > 0


def test_convert_info_metrics(tmp_path, capsys):
    _y4m(tmp_path / "in.y4m", n=3)
    assert cli.main(["convert", str(tmp_path / "in.y4m"), "-o", str(tmp_path / "c.yuv"), "--to-pix-fmt",
                     "yuv420p10le", "-q"]) == 0
    raw = tmp_path / "c.yuv"
    assert raw.stat().st_size == 3 * 64 * 48 * 3 // 2 * 2  # 10-bit: 2 bytes a sample
    assert cli.main(["info", str(raw), "--size", "64x48", "--pix-fmt", "yuv420p10le"]) == 0
    out = capsys.readouterr().out
    assert "64x48 yuv420p10le" in out and "frames     3" in out
    # identical content at two depths: metrics of a file against itself is the PSNR cap
    assert cli.main(["metrics", str(tmp_path / "in.y4m"), str(tmp_path / "in.y4m"), "--json",
                     str(tmp_path / "m.json")]) == 0
    doc = json.loads((tmp_path / "m.json").read_text())
    assert doc["summary"]["psnr_y"] == 100.0 and len(doc["frames"]) == 3
    assert "mean" in capsys.readouterr().out


def test_metrics_matches_ffmpeg_psnr_filter(tmp_path):
    """The metrics command against FFmpeg's own psnr filter on a coded file."""
    _y4m(tmp_path / "ref.y4m", n=2, width=128, height=96)
    r = run_cli("transcode", "ref.y4m", "-o", "d.mkv", "--qp", "40", "-q", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = run_cli("metrics", "ref.y4m", "d.mkv", "--csv", "m.csv", "--no-ms-ssim", "-q", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    ours = [float(row["psnr_y"]) for row in csv.DictReader((tmp_path / "m.csv").open())]
    import av.filter

    ref = list(av.open(str(tmp_path / "ref.y4m")).decode(video=0))
    dist = list(av.open(str(tmp_path / "d.mkv")).decode(video=0))
    g = av.filter.Graph()
    a = g.add_buffer(template=av.open(str(tmp_path / "d.mkv")).streams.video[0])
    b = g.add_buffer(template=av.open(str(tmp_path / "ref.y4m")).streams.video[0])
    psnr = g.add("psnr")
    sink = g.add("buffersink")
    a.link_to(psnr, 0, 0)
    b.link_to(psnr, 0, 1)
    psnr.link_to(sink)
    g.configure()
    theirs = []
    for fd, fr in zip(dist, ref):
        a.push(fd)
        b.push(fr)
        theirs.append(float(g.pull().metadata["lavfi.psnr.psnr.y"]))
    assert ours == pytest.approx(theirs, abs=1e-5)  # FFmpeg prints the value with 6 decimals


def test_codecs_and_help(capsys):
    assert cli.main(["codecs"]) == 0
    out = capsys.readouterr().out
    assert "x265:" in out and "keyint" in out and "--qp" in out
    with pytest.raises(SystemExit) as e:
        cli.main(["transcode", "--help"])
    assert e.value.code == 0
    assert "examples:" in capsys.readouterr().out


def test_codec_flags_are_generic(tmp_path, capsys, monkeypatch):
    """A codec flag declared for another codec reaches make_options, which rejects it for x265."""
    monkeypatch.setattr(codec_flags, "CODEC_FLAGS", list(codec_flags.CODEC_FLAGS))
    codec_flags.codec_flag("--no-frobnicate", "frobnicate", "a switch some other codec has", action="store_const", const=False)
    _y4m(tmp_path / "in.y4m", n=1)
    assert cli.main(["transcode", str(tmp_path / "in.y4m"), "-o", str(tmp_path / "o.mp4"), "--no-frobnicate"]) == 2
    err = capsys.readouterr().err
    assert "codec x265 has no option 'frobnicate'" in err
    assert not (tmp_path / "o.mp4").exists()


def test_demo(tmp_path):
    r = run_cli("demo", "--out", "d", cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "x265 qp=32" in r.stdout and "PSNR-Y" in r.stdout
    d = tmp_path / "d"
    names = {p.name for p in d.iterdir()}
    assert {"demo-x265-qp32-keyint250.csv", "demo-x265-qp32-keyint250.json", "demo-x265-qp32-keyint250.mp4"} <= names
    assert not any(n.startswith(".") for n in names)  # no temporary files left
    with av.open(str(d / "demo-x265-qp32-keyint250.mp4")) as c:
        assert sum(1 for _ in c.decode(video=0)) == 12
    assert len(json.loads((d / "demo-x265-qp32-keyint250.json").read_text())["frames"]) == 12


def test_demo_clip_is_the_original_first_frames():
    from codeclab.pipeline.demo import demo_clip

    original = MEDIA / "clips" / "realshort.mp4"
    if not original.exists():
        pytest.skip(f"{original} not available")
    with open_source(demo_clip()) as shipped, open_source(original, frames=FrameRange(0, 12)) as ref:
        a, b = list(shipped), list(ref)
    assert len(a) == len(b) == 12
    assert all(np.array_equal(x, y) for fa, fb in zip(a, b) for x, y in zip(fa.planes, fb.planes))


def test_acceptance_cockatoo_first_frames(tmp_path):
    src = MEDIA / "clips" / "cockatoo.mp4"
    if not src.exists():
        pytest.skip(f"{src} not available")
    r = run_cli("transcode", str(src), "-o", "c.mp4", "--codec", "x265", "--qp", "32", "--metrics", "c.csv",
                "--frames", "3", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader((tmp_path / "c.csv").open()))
    assert len(rows) == 3
    with av.open(str(tmp_path / "c.mp4")) as c:
        s = c.streams.video[0]
        assert s.format.name == "yuv444p"  # 4:4:4 kept (x265 Main 4:4:4)
        assert sum(1 for _ in c.decode(s)) == 3


@pytest.mark.slow
def test_acceptance_cockatoo_all_frames(tmp_path):
    """The issue's acceptance command, all 280 frames."""
    src = MEDIA / "clips" / "cockatoo.mp4"
    if not src.exists():
        pytest.skip(f"{src} not available")
    r = run_cli("transcode", str(src), "-o", "c.mp4", "--codec", "x265", "--qp", "32", "--metrics", "c.csv",
                cwd=tmp_path, timeout=900)
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader((tmp_path / "c.csv").open()))
    assert [int(row["frame"]) for row in rows] == list(range(280))
    with av.open(str(tmp_path / "c.mp4")) as c:
        assert sum(1 for _ in c.decode(video=0)) == 280

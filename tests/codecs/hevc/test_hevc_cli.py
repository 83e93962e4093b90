"""Codec ``hevc`` through the CLI: 10 frames of a real clip into MP4 and MKV, read back by
PyAV with the right frame count, rate and timestamps; raw .hevc carries the rate in its VUI;
our reconstruction (--recon) equals what FFmpeg decodes from the file."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from _synth import MEDIA

from codeclab.cli import main

CLIP = MEDIA / "clips" / "realshort.mp4"  # 320x240, 45000/1499 fps


def _clip() -> Path:
    if not CLIP.exists():
        pytest.skip(f"real clip not found: {CLIP}")
    return CLIP


def _read(path: Path) -> tuple[list[av.VideoFrame], dict, Fraction]:
    """Frames, stream facts (codec, size, average_rate, framerate) and time base."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        frames = list(c.decode(video=0))
        info = {"codec": s.codec_context.name, "size": (s.codec_context.width, s.codec_context.height),
                "average_rate": s.average_rate, "framerate": s.codec_context.framerate}
        return frames, info, Fraction(s.time_base)


@pytest.mark.parametrize("ext,extra", [(".mp4", []), (".mkv", ["--no-deblock", "--no-sao", "--ctb", "64",
                                                                "--transform-skip", "--no-sign-hiding",
                                                                "--gop", "ai"])])
def test_transcode_clip_into_container(tmp_path, ext, extra):
    src = _clip()
    out = tmp_path / f"out{ext}"
    assert main(["transcode", str(src), "-o", str(out), "--codec", "hevc", "--qp", "32", "--frames", "10",
                 "-q", *extra]) == 0
    frames, s, tb = _read(out)
    assert len(frames) == 10
    assert s["codec"] == "hevc" and s["size"] == (320, 240)
    rate = Fraction(45000, 1499)
    times = [float(f.pts * tb) for f in frames]
    # MKV stores milliseconds: its rate and times are the exact ones rounded to 1 ms
    tol = 1e-6 if ext == ".mp4" else 1e-3
    assert all(abs(t - i / rate) <= tol for i, t in enumerate(times))
    assert abs(float(s["average_rate"]) - float(rate)) < (1e-9 if ext == ".mp4" else 0.05)
    if "ai" in extra:  # all-intra: every picture an IDR
        assert all(f.key_frame for f in frames)
    else:  # the default, HM's low-delay P: one IDR, then P pictures
        assert frames[0].key_frame and not any(f.key_frame for f in frames[1:])
        assert [int(f.pict_type) for f in frames] == [1] + [2] * 9  # AV_PICTURE_TYPE_I, _P


@pytest.mark.parametrize("ext", [".mp4", ".mkv"])
def test_random_access_reorders_with_decoding_times(tmp_path, ext):
    """--gop ra reorders pictures: the container gets them in decoding order with their
    dts, FFmpeg returns them in presentation order at the right times, our reconstruction
    (--recon) equals that decode frame by frame, and the metrics CSV pairs each source
    frame with its own picture (type and QP per frame)."""
    import csv

    src = _clip()
    out, rec, met = tmp_path / f"out{ext}", tmp_path / "rec.y4m", tmp_path / "m.csv"
    assert main(["transcode", str(src), "-o", str(out), "--codec", "hevc", "--qp", "32", "--frames", "18",
                 "--gop", "ra", "--preset", "fast", "--recon", str(rec), "--metrics", str(met), "-q"]) == 0
    frames, s, tb = _read(out)
    assert len(frames) == 18
    rate = Fraction(45000, 1499)
    tol = 1e-6 if ext == ".mp4" else 1e-3
    assert all(abs(float(f.pts * tb) - i / rate) <= tol for i, f in enumerate(frames))
    assert [int(f.pict_type) for f in frames] == [1] + [3] * 17  # AV_PICTURE_TYPE_I, _B
    if ext == ".mp4":  # Matroska stores presentation times only
        with av.open(str(out)) as c:
            dts = [p.dts for p in c.demux(video=0) if p.size]
        assert dts == sorted(dts) and len(set(dts)) == 18
    with av.open(str(rec)) as c:
        recon = [f.to_ndarray() for f in c.decode(video=0)]
    assert all(np.array_equal(a.to_ndarray(), b) for a, b in zip(frames, recon))
    rows = list(csv.DictReader(met.open()))
    assert [int(r["frame"]) for r in rows] == list(range(18))
    assert [r["pict_type"] for r in rows] == ["I"] + ["B"] * 17
    assert float(rows[16]["qp"]) == 33 and float(rows[1]["qp"]) == 35 + 6  # POC 16: 32 + 1; POC 1: 38 + 3
    assert min(float(r["psnr_y"]) for r in rows) > 30


def test_raw_stream_rate_and_recon_match_ffmpeg(tmp_path):
    src = _clip()
    out, rec = tmp_path / "out.hevc", tmp_path / "rec.y4m"
    assert main(["transcode", str(src), "-o", str(out), "--codec", "hevc", "--qp", "27", "--frames", "3",
                 "--recon", str(rec), "-q"]) == 0
    frames, s, _ = _read(out)
    assert len(frames) == 3 and s["framerate"] == Fraction(45000, 1499)
    with av.open(str(rec)) as c:
        recon = [f.to_ndarray() for f in c.decode(video=0)]
    assert all(np.array_equal(a.to_ndarray(), b) for a, b in zip(frames, recon))


def test_bad_hevc_option_is_a_usage_error(tmp_path, capsys):
    src = _clip()
    rc = main(["transcode", str(src), "-o", str(tmp_path / "o.mp4"), "--codec", "hevc", "--ctb", "48"])
    assert rc == 2
    assert "ctb" in capsys.readouterr().err


def test_jobs_two_writes_the_bytes_of_one_job(tmp_path):
    """Frame-parallel coding (--jobs 2: two worker processes) writes the stream of --jobs 1,
    byte for byte, and measures the same frames in the same order (the clip shipped in
    the package, 4 frames, preset fast, MD5 SEI on)."""
    import csv

    from codeclab.pipeline.demo import demo_clip

    outs = {}
    for jobs in (1, 2):
        out, m = tmp_path / f"j{jobs}.hevc", tmp_path / f"j{jobs}.csv"
        assert main(["transcode", str(demo_clip()), "-o", str(out), "--codec", "hevc", "--preset", "fast",
                     "--gop", "ai", "--frames", "4", "--md5", "--jobs", str(jobs), "--metrics", str(m),
                     "-q"]) == 0
        with open(m, newline="") as fh:
            rows = [{k: r[k] for k in ("frame", "bits", "psnr_y", "psnr_u", "psnr_v")} for r in csv.DictReader(fh)]
        outs[jobs] = (out.read_bytes(), rows)
    assert outs[2][0] == outs[1][0]
    assert outs[2][1] == outs[1][1] and [r["frame"] for r in outs[2][1]] == ["0", "1", "2", "3"]
    assert outs[1][0].count(b"\x00\x00\x00\x01\x40\x01") == 4  # one VPS per access unit: 4 pictures

"""Sinks: bit-exact round trips, y4m tags, viewable encodes, packet muxing, atomic output.

Independent references: FFmpeg (PyAV) decodes/demuxes everything we write; x265/x264 make
the packets we mux; the raw stream decoded by FFmpeg is the reference for muxed output.
"""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from _synth import same_pixels, synth_format, synth_frames

from codeclab.base.errors import FormatError, UsageError
from codeclab.base.frame import Frame
from codeclab.codecs.base import Packet
from codeclab.pipeline.io.avframes import planes_to_avframe
from codeclab.pipeline.io.sinks import open_packet_sink, open_sink
from codeclab.pipeline.io.sources import open_source

FORMATS = ["yuv420p", "yuv420p10le", "yuv444p", "yuv444p10le", "yuv422p", "yuv422p10le", "gray", "gray10le"]


def write_all(path: Path, frames: list[Frame], **kw: object) -> Path:
    with open_sink(path, frames[0].format, **kw) as sink:  # type: ignore[arg-type]
        for f in frames:
            sink.write(f)
    return path


def ffmpeg_frames(path: Path, **kw: object) -> list[tuple[np.ndarray, ...]]:
    """Planes as FFmpeg decodes them (no codeclab code involved)."""
    with av.open(str(path), **kw) as c:  # type: ignore[arg-type]
        return [tuple(np.from_dlpack(p).copy() for p in f.planes) for f in c.decode(video=0)]


@pytest.mark.parametrize("pix_fmt", FORMATS)
@pytest.mark.parametrize("ext", [".yuv", ".y4m", ".mkv"])
def test_bit_exact_round_trip(tmp_path: Path, pix_fmt: str, ext: str) -> None:
    frames = synth_frames(pix_fmt, 4, fps=Fraction(30000, 1001), seed=1)
    fmt = frames[0].format
    path = write_all(tmp_path / f"Seq_64x48_29.97{ext}", frames)
    kw = {"pix_fmt": pix_fmt} if ext == ".yuv" else {}
    with open_source(path, **kw) as src:
        assert src.format == fmt
        got = list(src)
    assert [f.index for f in got] == [0, 1, 2, 3] and [f.pts for f in got] == [0, 1, 2, 3]
    assert all(same_pixels(a, b) for a, b in zip(frames, got))
    # and FFmpeg reads the same samples from our file
    if ext == ".yuv":
        ref = ffmpeg_frames(path, format="rawvideo", options={"video_size": "64x48", "pixel_format": pix_fmt})
    else:
        ref = ffmpeg_frames(path)
    assert len(ref) == 4
    assert all(np.array_equal(r, g) for rf, f in zip(ref, frames) for r, g in zip(rf, f.planes))


@pytest.mark.parametrize("pix_fmt, fps, rng, header", [
    ("yuv420p", 25, "limited", b"YUV4MPEG2 W64 H48 F25:1 Ip A1:1 C420jpeg\n"),
    ("yuv444p10le", Fraction(30000, 1001), "limited", b"YUV4MPEG2 W64 H48 F30000:1001 Ip A1:1 C444p10 XYSCSS=444P10\n"),
    ("gray", 50, "full", b"YUV4MPEG2 W64 H48 F50:1 Ip A1:1 Cmono XCOLORRANGE=FULL\n"),
    ("yuv422p12le", 24, "limited", b"YUV4MPEG2 W64 H48 F24:1 Ip A1:1 C422p12 XYSCSS=422P12\n"),
])
def test_y4m_header(tmp_path: Path, pix_fmt: str, fps: object, rng: str, header: bytes) -> None:
    frames = synth_frames(pix_fmt, 2, fps=fps, range=rng)
    path = write_all(tmp_path / "a.y4m", frames)
    data = path.read_bytes()
    assert data.startswith(header) and data[len(header):len(header) + 6] == b"FRAME\n"
    with av.open(str(path)) as c:  # FFmpeg's demuxer understands every tag
        st = c.streams.video[0]
        assert st.codec_context.pix_fmt in (pix_fmt, "yuvj420p" if pix_fmt == "yuv420p" else pix_fmt)
        assert st.average_rate == Fraction(fps)
    assert open_source(path).format.range == rng


def test_ffv1_keeps_colour_tags_and_timestamps(tmp_path: Path) -> None:
    frames = synth_frames("yuv420p10le", 5, fps=50, matrix="bt2020nc", range="full")
    frames = [Frame(f.planes, f.format, f.index, 8 * f.index) for f in frames]  # every 8th frame: pts 0, 8, 16...
    path = write_all(tmp_path / "a.mkv", frames)
    src = open_source(path)
    assert (src.format.matrix, src.format.range, src.format.fps) == ("bt2020nc", "full", 50)
    got = list(src)
    assert [f.pts for f in got] == [0, 8, 16, 24, 32]
    assert all(same_pixels(a, b) for a, b in zip(frames, got))


@pytest.mark.parametrize("ext, codec, stream", [(".mp4", None, "h264"), (".mp4", "libx265", "hevc"),
                                                (".mkv", "x264", "h264"), (".mov", "x265", "hevc")])
def test_viewable_encodes(tmp_path: Path, ext: str, codec: str | None, stream: str) -> None:
    frames = synth_frames("yuv420p", 6, fps=Fraction(24000, 1001), kind="smooth")
    path = write_all(tmp_path / f"v{ext}", frames, codec=codec)
    with av.open(str(path)) as c:
        st = c.streams.video[0]
        assert st.codec_context.name == stream and st.average_rate == Fraction(24000, 1001)
        if ext == ".mov" and codec == "x265":
            assert st.codec_tag == "hvc1"
    got = list(open_source(path))
    assert [f.pts for f in got] == list(range(6))
    mse = np.mean([(a.planes[0].astype(float) - b.planes[0]) ** 2 for a, b in zip(frames, got)])
    assert 10 * np.log10(255**2 / max(mse, 1e-9)) > 40  # CRF 18 on a smooth picture: near transparent


def test_encoder_options_pass_through(tmp_path: Path) -> None:
    frames = synth_frames("yuv420p", 3, seed=2)  # noise: size depends on the quantizer
    small = write_all(tmp_path / "a.mp4", frames, options={"crf": "45"}).stat().st_size
    big = write_all(tmp_path / "b.mp4", frames, options={"crf": "5"}).stat().st_size
    assert big > 3 * small


# ---------------------------------------------------------------------------------------
# Atomic output


def test_exception_leaves_no_file(tmp_path: Path) -> None:
    frames = synth_frames(n=3)
    for ext in (".yuv", ".y4m", ".mkv", ".mp4"):
        with pytest.raises(RuntimeError, match="boom"):
            with open_sink(tmp_path / f"out{ext}", frames[0].format) as sink:
                sink.write(frames[0])
                sink.write(frames[1])
                raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []  # neither the final names nor temporaries


def test_temp_name_until_close(tmp_path: Path) -> None:
    frames = synth_frames(n=2)
    sink = open_sink(tmp_path / "out.mkv", frames[0].format)
    sink.write(frames[0])
    names = [p.name for p in tmp_path.iterdir()]
    assert "out.mkv" not in names and len(names) == 1 and names[0].startswith(".out.")
    assert names[0].endswith(".mkv")
    sink.close()
    assert [p.name for p in tmp_path.iterdir()] == ["out.mkv"]
    sink.close()  # idempotent
    with pytest.raises(UsageError, match="write after close"):
        sink.write(frames[1])
    sink2 = open_sink(tmp_path / "out.mkv", frames[0].format)  # replaces only on success
    sink2.write(frames[1])
    sink2.abort()
    assert [p.name for p in tmp_path.iterdir()] == ["out.mkv"]
    assert same_pixels(next(iter(open_source(tmp_path / "out.mkv"))), frames[0])


def test_dropped_sink_cleans_up(tmp_path: Path) -> None:
    sink = open_sink(tmp_path / "x.yuv", synth_format())
    del sink
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------
# Bad usage


def test_sink_errors(tmp_path: Path) -> None:
    fmt = synth_format()
    with pytest.raises(UsageError, match=r"out\.avi: cannot write \.avi"):
        open_sink(tmp_path / "out.avi", fmt)
    with pytest.raises(UsageError, match="FFV1 goes into .mkv"):
        open_sink(tmp_path / "out.mp4", fmt, codec="ffv1")
    with pytest.raises(UsageError, match="unknown output codec"):
        open_sink(tmp_path / "out.mkv", fmt, codec="mpeg2video")
    with pytest.raises(UsageError, match="raw samples"):
        open_sink(tmp_path / "out.y4m", fmt, codec="libx264")
    with open_sink(tmp_path / "out.yuv", fmt) as sink:
        with pytest.raises(FormatError, match=r"out\.yuv: frame 0 is 64x48 yuv444p"):
            sink.write(synth_frames("yuv444p", 1)[0])
    assert list(tmp_path.iterdir()) == [tmp_path / "out.yuv"]
    with pytest.raises(Exception, match="does not exist"):
        open_sink(tmp_path / "no" / "out.yuv", fmt)


# ---------------------------------------------------------------------------------------
# Packet muxing


def _coded(codec: str, frames: list[Frame], params: dict[str, str]) -> list[Packet]:
    fmt = frames[0].format
    cc = av.CodecContext.create(codec, "w")
    cc.width, cc.height, cc.pix_fmt = fmt.width, fmt.height, fmt.pix_fmt
    cc.time_base, cc.framerate = 1 / fmt.fps, fmt.fps
    cc.options = params
    out: list[Packet] = []
    for f in frames + [None]:  # type: ignore[operator]
        vf = None
        if f is not None:
            vf = planes_to_avframe(f.planes, fmt)
            vf.pts = f.index
        for p in cc.encode(vf):
            out.append(Packet(bytes(p), len(out), len(out), bool(p.is_keyframe)))
    return out


X265 = {"x265-params": "keyint=1:min-keyint=1:bframes=0:log-level=error", "qp": "30"}
X264 = {"g": "1", "bf": "0", "qp": "30"}


@pytest.mark.parametrize("stream, codec, params, pix_fmt, raw_ext", [
    ("hevc", "libx265", X265, "yuv420p10le", ".hevc"),
    ("hevc", "libx265", X265, "yuv444p", ".265"),
    ("h264", "libx264", X264, "yuv420p", ".h264"),
])
def test_packet_mux(tmp_path: Path, stream: str, codec: str, params: dict, pix_fmt: str, raw_ext: str) -> None:
    frames = synth_frames(pix_fmt, 5, fps=Fraction(30000, 1001), kind="smooth")
    fmt = frames[0].format
    packets = _coded(codec, frames, params)
    assert len(packets) == 5 and all(p.keyframe for p in packets)
    assert packets[0].data[:4] == b"\0\0\0\1"  # Annex-B
    with open_packet_sink(tmp_path / f"raw{raw_ext}", stream, fmt) as sink:
        for p in packets:
            sink.write(p)
    raw = (tmp_path / f"raw{raw_ext}").read_bytes()
    assert raw == b"".join(p.data for p in packets)
    reference = ffmpeg_frames(tmp_path / f"raw{raw_ext}")
    assert len(reference) == 5
    for ext in (".mp4", ".mkv", ".mov"):
        path = tmp_path / f"muxed{ext}"
        with open_packet_sink(path, stream, fmt) as sink:
            for p in packets:
                sink.write(p)
        with av.open(str(path)) as c:
            st = c.streams.video[0]
            assert st.codec_context.name == stream and st.average_rate == fmt.fps
            assert (st.codec_context.width, st.codec_context.height) == (64, 48)
            decoded = list(c.decode(st))
        assert [round(f.pts * f.time_base * fmt.fps) for f in decoded] == [0, 1, 2, 3, 4]
        assert all(f.key_frame for f in decoded)
        assert all(np.array_equal(np.from_dlpack(p), r) for f, rf in zip(decoded, reference)
                   for p, r in zip(f.planes, rf))
        src = open_source(path)  # and our own source agrees
        assert src.format.pix_fmt == pix_fmt and len(list(src)) == 5


def test_packet_sink_errors(tmp_path: Path) -> None:
    fmt = synth_format()
    with pytest.raises(UsageError, match="want hevc or h264"):
        open_packet_sink(tmp_path / "a.mp4", "vp9", fmt)
    with pytest.raises(UsageError, match=r"\.h264 is for h264 streams"):
        open_packet_sink(tmp_path / "a.h264", "hevc", fmt)
    with pytest.raises(UsageError, match=r"a\.ts"):
        open_packet_sink(tmp_path / "a.ts", "hevc", fmt)
    packets = _coded("libx265", synth_frames("yuv420p", 2, kind="smooth"), X265)
    with pytest.raises(FormatError, match="decoding times must increase"):
        with open_packet_sink(tmp_path / "a.mkv", "hevc", fmt) as sink:
            sink.write(packets[1])
            sink.write(packets[0])
    with pytest.raises(FormatError, match="after its pts"):
        with open_packet_sink(tmp_path / "a.mp4", "hevc", fmt) as sink:
            sink.write(Packet(packets[0].data, 0, 0, True, dts=1))
    assert list(tmp_path.iterdir()) == []


def test_annexb_split_with_ffmpeg_parser(tmp_path: Path) -> None:
    """The raw stream we concatenate splits back into the same access units (FFmpeg's parser)."""
    packets = _coded("libx265", synth_frames("yuv420p", 3, kind="smooth"), X265)
    with open_packet_sink(tmp_path / "a.hevc", "hevc", synth_format()) as sink:
        for p in packets:
            sink.write(p)
    aus = [bytes(p) for p in av.open(io.BytesIO((tmp_path / "a.hevc").read_bytes()), format="hevc").demux() if p.size]
    assert aus == [p.data for p in packets]

"""Frame sources: JVET names, raw/y4m/PyAV reading, ranges, laziness, conversions, bad input.

Independent references: FFmpeg (through PyAV) writes the y4m/nut/png/mp4 files we read,
or reads the same bytes; BT.709/601/2020 RGB->YUV against the published formula.
"""

from __future__ import annotations

import gc
import tracemalloc
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from _synth import same_pixels, synth_format, synth_frames
from hypothesis import given, settings
from hypothesis import strategies as st

from codeclab.base.errors import FormatError, InputError, UsageError
from codeclab.base.frame import PIX_FMTS, Frame
from codeclab.pipeline.io.avframes import avframe_planes, planes_to_avframe, reformat_yuv
from codeclab.pipeline.io.jvet_names import JvetName, parse_jvet_name
from codeclab.pipeline.io.pyav_source import AvSource, _native_layout
from codeclab.pipeline.io.sources import FrameRange, Source, open_source, probe, register_source


def write_raw(path: Path, frames: list[Frame]) -> Path:
    """Raw planar file written independently of our sink (explicit little-endian)."""
    with open(path, "wb") as f:
        for fr in frames:
            for p in fr.planes:
                f.write(p.astype(p.dtype.newbyteorder("<")).tobytes())
    return path


def ffmpeg_write(path: Path, frames: list[Frame], muxer: str, codec: str, pix_fmt: str | None = None,
                 options: dict[str, str] | None = None, rate: Fraction | int = 25) -> Path:
    """Write frames with FFmpeg's own muxer/encoder (pixels handed over as a packed frame)."""
    fmt = frames[0].format
    # y4m beyond 8 bit is "experimental" to FFmpeg's muxer: strict=-1 lets it write C420p10 etc.
    with av.open(str(path), "w", format=muxer, options={"strict": "-1"} if muxer == "yuv4mpegpipe" else {}) as out:
        st = out.add_stream(codec, rate=rate, options=options or {})
        st.width, st.height, st.pix_fmt = fmt.width, fmt.height, pix_fmt or fmt.pix_fmt
        for fr in frames:
            vf = av.VideoFrame(fmt.width, fmt.height, fmt.pix_fmt)
            for plane, arr in zip(vf.planes, fr.planes):
                buf = np.zeros((arr.shape[0], plane.line_size // arr.itemsize), arr.dtype)
                buf[:, : arr.shape[1]] = arr
                plane.update(buf)
            vf.pts = fr.index
            if pix_fmt and pix_fmt != fmt.pix_fmt:
                vf = vf.reformat(format=pix_fmt)
            for pkt in st.encode(vf):
                out.mux(pkt)
        for pkt in st.encode(None):
            out.mux(pkt)
    return path


# ---------------------------------------------------------------------------------------
# JVET names

@pytest.mark.parametrize("name, expect", [
    ("BasketballPass_416x240_50.yuv", ("BasketballPass", 416, 240, Fraction(50), None, None)),
    ("Name_1920x1080_60_10bit.yuv", ("Name", 1920, 1080, Fraction(60), 10, None)),
    ("Name_1920x1080_60_10bit_420.yuv", ("Name", 1920, 1080, Fraction(60), 10, "420")),
    ("Seq_1280x720_30_8bit_444.yuv", ("Seq", 1280, 720, Fraction(30), 8, "444")),
    ("Name_416x240_50Hz_8bit_P420.yuv", ("Name", 416, 240, Fraction(50), 8, "420")),
    ("CatRobot_3840x2160_60fps_10bit_420_jvet.yuv", ("CatRobot", 3840, 2160, Fraction(60), 10, "420")),
    ("Traffic_2560x1600_30_crop.yuv", ("Traffic", 2560, 1600, Fraction(30), None, None)),
    ("Some_Long_Name_832x480_29.97.yuv", ("Some_Long_Name", 832, 480, Fraction(30000, 1001), None, None)),
    ("X_1920x1080_59.94fps_yuv420p10le.yuv", ("X", 1920, 1080, Fraction(60000, 1001), 10, "420")),
    ("Mono_64x64_25_12bit_400.yuv", ("Mono", 64, 64, Fraction(25), 12, "400")),
    ("a/b/Dir_64x48_24_10b_422.yuv", ("Dir", 64, 48, Fraction(24), 10, "422")),
    ("NoRate_352x288.yuv", ("NoRate", 352, 288, None, None, None)),
])
def test_jvet_names_parse(name: str, expect: tuple) -> None:
    got = parse_jvet_name(name)
    assert got == JvetName(*expect)
    assert got is not None and got.size == expect[1:3]


@pytest.mark.parametrize("name", [
    "foreman.yuv",                      # no size
    "A_416x240_832x480_50.yuv",         # two sizes
    "A_416x240_50_8bit_10bit.yuv",      # contradicting depths
    "A_416x240_50_420_444.yuv",         # contradicting chroma
    "A_0x240_50.yuv",                   # empty size
    "A_416x240_50_20bit.yuv",           # impossible depth
    "A_416x240_8bit_50fps.yuv",         # rate not after the size: ambiguous
])
def test_jvet_names_reject(name: str) -> None:
    assert parse_jvet_name(name) is None


@settings(max_examples=200, deadline=None)
@given(seq=st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,10}(_[A-Za-z][A-Za-z0-9]{0,6}){0,2}", fullmatch=True),
       w=st.integers(1, 8192), h=st.integers(1, 8192), fps=st.sampled_from(["24", "25", "50", "60", "29.97", "120"]),
       fps_suffix=st.sampled_from(["", "fps", "Hz", "p"]), depth=st.sampled_from([None, 8, 10, 12, 16]),
       chroma=st.sampled_from([None, "420", "422", "444", "400", "P420"]))
def test_jvet_names_round_trip(seq: str, w: int, h: int, fps: str, fps_suffix: str, depth: int | None,
                               chroma: str | None) -> None:
    """Any name written in the documented pattern parses back to what was written."""
    parts = [seq, f"{w}x{h}", fps + fps_suffix]
    parts += [f"{depth}bit"] if depth else []
    parts += [chroma] if chroma else []
    got = parse_jvet_name("_".join(parts) + ".yuv")
    want_fps = Fraction(30000, 1001) if fps == "29.97" else Fraction(fps)
    assert got == JvetName(seq, w, h, want_fps, depth, chroma[-3:] if chroma else None)


# ---------------------------------------------------------------------------------------
# Raw .yuv

@pytest.mark.parametrize("pix_fmt, suffix", [
    ("yuv420p", "_64x48_50"), ("yuv420p10le", "_64x48_50_10bit"), ("yuv444p", "_64x48_50_8bit_444"),
    ("yuv444p10le", "_64x48_50_10bit_444"), ("yuv422p10le", "_64x48_50_10bit_422"), ("gray", "_64x48_50_8bit_400"),
])
def test_raw_from_jvet_name(tmp_path: Path, pix_fmt: str, suffix: str) -> None:
    frames = synth_frames(pix_fmt, 3, fps=50)
    path = write_raw(tmp_path / f"Seq{suffix}.yuv", frames)
    with open_source(path) as src:
        assert src.format == frames[0].format and src.num_frames == 3
        got = list(src)
    assert [f.index for f in got] == [0, 1, 2] and [f.pts for f in got] == [0, 1, 2]
    assert all(same_pixels(a, b) for a, b in zip(frames, got))
    assert got[0].planes[0].flags.writeable


def test_raw_matches_ffmpeg_rawvideo(tmp_path: Path) -> None:
    """10-bit raw = little-endian uint16: FFmpeg's rawvideo demuxer agrees sample for sample."""
    frames = synth_frames("yuv420p10le", 2, seed=3)
    path = write_raw(tmp_path / "Seq_64x48_25_10bit.yuv", frames)
    with av.open(str(path), format="rawvideo", options={"video_size": "64x48", "pixel_format": "yuv420p10le"}) as c:
        ref = [tuple(np.from_dlpack(p) for p in f.planes) for f in c.decode(video=0)]
    got = list(open_source(path))
    assert len(ref) == 2
    assert all(np.array_equal(r, g) for rf, gf in zip(ref, got) for r, g in zip(rf, gf.planes))


def test_raw_explicit_options_win(tmp_path: Path) -> None:
    frames = synth_frames("yuv444p", 2, 32, 16)
    path = write_raw(tmp_path / "Wrong_64x48_50.yuv", frames)  # name lies; options tell the truth
    with open_source(path, size=(32, 16), pix_fmt="yuv444p", fps=Fraction(24000, 1001), matrix="bt2020nc") as src:
        assert (src.format.width, src.format.height, src.format.chroma) == (32, 16, "444")
        assert src.format.fps == Fraction(24000, 1001) and src.format.matrix == "bt2020nc"
        assert all(same_pixels(a, b) for a, b in zip(frames, src))


def test_raw_without_size_is_usage_error(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "foreman.yuv", synth_frames(n=1))
    with pytest.raises(UsageError, match=r"foreman\.yuv.*--size"):
        open_source(path)


def test_raw_trailing_bytes(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "Seq_64x48_25.yuv", synth_frames(n=2))
    with open(path, "ab") as f:
        f.write(b"\0" * 100)
    with pytest.raises(InputError, match=r"Seq_64x48_25\.yuv.*4608 bytes each.*2 frames and 100 trailing bytes"):
        open_source(path)


def test_raw_wrong_dimensions(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "Seq_64x48_25.yuv", synth_frames(n=2))
    with pytest.raises(InputError, match="trailing bytes"):
        open_source(path, size=(48, 48))


def test_unknown_pixel_format(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "Seq_64x48_25.yuv", synth_frames(n=1))
    with pytest.raises(FormatError, match=r"Seq_64x48_25\.yuv.*rgb24"):
        open_source(path, pix_fmt="rgb24")
    with pytest.raises(FormatError, match="odd dimension"):
        open_source(path, size=(63, 48))


# ---------------------------------------------------------------------------------------
# .y4m

@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv420p10le", "yuv422p", "yuv444p", "yuv444p10le", "gray",
                                     "yuv420p12le"])
def test_y4m_written_by_ffmpeg(tmp_path: Path, pix_fmt: str) -> None:
    frames = synth_frames(pix_fmt, 3, fps=Fraction(30000, 1001), seed=4)
    path = ffmpeg_write(tmp_path / "a.y4m", frames, "yuv4mpegpipe", "wrapped_avframe", rate=Fraction(30000, 1001))
    with open_source(path) as src:
        assert src.format == frames[0].format and src.num_frames == 3
        assert all(same_pixels(a, b) for a, b in zip(frames, src))


def _y4m(path: Path, header: str, frames: list[Frame], marker: bytes = b"FRAME\n") -> Path:
    with open(path, "wb") as f:
        f.write(header.encode() + b"\n")
        for fr in frames:
            f.write(marker)
            for p in fr.planes:
                f.write(p.astype(p.dtype.newbyteorder("<")).tobytes())
    return path


@pytest.mark.parametrize("ctag, pix_fmt", [
    ("C420jpeg", "yuv420p"), ("C420paldv", "yuv420p"), ("C420mpeg2", "yuv420p"), ("", "yuv420p"),
    ("C422", "yuv422p"), ("C444", "yuv444p"), ("Cmono", "gray"), ("C444p10", "yuv444p10le"),
    ("C420p12", "yuv420p12le"), ("XYSCSS=422P10", "yuv422p10le"), ("C444p16", "yuv444p16le"),
])
def test_y4m_colour_tags(tmp_path: Path, ctag: str, pix_fmt: str) -> None:
    frames = synth_frames(pix_fmt, 2, fps=50)
    path = _y4m(tmp_path / "t.y4m", f"YUV4MPEG2 W64 H48 F50:1 Ip A1:1 {ctag}", frames)
    src = open_source(path)
    assert src.format == frames[0].format
    assert all(same_pixels(a, b) for a, b in zip(frames, src))


def test_y4m_frame_parameters_and_range(tmp_path: Path) -> None:
    """Markers with parameters are walked; XCOLORRANGE=FULL is recorded."""
    frames = synth_frames("yuv420p", 5, seed=5)
    path = _y4m(tmp_path / "t.y4m", "YUV4MPEG2 W64 H48 F25:1 It C420jpeg XCOLORRANGE=FULL", frames,
                marker=b"FRAME Ixyz XFOO=1\n")
    src = open_source(path, frames=FrameRange(1, None, 2))
    assert src.format.range == "full" and src.num_frames == 2
    got = list(src)
    assert [f.index for f in got] == [1, 3]
    assert same_pixels(got[0], frames[1]) and same_pixels(got[1], frames[3])


@pytest.mark.parametrize("header, exc, match", [
    ("YUV4MPEG2 H48 F25:1 C420jpeg", InputError, "W and H"),
    ("YUV4MPEG2 W64 Hx F25:1", InputError, "W and H"),
    ("YUV4MPEG2 W64 H48 F25:0", InputError, "frame rate"),
    ("YUV4MPEG2 W63 H48 F25:1 C420jpeg", InputError, "broken y4m header"),
    ("YUV4MPEG2 W64 H48 F25:1 C411", FormatError, "C411"),
    ("YUV4MPEG2 W64 H48 F25:1 C444alpha", FormatError, "C444alpha"),
    ("YUVMPEG W64 H48", InputError, "not a YUV4MPEG2 file"),
])
def test_y4m_broken_headers(tmp_path: Path, header: str, exc: type, match: str) -> None:
    path = _y4m(tmp_path / "bad.y4m", header, synth_frames(n=1))
    with pytest.raises(exc, match=match) as e:
        open_source(path)
    assert "bad.y4m" in str(e.value)


def test_y4m_truncated_and_wrong_size(tmp_path: Path) -> None:
    frames = synth_frames(n=3)
    path = _y4m(tmp_path / "t.y4m", "YUV4MPEG2 W64 H48 F25:1 C420jpeg", frames)
    data = path.read_bytes()
    (tmp_path / "cut.y4m").write_bytes(data[:-10])
    with pytest.raises(InputError, match=r"cut\.y4m: frame 2 is truncated"):
        open_source(tmp_path / "cut.y4m")
    # header claims a larger picture than the frames hold: the markers do not line up
    (tmp_path / "big.y4m").write_bytes(data.replace(b"W64", b"W80", 1))
    with pytest.raises(InputError, match=r"big\.y4m: (broken y4m frame header|frame \d is truncated)"):
        open_source(tmp_path / "big.y4m")
    with pytest.raises(UsageError, match="64x48, not 32x32"):
        open_source(path, size=(32, 32))


# ---------------------------------------------------------------------------------------
# Frame ranges, laziness


def _all_and_range(path: Path, fr: FrameRange, **kw: object) -> tuple[list[Frame], list[Frame], Source]:
    every = list(open_source(path, **kw))
    src = open_source(path, frames=fr, **kw)
    return every, list(src), src


@pytest.mark.parametrize("fr", [FrameRange(), FrameRange(3), FrameRange(2, 3), FrameRange(0, None, 8),
                                FrameRange(1, 2, 4), FrameRange(9, 5, 1), FrameRange(20)])
@pytest.mark.parametrize("kind", ["yuv", "y4m", "mp4"])
def test_frame_ranges(tmp_path: Path, fr: FrameRange, kind: str) -> None:
    frames = synth_frames("yuv420p", 12, seed=6, kind="smooth")
    if kind == "yuv":
        path = write_raw(tmp_path / "S_64x48_25.yuv", frames)
    elif kind == "y4m":
        path = _y4m(tmp_path / "s.y4m", "YUV4MPEG2 W64 H48 F25:1 C420jpeg", frames)
    else:
        path = ffmpeg_write(tmp_path / "s.mp4", frames, "mp4", "libx264", options={"qp": "20", "g": "4", "bf": "2"})
    every, got, src = _all_and_range(path, fr)
    want = list(range(12))[fr.start::fr.step]
    want = want if fr.count is None else want[: fr.count]
    assert [f.index for f in every] == list(range(12)) and [f.pts for f in every] == list(range(12))
    assert [f.index for f in got] == want and [f.pts for f in got] == want
    assert src.num_frames == len(want)
    assert all(same_pixels(g, every[g.index]) for g in got)


@pytest.mark.parametrize("ext", [".yuv", ".y4m"])
def test_lazy_memory_bounded(tmp_path: Path, ext: str) -> None:
    """2000 frames of 64x64 (12 MB) iterate with a peak of a few frames, not the file."""
    fmt = synth_format("yuv420p", 64, 64)
    path = tmp_path / f"Long_64x64_25{ext}"
    rng = np.random.default_rng(7)
    with open(path, "wb") as f:
        if ext == ".y4m":
            f.write(b"YUV4MPEG2 W64 H64 F25:1 C420jpeg\n")
        for _ in range(20):  # written in chunks of 100 frames
            chunk = rng.integers(0, 256, (100, fmt.frame_bytes), dtype=np.uint8)
            if ext == ".y4m":
                chunk = np.concatenate([np.frombuffer(b"FRAME\n", np.uint8)[None].repeat(100, 0), chunk], 1)
            f.write(chunk.tobytes())
    gc.collect()
    tracemalloc.start()
    try:
        n, checksum = 0, 0
        with open_source(path) as src:
            for fr in src:
                n += 1
                checksum += int(fr.planes[0][0, 0])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n == 2000
    assert peak < 8 * fmt.frame_bytes + 256 * 1024, f"peak {peak} bytes for {fmt.frame_bytes}-byte frames"


def test_sources_release_files_and_reiterate(tmp_path: Path) -> None:
    frames = synth_frames(n=4)
    path = write_raw(tmp_path / "S_64x48_25.yuv", frames)
    src = open_source(path)
    it = iter(src)
    next(it)
    src.close()  # closes the running iteration and its handle
    with pytest.raises(StopIteration):
        next(it)
    assert [f.index for f in src] == [0, 1, 2, 3]  # a source can be iterated again


# ---------------------------------------------------------------------------------------
# PyAV files: native layouts, conversions, RGB


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv420p10le", "yuv444p", "yuv444p10le", "yuv422p10le", "gray",
                                     "gray10le"])
def test_ffv1_native_layout(tmp_path: Path, pix_fmt: str) -> None:
    frames = synth_frames(pix_fmt, 3, seed=8)
    path = ffmpeg_write(tmp_path / "a.mkv", frames, "matroska", "ffv1")
    src = open_source(path)
    assert src.format.pix_fmt == pix_fmt and src.source_pix_fmt == pix_fmt
    got = list(src)
    assert [p.dtype for p in got[0].planes] == [frames[0].format.dtype] * len(frames[0].planes)
    assert all(same_pixels(a, b) for a, b in zip(frames, got))


@pytest.mark.parametrize("packed, planar", [("nv12", "yuv420p"), ("nv21", "yuv420p"), ("yuyv422", "yuv422p"),
                                            ("uyvy422", "yuv422p"), ("yuv420p10be", "yuv420p10le")])
def test_semi_planar_and_packed_become_planar_losslessly(tmp_path: Path, packed: str, planar: str) -> None:
    """FFmpeg packs our planar frames into ``packed`` (rawvideo in NUT); we get them back exactly."""
    frames = synth_frames(planar, 2, seed=9)
    path = ffmpeg_write(tmp_path / "a.nut", frames, "nut", "rawvideo", pix_fmt=packed)
    src = open_source(path)
    assert src.source_pix_fmt == packed and src.format.pix_fmt == planar
    assert all(same_pixels(a, b) for a, b in zip(frames, src))


@pytest.mark.parametrize("packed, layout", [("p010le", ("420", 10)), ("p016le", ("420", 16)), ("nv24", ("444", 8)),
                                            ("p210le", ("422", 10)), ("y210le", ("422", 10)), ("yuva420p", ("420", 8)),
                                            ("ya8", ("400", 8)), ("gray12le", ("400", 12)), ("rgb24", None),
                                            ("gbrp10le", None), ("pal8", None)])
def test_native_layout_of_pixel_formats(packed: str, layout: tuple | None) -> None:
    """Formats no container here stores (hardware decoders' p010...) map by FFmpeg's descriptor."""
    assert _native_layout(packed, 64, 48) == layout
    if layout is None:
        return
    frames = synth_frames(PIX_FMTS[layout], 1, seed=14)
    vf = planes_to_avframe(frames[0].planes, frames[0].format).reformat(format=packed)  # FFmpeg packs
    fmt = frames[0].format
    back = avframe_planes(reformat_yuv(vf, fmt, fmt.pix_fmt), fmt)
    assert all(np.array_equal(a, b) for a, b in zip(back, frames[0].planes))


def test_411_needs_to_pix_fmt() -> None:
    with pytest.raises(FormatError, match="to_pix_fmt"):
        _native_layout("yuv411p", 64, 48)


def test_to_pix_fmt_depth_and_chroma(tmp_path: Path) -> None:
    frames = synth_frames("yuv444p", 2, seed=10, kind="smooth")
    path = _y4m(tmp_path / "t.y4m", "YUV4MPEG2 W64 H48 F25:1 C444", frames)
    ten = list(open_source(path, to_pix_fmt="yuv444p10le"))
    assert ten[0].format.bit_depth == 10
    assert all(np.array_equal(t.astype(np.int32), f.astype(np.int32) << 2) for t, f in zip(ten[0].planes, frames[0].planes))
    sub = list(open_source(path, to_pix_fmt="yuv420p"))
    assert sub[0].format.chroma == "420" and sub[0].planes[1].shape == (24, 32)
    assert np.array_equal(sub[0].planes[0], frames[0].planes[0])  # luma untouched
    mean = frames[0].planes[1].astype(float).reshape(24, 2, 32, 2).mean(axis=(1, 3))
    assert np.abs(sub[0].planes[1] - mean).max() <= 2  # swscale's filter, close to a 2x2 box on a gradient
    with pytest.raises(FormatError, match="to_pix_fmt"):
        open_source(path, to_pix_fmt="rgb24")


KR_KB = {"bt709": (0.2126, 0.0722), "bt601": (0.299, 0.114), "bt2020nc": (0.2627, 0.0593)}


@pytest.mark.parametrize("matrix", [None, "bt601", "bt2020nc:full", "bt709:full"])
def test_png_rgb_to_yuv_matrix(tmp_path: Path, matrix: str | None) -> None:
    """PNG (written by FFmpeg) -> one 4:4:4 frame by the published matrix equations."""
    rgb = np.random.default_rng(11).integers(0, 256, (48, 64, 3)).astype(np.uint8)
    path = tmp_path / "p.png"
    with av.open(str(path), "w", format="image2") as out:
        st = out.add_stream("png")
        st.width, st.height, st.pix_fmt = 64, 48, "rgb24"
        for pkt in list(st.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24"))) + list(st.encode(None)):
            out.mux(pkt)
    src = open_source(path, matrix=matrix)
    name, _, rng = (matrix or "bt709").partition(":")
    assert src.num_frames == 1 and src.format.chroma == "444" and src.format.bit_depth == 8
    assert src.format.matrix == name and src.format.range == (rng or "limited")
    (fr,) = list(src)
    kr, kb = KR_KB[name]
    r, g, b = (rgb[..., i] / 255 for i in range(3))
    y = kr * r + (1 - kr - kb) * g + kb * b
    cb, cr = (b - y) / (2 - 2 * kb), (r - y) / (2 - 2 * kr)
    if rng == "full":
        want = (255 * y, 128 + 255 * cb, 128 + 255 * cr)
    else:
        want = (16 + 219 * y, 128 + 224 * cb, 128 + 224 * cr)
    for got, w in zip(fr.planes, want):
        assert np.array_equal(got, np.clip(np.round(w), 0, 255))
    # and FFmpeg's own converter (swscale) agrees to one step (it truncates full-range chroma)
    sws = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
        format="yuv444p", dst_colorspace={"bt709": 1, "bt601": 5, "bt2020nc": 9}[name],
        dst_color_range=2 if rng == "full" else 1)
    for got, ref in zip(fr.planes, sws.planes):
        assert np.abs(got.astype(int) - np.from_dlpack(ref)).max() <= 1
    sub = list(open_source(path, to_pix_fmt="yuv420p"))
    assert sub[0].format.chroma == "420" and len(sub) == 1


# ---------------------------------------------------------------------------------------
# Bad input through PyAV


def test_missing_and_non_video(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope\.mp4: no such file"):
        open_source(tmp_path / "nope.mp4")
    (tmp_path / "notes.mp4").write_text("this is not a video\n" * 20)
    with pytest.raises(InputError, match=r"notes\.mp4: not a video file"):
        open_source(tmp_path / "notes.mp4")
    with pytest.raises(InputError, match="is a directory"):
        open_source(tmp_path)


def _noisy_mp4(tmp_path: Path) -> bytes:
    frames = synth_frames("yuv420p", 30, 64, 64, seed=12)
    path = ffmpeg_write(tmp_path / "c.mp4", frames, "mp4", "libx264", options={"g": "5", "crf": "10"})
    return path.read_bytes()


def test_truncated_mp4(tmp_path: Path) -> None:
    data = _noisy_mp4(tmp_path)
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"cut\.mp4: not a video file, or damaged"):
        list(open_source(tmp_path / "cut.mp4"))


@pytest.mark.parametrize("where", [0.2, 0.4, 0.6])
def test_garbage_inside_mp4(tmp_path: Path, where: float) -> None:
    """Damage inside the media data: InputError with a frame index, never av.error.*."""
    data = bytearray(_noisy_mp4(tmp_path))
    assert data.find(b"moov") > len(data) * 0.9  # the damage lands in mdat, not in the index
    at = int(len(data) * where)
    data[at: at + 3000] = np.random.default_rng(13).integers(0, 256, 3000, dtype=np.uint8).tobytes()
    (tmp_path / "bad.mp4").write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"bad\.mp4: (damaged stream, decoding failed at frame \d+|frame \d+ is damaged)"):
        list(open_source(tmp_path / "bad.mp4"))


def test_audio_only_file(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    with av.open(str(path), "w", format="wav") as out:
        st = out.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for pkt in list(st.encode(frame)) + list(st.encode(None)):
            out.mux(pkt)
    with pytest.raises(InputError, match=r"a\.wav: not a video file \(no video stream\)"):
        open_source(path)


# ---------------------------------------------------------------------------------------
# probe and the opener hook


def test_probe(tmp_path: Path) -> None:
    frames = synth_frames("yuv420p10le", 4, fps=50)
    path = write_raw(tmp_path / "Seq_64x48_50_10bit.yuv", frames)
    info = probe(path, frames=FrameRange(1))
    assert info.format == frames[0].format and info.num_frames == 3
    assert info.container == "rawvideo" and info.source_pix_fmt == "yuv420p10le"
    assert info.duration == pytest.approx(3 / 50)
    assert "Seq_64x48_50_10bit.yuv" in str(info)
    mp4 = ffmpeg_write(tmp_path / "s.mp4", synth_frames(n=5, kind="smooth"), "mp4", "libx264")
    info = probe(mp4)
    assert (info.container.split(",")[0], info.codec, info.num_frames) == ("mov", "h264", 5)
    assert info.format.fps == 25 and info.duration == pytest.approx(0.2)


def test_register_source(tmp_path: Path) -> None:
    seen = {}

    class Fake(Source):
        def __init__(self, path: Path, **opts: object) -> None:
            super().__init__()
            seen.update(opts)
            self.path, self.format, self.num_frames = path, synth_format(), 1

        def _frames(self):  # type: ignore[no-untyped-def]
            yield from synth_frames(n=1)

    register_source("fake", Fake)
    (tmp_path / "x.FAKE").write_bytes(b"")
    src = open_source(tmp_path / "x.FAKE", fps=30)
    assert isinstance(src, Fake) and len(list(src)) == 1
    assert seen["fps"] == 30 and isinstance(seen["frames"], FrameRange)


def test_bad_options(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "S_64x48_25.yuv", synth_frames(n=1))
    with pytest.raises(UsageError, match="frame rate"):
        open_source(path, fps=0)
    for written in ("29.97", 29.97, "30000/1001"):
        assert open_source(path, fps=written).format.fps == Fraction(30000, 1001)
    assert open_source(path, fps=Fraction(2997, 100)).format.fps == Fraction(2997, 100)  # exact stays exact
    with pytest.raises(UsageError, match="colour matrix"):
        open_source(path, matrix="bt999")
    with pytest.raises(UsageError, match="frame range"):
        FrameRange(step=0)


# ---------------------------------------------------------------------------------------
# Real media (skipped where the shared folder is absent)


def test_cockatoo_native_444_and_to_420(media: Path) -> None:
    path = media / "clips" / "cockatoo.mp4"
    src = open_source(path, frames=FrameRange(0, 3))
    assert (src.format.width, src.format.height, src.format.chroma, src.format.bit_depth) == (1280, 720, "444", 8)
    assert src.format.fps == 20 and src.num_frames == 3
    native = list(src)
    assert [p.shape for p in native[0].planes] == [(720, 1280)] * 3
    sub = list(open_source(path, frames=FrameRange(0, 3), to_pix_fmt="yuv420p"))
    assert [p.shape for p in sub[0].planes] == [(720, 1280), (360, 640), (360, 640)]
    assert np.array_equal(sub[2].planes[0], native[2].planes[0])


def test_png_from_media_is_one_444_frame(media: Path) -> None:
    pngs = sorted((media / "val").glob("*.png"))
    if not pngs:
        pytest.skip("no PNG in media/val")
    with open_source(pngs[0]) as src:
        frames = list(src)
    assert len(frames) == 1 and src.num_frames == 1
    assert frames[0].format.chroma == "444" and frames[0].format.matrix == "bt709"
    assert frames[0].format.range == "limited"
    assert 16 <= frames[0].planes[0].min() and frames[0].planes[0].max() <= 235


def test_png_16bit_rgb(tmp_path: Path) -> None:
    """16-bit RGB stays 16-bit: 4:4:4 uint16 by the same equations."""
    rgb = np.random.default_rng(15).integers(0, 65536, (16, 32, 3)).astype(np.uint16)
    path = tmp_path / "deep.png"
    with av.open(str(path), "w", format="image2") as out:
        st = out.add_stream("png")
        st.width, st.height, st.pix_fmt = 32, 16, "rgb48be"
        vf = av.VideoFrame.from_ndarray(rgb, format="rgb48le").reformat(format="rgb48be")
        for pkt in list(st.encode(vf)) + list(st.encode(None)):
            out.mux(pkt)
    src = open_source(path)
    assert src.source_pix_fmt == "rgb48be" and src.format.pix_fmt == "yuv444p16le"
    (fr,) = list(src)
    r, g, b = (rgb[..., i] / 65535 for i in range(3))
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    assert np.array_equal(fr.planes[0], np.clip(np.round(4096 + 219 * 256 * y), 0, 65535))


def test_vpy_script_through_open_source(tmp_path: Path) -> None:
    pytest.importorskip("vapoursynth")
    path = tmp_path / "s.vpy"
    path.write_text("import vapoursynth as vs\n"
                    "vs.core.std.BlankClip(width=64, height=48, format=vs.YUV420P10, length=5,"
                    " color=[512, 300, 700]).set_output()\n")
    src = open_source(path, frames=FrameRange(1, None, 2))
    got = list(src)
    assert src.format.pix_fmt == "yuv420p10le" and [f.index for f in got] == [1, 3]
    assert int(got[0].planes[1][0, 0]) == 300


def test_transport_stream_timestamps_start_at_zero(tmp_path: Path) -> None:
    """MPEG-TS starts its clock at 1.4 s or so; pts count frames from the first one."""
    frames = synth_frames("yuv420p", 8, kind="smooth")
    path = ffmpeg_write(tmp_path / "a.ts", frames, "mpegts", "libx264", options={"bf": "2"})
    with av.open(str(path)) as c:
        assert next(c.decode(video=0)).pts > 0
    src = open_source(path, frames=FrameRange(3, 3))
    assert src.num_frames is None  # TS has no frame count
    got = list(src)
    assert [(f.index, f.pts) for f in got] == [(3, 3), (4, 4), (5, 5)]
    every = list(open_source(path))
    assert all(same_pixels(g, every[g.index]) for g in got)


@pytest.mark.parametrize("gop, bframes", [(8, 2), (5, 0), (1, 0)])
def test_mp4_ranges_by_seeking_match_decoding_through(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     gop: int, bframes: int) -> None:
    frames = synth_frames("yuv420p", 40, seed=16, kind="smooth", fps=Fraction(30000, 1001))
    path = ffmpeg_write(tmp_path / "s.mp4", frames, "mp4", "libx264", rate=Fraction(30000, 1001),
                        options={"qp": "20", "g": str(gop), "bf": str(bframes)})
    every = list(open_source(path))
    monkeypatch.setattr(AvSource, "seek_min_start", 1)
    monkeypatch.setattr(AvSource, "seek_margin", 3)
    src = open_source(path)
    for start in (1, 7, 13, 22, 39):
        seeked = src._seek_to(start)  # the seek path is really taken here...
        assert seeked is not None
        seeked[0].close()
        got = list(open_source(path, frames=FrameRange(start, 4, 2)))  # ...and gives the same frames
        want = list(range(start, 40, 2))[:4]
        assert [(f.index, f.pts) for f in got] == [(k, k) for k in want]
        assert all(same_pixels(g, every[g.index]) for g in got)


def test_variable_frame_rate_mp4_is_not_seeked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    frames = synth_frames("yuv420p", 12, seed=17, kind="smooth")
    times = [0, 1, 3, 4, 7, 8, 9, 12, 13, 14, 18, 19]  # irregular: indices are not pts
    frames = [Frame(f.planes, f.format, f.index, t) for f, t in zip(frames, times)]
    path = tmp_path / "vfr.mp4"
    with av.open(str(path), "w") as out:
        st = out.add_stream("libx264", rate=25, options={"g": "4"})
        st.width, st.height, st.pix_fmt = 64, 48, "yuv420p"
        for f in frames:
            vf = planes_to_avframe(f.planes, f.format)
            vf.pts, vf.time_base = f.pts, Fraction(1, 25)
            for pkt in st.encode(vf):
                out.mux(pkt)
        for pkt in st.encode(None):
            out.mux(pkt)
    every = list(open_source(path))
    assert [f.index for f in every] == list(range(12))
    assert all(a.pts <= b.pts for a, b in zip(every, every[1:]))  # rounded to units of the average rate
    monkeypatch.setattr(AvSource, "seek_min_start", 1)
    src = open_source(path, frames=FrameRange(6, 3))
    assert not src._seekable or src._seek_to(6) is None
    got = list(src)
    assert [(f.index, f.pts) for f in got] == [(k, every[k].pts) for k in (6, 7, 8)]
    assert all(same_pixels(g, every[g.index]) for g in got)

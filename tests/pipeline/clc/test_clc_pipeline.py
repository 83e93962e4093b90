"""``.clc`` in the pipeline: sink → source → ``codeclab decode``, with a tiny fake codec.

The fake codec ``clcfake`` (registered here, no torch) is lossless and, with ``gop > 1``,
codes non-key frames as the XOR with the previous frame, so decoding from anywhere but a
keyframe gives wrong pixels: random access must really start at the right keyframe.
``delay=True`` returns each frame one packet late (like a decoder with reordering delay).
"""

from __future__ import annotations

import argparse
import zlib
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from _synth import MEDIA

from codeclab.base.errors import BitstreamError, CodecError, FormatError, UsageError
from codeclab.base.frame import Frame, VideoFormat
from codeclab.cli.transcode import add_decode
from codeclab.codecs.base import CodecSpec, Packet, register_codec
from codeclab.pipeline.clc.container import ClcReader
from codeclab.pipeline.clc.decode import decode_clc
from codeclab.pipeline.clc.sink import open_clc_sink
from codeclab.pipeline.clc.source import ClcSource, open_clc_source
from codeclab.pipeline.io.sources import FrameRange, open_source, probe


@dataclass(frozen=True)
class FakeOptions:
    gop: int = 1
    delay: bool = False
    fail_at: int = -1  # the decoder raises a plain ValueError on this packet
    wrong_size: bool = False  # the decoder returns frames of half the width


DECODED: list[int] = []  # frame indices of every packet any clcfake decoder was given


def _pack(planes: tuple[np.ndarray, ...]) -> bytes:
    return b"".join(p.tobytes() for p in planes)


def _unpack(raw: bytes, fmt: VideoFormat) -> tuple[np.ndarray, ...]:
    flat, out, pos = np.frombuffer(raw, fmt.dtype), [], 0
    for h, w in fmt.plane_shapes:
        out.append(flat[pos : pos + h * w].reshape(h, w).copy())
        pos += h * w
    return tuple(out)


class _Enc:
    def __init__(self, fmt: VideoFormat, o: FakeOptions) -> None:
        self.o, self.prev, self.n = o, None, 0

    def encode(self, frame: Frame) -> list[Packet]:
        key = self.n % self.o.gop == 0
        planes = frame.planes if key else tuple(a ^ b for a, b in zip(frame.planes, self.prev))
        self.prev, self.n = frame.planes, self.n + 1
        data = zlib.compress(_pack(planes))
        return [Packet(data, frame.index, frame.pts, key, {"bits": 8 * len(data), "encode_s": 0.001})]

    def flush(self) -> list[Packet]:
        return []


class _Dec:
    def __init__(self, fmt: VideoFormat, o: FakeOptions) -> None:
        self.fmt, self.o, self.prev, self.held = fmt, o, None, []

    def decode(self, packet: Packet) -> list[Frame]:
        DECODED.append(packet.index)
        if packet.index == self.o.fail_at:
            raise ValueError("bad payload")
        planes = _unpack(zlib.decompress(packet.data), self.fmt)
        if not packet.keyframe:
            planes = tuple(a ^ b for a, b in zip(planes, self.prev))
        self.prev = planes
        f = Frame(planes, self.fmt, packet.index, packet.pts)
        if self.o.wrong_size:
            half = self.fmt.with_(width=self.fmt.width // 2)
            f = Frame(tuple(p[:, : p.shape[1] // 2] for p in planes), half, packet.index)
        if not self.o.delay:
            return [f]
        self.held.append(f)
        return [self.held.pop(0)] if len(self.held) > 1 else []

    def flush(self) -> list[Frame]:
        out, self.held = self.held, []
        return out


SPEC = register_codec(CodecSpec("clcfake", "test codec: zlib, XOR between keyframes", FakeOptions, _Enc, _Dec,
                                None, ".clc"))
FMT = VideoFormat(32, 16, "420", 10, Fraction(24000, 1001))


def _frames(n: int, fmt: VideoFormat = FMT) -> list[Frame]:
    rng = np.random.default_rng(7)
    return [Frame(tuple(rng.integers(0, fmt.max_value + 1, s, dtype=fmt.dtype) for s in fmt.plane_shapes), fmt, i, i)
            for i in range(n)]


def _encode(path: Path, n: int, options: FakeOptions = FakeOptions(), fmt: VideoFormat = FMT) -> list[Frame]:
    frames = _frames(n, fmt)
    enc = SPEC.make_encoder(fmt, options)
    with open_clc_sink(path, "clcfake", fmt, options) as sink:
        for f in frames:
            for p in enc.encode(f):
                sink.write(p)
    return frames


def _same(a: Frame, b: Frame) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a.planes, b.planes, strict=True))


# ------------------------------------------------------------ sink and source

def test_sink_header_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "a.clc"
    _encode(path, 3, FakeOptions(gop=2))
    with ClcReader(path) as r:
        h = r.header
        assert (h.codec, h.format, h.options) == ("clcfake", FMT, {"gop": 2, "delay": False, "fail_at": -1,
                                                          "wrong_size": False})
        assert r.read_packet(1).props["bits"] == 8 * len(r.read_packet(1).data)  # encoder props kept
        assert [r.is_keyframe(i) for i in range(3)] == [True, False, True]


@pytest.mark.parametrize("options", [FakeOptions(), FakeOptions(gop=3), FakeOptions(gop=4, delay=True)])
def test_source_decodes_everything(tmp_path: Path, options: FakeOptions) -> None:
    path = tmp_path / "a.clc"
    frames = _encode(path, 10, options)
    with open_clc_source(path) as src:
        assert src.format == FMT and src.num_frames == 10
        out = list(src)
    assert [f.index for f in out] == list(range(10)) and [f.pts for f in out] == list(range(10))
    assert all(_same(a, b) for a, b in zip(frames, out, strict=True))
    assert out[3].props["bits"] > 0 and out[3].format == FMT


@pytest.mark.parametrize("options", [FakeOptions(), FakeOptions(gop=3), FakeOptions(gop=5, delay=True)])
@pytest.mark.parametrize(("start", "count", "step"), [(0, None, 1), (4, 3, 1), (7, None, 1), (1, None, 4),
                                                      (2, 2, 5), (11, None, 1), (9, 1, 1), (3, 0, 1)])
def test_frame_ranges_use_keyframes(tmp_path: Path, options: FakeOptions, start: int, count: int | None,
                                    step: int) -> None:
    path = tmp_path / "a.clc"
    frames = _encode(path, 12, options)
    want = list(range(start, 12, step))[:count]
    DECODED.clear()
    with ClcSource(path, frames=FrameRange(start, count, step)) as src:
        assert src.num_frames == len(want)
        out = list(src)
    assert [f.index for f in out] == want
    assert all(_same(frames[f.index], f) for f in out)
    if options.gop == 1 and not options.delay:  # intra: only the wanted packets are decoded
        assert DECODED == want
    if want:  # decoding starts at the keyframe at or before the first wanted frame
        assert DECODED[0] == want[0] - want[0] % options.gop


def test_decoder_failure_names_file_and_packet(tmp_path: Path) -> None:
    path = tmp_path / "a.clc"
    _encode(path, 4, FakeOptions(fail_at=2))
    with ClcSource(path) as src, pytest.raises(CodecError, match=r"a\.clc: packet 2: decoder 'clcfake' failed"):
        list(src)


def test_wrong_decoder_output_is_caught(tmp_path: Path) -> None:
    path = tmp_path / "a.clc"
    _encode(path, 2, FakeOptions(wrong_size=True))
    with ClcSource(path) as src, pytest.raises(FormatError, match="returned 16x16 .* header says 32x16"):
        list(src)


def test_unknown_codec_and_bad_options(tmp_path: Path) -> None:
    from codeclab.pipeline.clc.container import ClcWriter, StreamHeader

    path = tmp_path / "u.clc"
    with ClcWriter(path, StreamHeader("nosuchcodec", FMT)) as w:
        w.write(Packet(b"x", 0))
    with ClcSource(path) as src, pytest.raises(UsageError, match="unknown codec 'nosuchcodec'"):
        list(src)
    with ClcWriter(path, StreamHeader("clcfake", FMT, {"colour": 1})) as w:
        w.write(Packet(b"x", 0))
    with ClcSource(path) as src, pytest.raises(UsageError, match="no option 'colour'"):
        list(src)


def test_source_options(tmp_path: Path) -> None:
    path = tmp_path / "a.clc"
    frames = _encode(path, 2)
    with open_clc_source(path, fps=Fraction(50), matrix="bt601:full", size=(32, 16), pix_fmt="yuv420p10le") as src:
        assert (src.format.fps, src.format.matrix, src.format.range) == (50, "bt601", "full")
        assert all(f.format == src.format for f in src)
    with open_clc_source(path, to_pix_fmt="yuv420p") as src:  # swscale, like every other source
        out = list(src)
    assert src.format == FMT.with_(bit_depth=8) and out[1].format == src.format and out[1].index == 1
    assert np.abs(out[1].y.astype(int) - (frames[1].y.astype(int) >> 2)).max() <= 1
    with pytest.raises(UsageError, match="not 64x16"):
        open_clc_source(path, size=(64, 16))
    with pytest.raises(UsageError, match="not yuv420p"):
        open_clc_source(path, pix_fmt="yuv420p")


def test_open_source_and_probe_know_clc(tmp_path: Path) -> None:
    path = tmp_path / "a.clc"
    frames = _encode(path, 5)
    with open_source(path, frames=FrameRange(1, 2)) as src:
        assert isinstance(src, ClcSource) and src.num_frames == 2
        assert [f.index for f in src] == [1, 2]
        assert _same(next(iter(src)), frames[1])  # re-iterable
    info = probe(path)
    assert (info.num_frames, info.container, info.codec, info.format) == (5, "clc", "clcfake", FMT)


def test_open_source_finds_clc_without_importing_it_first(tmp_path: Path) -> None:
    """sources.py routes .clc lazily: a fresh interpreter that never imported the .clc source."""
    import subprocess
    import sys

    path = tmp_path / "a.clc"
    _encode(path, 3)
    code = ("import sys; from codeclab.pipeline.io.sources import probe; i = probe(sys.argv[1]); "
            "assert 'codeclab.pipeline.clc.source' in sys.modules; print(i.num_frames, i.codec)")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["3", "clcfake"]


def test_sink_wants_a_clc_name(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="name the output .clc"):
        open_clc_sink(tmp_path / "out.mp4", SPEC, FMT)
    with open_clc_sink(tmp_path / "out.CLC", SPEC, FMT, model="m1") as w:
        assert w.format == FMT and w.packets_written == 0
    with ClcReader(tmp_path / "out.CLC") as r:
        assert (r.header.model, r.header.options) == ("m1", {})


def test_sink_takes_the_model_id_from_the_first_packet(tmp_path: Path) -> None:
    path = tmp_path / "m.clc"
    with open_clc_sink(path, SPEC, FMT) as w:
        w.write(Packet(b"a", 0, props={"model_id": "abc123", "bits": 8}))
        w.write(Packet(b"b", 1, props={"model_id": "other"}))
    with ClcReader(path) as r:
        assert r.header.model == "abc123" and r.read_packet(0).props == {"bits": 8}
    with open_clc_sink(path, SPEC, FMT, model="given") as w:
        w.write(Packet(b"a", 0, props={"model_id": "abc123"}))
        with pytest.raises(UsageError, match="already written"):
            w.amend_header(model="late")
    with ClcReader(path) as r:
        assert r.header.model == "given"


def test_damaged_file_through_the_source(tmp_path: Path) -> None:
    path = tmp_path / "a.clc"
    _encode(path, 3)
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(BitstreamError, match="a.clc: no valid trailer"):
        open_clc_source(path)


# ------------------------------------------------------------ codeclab decode

def _needs_sinks() -> None:
    import importlib.util

    if importlib.util.find_spec("codeclab.pipeline.io.sinks") is None or importlib.util.find_spec(
            "codeclab.pipeline.io.sources") is None:
        pytest.skip("codeclab.pipeline.io.sinks/sources not there yet")


def _read_y4m_frames(path: Path, fmt: VideoFormat) -> list[tuple[np.ndarray, ...]]:
    """An independent minimal y4m reader (header line, FRAME lines, planar data)."""
    data = path.read_bytes()
    head, rest = data.split(b"\n", 1)
    tags = head.split()
    assert tags[0] == b"YUV4MPEG2" and f"W{fmt.width}".encode() in tags and f"H{fmt.height}".encode() in tags
    out = []
    while rest:
        line, rest = rest.split(b"\n", 1)
        assert line.startswith(b"FRAME")
        out.append(_unpack(rest[: fmt.frame_bytes], fmt))
        rest = rest[fmt.frame_bytes :]
    return out


def test_decode_to_y4m_and_yuv(tmp_path: Path) -> None:
    _needs_sinks()
    path = tmp_path / "a.clc"
    frames = _encode(path, 6, FakeOptions(gop=3))
    r = decode_clc(path, tmp_path / "out.y4m", start=2, frames=3)
    assert (r.frames, r.codec, r.format) == (3, "clcfake", FMT)
    got = _read_y4m_frames(tmp_path / "out.y4m", FMT)
    assert len(got) == 3 and all(all(np.array_equal(a, b) for a, b in zip(g, frames[i].planes))
                                 for g, i in zip(got, (2, 3, 4)))
    decode_clc(path, tmp_path / "out.yuv")
    raw = (tmp_path / "out.yuv").read_bytes()
    assert raw == b"".join(_pack(f.planes) for f in frames)  # raw planar, little-endian 10-bit


def test_decode_to_ffv1_mkv_is_lossless(tmp_path: Path) -> None:
    _needs_sinks()
    import av

    path = tmp_path / "a.clc"
    frames = _encode(path, 3)
    decode_clc(path, tmp_path / "out.mkv")
    with av.open(str(tmp_path / "out.mkv")) as c:
        dec = [tuple(np.from_dlpack(p).copy() for p in f.planes) for f in c.decode(video=0)]
    assert len(dec) == 3
    assert all(all(np.array_equal(a, b) for a, b in zip(d, f.planes)) for d, f in zip(dec, frames))


def test_decode_failure_leaves_no_output(tmp_path: Path) -> None:
    _needs_sinks()
    path = tmp_path / "a.clc"
    _encode(path, 4, FakeOptions(fail_at=3))
    with pytest.raises(CodecError):
        decode_clc(path, tmp_path / "out.y4m")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.clc"]


def test_add_decode(tmp_path: Path) -> None:
    _needs_sinks()
    path = tmp_path / "a.clc"
    _encode(path, 5)
    parser = argparse.ArgumentParser(prog="codeclab")
    add_decode(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["decode", str(path), "-o", str(tmp_path / "o.yuv"), "--start", "1", "--frames", "2",
                              "-q"])
    assert args.func(args) == 0
    assert (tmp_path / "o.yuv").stat().st_size == 2 * FMT.frame_bytes
    with pytest.raises(SystemExit):
        parser.parse_args(["decode", str(path), "-o", "x.y4m", "--step", "0"])




def test_real_clip_through_clc_and_back(tmp_path: Path) -> None:
    """A real H.264 clip -> .clc (keyframe every 4) -> decode frames 5..8 -> .y4m, against PyAV's own decode."""
    import av

    clip = MEDIA / "clips" / "realshort.mp4"
    if not clip.exists():
        pytest.skip("shared media not available")
    path = tmp_path / "real.clc"
    with open_source(clip, frames=FrameRange(0, 12)) as src:
        fmt = src.format
        enc = SPEC.make_encoder(fmt, FakeOptions(gop=4))
        with open_clc_sink(path, SPEC, fmt, FakeOptions(gop=4)) as sink:
            for f in src:
                for pk in enc.encode(f):
                    sink.write(pk)
    r = decode_clc(path, tmp_path / "out.y4m", start=5, frames=4)
    assert r.frames == 4 and r.format == fmt
    with av.open(str(clip)) as c:
        ref = [tuple(np.from_dlpack(p).copy() for p in vf.planes) for _, vf in zip(range(9), c.decode(video=0))][5:9]
    got = _read_y4m_frames(tmp_path / "out.y4m", fmt)
    assert len(got) == 4
    assert all(all(np.array_equal(a, b) for a, b in zip(g, rf, strict=True)) for g, rf in zip(got, ref))


def test_transcode_to_clc_then_decode(tmp_path: Path) -> None:
    """transcode (another helper's) writes .clc for a codec without a standard stream; decode reads it back."""
    import importlib.util

    if importlib.util.find_spec("codeclab.pipeline.transcode") is None:
        pytest.skip("codeclab.pipeline.transcode not there yet")
    from codeclab.pipeline.io.sinks import open_sink
    from codeclab.pipeline.transcode import transcode

    frames = _frames(5)
    src = tmp_path / "src.y4m"
    with open_sink(src, FMT) as s:
        for f in frames:
            s.write(f)
    res = transcode(src, tmp_path / "out.clc", "clcfake", {"gop": 2}, progress=False, ms_ssim=False,
                    recon_path=tmp_path / "recon.yuv")
    assert res.frames == 5
    with ClcReader(tmp_path / "out.clc") as r:
        assert r.header.options["gop"] == 2 and len(r) == 5
        props = r.read_packet(1).props
    assert props["psnr_y"] >= 99 and props["bits"] > 0 and "encode_s" in props  # lossless: capped PSNR
    decode_clc(tmp_path / "out.clc", tmp_path / "dec.yuv")
    assert (tmp_path / "dec.yuv").read_bytes() == (tmp_path / "recon.yuv").read_bytes() == b"".join(
        _pack(f.planes) for f in frames)


def test_codeclab_decode_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Through the real CLI entry point (in-process, so the test codec is registered)."""
    from codeclab.cli import main

    path = tmp_path / "a.clc"
    frames = _encode(path, 6, FakeOptions(gop=3))
    assert main(["decode", str(path), "-o", str(tmp_path / "o.y4m"), "--start", "4", "--frames", "2"]) == 0
    err = capsys.readouterr().err
    assert "2 frames" in err and "clcfake" in err
    got = _read_y4m_frames(tmp_path / "o.y4m", FMT)
    assert all(all(np.array_equal(a, b) for a, b in zip(g, frames[i].planes)) for g, i in zip(got, (4, 5)))


def test_codeclab_decode_bad_input(tmp_path: Path) -> None:
    """Damaged, foreign and missing inputs: exit 1, one line naming the file, no traceback, no output."""
    import subprocess
    import sys

    good = tmp_path / "a.clc"
    _encode(good, 3)
    cases = {"trunc.clc": good.read_bytes()[:-3], "text.clc": b"hello, this is not a video\n" * 4,
             "flip.clc": bytes(b ^ (i == 100) for i, b in enumerate(good.read_bytes()))}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    for name, want in [("trunc.clc", "no valid trailer"), ("text.clc", "bad magic"), ("flip.clc", "CRC mismatch"),
                       ("missing.clc", "no such file")]:
        out = tmp_path / "out.y4m"
        r = subprocess.run([sys.executable, "-m", "codeclab.cli", "decode", str(tmp_path / name), "-o", str(out)],
                           capture_output=True, text=True)
        assert r.returncode == 1, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and name in lines[0] and want in lines[0] and "Traceback" not in r.stderr
        assert not out.exists()

"""x265/x264 anchors and FFmpegDecoder, checked against FFmpeg demuxing/decoding on its own."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest
from _synth import synth_frames

from codeclab.base.errors import FormatError, UsageError
from codeclab.base.frame import Frame
from codeclab.codecs import get_codec, make_options
from codeclab.codecs.ffmpeg import FFmpegDecoder
from codeclab.pipeline.io.sinks import open_packet_sink


def _encode(codec: str, frames: list[Frame], **opts) -> list:
    spec = get_codec(codec)
    enc = spec.make_encoder(frames[0].format, make_options(spec, opts))
    packets = []
    for f in frames:
        packets += enc.encode(f)
    return packets + enc.flush()


def _decode(codec: str, fmt, packets) -> list[Frame]:
    spec = get_codec(codec)
    dec = spec.make_decoder(fmt, make_options(spec, {}))
    out = []
    for p in packets:
        out += dec.decode(p)
    return out + dec.flush()


def _ffmpeg_decode(data: bytes, demuxer: str) -> list:
    """FFmpeg parses and decodes the Annex-B stream by itself: (pix_fmt, planes, pict_type)."""
    with av.open(io.BytesIO(data), format=demuxer) as c:
        return [(f.format.name, tuple(np.from_dlpack(p).copy() for p in f.planes), int(f.pict_type))
                for f in c.decode(video=0)]


def _photo_like(n: int = 2, pix_fmt: str = "yuv420p") -> list[Frame]:
    """Smooth gradients plus mild noise: a lossy codec has something to trade."""
    frames = synth_frames(pix_fmt, n=n, width=128, height=96, kind="smooth")
    rng = np.random.default_rng(3)
    out = []
    for f in frames:
        top = f.format.max_value
        planes = tuple(np.clip(p.astype(np.int32) + rng.integers(-top // 40, top // 40 + 1, p.shape), 0, top)
                       .astype(p.dtype) for p in f.planes)
        out.append(f.with_planes(planes))
    return out


@pytest.mark.parametrize("codec", ["x265", "x264"])
def test_default_is_all_intra_at_the_qp_asked(codec):
    frames = _photo_like(4)
    packets = _encode(codec, frames, qp=30)
    assert len(packets) == 4 and all(p.keyframe for p in packets)
    assert [p.index for p in packets] == [0, 1, 2, 3]
    assert all(p.props["pict_type"] == "I" and p.props["qp"] == 30.0 for p in packets)  # ipratio=1
    assert all(p.props["bits"] == 8 * len(p.data) for p in packets)
    assert all(p.data.startswith((b"\x00\x00\x00\x01", b"\x00\x00\x01")) for p in packets)  # Annex-B
    ref = _ffmpeg_decode(b"".join(p.data for p in packets), get_codec(codec).stream_codec)
    assert [t for _, _, t in ref] == [1, 1, 1, 1]  # AV_PICTURE_TYPE_I


def test_lower_qp_spends_more_bits():
    frames = _photo_like(2)
    bits22 = sum(p.bits for p in _encode("x265", frames, qp=22))
    bits37 = sum(p.bits for p in _encode("x265", frames, qp=37))
    assert bits22 > 1.5 * bits37


def test_keyint_gives_i_then_p_pictures():
    packets = _encode("x265", _photo_like(4), qp=30, keyint=4)
    assert [p.props["pict_type"] for p in packets] == ["I", "P", "P", "P"]
    assert [p.keyframe for p in packets] == [True, False, False, False]


@pytest.mark.parametrize("codec", ["x265", "x264"])
def test_bframes_reorder_with_decoding_times(codec, tmp_path):
    """bframes > 0: B pictures, packets in decoding order (increasing dts, never after the
    pts), and the muxed file decodes to the frames in presentation order."""
    frames = _photo_like(6)
    packets = _encode(codec, frames, qp=30, keyint=6, bframes=2)
    assert "B" in [p.props["pict_type"] for p in packets]
    dts = [p.dts for p in packets]
    assert dts == sorted(dts) and all(p.dts <= p.pts for p in packets)
    assert [p.pts for p in packets] != sorted(p.pts for p in packets)  # reordered
    path = tmp_path / "o.mp4"
    with open_packet_sink(path, get_codec(codec).stream_codec, frames[0].format) as sink:
        for p in packets:
            sink.write(p)
    ours = _decode(codec, frames[0].format, packets)
    with av.open(str(path)) as c:
        muxed = list(c.decode(video=0))
    assert [int(f.pts) for f in muxed] == sorted(int(f.pts) for f in muxed) and len(muxed) == 6
    assert all(np.array_equal(a.planes[0], np.from_dlpack(b.planes[0])) for a, b in zip(ours, muxed))


@pytest.mark.parametrize("codec,pix_fmt", [("x265", "yuv420p10le"), ("x265", "yuv444p10le"), ("x265", "yuv422p"),
                                           ("x265", "gray12le"), ("x264", "yuv420p10le"), ("x264", "yuv444p")])
def test_decoder_matches_ffmpeg_and_keeps_the_layout(codec, pix_fmt):
    frames = _photo_like(2, pix_fmt)
    fmt = frames[0].format
    packets = _encode(codec, frames, qp=28)
    ours = _decode(codec, fmt, packets)
    ref = _ffmpeg_decode(b"".join(p.data for p in packets), get_codec(codec).stream_codec)
    assert len(ours) == len(ref) == 2
    for f, (name, planes, _) in zip(ours, ref):
        assert f.format == fmt and f.planes[0].dtype == fmt.dtype
        assert name == fmt.pix_fmt  # 10-bit stays 10-bit (Main10 / High10), 4:4:4 stays 4:4:4
        assert all(np.array_equal(a, b.view(a.dtype)) for a, b in zip(f.planes, planes))


def test_decode_matches_decoding_the_muxed_file(tmp_path):
    frames = _photo_like(3, "yuv420p10le")
    fmt = frames[0].format
    packets = _encode("x265", frames, qp=32)
    ours = _decode("x265", fmt, packets)
    for ext in (".mp4", ".mkv"):
        path = tmp_path / f"o{ext}"
        with open_packet_sink(path, "hevc", fmt) as sink:
            for p in packets:
                sink.write(p)
        with av.open(str(path)) as c:
            muxed = [tuple(np.from_dlpack(p).copy() for p in f.planes) for f in c.decode(video=0)]
        assert len(muxed) == 3
        for f, planes in zip(ours, muxed):
            assert all(np.array_equal(a, b.view(np.uint16)) for a, b in zip(f.planes, planes))


def test_internal_bit_depth_codes_10bit_and_returns_the_source_depth():
    frames = _photo_like(1, "yuv420p")
    packets = _encode("x265", frames, qp=30, bit_depth=10)
    ref = _ffmpeg_decode(packets[0].data, "hevc")
    assert ref[0][0] == "yuv420p10le"  # the stream is Main10
    (ours,) = _decode("x265", frames[0].format, packets)
    assert ours.format.bit_depth == 8
    # HM's rounding of the 10-bit picture back to 8 bits
    expect = np.minimum((ref[0][1][0].view(np.uint16).astype(np.uint32) + 2) >> 2, 255)
    assert np.array_equal(ours.planes[0], expect)


def test_options_are_checked():
    spec = get_codec("x265")
    assert make_options(spec, {}).qp == 32 and make_options(spec, {}).keyint == 1
    o = make_options(spec, {"crf": "23"})
    assert o.crf == 23.0 and o.qp is None  # crf given: qp ignored
    with pytest.raises(UsageError, match="not both"):
        make_options(spec, {"qp": 22, "crf": 23})
    with pytest.raises(UsageError, match="no option"):
        make_options(spec, {"quant": "rdoq"})
    with pytest.raises(UsageError, match="0..51"):
        make_options(spec, {"qp": 60})


def test_crf_mode_encodes():
    packets = _encode("x264", _photo_like(2), crf=20)
    assert len(packets) == 2 and "qp" in packets[0].props


def test_unsupported_layouts_are_format_errors():
    with pytest.raises(FormatError, match="libx264 codes 8, 10-bit"):
        _encode("x264", _photo_like(1, "yuv420p12le"))
    with pytest.raises(FormatError, match="libx265"):
        _encode("x265", _photo_like(1, "yuv420p16le"))


def test_extra_params_reach_the_encoder_and_win():
    packets = _encode("x265", _photo_like(4), qp=30, params="keyint=2:min-keyint=2:scenecut=0")
    assert [p.props["pict_type"] for p in packets] == ["I", "P", "I", "P"]
    with pytest.raises(UsageError, match="key=value"):
        _encode("x265", _photo_like(1), params="keyint")


def test_ffmpeg_decoder_rejects_unknown_stream():
    with pytest.raises(UsageError):
        FFmpegDecoder("vp9", _photo_like(1)[0].format)


def test_unknown_preset_or_tune_is_a_usage_error():
    with pytest.raises(UsageError, match="unknown preset 'bogus'"):
        _encode("x265", _photo_like(1), preset="bogus")
    with pytest.raises(UsageError, match="unknown tune 'stillimage'"):
        _encode("x265", _photo_like(1), tune="stillimage")  # an x264 tuning
    assert len(_encode("x264", _photo_like(1), tune="stillimage")) == 1

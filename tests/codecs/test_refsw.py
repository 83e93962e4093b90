"""HM and VTM (codecs ``hm``/``vtm``): the reference encoders run as external binaries.

Tiny pictures, one frame each: the binaries are slow (VTM especially). Tests that run an
encoder skip when its binary is absent; option, format and missing-binary checks need none.
"""

from __future__ import annotations

import math
from pathlib import Path

import av
import numpy as np
import pytest
from _synth import synth_frames

from codeclab import cli
from codeclab.base.errors import CodecError, FormatError, UsageError
from codeclab.base.frame import VideoFormat
from codeclab.codecs.base import get_codec, make_options
from codeclab.codecs.refsw import _HM, _VTM, find_binary
from codeclab.pipeline.io.sinks import open_sink
from codeclab.pipeline.io.sources import open_source
from codeclab.pipeline.transcode import code_frames, transcode


def _need(tool) -> None:
    """Skip unless the encoder binary can be found (option unset: env variable or shared tools)."""
    try:
        find_binary(tool, None)
    except CodecError as e:
        pytest.skip(str(e))


def _code_one(codec: str, pix_fmt: str, width: int, height: int, **opts):
    spec = get_codec(codec)
    frames = synth_frames(pix_fmt, n=1, width=width, height=height, kind="smooth")
    out = list(code_frames(frames, spec, make_options(spec, opts), ms_ssim=False))
    assert len(out) == 1
    return frames[0], out[0]


def _check_round_trip(src, cf, qp: int) -> None:
    """Decoded picture in the source's format, sensible quality, bits = the packet's bytes."""
    assert cf.decoded.format == src.format
    assert [p.shape for p in cf.decoded.planes] == [p.shape for p in src.planes]
    assert cf.metrics["psnr_y"] > 30.0
    (p,) = cf.packets
    assert p.keyframe and p.index == src.index and p.pts == src.pts
    assert p.props["bits"] == 8 * len(p.data) == cf.metrics["bits"]
    assert cf.metrics["qp"] == float(qp) and cf.metrics["pict_type"] == "I"
    assert p.props["encoder_cpu_s"] >= 0.0


@pytest.mark.parametrize("pix_fmt,width,height", [("yuv420p", 64, 48), ("yuv420p", 70, 46), ("yuv420p10le", 70, 46)])
def test_hm_round_trip_and_its_own_psnr(pix_fmt, width, height):
    _need(_HM)
    src, cf = _code_one("hm", pix_fmt, width, height, qp=22)
    _check_round_trip(src, cf, 22)
    # HM measures the cropped picture with peak 255 << (depth - 8): 1020 at 10 bit, ours 1023
    depth = src.format.bit_depth
    peak_gap = 20 * math.log10(((1 << depth) - 1) / (255 << (depth - 8)))
    assert cf.packets[0].props["ref_psnr_y"] + peak_gap == pytest.approx(cf.metrics["psnr_y"], abs=0.01)


def test_hm_rdoq_off_still_decodes():
    _need(_HM)
    src, cf = _code_one("hm", "yuv420p", 64, 48, qp=22, rdoq=False)
    _check_round_trip(src, cf, 22)


def test_vtm_round_trip():
    _need(_VTM)
    src, cf = _code_one("vtm", "yuv420p", 70, 46, qp=22)
    _check_round_trip(src, cf, 22)
    # VTM measures at its internal 10 bits: close to, not equal to, the 8-bit decode's PSNR
    assert abs(cf.packets[0].props["ref_psnr_y"] - cf.metrics["psnr_y"]) < 3.0


def test_vtm_transcode_into_clc(tmp_path):
    _need(_VTM)
    frames = synth_frames("yuv420p", n=1, width=64, height=48, kind="smooth")
    src = tmp_path / "in.y4m"
    with open_sink(src, frames[0].format) as s:
        s.write(frames[0])
    with pytest.raises(UsageError, match=r"\.clc"):
        transcode(src, tmp_path / "out.mp4", "vtm", {"qp": 32}, progress=False, ms_ssim=False)
    r = transcode(src, tmp_path / "out.clc", "vtm", {"qp": 32}, recon_path=tmp_path / "rec.y4m", progress=False,
                  ms_ssim=False)
    assert r.frames == 1 and r.bits > 0 and r.summary["psnr_y"] > 30.0
    with open_source(tmp_path / "out.clc") as a, open_source(tmp_path / "rec.y4m") as b:
        (da,), (db,) = list(a), list(b)
    assert all(np.array_equal(x, y) for x, y in zip(da.planes, db.planes))


@pytest.mark.parametrize("codec,env", [("hm", "CODECLAB_HM"), ("vtm", "CODECLAB_VTM")])
def test_missing_binary_is_one_line(codec, env, monkeypatch):
    spec = get_codec(codec)
    frames = synth_frames("yuv420p", n=1, kind="smooth")
    with pytest.raises(CodecError) as e:
        list(code_frames(frames, spec, make_options(spec, {"binary": "/nonexistent"})))
    msg = str(e.value)
    assert "\n" not in msg and "/nonexistent" in msg and "binary=PATH" in msg and env in msg
    monkeypatch.setenv(env, "/nonexistent/env-encoder")
    with pytest.raises(CodecError, match=f"/nonexistent/env-encoder.*{env}"):
        spec.make_encoder(frames[0].format, make_options(spec, {}))


@pytest.mark.parametrize("codec", ["hm", "vtm"])
def test_formats_and_options(codec):
    spec = get_codec(codec)
    opts = make_options(spec, {})
    assert opts.qp == 32 and opts.cfg is None and opts.binary is None
    for fmt in (VideoFormat(64, 48, "444"), VideoFormat(64, 48, "420", 12)):
        with pytest.raises(FormatError):
            spec.make_encoder(fmt, opts)
    with pytest.raises(UsageError):
        make_options(spec, {"qp": 70})
    with pytest.raises(UsageError, match="no option"):
        make_options(spec, {"crf": 20})


def test_registry_entries():
    hm, vtm = get_codec("hm"), get_codec("vtm")
    assert (hm.stream_codec, hm.raw_ext) == ("hevc", ".hevc")
    assert (vtm.stream_codec, vtm.raw_ext) == (None, ".clc")
    assert make_options(hm, {"rdoq": "off"}).rdoq is False
    assert "HM 16.20" in hm.description and "VTM 23.13" in vtm.description


def test_cli_transcode_hm_to_mp4(tmp_path: Path):
    _need(_HM)
    frames = synth_frames("yuv420p", n=1, width=64, height=48, kind="smooth")
    y4m, out = tmp_path / "in.y4m", tmp_path / "out.mp4"
    with open_sink(y4m, frames[0].format) as s:
        s.write(frames[0])
    assert cli.main(["transcode", str(y4m), "-o", str(out), "--codec", "hm", "--qp", "32", "-q"]) == 0
    with av.open(str(out)) as c:
        decoded = list(c.decode(video=0))
    assert len(decoded) == 1 and (decoded[0].width, decoded[0].height) == (64, 48)


def test_missing_hm_decoder_is_one_line(monkeypatch):
    """HM's decoder (hm_decode, the conformance tests' second decoder) is found like the encoders."""
    from codeclab.codecs.refsw import hm_decode

    monkeypatch.setenv("CODECLAB_HM_DECODER", "/nonexistent/TAppDecoderStatic")
    with pytest.raises(CodecError) as e:
        hm_decode(b"", 64, 48, 8)
    msg = str(e.value)
    assert "\n" not in msg and "HM 16.20 decoder not found at /nonexistent/TAppDecoderStatic" in msg
    assert "CODECLAB_HM_DECODER=PATH" in msg and "-x binary" not in msg

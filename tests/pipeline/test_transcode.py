"""The per-frame coding loop and transcode, checked against FFmpeg decoding the files we write."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest
from _synth import synth_frames

from codeclab.base.errors import CodecError, InputError, UsageError
from codeclab.base.frame import Frame
from codeclab.codecs.base import CodecSpec, Packet, get_codec, make_options
from codeclab.pipeline.io.sinks import open_sink
from codeclab.pipeline.io.sources import FrameRange, open_source
from codeclab.pipeline.metrics import MetricsLog, frame_metrics
from codeclab.pipeline.transcode import code_frames, transcode


# --- a delaying fake codec: encoder holds 2 frames, decoder holds 1 --------------------------------
@dataclass(frozen=True)
class _DelayOpts:
    delay: int = 2


class _DelayEnc:
    def __init__(self, fmt, o):
        self.q: list[Frame] = []
        self.delay = o.delay

    def _pk(self, f: Frame) -> Packet:
        return Packet(b"".join(p.tobytes() for p in f.planes), f.index, f.pts)

    def encode(self, f):
        self.q.append(f)
        return [self._pk(self.q.pop(0))] if len(self.q) > self.delay else []

    def flush(self):
        out = [self._pk(f) for f in self.q]
        self.q = []
        return out


class _DelayDec:
    def __init__(self, fmt, o):
        self.fmt, self.held = fmt, None

    def _frame(self, p):
        buf = np.frombuffer(p.data, self.fmt.dtype)
        planes, pos = [], 0
        for h, w in self.fmt.plane_shapes:
            planes.append(buf[pos:pos + h * w].reshape(h, w).copy())
            pos += h * w
        return Frame(tuple(planes), self.fmt, p.index, p.pts)

    def decode(self, p):
        out = [self._frame(self.held)] if self.held is not None else []
        self.held = p
        return out

    def flush(self):
        out = [self._frame(self.held)] if self.held is not None else []
        self.held = None
        return out


_DELAY = CodecSpec("delay-test", "lossless, delayed", _DelayOpts, _DelayEnc, _DelayDec, None, ".bin")


def test_code_frames_handles_encoder_flush_and_decoder_delay():
    frames = synth_frames("yuv420p", n=5)
    out = list(code_frames(iter(frames), _DELAY, _DelayOpts()))
    assert [c.source.index for c in out] == [0, 1, 2, 3, 4]
    for c, f in zip(out, frames):
        assert c.decoded.index == f.index
        assert all(np.array_equal(a, b) for a, b in zip(c.decoded.planes, f.planes))
        assert c.metrics["bits"] == 8 * sum(p.nbytes for p in f.planes)
        assert c.metrics["psnr_y"] == 100.0  # PSNR_CAP_DB: lossless
        assert c.row is c.metrics
        assert len(c.packets) == 1 and c.packets[0].index == f.index


def test_code_frames_is_lazy():
    """Frames are pulled only as the loop advances (memory bounded by the codec delay)."""
    pulled = []

    def gen():
        for f in synth_frames("yuv420p", n=50):
            pulled.append(f.index)
            yield f

    it = code_frames(gen(), _DELAY, _DelayOpts())
    first = next(it)
    assert first.source.index == 0
    assert len(pulled) <= 5


def test_code_frames_empty_input_yields_nothing():
    assert list(code_frames([], _DELAY, _DelayOpts())) == []


def test_code_frames_rejects_a_decoder_that_loses_frames():
    class Lossy(_DelayDec):
        def flush(self):
            return []

    spec = CodecSpec("lossy-test", "", _DelayOpts, _DelayEnc, Lossy, None)
    with pytest.raises(CodecError, match="never came out"):
        list(code_frames(synth_frames(n=3), spec, _DelayOpts()))


def test_code_frames_x265_measures_what_ffmpeg_decodes(make_frames):
    frames = make_frames("yuv420p", n=3, width=128, height=96, kind="smooth")
    spec = get_codec("x265")
    out = list(code_frames(frames, spec, make_options(spec, {"qp": 27})))
    assert len(out) == 3
    # decode the concatenated Annex-B stream with FFmpeg's own demuxer+decoder
    data = b"".join(p.data for c in out for p in c.packets)
    import io

    with av.open(io.BytesIO(data), format="hevc") as c:
        ref = [tuple(np.from_dlpack(p).copy() for p in f.planes) for f in c.decode(video=0)]
    for c, planes in zip(out, ref):
        assert all(np.array_equal(a, b) for a, b in zip(c.decoded.planes, planes))
        m = frame_metrics(c.source, c.decoded)
        assert c.metrics["psnr_y"] == m["psnr_y"] and 30 < m["psnr_y"] < 100
        assert c.metrics["bits"] == 8 * sum(len(p.data) for p in c.packets)
        assert c.metrics["qp"] == 27.0 and c.metrics["pict_type"] == "I"
        assert c.metrics["encode_s"] >= 0 and c.metrics["decode_s"] >= 0


def _write_y4m(path: Path, frames: list[Frame]) -> None:
    with open_sink(path, frames[0].format) as s:
        for f in frames:
            s.write(f)


def test_transcode_writes_playable_file_metrics_and_recon(tmp_path, make_frames):
    frames = make_frames("yuv420p10le", n=4, width=96, height=64, kind="smooth")
    src = tmp_path / "in.y4m"
    _write_y4m(src, frames)
    out, csv, recon = tmp_path / "out.mkv", tmp_path / "m.csv", tmp_path / "r.y4m"
    r = transcode(src, out, "x265", {"qp": 30}, metrics_path=csv, recon_path=recon, progress=False)
    assert r.frames == 4 and r.format.bit_depth == 10 and r.bits > 0
    log = MetricsLog.read_csv(csv)
    assert [row["frame"] for row in log.rows] == [0, 1, 2, 3]
    assert sum(row["bits"] for row in log.rows) == r.bits
    # the muxed file decodes (FFmpeg) to exactly the recon, and the CSV's PSNR is that of the recon
    with av.open(str(out)) as c:
        decoded = [tuple(np.from_dlpack(p).copy() for p in f.planes) for f in c.decode(video=0)]
    with open_source(recon) as rs:
        rec = list(rs)
    assert len(decoded) == len(rec) == 4
    for planes, rf, f, row in zip(decoded, rec, frames, log.rows):
        assert all(np.array_equal(a, b.view(np.uint16)) for a, b in zip(rf.planes, planes))
        assert row["psnr_y"] == pytest.approx(frame_metrics(f, rf)["psnr_y"], abs=1e-9)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.y4m", "m.csv", "out.mkv", "r.y4m"]


def test_transcode_frame_range_and_json(tmp_path, make_frames):
    frames = make_frames("yuv420p", n=9, kind="smooth")
    src = tmp_path / "in.y4m"
    _write_y4m(src, frames)
    js = tmp_path / "m.json"
    r = transcode(src, tmp_path / "o.hevc", "x265", None, frames=FrameRange(1, 3, 3), metrics_path=js, progress=False)
    doc = json.loads(js.read_text())
    assert [f["frame"] for f in doc["frames"]] == [1, 4, 7]
    assert r.frames == 3 and doc["summary"]["frames"] == 3
    # rate over the time the coded frames stand for: 3 frames at 25/3 fps
    assert r.bitrate_kbps == pytest.approx(r.bits / (3 / (25 / 3)) / 1000)


def test_transcode_failure_leaves_no_output(tmp_path, make_frames):
    src = tmp_path / "in.yuv"
    src.write_bytes(b"\x00" * (64 * 48 * 3 // 2 * 2 + 100))  # 2 frames and a truncated third
    out, csv = tmp_path / "o.mp4", tmp_path / "m.csv"
    with pytest.raises(InputError):
        transcode(src, out, "x265", None, metrics_path=csv, size=(64, 48), progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.yuv"]


def test_transcode_rejects_bad_output_names_before_work(tmp_path, make_frames):
    src = tmp_path / "in.y4m"
    _write_y4m(src, make_frames(n=1))
    with pytest.raises(UsageError, match="overwrite the input"):
        transcode(src, src, "x265", None, progress=False)
    with pytest.raises(UsageError, match=r"\.csv or \.json"):
        transcode(src, tmp_path / "o.mp4", "x265", None, metrics_path=tmp_path / "m.txt", progress=False)
    with pytest.raises(UsageError):
        transcode(src, tmp_path / "o.avi", "x265", None, progress=False)
    with pytest.raises(UsageError, match="does not exist"):
        transcode(src, tmp_path / "nodir" / "o.mp4", "x265", None, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.y4m"]


def test_transcode_interrupted_leaves_no_output(tmp_path, make_frames, monkeypatch):
    src = tmp_path / "in.y4m"
    _write_y4m(src, make_frames(n=4))
    import codeclab.pipeline.transcode as tc

    real = tc.code_frames

    def interrupted(*a, **k):
        for i, c in enumerate(real(*a, **k)):
            if i == 2:
                raise KeyboardInterrupt
            yield c

    monkeypatch.setattr(tc, "code_frames", interrupted)
    with pytest.raises(KeyboardInterrupt):
        transcode(src, tmp_path / "o.mp4", "x265", None, metrics_path=tmp_path / "m.csv",
                  recon_path=tmp_path / "r.yuv", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.y4m"]


def test_cockatoo_444_first_frames(media, tmp_path):
    r = transcode(media / "clips" / "cockatoo.mp4", tmp_path / "c.mp4", "x265", {"qp": 32},
                  frames=FrameRange(0, 2), metrics_path=tmp_path / "c.csv", progress=False)
    assert r.format.chroma == "444" and r.frames == 2
    with av.open(str(tmp_path / "c.mp4")) as c:
        s = c.streams.video[0]
        assert s.codec_context.name == "hevc" and s.format.name == "yuv444p"
        assert sum(1 for _ in c.decode(s)) == 2


def test_codec_without_standard_stream_goes_into_our_container(tmp_path, make_frames):
    from codeclab.codecs.base import register_codec
    from codeclab.pipeline.clc.container import ClcReader

    register_codec(_DELAY)
    src = tmp_path / "in.y4m"
    _write_y4m(src, make_frames(n=3))
    with pytest.raises(UsageError, match=r"\.clc"):
        transcode(src, tmp_path / "o.mp4", _DELAY, None, progress=False)
    r = transcode(src, tmp_path / "o.clc", _DELAY, None, progress=False)
    assert r.frames == 3
    reader = ClcReader(tmp_path / "o.clc")
    assert reader.header.codec == "delay-test" and len(reader) == 3

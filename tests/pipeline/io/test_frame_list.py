"""``codeclab info --frames``: every coded picture matched to its own packet, in
presentation order, for muxed and raw streams with reordered B pictures."""

from __future__ import annotations

import pytest
from _synth import synth_frames

from codeclab.base.errors import InputError
from codeclab.cli import main
from codeclab.codecs import get_codec, make_options
from codeclab.pipeline.io.frame_list import list_frames
from codeclab.pipeline.io.sinks import open_packet_sink


def _packets(n: int = 8):
    frames = synth_frames("yuv420p", n=n, width=96, height=64, kind="smooth")
    spec = get_codec("x265")
    enc = spec.make_encoder(frames[0].format, make_options(spec, {"qp": 30, "keyint": n, "bframes": 3}))
    return frames[0].format, [p for f in frames for p in enc.encode(f)] + enc.flush()


@pytest.mark.parametrize("ext", [".mp4", ".mkv", ".hevc"])
def test_pictures_match_their_packets(tmp_path, ext):
    fmt, packets = _packets()
    path = tmp_path / f"o{ext}"
    with open_packet_sink(path, "hevc", fmt) as sink:
        for p in packets:
            sink.write(p)
    pics = list_frames(path)
    assert [f.index for f in pics] == list(range(8))
    by_pts = sorted(packets, key=lambda p: p.pts)
    assert [f.pict_type for f in pics] == [p.props["pict_type"] for p in by_pts]
    if ext == ".hevc":  # containers store NAL lengths instead of start codes: a few bytes differ
        assert [f.bits for f in pics] == [p.bits for p in by_pts]
    assert [f.decode_index for f in pics] == [packets.index(p) for p in by_pts]
    assert "B" in {f.pict_type for f in pics} and [f.key for f in pics] == [True] + [False] * 7
    if ext != ".hevc":
        assert [round(f.time * 25) for f in pics] == list(range(8))


def test_info_frames_command(tmp_path, capsys):
    fmt, packets = _packets(4)
    path = tmp_path / "o.mp4"
    with open_packet_sink(path, "hevc", fmt) as sink:
        for p in packets:
            sink.write(p)
    assert main(["info", "--frames", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    table = lines[lines.index(next(ln for ln in lines if ln.strip().startswith("frame  decoded"))) + 1:]
    assert len(table) == 4 and table[0].split()[2] == "I"
    with pytest.raises(InputError, match="not a video file"):
        (tmp_path / "bad.mp4").write_bytes(b"not a video")
        list_frames(tmp_path / "bad.mp4")

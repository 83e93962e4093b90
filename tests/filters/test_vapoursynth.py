"""codeclab inside VapourSynth (filters/vs.py) and VapourSynth scripts as codeclab sources.

The reference for every prop is codeclab's own pipeline run on the same frames outside
VapourSynth; pixels are compared with what our readers deliver directly.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

vs = pytest.importorskip("vapoursynth")

from _synth import (
    REPO,  # noqa: E402
    synth_frames,  # noqa: E402
)

import codeclab.filters.vs as cl  # noqa: E402
from codeclab.base.errors import FormatError  # noqa: E402
from codeclab.base.frame import Frame  # noqa: E402
from codeclab.codecs.base import get_codec, make_options  # noqa: E402
from codeclab.pipeline.io.sinks import open_sink  # noqa: E402
from codeclab.pipeline.io.sources import open_source  # noqa: E402
from codeclab.pipeline.metrics import frame_metrics  # noqa: E402
from codeclab.pipeline.transcode import code_frames  # noqa: E402

PROP_OF = {"psnr_y": "CodeclabPSNRY", "psnr_u": "CodeclabPSNRU", "psnr_v": "CodeclabPSNRV", "psnr_yuv": "CodeclabPSNRYUV"}


def _y4m(tmp_path: Path, pix_fmt: str, n: int = 6, w: int = 64, h: int = 48, kind: str = "smooth") -> tuple[Path, list]:
    frames = synth_frames(pix_fmt, n, w, h, kind=kind, seed=3)
    path = tmp_path / f"src_{pix_fmt}.y4m"
    with open_sink(path, frames[0].format) as sink:
        for f in frames:
            sink.write(f)
    return path, frames


def _planes(f: "vs.VideoFrame") -> list[np.ndarray]:
    return [np.array(f[p], copy=True) for p in range(f.format.num_planes)]


def _snapshot(clip: "vs.VideoNode", order: list[int], threads: int = 1) -> dict[int, tuple[list[np.ndarray], dict]]:
    def one(n: int) -> tuple[int, tuple[list[np.ndarray], dict]]:
        f = clip.get_frame(n)
        return n, (_planes(f), {k: v for k, v in f.props.items() if k.startswith("Codeclab")})

    if threads == 1:
        return dict(one(n) for n in order)
    with ThreadPoolExecutor(threads) as pool:
        return dict(pool.map(one, order))


def _same(a: dict, b: dict, timing_free: bool = True) -> bool:
    drop = {"CodeclabEncodeTime", "CodeclabDecodeTime"} if timing_free else set()
    for n in a:
        if any(not np.array_equal(x, y) for x, y in zip(a[n][0], b[n][0])):
            return False
        pa = {k: v for k, v in a[n][1].items() if k not in drop}
        pb = {k: v for k, v in b[n][1].items() if k not in drop}
        if pa != pb:
            return False
    return True


@pytest.mark.parametrize("pix_fmt,vsfmt", [("yuv420p", "YUV420P8"), ("yuv420p10le", "YUV420P10"),
                                           ("yuv444p", "YUV444P8"), ("yuv444p10le", "YUV444P10")])
def test_source_native_format_and_pixels(tmp_path: Path, pix_fmt: str, vsfmt: str) -> None:
    path, frames = _y4m(tmp_path, pix_fmt, kind="noise")
    clip = cl.source(str(path))
    assert clip.format.id == getattr(vs, vsfmt).value
    assert (clip.width, clip.height, clip.num_frames) == (64, 48, len(frames))
    assert clip.fps == frames[0].format.fps
    for n, ref in enumerate(frames):
        assert all(np.array_equal(a, b) for a, b in zip(_planes(clip.get_frame(n)), ref.planes))


def test_source_random_access_and_concurrency(tmp_path: Path) -> None:
    path, frames = _y4m(tmp_path, "yuv420p", n=12, kind="noise")
    seq = _snapshot(cl.source(str(path)), list(range(12)))
    rng = np.random.default_rng(0)
    order = [int(i) for i in rng.permutation(12)] * 2
    assert _same(seq, _snapshot(cl.source(str(path)), order))
    assert _same(seq, _snapshot(cl.source(str(path)), order, threads=6))


def test_source_of_a_pyav_file(tmp_path: Path) -> None:
    """An mp4 decoded through PyAV: right length and the pixels our own reader gives."""
    frames = synth_frames("yuv420p", 8, 64, 48, kind="smooth")
    mp4 = tmp_path / "x.mp4"
    with open_sink(mp4, frames[0].format, codec="x264") as sink:
        for f in frames:
            sink.write(f)
    clip = cl.source(str(mp4))
    with open_source(mp4) as src:
        ref = list(src)
    assert clip.num_frames == len(ref) == 8
    got = _snapshot(clip, [7, 0, 5, 2, 6, 1, 3, 4], threads=4)
    for n, f in enumerate(ref):
        assert all(np.array_equal(a, b) for a, b in zip(got[n][0], f.planes))


@pytest.mark.parametrize("name,pix_fmt,opts", [("x265", "yuv420p", {"qp": 30}),
                                               ("x265", "yuv444p10le", {"qp": 30}),
                                               ("hevc", "yuv420p", {"qp": 30, "gop": "ai"}),
                                               ("hevc", "yuv420p10le", {"qp": 30, "quant": "rdoq", "gop": "ai"}),
                                               ("lic", "yuv420p", {"quality": 2})])
def test_codec_filter_props_match_pipeline(tmp_path: Path, name: str, pix_fmt: str, opts: dict) -> None:
    """Pixels and props equal codeclab's own code_frames on the same frames, in any access order."""
    path, frames = _y4m(tmp_path, pix_fmt, n=4)
    src = cl.source(str(path))
    coded = cl.codec(src, name, ms_ssim=True, **opts)
    assert coded.format.id == src.format.id and coded.num_frames == 4
    spec = get_codec(name)
    ref = list(code_frames(frames, spec, make_options(spec, opts), ms_ssim=True))
    seq = _snapshot(coded, [0, 1, 2, 3])
    for n, r in enumerate(ref):
        planes, props = seq[n]
        assert all(np.array_equal(a, b) for a, b in zip(planes, r.decoded.planes))
        assert props["CodeclabBits"] == r.row["bits"]
        assert props["CodeclabCodec"] == name
        for key, prop in PROP_OF.items():
            assert props[prop] == pytest.approx(r.row[key], abs=1e-9)
        assert props["CodeclabMSSSIM"] == pytest.approx(r.row["ms_ssim_y"], abs=1e-9)
        assert props.get("CodeclabQP") == opts.get("qp")
    assert _same(seq, _snapshot(cl.codec(src, name, ms_ssim=True, **opts), [3, 1, 2, 0, 2], threads=4))


def test_overfit_filter(tmp_path: Path) -> None:
    """The overfitted codec as a filter: frames of the source's format, props of its own
    stream. (Its encoder trains in float: bit-identical streams across threads and heap
    layouts are not promised, so this checks the filter's consistency, not equality with
    a separate encode; decoding is exact and tested in tests/codecs/overfit.)"""
    path, frames = _y4m(tmp_path, "yuv420p", n=2)
    src = cl.source(str(path))
    coded = cl.overfit(src, quality=3, iterations=5, profile="low")
    assert coded.format.id == src.format.id and coded.num_frames == 2
    snap = _snapshot(coded, [1, 0])
    for n in (0, 1):
        planes, props = snap[n]
        assert props["CodeclabCodec"] == "overfit" and props["CodeclabBits"] > 0
        m = frame_metrics(frames[n], Frame(planes, frames[n].format), ms_ssim=False)
        assert props["CodeclabPSNRY"] == pytest.approx(m["psnr_y"], abs=1e-9)


def test_psnr_and_msssim_filters(tmp_path: Path) -> None:
    path, frames = _y4m(tmp_path, "yuv420p10le", n=3)
    src = cl.source(str(path))
    blurred = vs.core.std.BoxBlur(src, hradius=1, vradius=1)
    out = cl.msssim(cl.psnr(blurred, src), src)
    for n, ref in enumerate(frames):
        f = out.get_frame(n)
        dist = Frame(tuple(_planes(blurred.get_frame(n))), ref.format, n, n)
        m = frame_metrics(ref, dist, ms_ssim=True)
        for key, prop in PROP_OF.items():
            assert f.props[prop] == pytest.approx(m[key], abs=1e-9)
        assert f.props["CodeclabMSSSIM"] == pytest.approx(m["ms_ssim_y"], abs=1e-9)


def test_unsupported_formats_get_a_clear_error() -> None:
    rgb = vs.core.std.BlankClip(width=64, height=48, format=vs.RGB24, length=2)
    with pytest.raises(FormatError, match=r"codeclab\.filters\.vs\.x265: RGB24 is not YUV or GRAY.*resize"):
        cl.x265(rgb)
    flt = vs.core.std.BlankClip(width=64, height=48, format=vs.YUV420PS, length=2)
    with pytest.raises(FormatError, match="integer samples"):
        cl.hevc(flt)
    yuv410 = vs.core.std.BlankClip(width=64, height=48, format=vs.YUV410P8, length=2)
    with pytest.raises(FormatError, match="chroma subsampling"):
        cl.psnr(yuv410, yuv410)
    a = vs.core.std.BlankClip(width=64, height=48, format=vs.YUV420P8, length=2)
    b = vs.core.std.BlankClip(width=64, height=48, format=vs.YUV420P10, length=2)
    with pytest.raises(FormatError, match="differ in format or size"):
        cl.psnr(a, b)


def test_our_hevc_rejects_444_when_the_frame_is_coded(tmp_path: Path) -> None:
    """Our encoder is 4:2:0 only: the error names the format instead of failing deep inside."""
    path, _ = _y4m(tmp_path, "yuv444p", n=1)
    with pytest.raises(Exception, match="4:4:4|444"):
        cl.hevc(cl.source(str(path))).get_frame(0)


def _vspipe() -> str:
    exe = shutil.which("vspipe", path=str(Path(sys.executable).parent)) or shutil.which("vspipe")
    if exe is None:
        pytest.skip("vspipe not installed")
    return exe


def test_vspipe_runs_an_example_end_to_end(tmp_path: Path) -> None:
    """examples/x265_psnr.vpy through vspipe: frame count, format and props vs our own metrics."""
    path, frames = _y4m(tmp_path, "yuv420p10le", n=5)
    out, props_json = tmp_path / "out.y4m", tmp_path / "props.json"
    run = subprocess.run([_vspipe(), "-c", "y4m", "--arg", f"src={path}", "--arg", "qp=34", "-j", str(props_json),
                          str(REPO / "examples" / "x265_psnr.vpy"), str(out)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    props = json.loads(props_json.read_text())
    with open_source(out) as dec:
        assert dec.format.pix_fmt == "yuv420p10le"
        decoded = list(dec)
    assert len(decoded) == len(props) == 5
    spec = get_codec("x265")
    ref = list(code_frames(frames, spec, make_options(spec, {"qp": 34, "preset": "medium"}), ms_ssim=True))
    for n, (src, dist) in enumerate(zip(frames, decoded)):
        assert all(np.array_equal(a, b) for a, b in zip(dist.planes, ref[n].decoded.planes))
        m = frame_metrics(src, dist, ms_ssim=True)
        for key, prop in PROP_OF.items():
            assert props[n][prop] == pytest.approx(m[key], abs=1e-9)
        assert props[n]["CodeclabMSSSIM"] == pytest.approx(m["ms_ssim_y"], abs=1e-9)
        assert props[n]["CodeclabBits"] == ref[n].row["bits"]
        assert props[n]["CodeclabQP"] == 34


def test_vpy_script_as_transcode_source(tmp_path: Path) -> None:
    """The other direction: `codeclab transcode script.vpy -o out.mp4 --codec hevc`."""
    from codeclab.cli import main

    script = tmp_path / "s.vpy"
    script.write_text("import vapoursynth as vs\n"
                      "c = vs.core.std.BlankClip(width=64, height=48, format=vs.YUV420P8, length=4, fpsnum=30, fpsden=1,"
                      " color=[100, 120, 140])\n"
                      "vs.core.std.BoxBlur(vs.core.std.AddBorders(c, left=0), hradius=1).set_output()\n")
    out, csv = tmp_path / "out.mp4", tmp_path / "m.csv"
    assert main(["transcode", str(script), "-o", str(out), "--codec", "hevc", "--qp", "30", "--metrics", str(csv)]) == 0
    with open_source(out) as dec:
        assert dec.num_frames == 4 and dec.format.fps == 30
    assert len(csv.read_text().strip().splitlines()) == 1 + 4


def test_broken_script_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from codeclab.cli import main

    script = tmp_path / "bad.vpy"
    script.write_text("import vapoursynth as vs\nraise RuntimeError('boom')\n")
    assert main(["info", str(script)]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.vpy" in err[0] and "boom" in err[0]

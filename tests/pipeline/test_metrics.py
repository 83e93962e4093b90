"""Per-frame metrics against FFmpeg's psnr filter, libvmaf, pytorch-msssim and a direct formula."""

from __future__ import annotations

import io
import json
import math
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from _synth import MEDIA
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.ndimage import correlate1d
from scipy.signal import convolve2d

from codeclab.base.errors import FormatError, InputError
from codeclab.base.frame import Frame, VideoFormat
from codeclab.pipeline.metrics import (
    MS_SSIM_WEIGHTS,
    PSNR_CAP_DB,
    MetricsLog,
    frame_metrics,
    ms_ssim,
    ms_ssim_scales,
    mse_plane,
    psnr_plane,
)

CLIP = MEDIA / "clips" / "realshort.mp4"
TB = Fraction(1, 25)


# ---------------------------------------------------------------- FFmpeg helpers


def _to_frame(f: av.VideoFrame, index: int = 0) -> Frame:
    fmt = VideoFormat.from_pix_fmt(f.format.name, f.width, f.height)
    return Frame(tuple(np.array(np.from_dlpack(p)) for p in f.planes), fmt, index)


def _to_av(fr: Frame) -> av.VideoFrame:
    """Pack planes the way PyAV's from_ndarray wants planar 4:2:0 / gray (contiguous I420)."""
    if fr.format.chroma == "400":
        return av.VideoFrame.from_ndarray(fr.y, format=fr.format.pix_fmt)
    w = fr.format.width
    packed = np.concatenate([p.reshape(-1, w) for p in fr.planes])
    return av.VideoFrame.from_ndarray(packed, format=fr.format.pix_fmt)


def _two_input_filter(pairs, name: str, args: str) -> list[av.VideoFrame]:
    """Run ``name`` with (main=distorted, reference) pairs of av frames; return its output frames."""
    first = pairs[0][0]
    g = av.filter.Graph()
    srcs = [g.add_buffer(width=first.width, height=first.height, format=first.format.name, time_base=TB)
            for _ in range(2)]
    flt = g.add(name, args)
    sink = g.add("buffersink")
    srcs[0].link_to(flt, 0, 0)
    srcs[1].link_to(flt, 0, 1)
    flt.link_to(sink)
    g.configure()
    out = []
    for i, (dist, ref) in enumerate(pairs):
        dist.pts = ref.pts = i
        dist.time_base = ref.time_base = TB
        srcs[0].push(dist)
        srcs[1].push(ref)
    for s in srcs:
        s.push(None)
    while True:
        try:
            out.append(g.pull())
        except (av.error.EOFError, av.error.BlockingIOError):
            break
    del g, srcs, flt, sink  # libvmaf writes its log when the graph is freed
    return out


def _ffmpeg_psnr(pairs) -> list[dict[str, float]]:
    frames = _two_input_filter(pairs, "psnr", "")
    keys = {"y": "lavfi.psnr.psnr.y", "u": "lavfi.psnr.psnr.u", "v": "lavfi.psnr.psnr.v"}
    return [{c: float(f.metadata[k]) for c, k in keys.items() if k in f.metadata} for f in frames]


def _libvmaf_ms_ssim(pairs, tmp_path: Path) -> list[float]:
    log = tmp_path / "vmaf.json"
    _two_input_filter(pairs, "libvmaf", f"feature=name=float_ms_ssim:log_path={log}:log_fmt=json")
    import gc

    gc.collect()
    doc = json.loads(log.read_text())
    return [fr["metrics"]["float_ms_ssim"] for fr in doc["frames"]]


def _clip_frames(n: int) -> list[av.VideoFrame]:
    if not CLIP.exists():
        pytest.skip(f"media not present: {CLIP}")
    with av.open(str(CLIP)) as c:
        out = []
        for f in c.decode(video=0):
            out.append(f)
            if len(out) == n:
                break
    return out


def _encode_decode(frames: list[av.VideoFrame], codec: str, qp: int) -> list[av.VideoFrame]:
    """Distort real frames by an x264/x265 round trip at a fixed QP."""
    buf = io.BytesIO()
    opts = {"qp": str(qp), "preset": "ultrafast"}
    if codec == "libx265":
        opts["x265-params"] = f"qp={qp}:log-level=error"
    with av.open(buf, "w", format="h264" if codec == "libx264" else "hevc") as out:
        s = out.add_stream(codec, rate=25, options=opts)
        s.width, s.height, s.pix_fmt = frames[0].width, frames[0].height, frames[0].format.name
        for i, f in enumerate(frames):
            g = f.reformat()  # fresh frame, own pts
            g.pts = i
            for pkt in s.encode(g):
                out.mux(pkt)
        for pkt in s.encode(None):
            out.mux(pkt)
    buf.seek(0)
    with av.open(buf, format="h264" if codec == "libx264" else "hevc") as c:
        return list(c.decode(video=0))


@pytest.fixture(scope="module")
def real_pairs():
    """(distorted, reference) av frames: 6 frames of realshort.mp4 through x264 at QP 36."""
    ref = _clip_frames(6)
    dist = _encode_decode(ref, "libx264", 36)
    assert len(dist) == len(ref)
    return list(zip(dist, ref))


# ---------------------------------------------------------------- PSNR vs FFmpeg


def test_psnr_matches_ffmpeg_on_x264_distorted_real_frames(real_pairs):
    ff = _ffmpeg_psnr(real_pairs)
    assert len(ff) == len(real_pairs)
    for (dist, ref), want in zip(real_pairs, ff):
        got = frame_metrics(_to_frame(ref), _to_frame(dist), ms_ssim=False)
        for c in "yuv":
            assert abs(got[f"psnr_{c}"] - want[c]) < 0.01, (c, got, want)
        assert 25 < got["psnr_y"] < 50  # really distorted, not identical


def test_psnr_matches_ffmpeg_on_x265_distorted_real_frames():
    ref = _clip_frames(3)
    dist = _encode_decode(ref, "libx265", 40)
    for (d, r), want in zip(zip(dist, ref), _ffmpeg_psnr(list(zip(dist, ref)))):
        got = frame_metrics(_to_frame(r), _to_frame(d), ms_ssim=False)
        for c in "yuv":
            assert abs(got[f"psnr_{c}"] - want[c]) < 0.01


def _synthetic_10bit(seed: int, w: int = 96, h: int = 64, noise: float = 6.0) -> tuple[Frame, Frame]:
    rng = np.random.default_rng(seed)
    fmt = VideoFormat(w, h, "420", 10)
    ref = tuple(rng.integers(0, 1024, s).astype(np.uint16) for s in fmt.plane_shapes)
    dist = tuple(np.clip(p + np.rint(rng.normal(0, noise, p.shape)), 0, 1023).astype(np.uint16) for p in ref)
    return Frame(ref, fmt), Frame(dist, fmt)


def test_psnr_10bit_peak_is_1023_like_ffmpeg():
    """FFmpeg's psnr filter uses (1 << depth) - 1 = 1023, not 255 << 2 = 1020 (differs by 0.0255 dB)."""
    pairs, ours = [], []
    for seed in range(3):
        ref, dist = _synthetic_10bit(seed)
        pairs.append((_to_av(dist), _to_av(ref)))
        ours.append((ref, dist))
    for (ref, dist), want in zip(ours, _ffmpeg_psnr(pairs)):
        got = frame_metrics(ref, dist, ms_ssim=False)
        for i, c in enumerate("yuv"):
            assert abs(got[f"psnr_{c}"] - want[c]) < 0.01
            mse = mse_plane(ref.planes[i], dist.planes[i])
            alt_1020 = 10 * math.log10(1020**2 / mse)
            assert abs(alt_1020 - want[c]) > 0.02  # the test can tell the two peaks apart


def test_psnr_formula_and_exact_sums():
    a = np.full((4, 4), 65535, np.uint16)
    b = np.zeros((4, 4), np.uint16)
    assert mse_plane(a, b) == 65535.0**2  # would lose bits in float32 / overflow in int32
    assert psnr_plane(a, b, 16) == pytest.approx(0.0)
    a8 = np.zeros((2, 2), np.uint8)
    b8 = np.array([[0, 0], [0, 2]], np.uint8)
    assert psnr_plane(a8, b8, 8) == pytest.approx(10 * math.log10(255**2 / 1.0))
    assert psnr_plane(a8, a8, 8) == PSNR_CAP_DB
    assert mse_plane(a8.astype(np.float32), b8 + 0.5) == pytest.approx((3 * 0.25 + 2.5**2) / 4)
    big = np.zeros((1080, 1920), np.uint8)
    one = big.copy()
    one[0, 0] = 1
    assert psnr_plane(big, one, 8) == PSNR_CAP_DB  # ~111 dB is clamped to the cap


# ---------------------------------------------------------------- MS-SSIM references


def _direct_ms_ssim(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    """Wang's msssim.m written out plainly: 2-D 'valid' convolution, imfilter-style downsampling."""
    x = np.arange(11) - 5
    g1 = np.exp(-(x**2) / (2 * 1.5**2))
    win = np.outer(g1, g1)
    win /= win.sum()
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    im1, im2 = a.astype(float), b.astype(float)
    mcs, ssim_last = [], None
    for level in range(5):
        mu1, mu2 = convolve2d(im1, win, "valid"), convolve2d(im2, win, "valid")
        s11 = convolve2d(im1 * im1, win, "valid") - mu1**2
        s22 = convolve2d(im2 * im2, win, "valid") - mu2**2
        s12 = convolve2d(im1 * im2, win, "valid") - mu1 * mu2
        cs_map = (2 * s12 + c2) / (s11 + s22 + c2)
        ssim_map = (2 * mu1 * mu2 + c1) / (mu1**2 + mu2**2 + c1) * cs_map
        mcs.append(cs_map.mean())
        ssim_last = ssim_map.mean()
        # imfilter(ones(2)/4, 'symmetric', 'same') then keep 1:2:end
        p1 = np.pad(im1, ((0, 1), (0, 1)), mode="symmetric")
        p2 = np.pad(im2, ((0, 1), (0, 1)), mode="symmetric")
        f1 = (p1[:-1, :-1] + p1[1:, :-1] + p1[:-1, 1:] + p1[1:, 1:]) / 4
        f2 = (p2[:-1, :-1] + p2[1:, :-1] + p2[:-1, 1:] + p2[1:, 1:]) / 4
        im1, im2 = f1[::2, ::2], f2[::2, ::2]
    w = np.asarray(MS_SSIM_WEIGHTS)
    return float(np.prod(np.asarray(mcs[:4]) ** w[:4]) * ssim_last ** w[4])


def _textured(seed: int, h: int, w: int, noise: float, depth: int = 8) -> tuple[np.ndarray, np.ndarray]:
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    peak = (1 << depth) - 1
    base = gaussian_filter(rng.normal(0.5, 0.25, (h, w)), 2.0) * 4 - 1.5
    a = np.clip(np.rint(base * peak), 0, peak)
    b = np.clip(np.rint(a + rng.normal(0, noise * peak / 255, a.shape)), 0, peak)
    dt = np.uint8 if depth == 8 else np.uint16
    return a.astype(dt), b.astype(dt)


@pytest.mark.parametrize("shape, depth", [((181, 203), 8), ((200, 256), 10)])
def test_ms_ssim_equals_direct_formula(shape, depth):
    a, b = _textured(3, *shape, noise=10, depth=depth)
    assert ms_ssim(a, b, depth) == pytest.approx(_direct_ms_ssim(a, b, (1 << depth) - 1), abs=1e-10)


def test_ms_ssim_matches_pytorch_msssim():
    torch = pytest.importorskip("torch")
    pm = pytest.importorskip("pytorch_msssim")
    for seed, shape in ((0, (256, 320)), (1, (240, 320))):  # every scale even: same downsampling
        a, b = _textured(seed, *shape, noise=12)
        t = lambda x: torch.from_numpy(x.astype(np.float64))[None, None]  # noqa: E731
        want = pm.ms_ssim(t(a), t(b), data_range=255, size_average=True).item()
        # pytorch-msssim builds its Gaussian in float32 -> differences of a few 1e-6
        assert ms_ssim(a, b, 8) == pytest.approx(want, abs=2e-5)


def _vmaf_style_ms_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """libvmaf's float_ms_ssim as its source reads (iqa/ms_ssim.c), to explain the gap to ours.

    Differences to Wang's msssim.m: decimation by the 9-tap 9/7 biorthogonal low-pass with
    half-sample-symmetric borders instead of a 2x2 mean, and mean(c) ** beta * mean(s) ** gamma
    per scale instead of mean(c * s) ** beta (c uses sqrt(var1 * var2), s has C3 = C2 / 2).
    """
    lpf = np.array([0.026727, -0.016828, -0.078201, 0.266846, 0.602914, 0.266846, -0.078201, -0.016828, 0.026727])
    x = np.arange(11) - 5
    g = np.exp(-(x**2) / (2 * 1.5**2))
    g /= g.sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    w = np.asarray(MS_SSIM_WEIGHTS)

    def valid(im):
        return correlate1d(correlate1d(im, g, axis=1)[:, 5:-5], g, axis=0)[5:-5, :]

    im1, im2 = a.astype(float), b.astype(float)
    score = 1.0
    for level in range(5):
        mu1, mu2 = valid(im1), valid(im2)
        v1 = np.maximum(valid(im1 * im1) - mu1**2, 0)
        v2 = np.maximum(valid(im2 * im2) - mu2**2, 0)
        v12 = valid(im1 * im2) - mu1 * mu2
        sd = np.sqrt(v1 * v2)
        lum = ((2 * mu1 * mu2 + c1) / (mu1**2 + mu2**2 + c1)).mean()
        con = ((2 * sd + c2) / (v1 + v2 + c2)).mean()
        struct = ((v12 + c2 / 2) / (sd + c2 / 2)).mean()
        score *= (lum ** w[4] if level == 4 else 1.0) * con ** w[level] * abs(struct) ** w[level]
        im1 = correlate1d(correlate1d(im1, lpf, axis=0, mode="reflect"), lpf, axis=1, mode="reflect")[::2, ::2]
        im2 = correlate1d(correlate1d(im2, lpf, axis=0, mode="reflect"), lpf, axis=1, mode="reflect")[::2, ::2]
    return float(score)


def test_ms_ssim_vs_libvmaf_float_ms_ssim(real_pairs, tmp_path):
    """Ours agrees with libvmaf to ~1e-3; the rest is libvmaf's different (documented) definition."""
    try:
        vmaf = _libvmaf_ms_ssim(real_pairs, tmp_path)
    except (av.error.FFmpegError, ValueError, FileNotFoundError) as e:  # build without libvmaf
        pytest.skip(f"libvmaf not usable: {e}")
    assert len(vmaf) == len(real_pairs)
    for (dist, ref), v in zip(real_pairs, vmaf):
        a, b = _to_frame(ref).y, _to_frame(dist).y
        ours = ms_ssim(a, b, 8)
        assert abs(ours - v) < 2e-3, (ours, v)
        assert _vmaf_style_ms_ssim(a, b) == pytest.approx(v, abs=5e-5)  # the gap is fully explained


# ---------------------------------------------------------------- MS-SSIM properties


def test_ms_ssim_small_planes_use_fewer_scales():
    # halving rounds up (odd edge repeated), so 5 scales need ceil(n / 16) >= 11, i.e. n >= 161
    assert [ms_ssim_scales(n, n) for n in (10, 11, 21, 22, 43, 87, 160, 161, 1080)] == [0, 1, 2, 2, 3, 4, 4, 5, 5]
    assert ms_ssim_scales(1080, 100) == 4
    a, b = _textured(5, 90, 100, noise=10)  # 90 -> 45 -> 23 -> 12: four scales
    w = np.asarray(MS_SSIM_WEIGHTS[:4]) * sum(MS_SSIM_WEIGHTS) / sum(MS_SSIM_WEIGHTS[:4])
    # build the renormalised product from the direct formula's per-scale values
    x = np.arange(11) - 5
    g1 = np.exp(-(x**2) / 4.5)
    win = np.outer(g1, g1) / np.outer(g1, g1).sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    im1, im2 = a.astype(float), b.astype(float)
    vals = []
    for level in range(4):
        mu1, mu2 = convolve2d(im1, win, "valid"), convolve2d(im2, win, "valid")
        s11 = convolve2d(im1 * im1, win, "valid") - mu1**2
        s22 = convolve2d(im2 * im2, win, "valid") - mu2**2
        s12 = convolve2d(im1 * im2, win, "valid") - mu1 * mu2
        cs = (2 * s12 + c2) / (s11 + s22 + c2)
        vals.append((cs * (2 * mu1 * mu2 + c1) / (mu1**2 + mu2**2 + c1)).mean() if level == 3 else cs.mean())
        p1, p2 = np.pad(im1, ((0, 1), (0, 1)), "edge"), np.pad(im2, ((0, 1), (0, 1)), "edge")
        h, wd = im1.shape
        im1 = (p1[0:h:2, 0:wd:2] + p1[1:h + 1:2, 0:wd:2] + p1[0:h:2, 1:wd + 1:2] + p1[1:h + 1:2, 1:wd + 1:2]) / 4
        im2 = (p2[0:h:2, 0:wd:2] + p2[1:h + 1:2, 0:wd:2] + p2[0:h:2, 1:wd + 1:2] + p2[1:h + 1:2, 1:wd + 1:2]) / 4
    assert ms_ssim(a, b, 8) == pytest.approx(float(np.prod(np.asarray(vals) ** w)), abs=1e-10)
    assert math.isnan(ms_ssim(a[:10], b[:10], 8))


@given(st.integers(0, 2**32 - 1), st.sampled_from([8, 10]))
@settings(max_examples=25, deadline=None)
def test_symmetry_and_identity(seed, depth):
    a, b = _textured(seed % 1000, 48, 64, noise=8, depth=depth)
    assert psnr_plane(a, b, depth) == psnr_plane(b, a, depth)
    assert ms_ssim(a, b, depth) == pytest.approx(ms_ssim(b, a, depth), abs=1e-12)
    assert psnr_plane(a, a, depth) == PSNR_CAP_DB
    assert ms_ssim(a, a, depth) == pytest.approx(1.0, abs=1e-12)
    assert ms_ssim(a, b, depth) < 1.0


@given(st.integers(0, 2**32 - 1))
@settings(max_examples=25, deadline=None)
def test_monotone_in_noise(seed):
    rng = np.random.default_rng(seed)
    from scipy.ndimage import gaussian_filter

    a = np.rint(gaussian_filter(rng.uniform(300, 700, (64, 80)), 1.5)).astype(np.int64)
    n = rng.normal(0, 1, a.shape)
    ps, ss = [], []
    for amp in (0.0, 2.0, 5.0, 12.0, 30.0):  # stays inside 0..1023: no clipping
        b = (a + np.rint(amp * n)).astype(np.uint16)
        ps.append(psnr_plane(a.astype(np.uint16), b, 10))
        ss.append(ms_ssim(a.astype(np.uint16), b, 10))
    assert all(x > y for x, y in zip(ps, ps[1:]))
    assert all(x > y for x, y in zip(ss, ss[1:]))


def test_ms_ssim_1080p_runs():
    a, b = _textured(0, 1080, 1920, noise=5)
    v = ms_ssim(a, b, 8)
    assert 0.9 < v < 1.0


# ---------------------------------------------------------------- frame_metrics


def test_frame_metrics_keys_and_weighting():
    ref, dist = _synthetic_10bit(11)
    m = frame_metrics(ref, dist)
    assert set(m) == {"psnr_y", "psnr_u", "psnr_v", "psnr_yuv", "ms_ssim_y", "mse_y", "mse_u", "mse_v"}
    assert m["psnr_yuv"] == pytest.approx((6 * m["psnr_y"] + m["psnr_u"] + m["psnr_v"]) / 8)
    assert m["psnr_u"] == psnr_plane(ref.planes[1], dist.planes[1], 10)
    assert "ms_ssim_y" not in frame_metrics(ref, dist, ms_ssim=False)


def test_frame_metrics_gray():
    fmt = VideoFormat(64, 48, "400", 8)
    ref = Frame.blank(fmt, 100)
    dist = Frame((np.full((48, 64), 103, np.uint8),), fmt)
    m = frame_metrics(ref, dist)
    assert set(m) == {"psnr_y", "psnr_yuv", "mse_y", "ms_ssim_y"}
    assert m["psnr_yuv"] == m["psnr_y"] == pytest.approx(10 * math.log10(255**2 / 9))


def test_frame_metrics_format_mismatch():
    a = Frame.blank(VideoFormat(64, 48, "420", 8))
    with pytest.raises(FormatError, match="different formats"):
        frame_metrics(a, Frame.blank(VideoFormat(64, 48, "420", 10)))
    with pytest.raises(FormatError):
        frame_metrics(a, Frame.blank(VideoFormat(64, 48, "444", 8)))
    # frame rate / colour metadata do not matter for the numbers
    frame_metrics(a, Frame.blank(VideoFormat(64, 48, "420", 8, fps=Fraction(30), matrix="bt601")))


# ---------------------------------------------------------------- MetricsLog


def _log() -> MetricsLog:
    log = MetricsLog()
    for i in range(4):
        log.add({"frame": i, "bits": 1000 * (i + 1), "psnr_y": 40.0 + i / 3, "psnr_u": 42.125, "psnr_v": 43.0,
                 "psnr_yuv": 41.1 + i, "ms_ssim_y": 0.98 + i / 1000, "encode_s": 0.1 * i, "pict_type": "I"})
    return log


def test_summary():
    s = _log().summary(fps=Fraction(25))
    assert s["frames"] == 4
    assert s["bits_total"] == 10000 and s["bits_mean"] == 2500
    assert s["bitrate_kbps"] == pytest.approx(10000 / (4 / 25) / 1000)
    assert s["psnr_y"] == pytest.approx(np.mean([40 + i / 3 for i in range(4)]))
    assert "pict_type" not in s and "frame" not in s
    assert "bitrate_kbps" not in _log().summary()


def test_csv_round_trip(tmp_path):
    log = _log()
    log.add({"frame": 4, "psnr_y": 38.5})  # a row with missing cells
    p = tmp_path / "m.csv"
    log.write_csv(p)
    header = p.read_text().splitlines()[0].split(",")
    assert header[:7] == ["frame", "bits", "psnr_y", "psnr_u", "psnr_v", "psnr_yuv", "ms_ssim_y"]
    back = MetricsLog.read_csv(p)
    assert back.rows == log.rows  # exact floats, ints stay ints, strings stay strings
    assert [f for f in os.listdir(tmp_path)] == ["m.csv"]  # no temporary left behind


def test_json_round_trip(tmp_path):
    log = _log()
    log.add({"frame": 4, "psnr_y": float("nan")})
    p = tmp_path / "m.json"
    log.write_json(p, fps=25)
    doc = json.loads(p.read_text())
    assert doc["summary"]["frames"] == 5 and doc["frames"][4]["psnr_y"] is None
    back = MetricsLog.read_json(p)
    assert back.rows[:4] == log.rows[:4]
    assert back.rows[4] == {"frame": 4}


def test_read_errors(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        MetricsLog.read_csv(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="bad.csv"):
        MetricsLog.read_csv(bad)
    bad.write_text("frame,psnr_y\n1,2,3\n")
    with pytest.raises(InputError, match="line 2"):
        MetricsLog.read_csv(bad)
    bad.write_text("{not json")
    with pytest.raises(InputError, match="not a JSON"):
        MetricsLog.read_json(bad)

"""The overfitted codec's mechanics on tiny pictures: contexts, integer decoder, round trip,
determinism across processes and thread counts, parameter coding, damaged streams, RD
progress, registry and CLI. Compression targets are the benchmark's job
(benchmarks/bench_overfit.py), never a test's."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codeclab.base.errors import BitstreamError, FormatError, UsageError
from codeclab.base.frame import Frame, VideoFormat
from codeclab.codecs.base import get_codec, make_options
from codeclab.codecs.overfit.codec import decode_picture
from codeclab.codecs.overfit.config import PROFILES, OverfitConfig, grid_shapes, param_shapes
from codeclab.codecs.overfit.context import ar_contexts, parent_context, stage_context
from codeclab.codecs.overfit.encoder import (Preset, _latents, _loss, _RDEval, _SpikeClip, _train, choose_steps,
                                             encode_planes, load_into, quantize_params, rdoq_params)
from codeclab.codecs.overfit.fixed import FA, IntParams, step_of, synthesize_fx
from codeclab.codecs.overfit.model import OverfitModel, context_tensors, named_decoder_params
from codeclab.codecs.overfit.payload import decode_params, decode_payload, param_bytes, sequential_steps, tensor_code

TINY = Preset("tiny", 1, 5, 25, 5)
SMALL_CFG = OverfitConfig(grids=5, channels=(1, 1, 1, 1, 1), synth_hidden=6, res3x3=1, ctx_hidden=4)


def _picture(w: int, h: int, depth: int = 8, seed: int = 0) -> Frame:
    """A smooth picture with some texture (deterministic)."""
    rng = np.random.default_rng(seed)
    top = (1 << depth) - 1
    yy, xx = np.mgrid[0:h, 0:w]
    luma = 0.5 + 0.3 * np.sin(xx / 7.0) * np.cos(yy / 5.0) + 0.05 * rng.standard_normal((h, w))
    ch, cw = (h + 1) // 2, (w + 1) // 2
    cy, cx = np.mgrid[0:ch, 0:cw]
    u = 0.5 + 0.1 * np.sin(cx / 4.0)
    v = 0.5 + 0.1 * np.cos(cy / 3.0)
    dt = np.uint8 if depth == 8 else np.uint16
    planes = tuple(np.clip(np.rint(p * top), 0, top).astype(dt) for p in (luma, u, v))
    return Frame(planes, VideoFormat(w, h, "420", depth))


@pytest.mark.parametrize("order,size", [("msp", (32, 48)), ("ar", (32, 48)), ("msp", (26, 38)), ("ar", (26, 38))])
def test_training_contexts_equal_the_decoders(order: str, size: tuple[int, int]) -> None:
    """Training (torch, all latents at once) and decoding (integers, from what is decoded)
    build the same context for every latent, also on grids of odd size."""
    cfg = OverfitConfig(grids=4, channels=(2, 1, 3, 1), prob_model=order)
    rng = np.random.default_rng(1)
    lat = [rng.integers(-6, 7, (c, *hw)) for c, hw in zip(cfg.channels, grid_shapes(cfg, *size))]
    ctx_t, val_t, grid_t = context_tensors([torch.tensor(g[None], dtype=torch.float64) for g in lat], order)
    want = {}
    for lvl, g in enumerate(lat):
        c, h, w = g.shape
        par = parent_context(lat[lvl + 1] if lvl + 1 < len(lat) else None, c, h, w)
        if order == "msp":
            ctxs = [stage_context(g, par, s) for s in range(4)]
            vals = [g[:, py::2, px::2].reshape(-1) for py, px in ((0, 0), (1, 1), (0, 1), (1, 0))]
            assert sum(len(v) for v in vals) == g.size
            want[lvl] = (np.concatenate(ctxs), np.concatenate(vals))
        else:
            want[lvl] = (ar_contexts(g, par), g.reshape(-1))
    for lvl in range(len(lat)):
        sel = (grid_t == lvl).numpy()
        got = np.concatenate([ctx_t.numpy().T[sel], val_t.numpy()[sel, None]], 1)
        exp = np.concatenate([want[lvl][0], want[lvl][1][:, None]], 1)
        assert sorted(map(tuple, got.astype(np.int64))) == sorted(map(tuple, exp)), lvl


def test_stage_contexts_only_read_decoded_latents() -> None:
    """A stage's contexts are the same whether later stages are decoded or still zero."""
    rng = np.random.default_rng(2)
    grid = rng.integers(-5, 6, (1, 15, 17))
    par = parent_context(rng.integers(-5, 6, (1, 8, 9)), 1, 15, 17)
    order = ((0, 0), (1, 1), (0, 1), (1, 0))
    for s in range(4):
        partial = np.zeros_like(grid)
        for py, px in order[:s]:
            partial[:, py::2, px::2] = grid[:, py::2, px::2]
        assert np.array_equal(stage_context(partial, par, s), stage_context(grid, par, s))


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_parameter_names_and_shapes(profile: str) -> None:
    m = OverfitModel(PROFILES[profile], 64, 64)
    got = {n: tuple(t.shape) for n, t in named_decoder_params(m).items()}
    assert got == {n: s for n, s, *_ in param_shapes(PROFILES[profile])}


def test_integer_synthesis_follows_the_float_model() -> None:
    torch.manual_seed(0)
    m = OverfitModel(SMALL_CFG, 48, 64, seed=3)
    with torch.no_grad():
        for p in m.latents:
            p.copy_(torch.randint(-4, 5, p.shape).float())
        for conv in m.res:
            conv.weight.normal_(0, 0.05)
    ip = quantize_params(m, {k: 28 for k in [("up", "w"), ("up", "b"), ("syn", "w"), ("syn", "b"),
                                              ("prob", "w"), ("prob", "b")]})
    load_into(m, ip)
    with torch.no_grad():
        ref = m.synthesize([p.detach() for p in m.latents])[0].double().numpy()
    lat = [p.detach().numpy()[0].astype(np.int64) for p in m.latents]
    got = synthesize_fx(lat, ip, SMALL_CFG) / float(1 << FA)
    assert np.abs(got - ref).max() < 2e-3


@pytest.mark.parametrize("order,depth,size", [("msp", 8, (64, 48)), ("msp", 10, (70, 46)), ("ar", 8, (70, 46))])
def test_round_trip_is_the_encoders_picture(order: str, depth: int, size: tuple[int, int]) -> None:
    f = _picture(*size, depth=depth)
    cfg = dataclasses.replace(SMALL_CFG, prob_model=order)
    res = encode_planes(f.planes, depth, cfg, 1e-3, TINY)
    out = decode_picture(res.data, f.format)
    assert out.format == f.format
    assert all(np.array_equal(a, b) for a, b in zip(out.planes, res.planes))
    assert res.stats["param_bits"] > 0 and 8 * len(res.data) > res.stats["param_bits"]


def test_step_codes_are_half_octaves() -> None:
    """Even step codes are powers of two, odd ones 3/4 of the next coarser one: integer
    weights for the decoder, steps strictly decreasing and within 7 % of 2**(-h/2)."""
    steps = [m * 2.0 ** -s for m, s in map(step_of, range(41))]
    assert all(a > b for a, b in zip(steps, steps[1:]))
    assert all(abs(math.log2(s) + h / 2) < 0.09 for h, s in enumerate(steps))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_parameter_section_round_trip(data: st.DataObject) -> None:
    """Any integers in range (all zero, sparse, huge) and step codes come back exactly, and
    the encoder's estimate of their bits (what its RD search counts) is the coded size."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1)))
    ints, exps = {}, {}
    for n, shape, *_ in param_shapes(SMALL_CFG):
        scale = data.draw(st.sampled_from([0.0, 0.3, 3.0, 40.0, 3000.0]))
        q = np.clip(np.rint(rng.laplace(0.0, scale + 1e-9, shape)), -32767, 32767).astype(np.int64)
        q[rng.random(shape) < data.draw(st.floats(0.0, 1.0))] = 0
        ints[n], exps[n] = q, data.draw(st.integers(0, 40))
    sec = param_bytes(IntParams(ints, exps), SMALL_CFG)
    back = decode_params(sec, SMALL_CFG)
    assert back.exps == exps and all(np.array_equal(back.ints[n], q) for n, q in ints.items())
    est = sum(tensor_code(q)[1] + 8 for q in ints.values())  # + the step code bytes
    assert abs(8 * len(sec) - est) < 64 + 0.02 * est


def test_rdoq_of_the_parameters_lowers_the_rd_cost() -> None:
    """RDOQ never raises the cost it searches on, and that cost's distortion and latent rate
    are the float model's at the quantized parameters (the fast evaluator's caching)."""
    f = _picture(64, 48)
    tg = [torch.from_numpy(p.astype(np.float32) / 255) for p in f.planes]
    lam, npix = 1e-3, 64 * 48
    m = OverfitModel(SMALL_CFG, 48, 64)
    _train(m, tg, lam, npix, 60, 1e-2, "main", lambda n, loss, d, r: None)
    ev = _RDEval(m, tg, lam, npix)
    ip = choose_steps(m, tg, lam, npix, ev)
    out, _ = rdoq_params(ev, ip)
    assert ev.cost(out) <= ev.cost(ip)
    load_into(m, out)
    with torch.no_grad():
        _, d, r = _loss(m, _latents(m, "hard"), tg, lam, npix)
    assert ev.lat_cost(out) == pytest.approx(float(d) * npix / lam + float(r) * npix, rel=1e-4)


def _decode_digest(payload: Path, threads: int) -> str:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               OPENBLAS_NUM_THREADS=str(threads), NUMBA_NUM_THREADS=str(threads))
    code = ("import sys, hashlib; from codeclab.codecs.overfit.codec import decode_picture; "
            "f = decode_picture(open(sys.argv[1], 'rb').read()); "
            "print(hashlib.sha256(b''.join(p.tobytes() for p in f.planes)).hexdigest(), 'torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code, str(payload)], capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_decoding_is_the_same_in_other_processes_and_thread_counts(tmp_path: Path) -> None:
    """Bit-identical pictures from fresh interpreters with 1 and 2 threads, without torch."""
    f = _picture(64, 48)
    res = encode_planes(f.planes, 8, SMALL_CFG, 1e-3, TINY)
    path = tmp_path / "p.bin"
    path.write_bytes(res.data)
    here = hashlib.sha256(b"".join(p.tobytes() for p in decode_picture(res.data).planes)).hexdigest()
    assert _decode_digest(path, 1) == f"{here} False"  # and the decoder never loads torch
    assert _decode_digest(path, 2) == f"{here} False"


def test_parameters_survive_coding_and_damage_is_caught() -> None:
    f = _picture(64, 48)
    res = encode_planes(f.planes, 8, SMALL_CFG, 1e-3, TINY)
    cfg, ip, lat, w, h, bd = decode_payload(res.data)
    assert (cfg, w, h, bd) == (SMALL_CFG, 64, 48, 8)
    assert set(ip.ints) == {n for n, *_ in param_shapes(cfg)}
    head = 3 + cfg.grids + 8 + 8
    bad = bytearray(res.data)
    bad[head + 2 * len(param_shapes(cfg)) + 2] ^= 0x40  # inside the parameter integers
    with pytest.raises(BitstreamError, match="CRC"):
        decode_picture(bytes(bad), f.format)
    with pytest.raises(BitstreamError, match="parameter"):  # behind a valid payload CRC
        decode_picture(_recrc(bytes(bad)), f.format)
    for cut in (1, 5, head, head + 3, len(res.data) // 2):
        with pytest.raises(BitstreamError):
            decode_picture(res.data[:cut], f.format)
    with pytest.raises(BitstreamError, match="stream is"):
        decode_picture(res.data, VideoFormat(32, 48))


def _recrc(p: bytes) -> bytes:
    """A damaged payload with its trailing CRC made valid again (exercises the decoder)."""
    return p[:-4] + struct.pack("<I", zlib.crc32(p[:-4]))


_PAYLOAD: dict[str, bytes] = {}


def _payload() -> bytes:
    if not _PAYLOAD:
        _PAYLOAD["p"] = encode_planes(_picture(64, 48).planes, 8, SMALL_CFG, 1e-3, TINY).data
    return _PAYLOAD["p"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_damaged_payloads_fail_cleanly(data: st.DataObject) -> None:
    """Mutations and truncations give a BitstreamError or a picture of the stream's format:
    never another exception, a hang or a huge allocation."""
    p = bytearray(_payload())
    kind = data.draw(st.sampled_from(["flip", "byte", "truncate", "insert"]))
    pos = data.draw(st.integers(0, len(p) - 1))
    if kind == "flip":
        p[pos] ^= 1 << data.draw(st.integers(0, 7))
    elif kind == "byte":
        p[pos] = data.draw(st.integers(0, 255))
    elif kind == "truncate":
        del p[pos:]
    else:
        p[pos:pos] = data.draw(st.binary(min_size=1, max_size=16))
    fmt = VideoFormat(64, 48)
    t = time.perf_counter()
    behind_crc = data.draw(st.booleans())
    try:
        out = decode_picture(_recrc(bytes(p)) if behind_crc and len(p) > 8 else bytes(p), fmt)
        assert out.format == fmt
    except BitstreamError:
        pass
    assert time.perf_counter() - t < 30


def test_rd_cost_goes_down() -> None:
    f = _picture(64, 48)
    tg = [torch.from_numpy(p.astype(np.float32) / 255) for p in f.planes]
    m = OverfitModel(SMALL_CFG, 48, 64)
    seen = []
    _train(m, tg, 1e-3, 64 * 48, 60, 1e-2, "main", lambda n, loss, d, r: seen.append(loss))
    assert np.mean(seen[-10:]) < 0.5 * np.mean(seen[:5])
    with torch.no_grad():
        loss, _, _ = _loss(m, _latents(m, "hard"), tg, 1e-3, 64 * 48)
    assert np.isfinite(float(loss))


def test_spike_clip_scales_only_spikes() -> None:
    """Gradients near the running mean pass untouched; a spike is cut to k times that mean,
    and the mean then follows the clipped norm, not the spike."""
    w = torch.zeros(4, requires_grad=True)
    clip = _SpikeClip([w], k=2.0)
    for norm in (1.0, 1.2, 0.8):
        w.grad = torch.tensor([norm, 0.0, 0.0, 0.0])
        clip()
        assert float(w.grad.norm()) == pytest.approx(norm)
    mean = clip.mean
    w.grad = torch.tensor([0.0, 300.0, 400.0, 0.0])  # norm 500
    clip()
    assert float(w.grad.norm()) == pytest.approx(2.0 * mean, rel=1e-5)
    assert w.grad[1] / w.grad[2] == pytest.approx(0.75)  # the direction is kept
    assert clip.mean == pytest.approx(0.95 * mean + 0.05 * 2.0 * mean, rel=1e-5)


def test_final_phase_keeps_its_best_iterate() -> None:
    """The straight-through phase hands back the best state it measured: its cost is the
    lowest seen, never above the start, and the model holds exactly that state."""
    f = _picture(64, 48)
    tg = [torch.from_numpy(p.astype(np.float32) / 255) for p in f.planes]
    npix = 64 * 48
    m = OverfitModel(SMALL_CFG, 48, 64)
    _train(m, tg, 1e-3, npix, 40, 1e-2, "main", lambda n, loss, d, r: None)
    with torch.no_grad():
        start = float(_loss(m, _latents(m, "hard"), tg, 1e-3, npix)[0])
    seen: list[float] = []
    # a learning rate far too high for this phase: the steps make things worse
    best = _train(m, tg, 1e-3, npix, 15, 5e-2, "final", lambda n, loss, d, r: seen.append(loss), latent_lr=10.0)
    with torch.no_grad():
        now = float(_loss(m, _latents(m, "hard"), tg, 1e-3, npix)[0])
    assert len(seen) == 15
    assert best <= start + 1e-9 and best <= min(seen) + 1e-9
    assert now == pytest.approx(best, rel=1e-6)


def test_sequential_steps_do_not_grow_with_the_picture() -> None:
    msp = PROFILES["mid"]
    ar = dataclasses.replace(msp, prob_model="ar")
    assert sequential_steps(msp, 416, 240) == sequential_steps(msp, 1920, 1080) == 4 * msp.grids
    assert sequential_steps(ar, 1920, 1080) > sequential_steps(ar, 416, 240) > 100 * sequential_steps(msp, 416, 240)


def test_registry_options_and_formats() -> None:
    spec = get_codec("overfit")
    assert spec.raw_ext == ".clc" and "MAC/px" in spec.description
    fmt = VideoFormat(64, 48)
    for bad in ({"quality": 0}, {"preset": "ultra"}, {"profile": "huge"}, {"prob_model": "cabac"},
                {"device": "tpu"}, {"iterations": -1}):
        with pytest.raises(UsageError):
            spec.make_encoder(fmt, make_options(spec, bad))
    with pytest.raises(FormatError, match="4:2:0"):
        spec.make_encoder(VideoFormat(64, 48, "444"), make_options(spec, {}))
    with pytest.raises(FormatError, match="bit"):
        spec.make_encoder(VideoFormat(64, 48, "420", 12), make_options(spec, {}))


def test_transcode_to_clc_and_decode_back(tmp_path: Path) -> None:
    """Two pictures through the CLI and back; two worker processes (--jobs 2, the codec is
    frame_parallel) code the payloads of one job (the .clc files differ only in the
    measured encode times they record)."""
    from codeclab.cli import main
    from codeclab.pipeline.clc.container import open_clc
    from codeclab.pipeline.io.sinks import open_sink
    from codeclab.pipeline.io.sources import open_source

    src = tmp_path / "in.y4m"
    with open_sink(src, _picture(64, 48).format) as sink:
        for i in range(2):
            f = _picture(64, 48, seed=i)
            sink.write(Frame(f.planes, f.format, i, i))
    outs = {}
    for jobs in (1, 2):
        out = tmp_path / f"o{jobs}.clc"
        assert main(["transcode", str(src), "-o", str(out), "--codec", "overfit", "--quality", "3", "-x", "preset=fast",
                     "-x", "iterations=20", "-x", "profile=low", "--metrics", str(tmp_path / "m.csv"), "-q",
                     "--jobs", str(jobs)]) == 0
        with open_clc(out) as r:
            outs[jobs] = [p.data for p in r]
    assert len(outs[1]) == 2 and outs[1] == outs[2]
    rec = tmp_path / "rec.y4m"
    assert main(["decode", str(tmp_path / "o1.clc"), "-o", str(rec), "-q"]) == 0
    with open_source(rec) as s:
        frames = list(s)
    assert len(frames) == 2 and frames[0].format.width == 64
    assert "psnr_yuv" in (tmp_path / "m.csv").read_text().splitlines()[0]

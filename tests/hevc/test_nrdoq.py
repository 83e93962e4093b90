"""Neural RDOQ (codecs/hevc/nrdoq): valid levels, bit-exact streams, data and training commands."""

from __future__ import annotations

import json
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from codeclab.codecs.hevc.quant import quantize_sq, scaled_coeffs
from codeclab.codecs.hevc.quantizers import QuantBatch, available_quantizers, get_quantizer
from codeclab.codecs.hevc.rdoq import scan_tables

sys.path.insert(0, str(Path(__file__).resolve().parent))

NAMES = ("nrdoq-fcn", "nrdoq-ar")


def _random_batch(log2: int, nb: int, seed: int, qp: int = 27) -> QuantBatch:
    rng = np.random.default_rng(seed)
    n = 1 << log2
    decay = np.exp(-np.add.outer(np.arange(n), np.arange(n)) * 3.0 / n)
    c = np.round(rng.laplace(0, 200, (nb, n, n)) * decay).astype(np.int32)
    return QuantBatch(c, log2, rng.integers(0, 3, nb), rng.integers(0, 3, nb) if log2 <= 3 else 0,
                      qp, 10.0, False, 8, None, True)


def _parity_ok(lv: np.ndarray, log2: int, scan_idx: np.ndarray) -> bool:
    scans, _ = scan_tables(log2)
    for b in range(lv.shape[0]):
        s = lv[b].reshape(-1)[scans[int(scan_idx[b])]]
        if np.abs(s).sum() < 2:
            continue
        for g in range(0, s.size, 16):
            nz = np.flatnonzero(s[g:g + 16])
            if len(nz) and nz[-1] - nz[0] >= 4:
                if (int(np.abs(s[g:g + 16]).sum()) & 1) != (1 if s[g + nz[0]] < 0 else 0):
                    return False
    return True


@pytest.mark.parametrize("name", NAMES)
def test_registered_and_levels_valid(name):
    """Registered without importing the package; levels stay within RDOQ's reach of SQ
    (0 .. round(a) + 1 after sign hiding), signs follow the coefficients, SDH parity holds,
    the same batch gives the same levels, and a batch equals its blocks one by one."""
    assert name in available_quantizers()
    q = get_quantizer(name)
    assert q.needs_rate_state is False
    for log2 in (2, 3, 4, 5):
        batch = _random_batch(log2, 24, seed=log2)
        lv = q.quantize(batch)
        assert lv.shape == batch.coeffs.shape and lv.dtype == np.int32
        a = np.abs(scaled_coeffs(batch.coeffs, 27, log2, 8))
        assert np.all(np.abs(lv) <= np.floor(a + 0.5) + 1)
        assert np.all(lv * batch.coeffs >= 0)
        assert _parity_ok(lv, log2, batch.scan_idx)
        assert np.array_equal(lv, q.quantize(batch))
        single = np.concatenate([q.quantize(QuantBatch(batch.coeffs[i:i + 1], log2, batch.c_idx[i],
                                                       batch.scan_idx[i], 27, 10.0, False, 8, None, True))
                                 for i in range(4)])
        assert np.array_equal(single, lv[:4])


@pytest.mark.parametrize("name", NAMES)
def test_changes_something_relative_to_sq(name):
    """The network does refine: on Laplacian blocks it differs from plain SQ somewhere."""
    q = get_quantizer(name)
    batch = _random_batch(3, 64, seed=5, qp=32)
    sq = quantize_sq(batch.coeffs, 32, 3, 8)
    q_lv = q.quantize(QuantBatch(batch.coeffs, 3, batch.c_idx, batch.scan_idx, 32, 10.0, False, 8, None, False))
    assert not np.array_equal(np.abs(q_lv), np.abs(sq))


@pytest.mark.parametrize("name", NAMES)
def test_streams_decode_bit_exact(name):
    """Streams coded with each network decode in FFmpeg to our reconstruction (SDH on), with
    the SATD decisions (one block per call) and with the RD search (candidate batches)."""
    from test_hevc_decode import ffmpeg_decode, picture

    from codeclab.codecs.hevc.encoder import PictureEncoder
    from codeclab.codecs.hevc.params import StreamParams
    from codeclab.codecs.hevc.quantizers import EncoderQuantizer

    for bd, qp, content, preset, (w, h) in ((8, 27, "noise", "fast", (136, 72)),
                                            (10, 32, "stripes", "fast", (136, 72)),
                                            (8, 22, "noise", "medium", (64, 40))):
        planes = picture(content, bd, w, h, seed=qp)
        p = StreamParams(w, h, bd, 5, 1, qp, Fraction(25), True, True, True, True)
        pic = PictureEncoder(p, EncoderQuantizer(name, qp), preset).encode(planes)
        frames, bad = ffmpeg_decode(pic.data)
        assert not bad and len(frames) == 1
        assert all(np.array_equal(frames[0][c], pic.recon[c]) for c in range(3))


def test_hevc_codec_option_accepts_names():
    from codeclab.codecs.hevc import HevcOptions

    for name in NAMES:
        assert HevcOptions(quant=name).quant == name


def _tiny_sources(folder: Path) -> None:
    """Two small synthetic PNG pictures (no shared media needed)."""
    import av

    folder.mkdir()
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:96, 0:128]
    for i in range(2):
        img = np.stack([(xx * (2 + i) + yy) % 256, (yy * 3 + 40 * i) % 256, (xx + yy * (1 + i)) % 256], -1)
        img = np.clip(img + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8)
        with av.open(str(folder / f"p{i}.png"), "w") as c:
            s = c.add_stream("png")
            s.width, s.height, s.pix_fmt = 128, 96, "rgb24"
            for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pkt)
            for pkt in s.encode(None):
                c.mux(pkt)


def test_data_train_resume_export(tmp_path):
    """`nrdoq data` records what RDOQ and SQ did on every quantised block; `nrdoq train` runs,
    resumes from its checkpoint, and exports weights that the quantiser loads."""
    from codeclab.cli import main
    from codeclab.codecs.hevc.nrdoq.data import load_blocks
    from codeclab.codecs.hevc.nrdoq.quantizer import NRDOQQuantizer
    from codeclab.codecs.hevc.quantizers import sign_hiding_hdq

    src = tmp_path / "src"
    _tiny_sources(src)
    run = tmp_path / "run"
    assert main(["nrdoq", "data", str(src), "-o", str(run), "--qps-per-source", "2", "--max-side", "96",
                 "--exclude", "-q"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    blocks = load_blocks(run / "data")
    assert summary["sources"] == 2
    for l2, b in blocks.items():
        assert summary["sizes"][f"{1 << l2}x{1 << l2}"]["blocks"] == len(b)
        assert b.coeffs.shape == (len(b), 1 << l2, 1 << l2)
        for i in range(min(len(b), 20)):
            c = b.coeffs[i:i + 1].astype(np.int32)
            sq = quantize_sq(c, int(b.qp[i]), l2, 8)
            assert np.array_equal(sq, b.sq[i:i + 1])
            assert np.array_equal(sign_hiding_hdq(sq, c, l2, b.scan_idx[i:i + 1], int(b.qp[i]), 8), b.sq_sh[i:i + 1])
            st = b.ctx[i:i + 1]
            rd = get_quantizer("rdoq").quantize(QuantBatch(c, l2, b.c_idx[i], b.scan_idx[i], int(b.qp[i]),
                                                           float(b.lam[i]), False, 8, st, True))
            assert np.array_equal(rd, b.rdoq[i:i + 1])
    for kind in ("fcn", "ar"):
        tr = tmp_path / f"tr_{kind}"
        args = ["nrdoq", "train", kind, "--data", str(run / "data"), "--run", str(tr), "--val-fraction", "0.5", "-q"]
        assert main(args + ["--steps", "3"]) == 0
        import torch

        assert torch.load(tr / "checkpoint.pt", weights_only=False)["step"] == 3
        w = tmp_path / f"{kind}.npz"
        assert main(args + ["--steps", "5", "--export", str(w)]) == 0
        ck = torch.load(tr / "checkpoint.pt", weights_only=False)
        assert ck["step"] == 5 and set(ck["val_pics"]).isdisjoint(ck["train_pics"])
        assert len((tr / "log.jsonl").read_text().splitlines()) == 2  # one per run's end, not redone
        assert w.with_suffix(".md").exists()
        q = NRDOQQuantizer(kind, w)
        batch = _random_batch(2, 8, seed=1)
        assert q.quantize(batch).shape == batch.coeffs.shape


def test_fcn_numba_path_equals_torch():
    """Single blocks run the FCN in numba, batches in torch: the same classes either way."""
    from codeclab.codecs.hevc.nrdoq import quantizer as nq

    q = get_quantizer("nrdoq-fcn")
    for log2 in (2, 3, 4, 5):
        batch = _random_batch(log2, 6, seed=10 + log2)
        old = nq.NUMBA_FCN_MAX
        try:
            nq.NUMBA_FCN_MAX = 10 ** 9
            a, _ = q.classes(batch)
            nq.NUMBA_FCN_MAX = 0
            b, _ = q.classes(batch)
        finally:
            nq.NUMBA_FCN_MAX = old
        assert np.array_equal(a, b)

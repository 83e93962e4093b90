"""The neural RDOQ workflow: `nrdoq data` records RDOQ's decisions, `nrdoq train` trains,
resumes and exports weights the quantizer loads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from _synth import random_quant_batch

from codeclab.codecs.hevc.quantizer import QuantBatch, get_quantizer
from codeclab.codecs.hevc.scalar_quant import quantize_sq


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
    """`nrdoq data` records what RDOQ and SQ did on every quantized block; `nrdoq train` runs,
    resumes from its checkpoint, and exports weights that the quantizer loads."""
    from codeclab.cli import main
    from codeclab.codecs.hevc.nrdoq.neural_quantizer import NRDOQQuantizer
    from codeclab.codecs.hevc.quantizer import sign_hiding_hdq
    from codeclab.lab.nrdoq_data import load_blocks

    src = tmp_path / "src"
    _tiny_sources(src)
    run = tmp_path / "run"
    assert main(["nrdoq", "data", str(src), "-o", str(run), "--qps-per-source", "2", "--max-side", "96",
                 "--exclude", "-q"]) == 0
    # sequences under the RD search: synthetic pans in low-delay P, 8- and 10-bit
    seq = tmp_path / "seq"
    assert main(["nrdoq", "data", str(src), "-o", str(seq), "--qps-per-source", "2", "--max-side", "64",
                 "--frames", "3", "--gop", "ldp", "--presets", "medium", "--bit-depths", "8", "10",
                 "--keep", "4=1", "8=1", "16=1", "32=1", "--exclude", "-q"]) == 0
    for folder in (run, seq):
        summary = json.loads((folder / "summary.json").read_text())
        blocks = load_blocks(folder / "data")
        assert summary["sources"] == 2
        for l2, b in blocks.items():
            assert summary["sizes"][f"{1 << l2}x{1 << l2}"]["blocks"] == len(b)
            assert b.coeffs.shape == (len(b), 1 << l2, 1 << l2)
            pick = np.unique(np.r_[np.arange(min(len(b), 10)), np.flatnonzero(b.bd == 10)[:10],
                                   np.flatnonzero(b.slice == 1)[:10]])
            for i in pick:
                c, bd = b.coeffs[i:i + 1].astype(np.int32), int(b.bd[i])
                sq = quantize_sq(c, int(b.qp[i]), l2, bd)
                assert np.array_equal(sq, b.sq[i:i + 1])
                assert np.array_equal(sign_hiding_hdq(sq, c, l2, b.scan_idx[i:i + 1], int(b.qp[i]), bd),
                                      b.sq_sh[i:i + 1])
                rd = get_quantizer("rdoq").quantize(QuantBatch(c, l2, b.c_idx[i], b.scan_idx[i], int(b.qp[i]),
                                                               float(b.lam[i]), False, bd, b.ctx[i:i + 1], True))
                assert np.array_equal(rd, b.rdoq[i:i + 1])
    blocks = load_blocks(seq / "data")
    summary = json.loads((seq / "summary.json").read_text())
    slices = np.concatenate([b.slice for b in blocks.values()])
    depths = np.concatenate([b.bd for b in blocks.values()])
    assert set(np.unique(slices)) == {0, 1} and set(np.unique(depths)) == {8, 10}
    assert sum(v["by_slice"]["P"] for v in summary["sizes"].values()) == int((slices == 1).sum())
    for kind in ("fcn", "ar"):
        tr = tmp_path / f"tr_{kind}"
        args = ["nrdoq", "train", kind, "--data", str(seq / "data"), "--run", str(tr), "--val-fraction", "0.5", "-q"]
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
        batch = random_quant_batch(2, 8, seed=1)
        assert q.quantize(batch).shape == batch.coeffs.shape


def test_class_costs_follow_lambda():
    """The RD-aware loss's per-class costs: with lambda -> 0 rounding to nearest is the
    cheapest level, with a huge lambda zero is wherever a significant level costs bits."""
    from codeclab.codecs.hevc.nrdoq.features import PLUS1, ZERO, block_features
    from codeclab.lab.nrdoq_train import class_costs

    batch = random_quant_batch(3, 32, seed=7, qp=30)
    feat, a, sq = block_features(batch.coeffs, 3, np.full(32, 30), batch.c_idx, batch.scan_idx, batch.ctx)
    act = (sq > 0) | (np.floor(a + 0.5) > 0)
    small = class_costs(feat, a, sq, np.full(32, 30), np.full(32, 1e-9))
    up = np.floor(a + 0.5) > sq
    assert act.any() and up.any()
    # cheapest of {keep, plus1} is the level nearer to a
    best = np.where(small[..., PLUS1] < small[..., 0], sq + 1, sq)
    assert np.array_equal(best[up], np.floor(a + 0.5)[up].astype(best.dtype))
    big = class_costs(feat, a, sq, np.full(32, 30), np.full(32, 1e9))
    costly = 4 * feat[:, 25] + 1 > 0  # a significant level costs bits here (not always: contexts)
    nz = big[act & (sq > 0) & costly]
    assert len(nz) and np.all(nz[:, ZERO] == nz.min(-1))

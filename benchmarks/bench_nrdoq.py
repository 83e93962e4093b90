"""Neural RDOQ against SQ and RDOQ: quantization time per block and per frame, BD-rate on
held-out pictures, and the input ablation.

    .venv/bin/python benchmarks/bench_nrdoq.py --speed [--blocks 256 --repeat 3 --qp 32]
    .venv/bin/python benchmarks/bench_nrdoq.py --bdrate [--pictures 4 --crop 0 --preset fast]
    .venv/bin/python benchmarks/bench_nrdoq.py --batch runs/nrdoq2/ra/data [--batch-blocks 4096]
    .venv/bin/python benchmarks/bench_nrdoq.py --rdcost runs/nrdoq4/ra/data runs/nrdoq4/ai/data [--rdcost-blocks 3000]
    .venv/bin/python benchmarks/bench_nrdoq.py --ablation runs/nrdoq/ablation

``--speed``: real-picture blocks (transform of DC-predicted blocks of the first validation
picture), per size, every quantizer (sq, rdoq, nrdoq-fcn, nrdoq-ar) measured in the same
run: microseconds per block with one block per call and with ``--blocks`` per call.

``--bdrate``: the validation pictures of ../shared/media/val (never used for training),
4:2:0 8-bit, CTB 64, SDH + TS + deblocking + SAO, QP 22/27/32/37, encoder preset
``--preset`` (fast: SATD decisions, one block per quantizer call; medium: the RD search,
which hands the quantizer its candidate batches with the current CABAC states), every
stream decoded by FFmpeg (PyAV) and checked against our reconstruction. Prints BD-rate
(pchip) Y and YUV (6:1:1) of each quantizer vs SQ and vs RDOQ, each network's share of
RDOQ's gain over SQ, and the quantizers' time in the encoder: every quantizer runs compiled
inside the search, so its time is measured by replaying the calls an ``rdoq`` encode of the
same picture and QP made (recorded through the Python callback: blocks, contexts, scans)
through the compiled ``tb_coding.quantize`` of each quantizer, in one numba loop: the same
blocks for all, microseconds per block by size; beside it the whole encode in seconds per
frame (each quantizer with its own decisions).

``--batch DATA [DATA ...]``: the parallel claim. Recorded blocks (``codeclab nrdoq data``
folders; 8-bit, a ``--batch-blocks`` sample per size) quantized as one large batch per
size, as a hardware encoder with a separate quantisation stage would hand them over: RDOQ
(numba, block after block: each block's decisions are sequential), the FCN (one torch
forward pass over the whole batch, one thread, and on a CUDA GPU when one is present) and
the AR network (numba, sequential within a block). Prints blocks per second of each and
the ratio to RDOQ, and how many levels equal RDOQ's (a sanity check, not the BD-rate).

``--rdcost DATA [DATA ...]``: a selection measure without the encoder's decision chaos.
Recorded blocks of the held-out pictures (``nrdoq train``'s split, ``--split-seed 0``; a
``--rdcost-blocks`` sample per size) quantized by each network of ``--quants`` (and
``--weights``), against the recorded SQ (+ sign hiding) and RDOQ levels: J = SSE (8-bit
units) + lambda x bits, the bits of each block's cbf and residual_coding() by our CABAC
coder from the block's recorded contexts. Prints the share of RDOQ's J reduction over SQ
per size and component, and over all blocks. Decisions stay fixed, so a change of the
network moves only its own blocks' costs.

``--ablation DIR``: the final validation accuracy of every training run under DIR
(``codeclab nrdoq train ... --drop GROUP --export DIR/NAME.npz``, one folder per run) side
by side: teacher-forced (the training log) and through the quantizer's own inference path
(the model card; for the AR network its free-running state).
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import os
import time
from fractions import Fraction
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np  # noqa: E402

MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media"
QUANTS = ("sq", "rdoq", "nrdoq-fcn", "nrdoq-ar")


def _set_threads() -> None:
    import torch

    torch.set_num_threads(1)


def _recording_quantizer(qp: int):
    """``rdoq`` called back in Python (an EncoderQuantizer subclass is not run compiled) that
    keeps every call the encoder makes: the blocks, their QP, size, component, scans,
    trafoDepth and the contexts they are priced with, for :func:`_replay`."""
    from codeclab.codecs.hevc.quantizer import EncoderQuantizer

    class Recording(EncoderQuantizer):
        def __init__(self) -> None:
            super().__init__("rdoq", qp)
            self.log: list[tuple] = []

        def quantize(self, coeffs, qp, log2, bit_depth, c_idx, scan_idx, sign_hiding, trafo_depth=0, lam=None):
            self.log.append((np.array(coeffs, np.int32), int(qp), int(log2), int(c_idx),
                             np.ascontiguousarray(np.broadcast_to(scan_idx, (len(coeffs),)), np.int64),
                             int(trafo_depth), np.array(self.live_ctx, np.uint8)))
            return super().quantize(coeffs, qp, log2, bit_depth, c_idx, scan_idx, sign_hiding, trafo_depth, lam)

    return Recording()


_REPLAY = []


def _replay(tp, log: list[tuple], repeat: int) -> float:
    """Best-of-``repeat`` seconds the compiled quantizer of ``tp`` (tb_coding.quantize, as
    the search calls it) takes for the recorded calls ``log``."""
    from numba import njit
    from numba.typed import List

    from codeclab.codecs.hevc.picture_state import new_tb_work

    if not _REPLAY:
        from codeclab.codecs.hevc.tb_coding import quantize

        @njit
        def run(tp, coefs, ctxs, scans, meta, work):  # pragma: no cover - numba
            nb = 0
            for i in range(len(coefs)):
                c = coefs[i]
                out = np.empty_like(c)
                quantize(tp, ctxs[i], True, c, meta[i, 0], meta[i, 1], meta[i, 2], scans[i], meta[i, 3], out, work)
                nb += c.shape[0]
            return nb

        _REPLAY.append(run)
    coefs, ctxs, scans = List(), List(), List()
    meta = np.zeros((len(log), 4), np.int64)
    for i, (c, qp, log2, ci, sc, depth, ctx) in enumerate(log):
        coefs.append(c)
        ctxs.append(ctx)
        scans.append(sc)
        meta[i] = qp, log2, ci, depth
    work = new_tb_work()  # the encoder's state carries one: the search passes it to every call
    best = np.inf
    for _ in range(repeat + 1):  # the first run compiles
        t0 = time.perf_counter()
        _REPLAY[0](tp, coefs, ctxs, scans, meta, work)
        best = min(best, time.perf_counter() - t0)
    return best


def _val_pictures(pictures: int, crop: int, folder: Path | None = None, names: list[str] | None = None
                  ) -> list[tuple[str, list[np.ndarray]]]:
    import av

    folder = folder or MEDIA / "val"
    pics = sorted(folder.glob("*.png")) if folder.is_dir() else []
    if names:
        pics = [p for p in pics if p.stem in names]
    pics = pics[:pictures]
    if not pics:
        raise SystemExit(f"bench_nrdoq: needs pictures in {folder}")
    out = []
    for path in pics:
        with av.open(str(path)) as cont:
            fr = next(cont.decode(video=0))
        w, h = fr.width & ~1, fr.height & ~1
        yuv = fr.reformat(width=w, height=h, format="yuv420p")
        planes = [np.from_dlpack(p).copy() for p in yuv.planes]
        if crop:
            cw, ch = min(w, crop) & ~7, min(h, crop) & ~7
            y0, x0 = ((h - ch) // 2) & ~1, ((w - cw) // 2) & ~1
            planes = [planes[0][y0:y0 + ch, x0:x0 + cw]] + [
                p[y0 // 2:(y0 + ch) // 2, x0 // 2:(x0 + cw) // 2] for p in planes[1:]]
        out.append((path.stem, planes))
    return out


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b) ** 2).mean())
    return 10 * np.log10(255.0 ** 2 / max(mse, 1e-10))


def bdrate(pictures: int, crop: int, preset: str, quants: tuple[str, ...], weights: dict[str, str],
           folder: Path | None = None, names: list[str] | None = None, repeat: int = 3) -> None:
    import av

    from codeclab.base.errors import UsageError
    from codeclab.codecs.hevc.encoder import PictureEncoder
    from codeclab.codecs.hevc.params import StreamParams
    from codeclab.codecs.hevc.quantizer import EncoderQuantizer
    from codeclab.eval.bdrate import bd_rate_components

    qps = (22, 27, 32, 37)
    pics = _val_pictures(pictures, crop, folder, names)
    rows: dict[str, dict[str, list[float]]] = {}
    timing = {q: {"frames": 0, "enc_s": 0.0, "q_s": np.zeros(4), "blocks": np.zeros(4, np.int64)} for q in quants}
    print(f"preset {preset}, QP {qps}, pictures: " + ", ".join(f"{n} {p[0].shape[1]}x{p[0].shape[0]}" for n, p in pics))
    for name, planes in pics:
        h, w = planes[0].shape
        curves = {}
        for qp in qps:
            p = StreamParams(w, h, 8, 6, 1, qp, Fraction(25), True, True, True, True)
            rec = _recording_quantizer(qp)  # the calls of the rdoq encode, replayed by every quantizer
            PictureEncoder(p, rec, preset).encode(planes)
            for qn in quants:
                eq = EncoderQuantizer(qn, qp, **({"weights": weights[qn]} if qn in weights else {}))
                enc = PictureEncoder(p, eq, preset)
                t0 = time.perf_counter()
                out = enc.encode(planes)
                t = timing[qn]
                t["enc_s"] += time.perf_counter() - t0
                t["frames"] += 1
                with av.open(io.BytesIO(out.data), format="hevc") as c:
                    dec = [np.from_dlpack(pl).copy() for pl in next(c.decode(video=0)).planes]
                if not all(np.array_equal(a, b) for a, b in zip(dec, out.recon)):
                    raise SystemExit(f"bench_nrdoq: {name} QP {qp} {qn}: FFmpeg's decode differs from our reconstruction")
                d = curves.setdefault(qn, {"rate": [], "psnr_y": [], "psnr_u": [], "psnr_v": []})
                d["rate"].append(out.bits)
                for k, a, b in zip(("psnr_y", "psnr_u", "psnr_v"), dec, planes):
                    d[k].append(_psnr(a, b))
                tp = enc._setup(qp, "I", 0, 0).tp
                for l2 in range(2, 6):
                    sub = [x for x in rec.log if x[2] == l2]
                    if sub:
                        t["q_s"][l2 - 2] += _replay(tp, sub, repeat)
                        t["blocks"][l2 - 2] += sum(len(x[0]) for x in sub)
        line = f"{name:<12}"
        try:
            bds = {(qn, ref): bd_rate_components(curves[ref], curves[qn])
                   for qn in quants[1:] for ref in ("sq", "rdoq") if ref != qn and ref in curves}
        except UsageError as e:  # e.g. a synthetic picture coded losslessly at two QPs
            print(f"{name:<12} left out of the means: {e}", flush=True)
            continue
        for qn in quants[1:]:
            for ref in ("sq", "rdoq"):
                if ref == qn or ref not in curves:
                    continue
                bd = bds[qn, ref]
                rows.setdefault(f"{qn} vs {ref}", {"Y": [], "YUV": []})
                rows[f"{qn} vs {ref}"]["Y"].append(bd["Y"])
                rows[f"{qn} vs {ref}"]["YUV"].append(bd["YUV"])
                line += f"  {qn} vs {ref}: Y {bd['Y']:+.2f} % YUV {bd['YUV']:+.2f} %"
        print(line, flush=True)
        for qn in quants:
            c = curves[qn]
            print(f"   {qn}: " + ", ".join(f"QP{q} {r} b {y:.2f} dB" for q, r, y in zip(qps, c["rate"], c["psnr_y"])))
    print("\nmean BD-rate (pchip) over", len(next(iter(rows.values()))["Y"]) if rows else 0, "pictures")
    print(f"{'pair':<22} {'Y %':>8} {'YUV %':>8}")
    for k, v in rows.items():
        print(f"{k:<22} {np.mean(v['Y']):>8.2f} {np.mean(v['YUV']):>8.2f}")
    if "rdoq vs sq" in rows:
        ry, ruv = np.mean(rows["rdoq vs sq"]["Y"]), np.mean(rows["rdoq vs sq"]["YUV"])
        for qn in quants[2:]:
            k = f"{qn} vs sq"
            if k in rows:
                print(f"share of RDOQ's gain, {qn}: Y {np.mean(rows[k]['Y']) / ry * 100:.0f} %, "
                      f"YUV {np.mean(rows[k]['YUV']) / ruv * 100:.0f} % (ratio of means); per picture Y: "
                      + ", ".join(f"{a / b * 100:.0f} %" for a, b in zip(rows[k]["Y"], rows["rdoq vs sq"]["Y"])))
    blocks = next(iter(timing.values()))["blocks"]
    print(f"\nquantizer time in the encoder (preset {preset}; one run, same pictures and QPs): the compiled "
          f"quantizer replaying the calls of the rdoq encodes (the same {int(blocks.sum()):,} blocks for every "
          f"quantizer: {', '.join(f'{b:,} of {4 << i}x{4 << i}' for i, b in enumerate(blocks))}; best of {repeat}), "
          f"us per block, and the whole encode in s per frame (each with its own decisions)")
    print(f"{'quantizer':<10} " + " ".join(f"{f'{4 << i}x{4 << i}':>8}" for i in range(4))
          + f" {'all':>8} {'vs rdoq':>8} {'encode s/frame':>15}")
    ref = timing["rdoq"]["q_s"].sum() if "rdoq" in timing else None
    for qn, t in timing.items():
        per = [f"{s / max(b, 1) * 1e6:>8.2f}" for s, b in zip(t["q_s"], t["blocks"])]
        ratio = f"{t['q_s'].sum() / ref:>7.2f}x" if ref else f"{'':>8}"
        print(f"{qn:<10} " + " ".join(per) + f" {t['q_s'].sum() / max(t['blocks'].sum(), 1) * 1e6:>8.2f} {ratio} "
              f"{t['enc_s'] / t['frames']:>15.2f}")


def speed(blocks: int, repeat: int, qp: int) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_quantizers import _coeffs

    from codeclab.bitstream.cabac import init_contexts
    from codeclab.codecs.hevc.lambdas import intra_lambda
    from codeclab.codecs.hevc.quantizer import RATE_K, QuantBatch, extract_rate_state, get_quantizer
    from codeclab.codecs.hevc.tables import INIT_VALUES_I

    rng = np.random.default_rng(0)
    full = init_contexts(INIT_VALUES_I, qp)
    lam = intra_lambda(qp)
    quants = {n: get_quantizer(n) for n in QUANTS}
    print(f"QP {qp}, {blocks} real-picture luma blocks per size, best of {repeat}; us per block")
    print(f"{'n':>3} " + " ".join(f"{n + ' b1':>13} {n + ' b' + str(blocks):>15}" for n in QUANTS))
    for log2 in range(2, 6):
        c = _coeffs(log2, blocks, rng)
        st = np.ascontiguousarray(np.broadcast_to(extract_rate_state(full, None, 0, 1), (blocks, RATE_K)))
        batch = QuantBatch(c, log2, 0, 0, qp, lam, False, 8, st, True)
        singles = [QuantBatch(c[i:i + 1], log2, 0, 0, qp, lam, False, 8, st[i:i + 1], True) for i in range(blocks)]
        res = []
        for n, q in quants.items():
            q.quantize(batch)
            best1 = bestb = np.inf
            for _ in range(repeat):
                t0 = time.perf_counter()
                for s in singles:
                    q.quantize(s)
                best1 = min(best1, time.perf_counter() - t0)
                t0 = time.perf_counter()
                q.quantize(batch)
                bestb = min(bestb, time.perf_counter() - t0)
            res.append(f"{best1 / blocks * 1e6:>13.2f} {bestb / blocks * 1e6:>15.2f}")
        print(f"{1 << log2:>3} " + " ".join(res), flush=True)


def batch_speed(data: list[Path], per_size: int, repeat: int) -> None:
    import torch

    from codeclab.codecs.hevc.nrdoq.features import block_features
    from codeclab.codecs.hevc.quantizer import QuantBatch, get_quantizer
    from codeclab.lab.nrdoq_data import load_blocks

    blocks = load_blocks(data)
    rng = np.random.default_rng(0)
    quants = {n: get_quantizer(n) for n in ("rdoq", "nrdoq-fcn", "nrdoq-ar")}
    cuda = torch.cuda.is_available()
    print(f"recorded blocks from {', '.join(map(str, data))}; up to {per_size} 8-bit blocks per size in one "
          f"batch, best of {repeat}; blocks per second (ratio to RDOQ), levels equal to RDOQ's")
    cols = ["rdoq", "nrdoq-fcn", "nrdoq-ar"] + (["fcn forward cuda"] if cuda else [])
    print(f"{'n':>3} {'blocks':>7} " + " ".join(f"{c:>24}" for c in cols))
    for l2, b in blocks.items():
        idx = np.flatnonzero(b.bd == 8)
        if len(idx) > per_size:
            idx = np.sort(rng.choice(idx, per_size, replace=False))
        # one component / scan per batch field is per block: QuantBatch takes arrays
        batch = QuantBatch(b.coeffs[idx].astype(np.int32), l2, b.c_idx[idx].astype(np.int64),
                           b.scan_idx[idx].astype(np.int64), b.qp[idx].astype(np.int64),
                           b.lam[idx].astype(np.float64), np.zeros(len(idx), bool), 8, b.ctx[idx], True)
        row, ref = [], b.rdoq[idx]
        base = None
        for name, q in quants.items():
            out = q.quantize(batch)  # warm (compilation, torch module)
            best = np.inf
            for _ in range(repeat):
                t0 = time.perf_counter()
                out = q.quantize(batch)
                best = min(best, time.perf_counter() - t0)
            bps = len(idx) / best
            base = base or bps
            same = float((out == ref).mean())
            row.append(f"{bps:>10,.0f} ({bps / base:4.1f}x) {same * 100:5.1f}%")
        if cuda:  # the FCN's forward pass alone on the GPU (features from the CPU)
            nq = quants["nrdoq-fcn"]
            nq.quantize(batch)
            feat = block_features(batch.coeffs, l2, batch.qp, batch.c_idx, batch.scan_idx, batch.ctx, 8)[0]
            model = nq._model.to("cuda")
            x = torch.from_numpy(feat).to("cuda")
            best = np.inf
            with torch.inference_mode():
                for _ in range(repeat + 1):
                    torch.cuda.synchronize()
                    t0 = time.perf_counter()
                    model(x).argmax(1).cpu()
                    torch.cuda.synchronize()
                    best = min(best, time.perf_counter() - t0)
            nq._model = model.to("cpu")
            bps = len(idx) / best
            row.append(f"{bps:>10,.0f} ({bps / base:4.1f}x) {'':>6}")
        print(f"{1 << l2:>3} {len(idx):>7} " + " ".join(f"{r:>24}" for r in row), flush=True)
    if not cuda:
        print("(no CUDA GPU here: the GPU column is left out)")


@functools.cache
def _bits_kernel():  # type: ignore[no-untyped-def]
    """The numba kernel of :func:`_blocks_bits`, compiled on first use (the other modes of
    this script do not pay for it)."""
    from numba import njit

    from codeclab.bitstream.cabac import E_FRAC, ENTROPY_BITS, new_engine
    from codeclab.codecs.hevc.residual import C4_SCAN, SB_SCAN, code_residual

    @njit
    def run(lv, log2, c_idx, scan_idx, ctx, gather, num_ctx, out):  # pragma: no cover - numba
        full = np.zeros(num_ctx, np.uint8)
        buf = np.zeros(16, np.uint8)
        for b in range(lv.shape[0]):
            coded = False
            for v in lv[b].flat:
                if v != 0:
                    coded = True
            out[b] = ENTROPY_BITS[ctx[b, -1] ^ (1 if coded else 0)]
            if coded:
                g = gather[min(c_idx[b], 1)]
                for i in range(g.shape[0]):  # the block's contexts where the coder reads them
                    full[g[i]] = ctx[b, i]
                eng = new_engine(1)
                code_residual(eng, full, buf, lv[b], log2, c_idx[b], scan_idx[b], True, False, 0, SB_SCAN, C4_SCAN)
                out[b] += eng[E_FRAC]

    return run


def _blocks_bits(lv: np.ndarray, log2: int, c_idx: np.ndarray, scan_idx: np.ndarray, ctx: np.ndarray) -> np.ndarray:
    """Bits (1/32768) of each TB's cbf and residual_coding() from its recorded states (B, RATE_K),
    by our CABAC residual coder in estimate mode (no adaptation across blocks), in one numba call."""
    from codeclab.codecs.hevc.quantizer import _live_index
    from codeclab.codecs.hevc.tables import NUM_CTX

    gather = np.stack([_live_index(0, 0), _live_index(1, 0)])  # Cb and Cr share the chroma contexts
    out = np.zeros(len(lv), np.int64)
    _bits_kernel()(np.ascontiguousarray(lv, dtype=np.int32), log2, c_idx.astype(np.int64),
                   scan_idx.astype(np.int64), ctx.astype(np.int64), gather, NUM_CTX, out)
    return out


def rd_cost(data: list[Path], per_size: int, quants: tuple[str, ...], weights: dict[str, str],
            split_seed: int = 0, val_fraction: float = 0.12) -> None:
    """Share of RDOQ's RD-cost gain over SQ on recorded blocks of the held-out pictures."""
    from codeclab.codecs.hevc.quantizer import QuantBatch, get_quantizer
    from codeclab.codecs.hevc.scalar_quant import dequantize
    from codeclab.lab.nrdoq_data import load_blocks
    from codeclab.lab.nrdoq_train import split_pictures

    blocks = load_blocks(data)
    _, val = split_pictures(blocks, val_fraction, split_seed)
    rng = np.random.default_rng(0)
    nets = {n: get_quantizer(n, **({"weights": weights[n]} if n in weights else {})) for n in quants}
    print(f"recorded blocks of the {len(val)} held-out pictures (--split-seed {split_seed}) in "
          f"{', '.join(map(str, data))}, up to {per_size} per size; J = SSE (8-bit units) + lambda * bits, "
          f"bits of each block's cbf and residual from its recorded contexts; share = (J_sq - J) / (J_sq - J_rdoq)")
    tot = {k: dict.fromkeys(("sq", "rdoq", *quants), 0.0) for k in ("luma", "chroma")}
    print(f"{'n':>3} {'comp':>6} {'blocks':>7} " + " ".join(f"{n + ' share':>16}" for n in quants))
    for l2, b in blocks.items():
        idx = np.flatnonzero(np.isin(b.pic, list(val)))
        if len(idx) > per_size:
            idx = np.sort(rng.choice(idx, per_size, replace=False))
        coeffs, qp, bd = b.coeffs[idx].astype(np.int32), b.qp[idx].astype(np.int64), b.bd[idx]
        levels = {"sq": b.sq_sh[idx].astype(np.int32), "rdoq": b.rdoq[idx].astype(np.int32)}
        for n, q in nets.items():
            out = np.zeros_like(levels["sq"])
            for d in np.unique(bd):  # a QuantBatch has one bit depth
                m = bd == d
                i = idx[m]
                out[m] = q.quantize(QuantBatch(coeffs[m], l2, b.c_idx[i].astype(np.int64),
                                               b.scan_idx[i].astype(np.int64), qp[m],
                                               b.lam[i].astype(np.float64), np.zeros(len(i), bool), int(d),
                                               b.ctx[i], True))
            levels[n] = out
        cost = {}
        for n, lv in levels.items():  # J per block
            rec = np.zeros(lv.shape, np.float64)
            for d in np.unique(bd):
                m = bd == d
                rec[m] = dequantize(lv[m], qp[m], l2, int(d))
            sse = ((coeffs - rec) ** 2).sum(axis=(1, 2)) / 4.0 ** (7 - l2)  # 8-bit units at any depth
            bits = _blocks_bits(lv, l2, b.c_idx[idx], b.scan_idx[idx], b.ctx[idx])
            cost[n] = sse + b.lam[idx] * bits / 32768
        for comp, sel in (("luma", b.c_idx[idx] == 0), ("chroma", b.c_idx[idx] > 0)):
            if not sel.any():
                continue
            j = {n: float(c[sel].sum()) for n, c in cost.items()}
            for n, v in j.items():
                tot[comp][n] += v
            gain = j["sq"] - j["rdoq"]
            print(f"{1 << l2:>3} {comp:>6} {int(sel.sum()):>7} " + " ".join(
                f"{(j['sq'] - j[n]) / gain * 100:>15.1f}%" for n in quants), flush=True)
    for comp, t in tot.items():
        gain = t["sq"] - t["rdoq"]
        if gain:
            print(f"all {comp:>6}: RDOQ {-gain / t['sq'] * 100:.2f} % of SQ's J; share "
                  + ", ".join(f"{n} {(t['sq'] - t[n]) / gain * 100:.1f} %" for n in quants))


def ablation(folder: Path) -> None:
    import re

    print(f"{'run (dropped inputs)':<28} {'steps':>6} {'acc':>7} {'bal acc':>8} {'acc free':>9} " + " ".join(
        f"{k + ' rec':>11}" for k in ("keep", "minus1", "zero", "plus1")))
    for run in sorted(Path(folder).iterdir()):
        log = run / "log.jsonl"
        if not log.exists():
            continue
        last = json.loads(log.read_text().splitlines()[-1])
        card = run.with_suffix(".md")  # written by --export: accuracy of the real inference path
        m = re.search(r"inference path.*?\n\nAccuracy ([0-9]+\.[0-9]+)", card.read_text(), re.S) if card.exists() else None
        free = f"{float(m.group(1)):>9.4f}" if m else f"{'-':>9}"
        print(f"{run.name:<28} {last['step']:>6} {last['accuracy']:>7.4f} {last['balanced_accuracy']:>8.4f} {free} "
              + " ".join(f"{last['recall'][k]:>11.3f}" for k in ("keep", "minus1", "zero", "plus1")))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--speed", action="store_true")
    ap.add_argument("--blocks", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--qp", type=int, default=32)
    ap.add_argument("--bdrate", action="store_true")
    ap.add_argument("--pictures", type=int, default=4)
    ap.add_argument("--crop", type=int, default=0, help="centre crop of at most this side")
    ap.add_argument("--preset", default="fast", help="encoder preset: fast (SATD), medium / slow (RD search)")
    ap.add_argument("--quants", nargs="*", default=list(QUANTS))
    ap.add_argument("--ablation", metavar="DIR")
    ap.add_argument("--batch", nargs="+", type=Path, metavar="DATA",
                    help="recorded block folders (codeclab nrdoq data ... -o RUN: RUN/data)")
    ap.add_argument("--batch-blocks", type=int, default=4096, help="blocks per size in the --batch run")
    ap.add_argument("--rdcost", nargs="+", type=Path, metavar="DATA",
                    help="recorded data folders: share of RDOQ's RD-cost gain on the held-out pictures' blocks")
    ap.add_argument("--rdcost-blocks", type=int, default=3000, help="blocks per size in the --rdcost run")
    ap.add_argument("--weights", nargs="*", default=[], metavar="NAME=PATH",
                    help="other weights for a network, e.g. nrdoq-fcn=runs/nrdoq/exp/fcn_p0.5.npz")
    ap.add_argument("--folder", type=Path, help="pictures to encode instead of ../shared/media/val "
                    "(model selection on the training run's held-out pictures)")
    ap.add_argument("--names", nargs="*", help="only these pictures (stems) of the folder")
    a = ap.parse_args()
    _set_threads()
    if a.speed:
        speed(a.blocks, a.repeat, a.qp)
    if a.bdrate:
        bdrate(a.pictures, a.crop, a.preset, tuple(a.quants), dict(w.split("=", 1) for w in a.weights),
               a.folder, a.names, a.repeat)
    if a.ablation:
        ablation(Path(a.ablation))
    if a.batch:
        batch_speed(a.batch, a.batch_blocks, a.repeat)
    if a.rdcost:
        rd_cost(a.rdcost, a.rdcost_blocks, tuple(q for q in a.quants if q.startswith("nrdoq")),
                dict(w.split("=", 1) for w in a.weights))
    if not (a.speed or a.bdrate or a.ablation or a.batch or a.rdcost):
        ap.error("choose --speed, --bdrate, --batch, --rdcost and/or --ablation")


if __name__ == "__main__":
    main()

"""Neural RDOQ against SQ and RDOQ: quantization time per block and per frame, BD-rate on
held-out pictures, and the input ablation.

    .venv/bin/python benchmarks/bench_nrdoq.py --speed [--blocks 256 --repeat 3 --qp 32]
    .venv/bin/python benchmarks/bench_nrdoq.py --bdrate [--pictures 4 --crop 0 --preset fast]
    .venv/bin/python benchmarks/bench_nrdoq.py --batch runs/nrdoq2/ra/data [--batch-blocks 4096]
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
RDOQ's gain over SQ, and the time spent inside the quantizer per frame, per call and per
block (mean blocks per call = the batch the encoder really uses).

``--batch DATA [DATA ...]``: the parallel claim. Recorded blocks (``codeclab nrdoq data``
folders; 8-bit, a ``--batch-blocks`` sample per size) quantized as one large batch per
size, as a hardware encoder with a separate quantisation stage would hand them over: RDOQ
(numba, block after block: each block's decisions are sequential), the FCN (one torch
forward pass over the whole batch, one thread, and on a CUDA GPU when one is present) and
the AR network (numba, sequential within a block). Prints blocks per second of each and
the ratio to RDOQ, and how many levels equal RDOQ's (a sanity check, not the BD-rate).

``--ablation DIR``: the final validation accuracy of every training run under DIR
(``codeclab nrdoq train ... --drop GROUP --export DIR/NAME.npz``, one folder per run) side
by side: teacher-forced (the training log) and through the quantizer's own inference path
(the model card; for the AR network its free-running state).
"""

from __future__ import annotations

import argparse
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


class _Counting:
    """Wraps a registry quantizer: calls, blocks and seconds spent inside it."""

    def __init__(self, q) -> None:
        self.q, self.name, self.needs_rate_state = q, q.name, q.needs_rate_state
        self.calls = self.blocks = 0
        self.seconds = 0.0

    def quantize(self, batch):
        t0 = time.perf_counter()
        out = self.q.quantize(batch)
        self.seconds += time.perf_counter() - t0
        self.calls += 1
        self.blocks += len(batch)
        return out


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
           folder: Path | None = None, names: list[str] | None = None) -> None:
    import av

    from codeclab.codecs.hevc.encoder import PictureEncoder
    from codeclab.codecs.hevc.params import StreamParams
    from codeclab.codecs.hevc.quantizer import EncoderQuantizer
    from codeclab.eval.bdrate import bd_rate_components

    qps = (22, 27, 32, 37)
    pics = _val_pictures(pictures, crop, folder, names)
    rows: dict[str, dict[str, list[float]]] = {}
    timing = {q: {"s": 0.0, "calls": 0, "blocks": 0, "frames": 0, "enc_s": 0.0} for q in quants}
    print(f"preset {preset}, QP {qps}, pictures: " + ", ".join(f"{n} {p[0].shape[1]}x{p[0].shape[0]}" for n, p in pics))
    for name, planes in pics:
        h, w = planes[0].shape
        curves = {}
        for qn in quants:
            d: dict[str, list[float]] = {"rate": [], "psnr_y": [], "psnr_u": [], "psnr_v": []}
            for qp in qps:
                p = StreamParams(w, h, 8, 6, 1, qp, Fraction(25), True, True, True, True)
                eq = EncoderQuantizer(qn, qp, **({"weights": weights[qn]} if qn in weights else {}))
                eq.q = cnt = _Counting(eq.q)
                t0 = time.perf_counter()
                out = PictureEncoder(p, eq, preset).encode(planes)
                timing[qn]["enc_s"] += time.perf_counter() - t0
                with av.open(io.BytesIO(out.data), format="hevc") as c:
                    dec = [np.from_dlpack(pl).copy() for pl in next(c.decode(video=0)).planes]
                if not all(np.array_equal(a, b) for a, b in zip(dec, out.recon)):
                    raise SystemExit(f"bench_nrdoq: {name} QP {qp} {qn}: FFmpeg's decode differs from our reconstruction")
                d["rate"].append(out.bits)
                for k, a, b in zip(("psnr_y", "psnr_u", "psnr_v"), dec, planes):
                    d[k].append(_psnr(a, b))
                t = timing[qn]
                t["s"] += cnt.seconds
                t["calls"] += cnt.calls
                t["blocks"] += cnt.blocks
                t["frames"] += 1
            curves[qn] = d
        line = f"{name:<12}"
        for qn in quants[1:]:
            for ref in ("sq", "rdoq"):
                if ref == qn or ref not in curves:
                    continue
                bd = bd_rate_components(curves[ref], curves[qn])
                rows.setdefault(f"{qn} vs {ref}", {"Y": [], "YUV": []})
                rows[f"{qn} vs {ref}"]["Y"].append(bd["Y"])
                rows[f"{qn} vs {ref}"]["YUV"].append(bd["YUV"])
                line += f"  {qn} vs {ref}: Y {bd['Y']:+.2f} % YUV {bd['YUV']:+.2f} %"
        print(line, flush=True)
        for qn in quants:
            c = curves[qn]
            print(f"   {qn}: " + ", ".join(f"QP{q} {r} b {y:.2f} dB" for q, r, y in zip(qps, c["rate"], c["psnr_y"])))
    print("\nmean BD-rate (pchip) over", len(pics), "pictures")
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
    print(f"\nquantizer time in the encoder (preset {preset}; one run, same pictures and QPs)")
    print(f"{'quantizer':<10} {'ms/frame':>9} {'us/call':>8} {'us/block':>9} {'blocks/call':>12} {'encode s/frame':>15}")
    for qn, t in timing.items():
        print(f"{qn:<10} {t['s'] / t['frames'] * 1e3:>9.1f} {t['s'] / max(t['calls'], 1) * 1e6:>8.1f} "
              f"{t['s'] / max(t['blocks'], 1) * 1e6:>9.2f} {t['blocks'] / max(t['calls'], 1):>12.1f} "
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
               a.folder, a.names)
    if a.ablation:
        ablation(Path(a.ablation))
    if a.batch:
        batch_speed(a.batch, a.batch_blocks, a.repeat)
    if not (a.speed or a.bdrate or a.ablation or a.batch):
        ap.error("choose --speed, --bdrate, --batch and/or --ablation")


if __name__ == "__main__":
    main()

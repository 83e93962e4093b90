"""Training data for the neural RDOQ quantizers: our encoder with classical RDOQ, recorded.

:class:`RecordingQuantizer` sits where the picture encoder expects its quantizer and hands
every batch to HM's RDOQ (``rdoq``), so the encoder's decisions follow RDOQ exactly as in a
normal ``--quant rdoq`` encode; on the side it stores, per block handed over, the
coefficients, the SQ levels (``quantize_sq``, before and after sign hiding as ``sq`` does),
the RDOQ levels, QP, lambda, component, scan and the CABAC rate state. :func:`generate`
encodes a folder of pictures / clips at many QPs and writes one compressed npz per source
(``<run>/data/<source>.npz``) plus ``summary.json`` (counts per block size, label statistics).

Only blocks the encoder actually quantizes are recorded (it skips blocks whose coefficients
are all below half a step: no HM-family quantizer codes anything there).
"""

from __future__ import annotations

import json
import time
import zlib
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from codeclab.base.atomic import atomic_write
from codeclab.base.errors import InputError, UsageError
from codeclab.codecs.hevc.quantizer import EncoderQuantizer, QuantBatch, sign_hiding_hdq
from codeclab.codecs.hevc.scalar_quant import quantize_sq

__all__ = ["RecordingQuantizer", "generate", "load_blocks", "Blocks", "label_classes", "CLASS_NAMES"]

PICTURE_EXT = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
CLIP_EXT = {".mp4", ".avi", ".mkv", ".mov", ".webm", ".y4m"}

#: output space of the networks, per coefficient, relative to the SQ level (before sign hiding)
CLASS_NAMES = ("keep", "minus1", "zero", "plus1")


def label_classes(sq: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Class of each coefficient: 0 keep, 1 |target| = |sq| - 1 (> 0), 2 target = 0 (from
    |sq| >= 1, or |sq| == 1 lowered by one), 3 |target| = |sq| + 1. Anything else (RDOQ only
    produces these, see docs/nrdoq.md) is mapped to the nearest: -2 or lower -> zero if the
    target is 0 else minus1, +2 -> plus1."""
    s = np.abs(sq.astype(np.int32))
    t = np.abs(target.astype(np.int32))
    d = t - s
    cls = np.zeros(s.shape, dtype=np.int8)
    cls[(d < 0) & (t > 0)] = 1
    cls[(d < 0) & (t == 0)] = 2
    cls[d > 0] = 3
    return cls


class _Recorder:
    """A registry quantizer (``rdoq``) that keeps every batch it is handed, with its levels."""

    name = "rdoq-recording"
    needs_rate_state = True

    def __init__(self, inner) -> None:
        self.inner = inner
        self.records: dict[int, dict[str, list[np.ndarray]]] = {}

    def quantize(self, batch: QuantBatch) -> np.ndarray:
        lv = self.inner.quantize(batch)
        c, l2, qp = batch.coeffs, batch.log2_size, np.asarray(batch.qp)
        sq = quantize_sq(c, qp, l2, batch.bit_depth)
        sq_sh = sign_hiding_hdq(sq, c, l2, batch.scan_idx, qp, batch.bit_depth) if batch.sign_hiding else sq
        r = self.records.setdefault(l2, {k: [] for k in ("coeffs", "sq", "sq_sh", "rdoq", "qp", "lam",
                                                         "c_idx", "scan_idx", "ctx")})
        r["coeffs"].append(np.asarray(c, np.int16))
        r["sq"].append(sq.astype(np.int16))
        r["sq_sh"].append(sq_sh.astype(np.int16))
        r["rdoq"].append(lv.astype(np.int16))
        r["qp"].append(qp.astype(np.int8))
        r["lam"].append(np.asarray(batch.lam, np.float32))
        r["c_idx"].append(np.asarray(batch.c_idx, np.int8))
        r["scan_idx"].append(np.asarray(batch.scan_idx, np.int8))
        r["ctx"].append(np.asarray(batch.ctx, np.uint8))
        return lv


class RecordingQuantizer(EncoderQuantizer):
    """The encoder-side quantizer (``EncoderQuantizer("rdoq")``, so the encoder's decisions
    and rate state are exactly those of a ``--quant rdoq`` encode) that records every batch
    (see the module docstring)."""

    def __init__(self, qp_slice: int) -> None:
        super().__init__("rdoq", qp_slice)
        self.q = self.recorder = _Recorder(self.q)

    def arrays(self) -> dict[str, np.ndarray]:
        """``{field}_{log2}`` arrays, one entry per block size seen."""
        out = {}
        for log2, r in self.recorder.records.items():
            for k, v in r.items():
                out[f"{k}_{log2}"] = np.concatenate(v)
        return out


def _pictures(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in PICTURE_EXT | CLIP_EXT)


def _frames(path: Path, max_frames: int, rng: np.random.Generator) -> Iterator[tuple[int, list[np.ndarray]]]:
    """8-bit 4:2:0 planes of a picture, or of ``max_frames`` frames spread over a clip."""
    from codeclab.pipeline.io.sources import FrameRange, open_source

    if path.suffix.lower() in CLIP_EXT:
        with open_source(path, to_pix_fmt="yuv420p") as src:
            total = src.info().num_frames or 1
        step = max(1, total // max_frames)
        rng_frames = FrameRange(int(rng.integers(0, step)), max_frames, step)
    else:
        rng_frames = None
    with open_source(path, to_pix_fmt="yuv420p", frames=rng_frames) as src:
        for fr in src:
            yield fr.index, [np.asarray(p) for p in fr.planes]


def _crop(planes: list[np.ndarray], max_side: int, rng: np.random.Generator) -> list[np.ndarray]:
    h, w = planes[0].shape
    ch, cw = min(h, max_side) & ~7, min(w, max_side) & ~7
    y = int(rng.integers(0, h - ch + 1)) & ~1
    x = int(rng.integers(0, w - cw + 1)) & ~1
    return [planes[0][y:y + ch, x:x + cw]] + [p[y // 2:(y + ch) // 2, x // 2:(x + cw) // 2] for p in planes[1:]]


def _qps(count: int, lo: int, hi: int, rng: np.random.Generator) -> list[int]:
    """``count`` QPs stratified over lo..hi (one per equal band), so every source covers the range."""
    edges = np.linspace(lo, hi + 1, count + 1)
    return [int(rng.integers(int(np.ceil(a)), max(int(np.ceil(a)) + 1, int(np.ceil(b))))) for a, b in zip(edges[:-1], edges[1:])]


def encode_recorded(planes: list[np.ndarray], qp: int) -> dict[str, np.ndarray]:
    """Encode one 8-bit 4:2:0 picture with RDOQ (CTB 64, SDH, TS, deblocking, SAO, as the
    benchmarks) and return the recorded blocks."""
    from codeclab.codecs.hevc.encoder import PictureEncoder
    from codeclab.codecs.hevc.params import StreamParams

    h, w = planes[0].shape
    rec = RecordingQuantizer(qp)
    p = StreamParams(w, h, 8, 6, 1, qp, Fraction(25), True, True, True, True)
    PictureEncoder(p, quantizer=rec).encode(planes)
    return rec.arrays()


def _merge(parts: list[dict[str, np.ndarray]], pic_ids: list[int]) -> dict[str, np.ndarray]:
    out: dict[str, list[np.ndarray]] = {}
    for part, pid in zip(parts, pic_ids):
        for k, v in part.items():
            out.setdefault(k, []).append(v)
            if k.startswith("qp_"):
                out.setdefault("pic_" + k[3:], []).append(np.full(len(v), pid, np.int32))
    return {k: np.concatenate(v) for k, v in out.items()}


def source_id(name: str) -> int:
    """Stable id of a source (picture / clip), used to split train / validation by picture."""
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


def generate(folders: list[Path], out: Path, *, qps: tuple[int, int] = (17, 42), per_source: int = 4,
             max_side: int = 512, clip_frames: int = 3, seed: int = 0, exclude: list[Path] = (),
             progress: bool = True) -> dict:
    """Encode every picture / clip of ``folders`` at ``per_source`` QPs in ``qps`` (stratified,
    one random crop of at most ``max_side`` per QP) and write ``out/data/<name>.npz`` + summary.json.

    exclude: folders whose pictures must never be used (the evaluation set): a source whose
    name matches one of their files is refused."""
    banned = {p.stem for f in exclude if Path(f).is_dir() for p in _pictures(Path(f))}
    sources = []
    for f in folders:
        f = Path(f)
        if not f.is_dir():
            raise InputError(f"{f}: not a folder of pictures / clips")
        sources += _pictures(f)
    if not sources:
        raise InputError(f"no pictures or clips in {', '.join(map(str, folders))}")
    clash = sorted(p.name for p in sources if p.stem in banned)
    if clash:
        raise UsageError(f"nrdoq data: {', '.join(clash)} belong to the evaluation set (--exclude)")
    data_dir = Path(out) / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    for i, src in enumerate(sources):
        dst = data_dir / f"{src.stem}.npz"
        srng = np.random.default_rng([seed, source_id(src.name)])
        if dst.exists():
            continue
        parts, ids = [], []
        nf = clip_frames if src.suffix.lower() in CLIP_EXT else 1
        for fi, planes in _frames(src, nf, srng):
            for qp in _qps(per_source, qps[0], qps[1], srng):
                parts.append(encode_recorded(_crop(planes, max_side, srng), qp))
                ids.append(source_id(src.name))
        arrays = _merge(parts, ids)
        atomic_write(dst, lambda f: np.savez_compressed(f, **arrays), binary=True)
        if progress:
            print(f"[{i + 1}/{len(sources)}] {src.name}: {time.perf_counter() - t0:.0f} s", flush=True)
    summary = summarize(data_dir)
    atomic_write(Path(out) / "summary.json", lambda f: json.dump(summary, f, indent=1))
    return summary


@dataclass
class Blocks:
    """All recorded blocks of one size, concatenated over sources."""

    log2: int
    coeffs: np.ndarray
    sq: np.ndarray
    sq_sh: np.ndarray
    rdoq: np.ndarray
    qp: np.ndarray
    lam: np.ndarray
    c_idx: np.ndarray
    scan_idx: np.ndarray
    ctx: np.ndarray
    pic: np.ndarray
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.qp)


def load_blocks(data_dir: Path) -> dict[int, Blocks]:
    """Every ``*.npz`` of a data folder, per block size."""
    files = sorted(Path(data_dir).glob("*.npz"))  # atomic_write's temporaries end in .tmp
    if not files:
        raise InputError(f"{data_dir}: no recorded blocks (*.npz); run `codeclab nrdoq data` first")
    acc: dict[int, dict[str, list[np.ndarray]]] = {}
    for f in files:
        with np.load(f) as z:
            for k in z.files:
                name, _, l2 = k.rpartition("_")
                acc.setdefault(int(l2), {}).setdefault(name, []).append(z[k])
    out = {}
    for l2, d in sorted(acc.items()):
        out[l2] = Blocks(l2, **{k: np.concatenate(v) for k, v in d.items()})
    return out


def summarize(data_dir: Path) -> dict:
    """Counts per block size and component, and the label statistics the output space rests on."""
    blocks = load_blocks(data_dir)
    s: dict = {"sizes": {}, "rdoq_minus_sq": {}, "classes": {}}
    hist: dict[int, int] = {}
    cls_tot = np.zeros(len(CLASS_NAMES), np.int64)
    for l2, b in blocks.items():
        n = 1 << l2
        sq = np.abs(b.sq.astype(np.int32))
        rd = np.abs(b.rdoq.astype(np.int32))
        active = (sq > 0) | (rd > 0)
        d = (rd - sq)[active]
        vals, cnt = np.unique(np.clip(d, -5, 5), return_counts=True)
        for v, c in zip(vals, cnt):
            hist[int(v)] = hist.get(int(v), 0) + int(c)
        cls = label_classes(b.sq, b.rdoq)[active]
        cc = np.bincount(cls, minlength=len(CLASS_NAMES))
        cls_tot += cc
        s["sizes"][f"{n}x{n}"] = {
            "blocks": len(b), "luma": int((b.c_idx == 0).sum()), "chroma": int((b.c_idx > 0).sum()),
            "active_coeffs": int(active.sum()),
            "blocks_changed_by_rdoq": int((b.rdoq != b.sq_sh).reshape(len(b), -1).any(1).sum()),
            "blocks_zeroed_by_rdoq": int(((sq.reshape(len(b), -1).sum(1) > 0)
                                          & (rd.reshape(len(b), -1).sum(1) == 0)).sum()),
            "classes": {k: int(v) for k, v in zip(CLASS_NAMES, cc)},
        }
    s["rdoq_minus_sq"] = {str(k): v for k, v in sorted(hist.items())}
    s["classes"] = {k: int(v) for k, v in zip(CLASS_NAMES, cls_tot)}
    s["sources"] = len(list(Path(data_dir).glob("*.npz")))
    s["qps"] = sorted({int(q) for b in blocks.values() for q in np.unique(b.qp)})
    return s

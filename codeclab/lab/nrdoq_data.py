"""Training data for the neural RDOQ quantizers: our encoder with classical RDOQ, recorded.

:class:`RecordingQuantizer` sits where the picture encoder expects its quantizer and hands
every batch to HM's RDOQ (``rdoq``) through the quantizer callback, so the encoder's
decisions, lambdas and rate states are exactly those of a ``--quant rdoq`` encode (the
same bytes); on the side it stores a random sample of the blocks handed over (keep
probability per block size): the coefficients, the SQ levels (``quantize_sq``, before and
after sign hiding as ``sq`` does), the RDOQ levels, QP, lambda, component, scan, the CABAC
rate state RDOQ priced with (the RD search's live contexts in presets medium / slow), the
bit depth and the slice type. :func:`generate` encodes a folder of pictures / clips and
writes one compressed npz per source (``<run>/data/<source>.npz``) plus ``summary.json``.

Each encode is either one intra picture (``frames=1``) or a short sequence in a picture
structure (``gop`` ldp / ldb / ra) so that P and B pictures' residuals are recorded: for a
still picture the sequence is a synthetic camera move over it (:func:`pan_sequence`: a
window panning at a random sub-sample speed with a slow zoom, a second patch of the
picture moving across it at another speed, fresh sensor noise every frame), for a clip
consecutive frames.

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

__all__ = ["RecordingQuantizer", "generate", "load_blocks", "Blocks", "label_classes", "CLASS_NAMES", "SLICE_CODES",
           "KEEP", "pan_sequence", "encode_recorded"]

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


#: default keep probability per log2 block size: the RD search hands over tens of
#: thousands of (strongly correlated) candidate blocks per picture, most of them 4x4
KEEP = {2: 0.1, 3: 0.1, 4: 0.12, 5: 0.25}
SLICE_CODES = {"I": 0, "P": 1, "B": 2}


class _Recorder:
    """A registry quantizer (``rdoq``) that keeps a random sample of the blocks it is handed,
    with their levels."""

    name = "rdoq-recording"
    needs_rate_state = True

    def __init__(self, inner, keep: dict[int, float], seed: int) -> None:
        self.inner = inner
        self.keep = keep
        self.rng = np.random.default_rng(seed)
        self.slice_type = 0
        self.records: dict[int, dict[str, list[np.ndarray]]] = {}

    def quantize(self, batch: QuantBatch) -> np.ndarray:
        lv = self.inner.quantize(batch)
        l2 = batch.log2_size
        take = self.rng.random(len(batch)) < self.keep.get(l2, 1.0)
        if not take.any():
            return lv
        c, qp = batch.coeffs[take], np.asarray(batch.qp)[take]
        scan = np.asarray(batch.scan_idx)[take]
        sq = quantize_sq(c, qp, l2, batch.bit_depth)
        sq_sh = sign_hiding_hdq(sq, c, l2, scan, qp, batch.bit_depth) if batch.sign_hiding else sq
        r = self.records.setdefault(l2, {k: [] for k in ("coeffs", "sq", "sq_sh", "rdoq", "qp", "lam",
                                                         "c_idx", "scan_idx", "ctx", "bd", "slice")})
        nb = int(take.sum())
        r["coeffs"].append(np.asarray(c, np.int16))  # coefficients are 16-bit (coeffMin/Max)
        r["sq"].append(sq.astype(np.int16))
        r["sq_sh"].append(sq_sh.astype(np.int16))
        r["rdoq"].append(lv[take].astype(np.int16))
        r["qp"].append(qp.astype(np.int8))
        r["lam"].append(np.asarray(batch.lam, np.float32)[take])
        r["c_idx"].append(np.asarray(batch.c_idx, np.int8)[take])
        r["scan_idx"].append(scan.astype(np.int8))
        r["ctx"].append(np.asarray(batch.ctx, np.uint8)[take])
        r["bd"].append(np.full(nb, batch.bit_depth, np.int8))
        r["slice"].append(np.full(nb, self.slice_type, np.int8))
        return lv


class RecordingQuantizer(EncoderQuantizer):
    """The encoder-side quantizer (``EncoderQuantizer("rdoq")``, so the encoder's decisions
    and rate state are exactly those of a ``--quant rdoq`` encode) that records a sample of
    the blocks (see the module docstring; ``keep``: probability per log2 size, default
    :data:`KEEP`; 1.0 records everything)."""

    def __init__(self, qp_slice: int, keep: dict[int, float] | None = None, seed: int = 0) -> None:
        super().__init__("rdoq", qp_slice)
        self.q = self.recorder = _Recorder(self.q, dict(KEEP if keep is None else keep), seed)

    def begin_picture(self, sl) -> None:
        self.recorder.slice_type = SLICE_CODES[sl.slice_type]

    def arrays(self) -> dict[str, np.ndarray]:
        """``{field}_{log2}`` arrays, one entry per block size seen."""
        out = {}
        for log2, r in self.recorder.records.items():
            for k, v in r.items():
                out[f"{k}_{log2}"] = np.concatenate(v)
        return out


def _pictures(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in PICTURE_EXT | CLIP_EXT)


def _frames(path: Path, count: int, consecutive: bool, rng: np.random.Generator
            ) -> Iterator[tuple[int, list[np.ndarray]]]:
    """8-bit 4:2:0 planes of a picture, or ``count`` frames of a clip: spread over it, or
    ``consecutive`` from a random start."""
    from codeclab.pipeline.io.sources import FrameRange, open_source

    rng_frames = None
    if path.suffix.lower() in CLIP_EXT:
        with open_source(path, to_pix_fmt="yuv420p") as src:
            total = src.info().num_frames or 1
        if consecutive:
            rng_frames = FrameRange(int(rng.integers(0, max(1, total - count + 1))), count, 1)
        else:
            step = max(1, total // count)
            rng_frames = FrameRange(int(rng.integers(0, step)), count, step)
    with open_source(path, to_pix_fmt="yuv420p", frames=rng_frames) as src:
        for fr in src:
            yield fr.index, [np.asarray(p) for p in fr.planes]


def _crop(frames: list[list[np.ndarray]], max_side: int, rng: np.random.Generator) -> list[list[np.ndarray]]:
    """One random window of at most ``max_side`` (a multiple of 8, at even coordinates),
    the same in every frame of ``frames`` (4:2:0 planes)."""
    h, w = frames[0][0].shape
    ch, cw = min(h, max_side) & ~7, min(w, max_side) & ~7
    y = int(rng.integers(0, h - ch + 1)) & ~1
    x = int(rng.integers(0, w - cw + 1)) & ~1
    return [[pl[0][y:y + ch, x:x + cw]] + [p[y // 2:(y + ch) // 2, x // 2:(x + cw) // 2] for p in pl[1:]]
            for pl in frames]


def _warp(plane: np.ndarray, x0: float, y0: float, scale: float, h: int, w: int) -> np.ndarray:
    """The h x w window of ``plane`` whose top-left sample is at (x0, y0), sampled every
    ``scale`` samples (cubic spline, edges replicated)."""
    from scipy.ndimage import map_coordinates

    ys = y0 + scale * np.arange(h, dtype=np.float64)
    xs = x0 + scale * np.arange(w, dtype=np.float64)
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    return map_coordinates(plane.astype(np.float64), [yy, xx], order=3, mode="nearest")


def pan_sequence(planes: list[np.ndarray], frames: int, max_side: int, rng: np.random.Generator
                 ) -> list[list[np.ndarray]]:
    """A synthetic camera move over one still 8-bit 4:2:0 picture: ``frames`` frames of a
    window (at most ``max_side``, a multiple of 8) panning at a random speed of up to 3
    samples per frame in each direction (quarter-sample accurate motion is the point), with a
    zoom of up to +-0.4 % per frame; a patch of the picture (1/4 to 1/2 of the window's
    side) moving across it at another speed (occlusions: intra blocks in inter pictures);
    Gaussian noise of sigma 0.5-2 drawn anew every frame (sensor noise does not follow the
    motion)."""
    H, W = planes[0].shape
    h = min(max_side, H - 16) & ~7
    w = min(max_side, W - 16) & ~7
    v = rng.uniform(-3, 3, 2)
    zoom = rng.uniform(-0.004, 0.004)
    scale_end = (1 + zoom) ** (frames - 1)
    span = np.abs(v) * (frames - 1) + max(h, w) * max(0.0, scale_end - 1) + 8
    x0 = rng.uniform(4 + max(0, -v[0]) * (frames - 1), max(5 + max(0, -v[0]) * (frames - 1), W - w - span[0]))
    y0 = rng.uniform(4 + max(0, -v[1]) * (frames - 1), max(5 + max(0, -v[1]) * (frames - 1), H - h - span[1]))
    ph, pw = (int(rng.uniform(0.25, 0.5) * h) & ~7) or 8, (int(rng.uniform(0.25, 0.5) * w) & ~7) or 8
    px, py = rng.uniform(0, W - pw - 1), rng.uniform(0, H - ph - 1)   # where the patch is taken
    pv = rng.uniform(-4, 4, 2)
    qx, qy = rng.uniform(0, w - pw), rng.uniform(0, h - ph)            # where it starts in the window
    sigma = rng.uniform(0.5, 2.0)
    out = []
    for t in range(frames):
        sc = (1 + zoom) ** t
        fx, fy = x0 + v[0] * t, y0 + v[1] * t
        frame = []
        for c, pl in enumerate(planes[:3]):
            d = 1 if c == 0 else 2
            a = _warp(pl, fx / d, fy / d, sc, h // d, w // d)
            # the patch: its own content, moving (wrapping around the window)
            ox = int(round(qx + pv[0] * t)) % max(1, w - pw) // d
            oy = int(round(qy + pv[1] * t)) % max(1, h - ph) // d
            a[oy:oy + ph // d, ox:ox + pw // d] = _warp(pl, px / d, py / d, 1.0, ph // d, pw // d)
            a += rng.normal(0, sigma / d, a.shape)
            frame.append(np.clip(np.rint(a), 0, 255).astype(np.uint8))
        out.append(frame)
    return out


def _qps(count: int, lo: int, hi: int, rng: np.random.Generator) -> list[int]:
    """``count`` QPs stratified over lo..hi (one per equal band), so every source covers the range."""
    edges = np.linspace(lo, hi + 1, count + 1)
    return [int(rng.integers(int(np.ceil(a)), max(int(np.ceil(a)) + 1, int(np.ceil(b))))) for a, b in zip(edges[:-1], edges[1:])]


def encode_recorded(frames: list[list[np.ndarray]], qp: int, *, gop: str = "ai", preset: str = "fast",
                    bit_depth: int = 8, keep: dict[int, float] | None = None, seed: int = 0
                    ) -> dict[str, np.ndarray]:
    """Encode 8-bit 4:2:0 frames with RDOQ (CTB 64, SDH, TS, deblocking, SAO, as the
    benchmarks) in structure ``gop`` at ``bit_depth`` and return the recorded blocks."""
    from codeclab.base.frame import Frame, VideoFormat
    from codeclab.codecs.hevc import HevcEncoder, HevcOptions

    h, w = frames[0][0].shape
    fmt = VideoFormat(w, h)
    rec = RecordingQuantizer(qp, keep, seed)
    enc = HevcEncoder(fmt, HevcOptions(qp=qp, quant="rdoq", preset=preset, gop=gop, bit_depth=bit_depth), rec)
    for i, planes in enumerate(frames):
        enc.encode(Frame(tuple(planes), fmt, i, i))
    enc.flush()
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
             frames: int = 1, gop: str = "ai", presets: tuple[str, ...] = ("fast",),
             bit_depths: tuple[int, ...] = (8,), keep: dict[int, float] | None = None,
             progress: bool = True) -> dict:
    """Encode every picture / clip of ``folders`` at ``per_source`` QPs in ``qps`` (stratified)
    and write ``out/data/<name>.npz`` + summary.json.

    frames = 1: each encode is one intra picture, a random crop of at most ``max_side``
    (clips: ``clip_frames`` frames spread over the clip, each at every QP). frames > 1: each
    encode is a sequence of that many frames in structure ``gop`` (pictures: a
    :func:`pan_sequence` over them; clips: consecutive frames from a random start, cropped).
    The encodes of a source take ``presets`` and ``bit_depths`` cycled (list a depth twice to
    weigh it) in a random order of the source's encodes, so that no preset or bit depth is
    tied to one QP band. keep: per-size keep probability of the
    recorder (default :data:`KEEP` for the RD presets, everything with ``fast``).

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
    if frames > 1 and gop == "ai":
        raise UsageError("nrdoq data: --frames > 1 needs an inter structure (--gop ldp / ldb / ra)")
    data_dir = Path(out) / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    for i, src in enumerate(sources):
        dst = data_dir / f"{src.stem}.npz"
        srng = np.random.default_rng([seed, source_id(src.name)])
        if dst.exists():
            continue
        parts, ids = [], []
        clip = src.suffix.lower() in CLIP_EXT
        jobs: list[tuple[list[list[np.ndarray]], int]] = []
        if frames == 1:
            for fi, planes in _frames(src, clip_frames if clip else 1, False, srng):
                jobs += [(_crop([planes], max_side, srng), qp) for qp in _qps(per_source, qps[0], qps[1], srng)]
        else:
            for qp in _qps(per_source, qps[0], qps[1], srng):
                if clip:
                    seq = _crop([pl for _, pl in _frames(src, frames, True, srng)], max_side, srng)
                else:
                    planes = next(iter(_frames(src, 1, False, srng)))[1]
                    seq = pan_sequence(planes, frames, max_side, srng)
                jobs.append((seq, qp))
        order = srng.permutation(len(jobs))  # the QPs come band by band: decouple from them
        for k, (seq, qp) in zip(order, jobs):
            preset = presets[k % len(presets)]
            kp = keep if keep is not None else (None if preset != "fast" else {2: 1.0, 3: 1.0, 4: 1.0, 5: 1.0})
            parts.append(encode_recorded(seq, qp, gop=gop if frames > 1 else "ai", preset=preset,
                                         bit_depth=bit_depths[k % len(bit_depths)], keep=kp,
                                         seed=int(srng.integers(1 << 31))))
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
    bd: np.ndarray | None = None      # bit depth per block (None: data recorded before: all 8)
    slice: np.ndarray | None = None   # slice type per block, SLICE_CODES (None: all I)
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.bd is None:
            self.bd = np.full(len(self.qp), 8, np.int8)
        if self.slice is None:
            self.slice = np.zeros(len(self.qp), np.int8)

    def __len__(self) -> int:
        return len(self.qp)


def load_blocks(data_dirs: Path | list[Path]) -> dict[int, Blocks]:
    """Every ``*.npz`` of one or more data folders, per block size (a source recorded in
    several folders keeps one picture id, so splits by picture hold across them)."""
    dirs = [Path(data_dirs)] if isinstance(data_dirs, (str, Path)) else [Path(d) for d in data_dirs]
    files = sorted(f for d in dirs for f in d.glob("*.npz"))  # atomic_write's temporaries end in .tmp
    if not files:
        raise InputError(f"{', '.join(map(str, dirs))}: no recorded blocks (*.npz); run `codeclab nrdoq data` first")
    acc: dict[int, dict[str, list[np.ndarray]]] = {}
    for f in files:
        with np.load(f) as z:
            per: dict[int, dict[str, np.ndarray]] = {}
            for k in z.files:
                name, _, l2 = k.rpartition("_")
                per.setdefault(int(l2), {})[name] = z[k]
        for l2, d in per.items():
            n = len(d["qp"])
            d.setdefault("bd", np.full(n, 8, np.int8))       # recorded before bit depths / slice
            d.setdefault("slice", np.zeros(n, np.int8))      # types were: 8-bit intra pictures
            for name, v in d.items():
                acc.setdefault(l2, {}).setdefault(name, []).append(v)
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
            "by_slice": {k: int((b.slice == v).sum()) for k, v in SLICE_CODES.items()},
            "by_bit_depth": {str(d): int((b.bd == d).sum()) for d in np.unique(b.bd)},
        }
    s["rdoq_minus_sq"] = {str(k): v for k, v in sorted(hist.items())}
    s["classes"] = {k: int(v) for k, v in zip(CLASS_NAMES, cls_tot)}
    s["sources"] = len(list(Path(data_dir).glob("*.npz")))
    s["qps"] = sorted({int(q) for b in blocks.values() for q in np.unique(b.qp)})
    return s

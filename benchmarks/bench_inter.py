"""Our HEVC encoder with P / B pictures against HM 16.20 and x265, compression and CPU time,
in one run.

    .venv/bin/python benchmarks/bench_inter.py [--gop ldp|ldb|ra] [--frames 17]
        [--presets medium] [--quants rdoq] [--qps 22 27 32 37] [--refs 4] [--no-x265] [--no-hm]
        [--jobs 2] [--json out.json]

Clips: the three real clips of ``../shared/media/clips``, first ``--frames`` frames, 8-bit
4:2:0 (FFmpeg's conversion): ``realshort.mp4`` and ``balle1-vp9.avi`` whole (320x240),
``cockatoo.mp4`` as its 416x240 centre window (the others are smaller than 416x240).

Structures (``--gop``), HM with its own configuration and ours with the same structure,
QPs and references (RDOQ at each preset):

- ``ldp``: HM's ``encoder_lowdelay_P_main.cfg`` (GOP 4 of P pictures, 4 references, QP
  offsets, RDOQ, TZ search, AMP, TU depth 3 inter); x265 ``--preset medium --tune psnr``
  with one IDR (keyint = frames), no B frames, no scene cut, constant QP.
- ``ldb``: the same configuration with B slices (HM 16.20's ``encoder_lowdelay_main.cfg``
  differs from the P one only in the slice type; it is written from it); x265 as for ldp
  (it has no generalised-B low-delay mode).
- ``ra``: HM's ``encoder_randomaccess_main.cfg`` (hierarchical B, GOP 16, intra period 32,
  CRA, QP offsets); ours ``gop=ra`` with ``intra_period=32``; x265 with keyint 32, 15
  B-frames in a fixed pyramid (bframes=15, b-adapt=0, b-pyramid), open GOP, no scene
  cut, and its own I/P/B QP ratios (ipratio 1.4, pbratio 1.3, x265's defaults).

Every stream is decoded by FFmpeg and measured by our metrics
(PSNR per frame, averaged over the clip; PSNR-YUV = (6 Y + U + V) / 8). Printed per clip
and averaged over the clips: BD-rate (PSNR-Y and PSNR-YUV, PCHIP and cubic) of ours
against HM and against x265, and of x265 against HM; CPU seconds per frame at QP 32
(the encoder's process CPU time, x265 with one thread pool and one frame thread; HM: its
own "Total Time") and the ratio to HM. With several ``--quants`` (ours at each preset with
each quantizer, labels ``ours-PRESET-QUANT``) and both ``sq`` and ``rdoq`` among them, it
also prints each other quantizer's share of RDOQ's BD-rate gain over SQ (the ratio of the
clip means).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CLIPS = ROOT.parent / "shared" / "media" / "clips"
HM_DIR = ROOT.parent / "shared" / "tools" / "hm"
CLIP_WINDOWS = {"realshort.mp4": (320, 240), "balle1-vp9.avi": (320, 240), "cockatoo.mp4": (416, 240)}


def load_clip(name: str, n: int) -> list[tuple[np.ndarray, ...]]:
    """The first n frames of a clip as 8-bit 4:2:0 planes (centre window)."""
    import av

    w, h = CLIP_WINDOWS[name]
    out = []
    with av.open(str(CLIPS / name)) as c:
        for f in c.decode(video=0):
            p = [np.from_dlpack(q).copy() for q in f.reformat(format="yuv420p").planes]
            H, W = p[0].shape
            y0, x0 = (H - h) // 2 & ~1, (W - w) // 2 & ~1
            out.append((p[0][y0:y0 + h, x0:x0 + w].copy(), p[1][y0 // 2:(y0 + h) // 2, x0 // 2:(x0 + w) // 2].copy(),
                        p[2][y0 // 2:(y0 + h) // 2, x0 // 2:(x0 + w) // 2].copy()))
            if len(out) == n:
                break
    if len(out) < n:
        raise SystemExit(f"{name}: only {len(out)} frames, asked for {n}")
    return out


def _measure(frames: list[tuple[np.ndarray, ...]], decoded: list[list[np.ndarray]]) -> dict[str, float]:
    from codeclab.pipeline.metrics import psnr_plane

    if len(decoded) != len(frames):
        raise SystemExit(f"decoder returned {len(decoded)} frames for {len(frames)}")
    ys, yuvs = [], []
    for f, d in zip(frames, decoded):
        p = [psnr_plane(f[c], d[c], 8) for c in range(3)]
        ys.append(p[0])
        yuvs.append((6 * p[0] + p[1] + p[2]) / 8)
    return {"psnr_y": float(np.mean(ys)), "psnr_yuv": float(np.mean(yuvs))}


def _ffmpeg_decode(data: bytes) -> list[list[np.ndarray]]:
    import io

    import av

    with av.open(io.BytesIO(data), format="hevc") as c:
        return [[np.from_dlpack(p).copy() for p in f.planes] for f in c.decode(video=0)]


HM_CFG = {"ldp": "encoder_lowdelay_P_main.cfg", "ldb": "encoder_lowdelay_P_main.cfg",
          "ra": "encoder_randomaccess_main.cfg"}


def _hm_cfg(gop: str, tmp: Path) -> Path:
    """HM's configuration of the structure (ldb: the low-delay P one with B slices)."""
    cfg = HM_DIR / HM_CFG[gop]
    if gop != "ldb":
        return cfg
    text = "\n".join(line.replace(":  P ", ":  B ", 1) if line.startswith("Frame") else line
                     for line in cfg.read_text().splitlines())
    out = tmp / "encoder_lowdelay_main.cfg"
    out.write_text(text + "\n")
    return out


def job(args: tuple[str, str, int, dict[str, Any], int]) -> dict[str, Any]:
    """One (clip, label, qp, options, frames) encode, decoded by FFmpeg and measured."""
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    clip, label, qp, opts, nframes = args
    frames = load_clip(clip, nframes)
    h, w = frames[0][0].shape
    if label == "hm":
        with tempfile.TemporaryDirectory(prefix="bench-inter-hm-") as tmp:
            src, out = Path(tmp) / "in.yuv", Path(tmp) / "out.bin"
            src.write_bytes(b"".join(p.tobytes() for f in frames for p in f))
            cmd = [str(HM_DIR / "TAppEncoderStatic"), "-c", str(_hm_cfg(opts["gop"], Path(tmp))),
                   "-i", str(src), "-wdt", str(w), "-hgt", str(h), "-fr", "25", "-f", str(nframes),
                   "-q", str(qp), "--InputBitDepth=8", "--OutputBitDepth=8", "--InternalBitDepth=8",
                   "-b", str(out), "-o", os.devnull]
            r = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp, check=False)
            if r.returncode != 0:
                raise SystemExit(f"HM failed: {r.stdout[-500:]} {r.stderr[-500:]}")
            cpu = float(next(ln.split()[2] for ln in r.stdout.splitlines() if "Total Time" in ln))
            data = out.read_bytes()
        m = _measure(frames, _ffmpeg_decode(data))
        return {"clip": clip, "label": label, "qp": qp, "bits": 8 * len(data), "cpu_s": cpu / nframes, **m}
    from fractions import Fraction

    from codeclab.base.frame import Frame, VideoFormat
    from codeclab.codecs.base import get_codec, make_options

    codec = "x265" if label.startswith("x265") else "hevc"
    spec = get_codec(codec)
    fmt = VideoFormat(w, h, "420", 8, Fraction(25))
    src = [Frame(f, fmt, i, i) for i, f in enumerate(frames)]
    options = make_options(spec, dict(opts, qp=qp))
    enc = spec.make_encoder(fmt, options)
    t = time.process_time()  # every thread of the process: the encoder's own CPU time
    packets = [p for f in src for p in enc.encode(f)] + enc.flush()
    cpu = (time.process_time() - t) / nframes
    data = b"".join(p.data for p in packets)
    m = _measure(frames, _ffmpeg_decode(data))
    return {"clip": clip, "label": label, "qp": qp, "bits": 8 * len(data), "cpu_s": cpu, **m}


def bd(rows: list[dict], test: str, anchor: str, clip: str) -> dict[str, float | None]:
    from codeclab.base.errors import UsageError
    from codeclab.eval.bdrate import bd_rate

    out: dict[str, float | None] = {}
    a = sorted((r["bits"], r) for r in rows if r["clip"] == clip and r["label"] == anchor)
    b = sorted((r["bits"], r) for r in rows if r["clip"] == clip and r["label"] == test)
    for comp in ("psnr_y", "psnr_yuv"):
        for method in ("pchip", "cubic"):
            try:
                out[f"{comp}/{method}"] = bd_rate([x for x, _ in a], [r[comp] for _, r in a],
                                                  [x for x, _ in b], [r[comp] for _, r in b], method=method)
            except (UsageError, ValueError):
                out[f"{comp}/{method}"] = None
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gop", default="ldp", choices=list(HM_CFG))
    ap.add_argument("--frames", type=int, default=17)
    ap.add_argument("--presets", nargs="+", default=["medium"])
    ap.add_argument("--qps", nargs="+", type=int, default=[22, 27, 32, 37])
    ap.add_argument("--quants", nargs="+", default=["rdoq"])
    ap.add_argument("--refs", type=int, default=4)
    ap.add_argument("--clips", nargs="+", default=list(CLIP_WINDOWS))
    ap.add_argument("--no-x265", action="store_true")
    ap.add_argument("--no-hm", action="store_true")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    if not CLIPS.exists() or not (HM_DIR / "TAppEncoderStatic").exists():
        print(f"bench_inter: needs {CLIPS} and {HM_DIR}/TAppEncoderStatic", file=sys.stderr)
        return 1
    labels: dict[str, dict[str, Any]] = {} if a.no_hm else {"hm": {"gop": a.gop}}
    ours = []
    for p in a.presets:
        for q in a.quants:
            label = f"ours-{p}" if len(a.quants) == 1 else f"ours-{p}-{q}"
            ours.append(label)
            labels[label] = {"gop": a.gop, "refs": a.refs, "preset": p, "quant": q,
                             "intra_period": 32 if a.gop == "ra" else 0}
    if not a.no_x265:
        params = "pools=1:frame-threads=1"
        if a.gop == "ra":
            params += ":bframes=15:b-adapt=0:b-pyramid=1:open-gop=1:ipratio=1.4:pbratio=1.3"
        labels["x265-medium"] = {"preset": "medium", "tune": "psnr", "keyint": 32 if a.gop == "ra" else a.frames,
                                 "params": params}
    todo = [(clip, label, qp, opts, a.frames) for clip in a.clips for label, opts in labels.items() for qp in a.qps]
    todo.sort(key=lambda j: 0 if j[1].startswith("ours") else 1)
    rows, t0 = [], time.time()
    with ProcessPoolExecutor(max_workers=a.jobs) as ex:
        for r in ex.map(job, todo):
            rows.append(r)
            print(f"  [{time.time() - t0:6.0f}s] {r['clip']:<15} {r['label']:<22} QP {r['qp']:>2} "
                  f"{r['bits'] / a.frames / 1000:8.2f} kbit/frame  Y {r['psnr_y']:.2f}  YUV {r['psnr_yuv']:.2f}  "
                  f"cpu {r['cpu_s']:.3f} s/frame", flush=True)
    pairs = [] if a.no_hm else [(o, "hm") for o in ours]
    if not a.no_x265:
        pairs += [(o, "x265-medium") for o in ours] + ([] if a.no_hm else [("x265-medium", "hm")])
    if len(a.quants) > 1 and "sq" in a.quants:
        pairs += [(f"ours-{p}-{q}", f"ours-{p}-sq") for p in a.presets for q in a.quants if q != "sq"]
    result: dict[str, Any] = {"gop": a.gop, "frames": a.frames, "qps": a.qps, "rows": rows, "bd": {}}
    print(f"\nBD-rate (negative: fewer bits than the anchor), gop {a.gop}, {a.frames} frames, QP {a.qps}; "
          "CPU s/frame at QP 32")
    print(f"{'test':<22} {'anchor':<17} {'clip':<15} {'Y pchip':>9} {'Y cubic':>9} {'YUV pchip':>10} {'YUV cubic':>10}")
    for test, anchor in pairs:
        per = {clip: bd(rows, test, anchor, clip) for clip in a.clips}
        keys = ("psnr_y/pchip", "psnr_y/cubic", "psnr_yuv/pchip", "psnr_yuv/cubic")
        mean = {k: (float(np.mean([per[c][k] for c in a.clips])) if all(per[c][k] is not None for c in a.clips)
                    else None) for k in keys}
        result["bd"][f"{test} vs {anchor}"] = {"clips": per, "mean": mean}
        for clip, vals in list(per.items()) + [("mean", mean)]:
            cells = [f"{vals[k]:+8.2f}%" if vals[k] is not None else f"{'n/a':>9}" for k in keys]
            print(f"{test:<22} {anchor:<17} {clip:<15} {cells[0]:>9} {cells[1]:>9} {cells[2]:>10} {cells[3]:>10}")
    if len(a.quants) > 1 and {"sq", "rdoq"} <= set(a.quants):
        print()
        for p in a.presets:
            gain = result["bd"][f"ours-{p}-rdoq vs ours-{p}-sq"]["mean"]
            for q in a.quants:
                if q in ("sq", "rdoq"):
                    continue
                mine = result["bd"][f"ours-{p}-{q} vs ours-{p}-sq"]["mean"]
                shares = {k: (mine[k] / gain[k] if mine[k] is not None and gain[k] else None)
                          for k in ("psnr_y/pchip", "psnr_yuv/pchip")}
                result.setdefault("share", {})[f"{p}-{q}"] = shares
                cells = "  ".join(f"{k} {v:.0%}" if v is not None else f"{k} n/a" for k, v in shares.items())
                print(f"{p} {q}: share of RDOQ's gain over SQ: {cells}")
    hm_cpu = (np.mean([r["cpu_s"] for r in rows if r["label"] == "hm" and r["qp"] == 32])
              if 32 in a.qps and not a.no_hm else None)
    print()
    for label in labels:
        cpu = [r["cpu_s"] for r in rows if r["label"] == label and r["qp"] == 32]
        if cpu and hm_cpu:
            print(f"{label:<22} {np.mean(cpu):.3f} s/frame  {np.mean(cpu) / hm_cpu:.2f}x HM")
            result.setdefault("cpu", {})[label] = {"s_per_frame": float(np.mean(cpu)),
                                                   "x_hm": float(np.mean(cpu) / hm_cpu)}
    if a.json:
        a.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

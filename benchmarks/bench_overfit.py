"""The overfitted learned codec ``overfit`` against HM, VTM and x265, all-intra, in one run.

    .venv/bin/python benchmarks/bench_overfit.py [--folder ../shared/media/val] [--names A B]
        [--crop 416x240] [--presets fast medium] [--qualities 2 3 4 5 6] [--profile mid]
        [--ar-preset fast] [--anchors hm vtm x265-medium x265-veryslow lic] [--qps 22 27 32 37]
        [--jobs 2] [--json out.json]

Pictures: the PNGs of ``--folder`` (default the 4 validation pictures, never used for
tuning), a centre window of ``--crop`` (416x240, JVET class D size, by default; 832x480
with ``--crop 832x480``) converted once to 8-bit BT.709 limited-range YUV 4:2:0
(``codeclab.base.convert.rgb_to_yuv``); every codec gets the same frames.

Each (picture, codec, rate point) is one job: ``code_frames`` (encode, decode with the
codec's real decoder, metrics on the decoded picture), one torch thread per job, ``--jobs``
jobs at once (one per core is fastest on this machine). Printed:

- BD-rate (PSNR-Y and PSNR-YUV 6:1:1, PCHIP and cubic; mean of per-picture BD-rates, the
  project's one implementation ``codeclab.eval.bdrate``) of overfit at each preset
  against each anchor: HM 16.20 (all-intra cfg, RDOQ on), VTM 23.13, x265 medium and
  veryslow (all-intra, tune psnr), and with ``--anchors ... lic`` our auto-encoder codec
  (its six quality points);
- the same BD-rate of the raster auto-regressive context model against MSP at
  ``--ar-preset`` (what the parallel context model costs);
- the share of the rate spent on the network parameters, per preset and rate point;
- encode seconds per picture per preset (wall time of one single-thread job; the
  reference encoders' own CPU seconds for comparison), decode seconds of a 416x240 and an
  832x480 picture, and the sequential decoding steps of MSP and AR at 416x240 and
  1920x1080.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VAL = ROOT.parent / "shared" / "media" / "val"

ANCHORS: dict[str, tuple[str, dict[str, Any]]] = {
    "hm": ("hm", {"rdoq": True}),
    "vtm": ("vtm", {}),
    "x265-medium": ("x265", {"preset": "medium", "tune": "psnr"}),
    "x265-veryslow": ("x265", {"preset": "veryslow", "tune": "psnr"}),
    "lic": ("lic", {}),  # our auto-encoder codec, at its six quality points instead of QPs
}


def load_picture(path: Path, width: int, height: int) -> Any:
    """A centre window of a PNG as an 8-bit BT.709 limited-range YUV 4:2:0 Frame."""
    import av

    from codeclab.base.convert import rgb_to_yuv
    from codeclab.base.frame import Frame, VideoFormat

    with av.open(str(path)) as c:
        rgb = next(c.decode(video=0)).to_ndarray(format="rgb24")
    h, w = rgb.shape[:2]
    if h < height or w < width:
        raise SystemExit(f"{path}: {w}x{h} is smaller than the crop {width}x{height}")
    y0, x0 = (h - height) // 2 & ~1, (w - width) // 2 & ~1
    win = rgb[y0:y0 + height, x0:x0 + width]
    planes = rgb_to_yuv(win[..., 0], win[..., 1], win[..., 2], 8, chroma="420")
    return Frame(tuple(np.ascontiguousarray(p) for p in planes), VideoFormat(width, height), 0, 0)


def run_job(args: tuple[int, str, str, dict[str, Any], Any]) -> dict[str, Any]:
    """One (picture, label, codec, options, frame) through ``code_frames`` on one thread:
    rate, PSNR, times (``cpu_s``: the encoder's CPU time where its packets report it,
    ``encoder_cpu_s``: HM, VTM, our HEVC; else the encode's wall time), parameter bits, worker peak memory."""
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    pic, label, codec, options, frame = args
    import resource

    import torch

    torch.set_num_threads(1)
    from codeclab.codecs.base import get_codec, make_options
    from codeclab.pipeline.transcode import code_frames

    spec = get_codec(codec)
    opts = make_options(spec, options)
    t = time.perf_counter()
    coded = list(code_frames([frame], spec, opts, ms_ssim=False))[0]
    wall = time.perf_counter() - t
    m = coded.metrics
    props = coded.packets[0].props
    npix = frame.format.width * frame.format.height
    return {"pic": pic, "label": label, "bpp": m["bits"] / npix, "bits": m["bits"], "psnr_y": m["psnr_y"],
            "psnr_yuv": m["psnr_yuv"], "encode_s": m["encode_s"], "decode_s": m["decode_s"], "wall_s": wall,
            "ref_cpu_s": props.get("encoder_cpu_s"), "cpu_s": props.get("encoder_cpu_s", m["encode_s"]),
            "param_bits": props.get("param_bits"), "point": options, "qp": options.get("qp"),
            "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def bd_table(rows: list[dict], test: str, anchor: str, npics: int) -> dict[str, float | None]:
    from codeclab.base.errors import UsageError
    from codeclab.eval.bdrate import bd_rate

    out: dict[str, float | None] = {}
    for comp in ("psnr_y", "psnr_yuv"):
        for method in ("pchip", "cubic"):
            vals = []
            for p in range(npics):
                a = sorted((r["bpp"], r[comp]) for r in rows if r["pic"] == p and r["label"] == anchor)
                b = sorted((r["bpp"], r[comp]) for r in rows if r["pic"] == p and r["label"] == test)
                if len(a) < 4 or len(b) < 4:
                    continue
                try:
                    vals.append(bd_rate([x for x, _ in a], [y for _, y in a], [x for x, _ in b], [y for _, y in b],
                                        method=method))
                except UsageError:
                    continue
            out[f"{comp}/{method}"] = float(np.mean(vals)) if len(vals) == npics else None
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folder", type=Path, default=VAL)
    ap.add_argument("--names", nargs="*", help="picture file names (default: every PNG of the folder)")
    ap.add_argument("--crop", default="416x240")
    ap.add_argument("--presets", nargs="*", default=["fast", "medium"])
    ap.add_argument("--qualities", nargs="+", type=int, default=[2, 3, 4, 5, 6])
    ap.add_argument("--profile", default="mid")
    ap.add_argument("--ar-preset", default="fast", help="preset of the AR-vs-MSP comparison ('none': skip)")
    ap.add_argument("--anchors", nargs="*", default=list(ANCHORS))
    ap.add_argument("--qps", nargs="+", type=int, default=[22, 27, 32, 37])
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    w, h = (int(v) for v in a.crop.lower().split("x"))
    names = a.names or sorted(p.name for p in a.folder.glob("*.png"))
    frames = [load_picture(a.folder / n, w, h) for n in names]
    print(f"pictures: {', '.join(names)} ({w}x{h} centre windows, 8-bit 4:2:0)")

    jobs: list[tuple[int, str, str, dict[str, Any], Any]] = []
    for p, f in enumerate(frames):
        for name in a.anchors:
            codec, opts = ANCHORS[name]
            points = [{"quality": q} for q in range(1, 7)] if codec == "lic" else [{"qp": qp} for qp in a.qps]
            jobs += [(p, name, codec, dict(opts, **pt), f) for pt in points]
        for preset in a.presets:
            jobs += [(p, f"overfit-{preset}", "overfit",
                      {"preset": preset, "quality": q, "profile": a.profile, "progress": False}, f)
                     for q in a.qualities]
        if a.ar_preset != "none":
            jobs += [(p, f"overfit-{a.ar_preset}-ar", "overfit",
                      {"preset": a.ar_preset, "quality": q, "profile": a.profile, "prob_model": "ar",
                       "progress": False}, f) for q in a.qualities]
    # the long jobs first, so that the pool ends together
    jobs.sort(key=lambda j: {"slow": 0, "medium": 1}.get(j[3].get("preset", ""), 2) if j[2] == "overfit" else 3)
    t0 = time.time()
    rows = []
    with ProcessPoolExecutor(max_workers=a.jobs) as ex:
        for r in ex.map(run_job, jobs):
            rows.append(r)
            print(f"  [{time.time() - t0:6.0f}s] {names[r['pic']]:<16} {r['label']:<18} {json.dumps(r['point'])[:60]:<60} "
                  f"{r['bpp']:.4f} bpp  Y {r['psnr_y']:.2f}  YUV {r['psnr_yuv']:.2f}  enc {r['encode_s']:.1f}s",
                  flush=True)

    labels = [f"overfit-{p}" for p in a.presets]
    print("\nBD-rate of overfit (negative: fewer bits for the same PSNR), mean over pictures")
    print(f"{'test':<18} {'anchor':<14} {'Y pchip':>9} {'Y cubic':>9} {'YUV pchip':>10} {'YUV cubic':>10}")
    results: dict[str, Any] = {"rows": rows, "bd": {}}

    def show(test: str, anchor: str) -> None:
        bd = bd_table(rows, test, anchor, len(frames))
        results["bd"][f"{test} vs {anchor}"] = bd
        cells = [f"{bd[k]:+8.2f}%" if bd[k] is not None else f"{'n/a':>9}" for k in
                 ("psnr_y/pchip", "psnr_y/cubic", "psnr_yuv/pchip", "psnr_yuv/cubic")]
        print(f"{test:<18} {anchor:<14} {cells[0]:>9} {cells[1]:>9} {cells[2]:>10} {cells[3]:>10}")

    for test in labels:
        for anchor in a.anchors:
            show(test, anchor)
    if a.ar_preset != "none":
        show(f"overfit-{a.ar_preset}-ar", f"overfit-{a.ar_preset}")

    print("\nrate share of the network parameters (mean over pictures)")
    for test in labels:
        shares = []
        for q in a.qualities:
            sel = [r for r in rows if r["label"] == test and r["point"]["quality"] == q]
            shares.append(f"q{q} {100 * np.mean([r['param_bits'] / r['bits'] for r in sel]):.1f}%"
                          f" ({np.mean([r['bpp'] for r in sel]):.3f} bpp)")
        print(f"  {test:<18} " + ", ".join(shares))

    print("\nencode seconds per picture (one thread per job)")
    for test in labels + ([f"overfit-{a.ar_preset}-ar"] if a.ar_preset != "none" else []):
        print(f"  {test:<18} {np.mean([r['encode_s'] for r in rows if r['label'] == test]):8.1f} s")
    for name in a.anchors:
        sel = [r for r in rows if r["label"] == name]
        cpu = [r["ref_cpu_s"] for r in sel if r["ref_cpu_s"] is not None]
        extra = f" (its own CPU time {np.mean(cpu):.2f} s)" if cpu else ""
        print(f"  {name:<18} {np.mean([r['encode_s'] for r in sel]):8.2f} s{extra}")

    from codeclab.codecs.overfit.codec import decode_picture
    from codeclab.codecs.overfit.config import PROFILES
    from codeclab.codecs.overfit.encoder import PRESETS, encode_planes
    from codeclab.codecs.overfit.payload import sequential_steps

    cfg = PROFILES[a.profile]
    print("\ndecode seconds (integer decoder, one core) and sequential decoding steps")
    tiny = replace(PRESETS["fast"], starts=1, warmup=5, main=20, final=5)
    for (dw, dh) in ((416, 240), (832, 480)):
        big = load_picture(a.folder / names[0], dw, dh) if dw <= 2 * w else None
        if big is None:
            continue
        data = encode_planes(big.planes, 8, cfg, 1e-3, tiny).data
        t = time.perf_counter()
        decode_picture(data)
        print(f"  {dw}x{dh}: decode {time.perf_counter() - t:.2f} s")
        results[f"decode_s_{dw}x{dh}"] = time.perf_counter() - t
    for order in ("msp", "ar"):
        c = replace(cfg, prob_model=order)
        print(f"  {order}: {sequential_steps(c, 416, 240)} steps at 416x240, "
              f"{sequential_steps(c, 1920, 1080)} at 1920x1080")
    print(f"\ntotal {time.time() - t0:.0f} s")
    if a.json:
        a.json.write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

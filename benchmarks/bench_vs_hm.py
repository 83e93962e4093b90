"""Our HEVC intra encoder against HM 16.20, compression and CPU time, in one run.

    .venv/bin/python benchmarks/bench_vs_hm.py [--presets fast medium slow] [--quants rdoq sq]
        [--qps 22 27 32 37] [--no-hd] [--hd-presets fast medium] [--ours-tools hm|defaults]
        [--jobs 2] [--json out.json]

Pictures: the 4 validation photographs (``../shared/media/val``, never used for tuning) as
832x480 centre windows, and with ``--hd`` (default on) the 1920x1080 versions of the same
photographs in ``../shared/media/hd``; all converted once to 8-bit BT.709 limited-range YUV
4:2:0 (``codeclab.base.convert.rgb_to_yuv``).

Both encoders code the same frames, all-intra, with HM's all-intra tools: CTB 64, TU depth
2 (HM's QuadtreeTUMaxDepthIntra 3: HM signals it minus one), 4x4 transform skip, deblocking and SAO, sign hiding (``--ours-tools defaults``: ours with
the codec's default options instead); HM (the registry codec ``hm``,
``encoder_intra_main.cfg``) with RDOQ on and off, ours at each preset and quantizer. Every
stream is decoded by FFmpeg and measured by our metrics. Printed: BD-rate (PSNR-Y and
PSNR-YUV, PCHIP and cubic; mean of per-picture BD-rates) of each of ours against HM with
RDOQ on (and sq against HM with RDOQ off), CPU seconds per picture (ours: the CPU time of
the encode's thread, ``encoder_cpu_s``; HM: its own "Total Time", its process's CPU time) and the ratio to HM, and the peak memory of a
worker process after the 1080p encodes. The jobs of each picture and QP run back to back
(HM's with RDOQ on and off, then ours), so the ratios compare encodes made minutes apart,
not at the two ends of the run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_overfit import ROOT, bd_table, load_picture, run_job  # noqa: E402

HD = ROOT.parent / "shared" / "media" / "hd"
VAL = ROOT.parent / "shared" / "media" / "val"
HM_TOOLS = {"gop": "ai", "ctb": 64, "max_tu_depth": 2, "transform_skip": True}  # HM writes QuadtreeTUMaxDepthIntra 3 as max_transform_hierarchy_depth_intra 2


def run_set(frames: list[Any], names: list[str], presets: list[str], quants: list[str], qps: list[int],
            jobs: int, tag: str, tools: dict[str, Any]) -> list[dict[str, Any]]:
    todo: list[tuple[int, str, str, dict[str, Any], Any]] = []
    for p, f in enumerate(frames):
        for rdoq in (True, False):
            todo += [(p, f"hm-rdoq{'on' if rdoq else 'off'}", "hm", {"qp": qp, "rdoq": rdoq}, f) for qp in qps]
        for preset in presets:
            for q in quants:
                todo += [(p, f"{preset}-{q}", "hevc", dict(tools, qp=qp, preset=preset, quant=q), f)
                         for qp in qps]
    # each picture's jobs at one QP back to back, HM's and ours: a drift of the shared cores'
    # speed during the run (10-30 % within an hour, seen) then moves both sides of a ratio
    todo.sort(key=lambda j: (j[0], j[3]["qp"]))
    rows, t0 = [], time.time()
    with ProcessPoolExecutor(max_workers=jobs) as ex:
        for r in ex.map(run_job, todo):
            rows.append(r)
            print(f"  [{time.time() - t0:6.0f}s] {tag} {names[r['pic']]:<16} {r['label']:<12} QP {r['qp']:>2} "
                  f"{r['bpp']:.4f} bpp  Y {r['psnr_y']:.2f}  YUV {r['psnr_yuv']:.2f}  cpu {r['cpu_s']:.2f}s", flush=True)
    return rows


def report(rows: list[dict[str, Any]], npics: int, presets: list[str], quants: list[str], tag: str) -> dict:
    out: dict[str, Any] = {}
    print(f"\n{tag}: BD-rate against HM (negative: fewer bits than HM), CPU seconds per picture at QP 32")
    print(f"{'ours':<12} {'anchor':<12} {'Y pchip':>9} {'Y cubic':>9} {'YUV pchip':>10} {'YUV cubic':>10} "
          f"{'cpu s':>8} {'x HM':>7}")
    hm_cpu = {a: np.mean([r["cpu_s"] for r in rows if r["label"] == a and r["qp"] == 32])
              for a in ("hm-rdoqon", "hm-rdoqoff")}
    for preset in presets:
        for q in quants:
            label = f"{preset}-{q}"
            anchor = "hm-rdoqon" if q == "rdoq" else "hm-rdoqoff"
            bd = bd_table(rows, label, anchor, npics)
            cpu = np.mean([r["cpu_s"] for r in rows if r["label"] == label and r["qp"] == 32])
            out[f"{label} vs {anchor}"] = dict(bd, cpu_s=cpu, cpu_ratio=cpu / hm_cpu[anchor])
            cells = [f"{bd[k]:+8.2f}%" if bd[k] is not None else f"{'n/a':>9}" for k in
                     ("psnr_y/pchip", "psnr_y/cubic", "psnr_yuv/pchip", "psnr_yuv/cubic")]
            print(f"{label:<12} {anchor:<12} {cells[0]:>9} {cells[1]:>9} {cells[2]:>10} {cells[3]:>10} "
                  f"{cpu:8.2f} {cpu / hm_cpu[anchor]:7.2f}")
    bd = bd_table(rows, "hm-rdoqoff", "hm-rdoqon", npics)
    print(f"{'(HM RDOQ off vs on:':<25} Y pchip {bd['psnr_y/pchip']:+.2f}%)" if bd["psnr_y/pchip"] is not None else "")
    print(f"HM CPU s per picture at QP 32: RDOQ on {hm_cpu['hm-rdoqon']:.2f}, off {hm_cpu['hm-rdoqoff']:.2f}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", nargs="+", default=["fast", "medium", "slow"])
    ap.add_argument("--quants", nargs="+", default=["rdoq", "sq"])
    ap.add_argument("--qps", nargs="+", type=int, default=[22, 27, 32, 37])
    ap.add_argument("--no-hd", action="store_true", help="skip the 1920x1080 pictures")
    ap.add_argument("--hd-presets", nargs="+", default=None, help="presets for 1080p (default: --presets)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--ours-tools", choices=["hm", "defaults"], default="hm",
                    help="hm: ours with HM's all-intra tools (default); defaults: ours with the codec's "
                         "own default options (what `--codec hevc` gives without flags)")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    tools = HM_TOOLS if a.ours_tools == "hm" else {}
    names = sorted(p.name for p in VAL.glob("*.png"))
    results: dict[str, Any] = {}
    frames = [load_picture(VAL / n, 832, 480) for n in names]
    print(f"832x480 centre windows of {', '.join(names)}")
    rows = run_set(frames, names, a.presets, a.quants, a.qps, a.jobs, "832x480", tools)
    results["832x480"] = {"rows": rows, "bd": report(rows, len(frames), a.presets, a.quants, "832x480")}
    if not a.no_hd:
        hd_names = sorted(p.name for p in HD.glob("*.png"))
        hd = [load_picture(HD / n, 1920, 1080) for n in hd_names]
        presets = a.hd_presets or a.presets
        rows = run_set(hd, hd_names, presets, a.quants, a.qps, a.jobs, "1920x1080", tools)
        results["1920x1080"] = {"rows": rows, "bd": report(rows, len(hd), presets, a.quants, "1920x1080")}
        print(f"peak memory of a worker after the 1080p encodes: {max(r['maxrss_mb'] for r in rows):.0f} MB")
    if a.json:
        a.json.write_text(json.dumps(results, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Preset variants of our HEVC encoder against HM 16.20 on TRAINING pictures (for tuning).

    .venv/bin/python benchmarks/bench_hevc_presets.py out.json [LABEL=PRESET[:FIELD=VALUE|...] ...]
        [--pics NAME ...]

e.g. ``slow=slow "slow-tu1=slow:tu_modes=1" "m=medium:coarse=False|n_rd=(4,4,2,2,2)"``
(fields of ``codeclab.codecs.hevc.search.Preset``). Without variants: the three presets.

Pictures: 832x480 centre windows of four photographs of ``../shared/media/train`` (``--pics``:
other training pictures by name, e.g. the smoother Aqua TwoWings Wood Float-into-MATE; an
``out.json`` holds the rows of one picture set, and refuses another); the
presets are tuned here and only checked on the validation pictures by bench_vs_hm.py,
which nobody tunes on. HM (``encoder_intra_main.cfg``, RDOQ on, the registry codec ``hm``)
and ours code the same 8-bit 4:2:0 frames with HM's all-intra tools at QP 22/27/32/37;
ours runs in-process (two worker processes, one thread each). Printed per variant:
BD-rate (PSNR-Y and PSNR-YUV, PCHIP, mean of per-picture BD-rates) against HM and the CPU
seconds per picture at QP 32 (ours: process time of the encode; HM: its own "Total Time")
with the ratio to HM. Rows are kept in ``out.json``: a rerun adds only new variants.
"""

from __future__ import annotations

import dataclasses
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

TRAIN = ROOT.parent / "shared" / "media" / "train"
PICS = ["Altai.png", "Cascade.png", "Canopee.png", "Cluster.png"]
QPS = [22, 27, 32, 37]
W, H = 832, 480


def _preset(spec: str) -> str:
    """Register the variant ``PRESET[:FIELD=VALUE|...]`` as a preset of this process."""
    from codeclab.codecs.hevc import search

    name, _, fields = spec.partition(":")
    if not fields:
        return name
    upd = {}
    for item in fields.split("|"):
        key, val = item.split("=", 1)
        upd[key] = json.loads(val.replace("(", "[").replace(")", "]").replace("True", "true")
                              .replace("False", "false"))
        if isinstance(upd[key], list):
            upd[key] = tuple(upd[key])
    search.PRESETS["variant"] = dataclasses.replace(search.PRESETS[name], **upd)
    return "variant"


def job(args: tuple[str, int, str, str, int]) -> dict[str, Any]:
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    name, pic, label, spec, qp = args
    frame = load_picture(TRAIN / name, W, H)
    if label == "hm":
        r = run_job((pic, label, "hm", {"qp": qp, "rdoq": True}, frame))
        return {k: r[k] for k in ("pic", "label", "qp", "bpp", "psnr_y", "psnr_yuv", "cpu_s")}
    from fractions import Fraction

    from codeclab.codecs.hevc.encoder import PictureEncoder
    from codeclab.codecs.hevc.params import StreamParams
    from codeclab.codecs.hevc.quantizer import EncoderQuantizer

    sp = StreamParams(W, H, 8, 6, 2, qp, Fraction(25), True, True, True, True)
    enc = PictureEncoder(sp, EncoderQuantizer("rdoq", qp), preset=_preset(spec))
    t = time.process_time()
    e = enc.encode(frame.planes)
    cpu = time.process_time() - t
    psnr = [10 * np.log10(255 ** 2 / np.mean((np.asarray(o, np.float64) - r) ** 2))
            for o, r in zip(frame.planes, e.recon)]
    return {"pic": pic, "label": label, "qp": qp, "bpp": e.bits / (W * H), "psnr_y": psnr[0],
            "psnr_yuv": (6 * psnr[0] + psnr[1] + psnr[2]) / 8, "cpu_s": cpu}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print(__doc__)
        return 2
    out = Path(argv[0])
    args = argv[1:]
    pics = PICS
    if "--pics" in args:
        i = args.index("--pics")
        names = [a for a in args[i + 1:] if "=" not in a]
        pics = [n if n.endswith(".png") else f"{n}.png" for n in names]
        args = args[:i] + args[i + 1 + len(names):]
    variants = [a.split("=", 1) for a in args] or [["fast", "fast"], ["medium", "medium"], ["slow", "slow"]]
    rows: list[dict[str, Any]] = json.loads(out.read_text()) if out.exists() else []
    if rows and rows[0].get("pics", PICS) != pics:
        print(f"bench_hevc_presets: {out} holds the rows of pictures {rows[0].get('pics', PICS)}, not {pics}")
        return 2
    have = {(r["label"], r["pic"], r["qp"]) for r in rows}
    todo = [(n, p, "hm", "", qp) for p, n in enumerate(pics) for qp in QPS if ("hm", p, qp) not in have]
    todo += [(n, p, label, spec, qp) for label, spec in variants for p, n in enumerate(pics) for qp in QPS
             if (label, p, qp) not in have]
    with ProcessPoolExecutor(2) as ex:
        try:
            for r in ex.map(job, todo):
                rows.append(dict(r, pics=pics))
        finally:
            out.write_text(json.dumps(rows))
    hm = np.mean([r["cpu_s"] for r in rows if r["label"] == "hm" and r["qp"] == 32])
    print(f"{'variant':<24} {'Y pchip':>9} {'YUV pchip':>10} {'cpu s':>7} {'x HM':>6}")
    for label in sorted({r["label"] for r in rows} - {"hm"}):
        bd = bd_table(rows, label, "hm", len(pics))
        cpu = np.mean([r["cpu_s"] for r in rows if r["label"] == label and r["qp"] == 32])
        print(f"{label:<24} {bd['psnr_y/pchip']:+8.2f}% {bd['psnr_yuv/pchip']:+9.2f}% {cpu:7.3f} {cpu / hm:6.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Learned intra codec ``lic`` against x265 all-intra, measured in the same run.

    .venv/bin/python benchmarks/bench_lic.py [--weights W] [--val DIR] [--lof-steps 20]
        [--qps 22 27 32 37] [--extra-qps 42 47] [--no-lof] [--no-speed] [--json OUT]

On the validation pictures (never trained on; converted once to BT.709 limited YUV 4:2:0
8-bit, the same frames for both codecs):

1. RD: lic at every rate point (real bitstream bytes, our decoder's output) and libx265
   (PyAV, preset medium, tune psnr, keyint=1, fixed QP; FFmpeg's decoder) at QPs 22-37,
   plus ``--extra-qps`` so the curves overlap when lic sits at lower quality. BD-rate
   (PSNR-YUV 6:1:1 and luma) per picture with the project's one BD-rate
   (``codeclab.eval.bdrate``), then averaged.
2. LOF: BD-rate of lic with ``--lof-steps`` against lic without (per picture, averaged), on
   the central 768x512 of each picture (``--lof-crop``; LOF costs ~1 s per step per MP).
3. Speed: encode/decode seconds per megapixel at 512x768 and 1920x1080 (a val picture
   cropped / upscaled), and the number of sequential decoding steps at both sizes.
"""

from __future__ import annotations

import argparse
import json
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from codeclab.base.errors import UsageError
from codeclab.base.frame import Frame, VideoFormat
from codeclab.codecs.lic.codec import DEFAULT_WEIGHTS, decode_picture, encode_picture, load_model
from codeclab.eval.bdrate import bd_psnr, bd_rate
from codeclab.lab.lic_train import pictures_as_frames, rgb_to_yuv420
from codeclab.pipeline.metrics import frame_metrics

ROOT = Path(__file__).resolve().parents[1]
VAL = ROOT.parent / "shared" / "media" / "val"


def x265_point(frame: Frame, qp: int) -> dict:
    """One all-intra libx265 frame at a fixed QP: bits and metrics of FFmpeg's decode."""
    fmt = frame.format
    enc = av.CodecContext.create("libx265", "w")
    enc.width, enc.height, enc.pix_fmt = fmt.width, fmt.height, fmt.pix_fmt
    enc.time_base = Fraction(1, 25)
    enc.framerate = 25
    enc.options = {"preset": "medium", "tune": "psnr", "qp": str(qp),
                   "x265-params": "keyint=1:min-keyint=1:bframes=0:log-level=error"}
    packed = np.concatenate([p.reshape(-1, fmt.width) for p in frame.planes])
    vf = av.VideoFrame.from_ndarray(packed, format=fmt.pix_fmt)
    vf.pts = 0
    pkts = list(enc.encode(vf)) + list(enc.encode(None))
    data = b"".join(bytes(p) for p in pkts)
    dec = av.CodecContext.create("hevc", "r")
    out = dec.decode(av.Packet(data)) + dec.decode(None)  # one access unit
    planes = tuple(np.from_dlpack(pl).copy() for pl in out[0].planes)
    m = frame_metrics(frame, Frame(planes, fmt), ms_ssim=False)
    return {"bpp": 8 * len(data) / (fmt.width * fmt.height), **m}


def lic_point(lm, frame: Frame, q: int, lof: int) -> dict:
    t = time.perf_counter()
    data = encode_picture(lm, frame, q, lof)
    t1 = time.perf_counter()
    dec = decode_picture(lm, data)
    t2 = time.perf_counter()
    m = frame_metrics(frame, dec, ms_ssim=False)
    return {"bpp": 8 * len(data) / (frame.format.width * frame.format.height), "enc_s": t1 - t, "dec_s": t2 - t1, **m}


def _bd(anchor: list[dict], test: list[dict], key: str) -> float | None:
    try:
        return bd_rate([p["bpp"] for p in anchor], [p[key] for p in anchor],
                       [p["bpp"] for p in test], [p[key] for p in test])
    except UsageError:
        return None  # no PSNR overlap


def _bdp(anchor: list[dict], test: list[dict], key: str) -> float | None:
    try:
        return bd_psnr([p["bpp"] for p in anchor], [p[key] for p in anchor],
                       [p["bpp"] for p in test], [p[key] for p in test])
    except UsageError:
        return None  # no rate overlap


def _mean(v: list[float | None], unit: str = "%") -> str:
    v2 = [x for x in v if x is not None]
    return f"{np.mean(v2):+.2f}{unit} ({len(v2)}/{len(v)} pictures overlap)" if v2 else "n/a (no overlap)"


def center_crop(f: Frame, w: int, h: int) -> Frame:
    """Central w x h (even) of a 4:2:0 frame; the frame itself if w or h is 0 or too big."""
    fw, fh = f.format.width, f.format.height
    if not w or not h or w > fw or h > fh:
        return f
    x0, y0 = ((fw - w) // 2) & ~1, ((fh - h) // 2) & ~1
    y, u, v = f.planes
    planes = (y[y0 : y0 + h, x0 : x0 + w], u[y0 // 2 : (y0 + h) // 2, x0 // 2 : (x0 + w) // 2],
              v[y0 // 2 : (y0 + h) // 2, x0 // 2 : (x0 + w) // 2])
    return Frame(tuple(np.ascontiguousarray(p) for p in planes), f.format.with_(width=w, height=h))


def frame_from_rgb(rgb: np.ndarray) -> Frame:
    y, u, v = rgb_to_yuv420(rgb)
    return Frame((y, u, v), VideoFormat(y.shape[1], y.shape[0]))


def speed(lm, val: Path, quality: int) -> list[dict]:
    from PIL import Image

    first = sorted(p for p in val.iterdir() if p.suffix.lower() == ".png")[0]
    rgb = np.asarray(Image.open(first).convert("RGB"))
    small = frame_from_rgb(rgb[:512, :768])
    big = frame_from_rgb(np.asarray(Image.open(first).convert("RGB").resize((1920, 1080), Image.BICUBIC)))
    rows = []
    for f in (small, big):
        encode_picture(lm, f, quality)  # warm-up (allocations, caches)
        p = lic_point(lm, f, quality, 0)
        mp = f.format.width * f.format.height / 1e6
        rows.append({"size": f"{f.format.width}x{f.format.height}", "enc_s": p["enc_s"], "dec_s": p["dec_s"],
                     "enc_s_per_mp": p["enc_s"] / mp, "dec_s_per_mp": p["dec_s"] / mp,
                     "steps": lm.coder.last_decode_steps})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=str(DEFAULT_WEIGHTS))
    ap.add_argument("--val", default=str(VAL))
    ap.add_argument("--qps", type=int, nargs="+", default=[22, 27, 32, 37])
    ap.add_argument("--extra-qps", type=int, nargs="*", default=[42, 47, 51])
    ap.add_argument("--lof-steps", type=int, default=20)
    ap.add_argument("--no-lof", action="store_true")
    ap.add_argument("--lof-crop", type=int, nargs=2, default=[768, 512], metavar=("W", "H"),
                    help="LOF gain measured on this central crop (0 0: whole pictures)")
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", help="write every measured point here")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    val = Path(a.val)
    if not val.is_dir():
        raise SystemExit(f"no validation pictures at {val}")
    lm = load_model(a.weights)
    frames = pictures_as_frames(val)
    names = sorted(p.name for p in val.iterdir() if p.suffix.lower() == ".png")
    nq = lm.model.qualities
    res: dict = {"weights": a.weights, "model_id": lm.model_id, "pictures": names, "x265": [], "lic": [], "lof": [],
                 "lof_base": []}
    print(f"model {lm.model_id}, {len(frames)} pictures, torch threads {a.threads}")
    for i, f in enumerate(frames):
        res["x265"].append([x265_point(f, qp) for qp in a.qps + a.extra_qps])
        res["lic"].append([lic_point(lm, f, q, 0) for q in range(1, nq + 1)])
        if not a.no_lof and a.lof_steps > 0:
            fc = center_crop(f, *a.lof_crop)
            res["lof_base"].append([lic_point(lm, fc, q, 0) for q in range(1, nq + 1)])
            res["lof"].append([lic_point(lm, fc, q, a.lof_steps) for q in range(1, nq + 1)])
        print(f"  {names[i]} done")

    def table(name: str, pts_all: list[list[dict]], labels: list) -> None:
        print(f"\n{name} (mean over pictures)\n| point | bpp | PSNR-Y | PSNR-YUV |\n|---|---|---|---|")
        for j, lab in enumerate(labels):
            b = np.mean([p[j]["bpp"] for p in pts_all])
            y = np.mean([p[j]["psnr_y"] for p in pts_all])
            yuv = np.mean([p[j]["psnr_yuv"] for p in pts_all])
            print(f"| {lab} | {b:.4f} | {y:.2f} | {yuv:.2f} |")

    table("x265 all-intra, preset medium", res["x265"], [f"QP {q}" for q in a.qps + a.extra_qps])
    table("lic (no LOF)", res["lic"], [f"q{q}" for q in range(1, nq + 1)])
    if res["lof"]:
        crop = "x".join(map(str, a.lof_crop))
        table(f"lic on the {crop} crops, no LOF", res["lof_base"], [f"q{q}" for q in range(1, nq + 1)])
        table(f"lic + LOF {a.lof_steps} steps on the {crop} crops", res["lof"], [f"q{q}" for q in range(1, nq + 1)])
    nctc = len(a.qps)
    summary = {}
    for label, sl in (("QP 22-37", slice(0, nctc)), ("QP 22-" + str((a.qps + a.extra_qps)[-1]), slice(None))):
        for key, kname in (("psnr_yuv", "PSNR-YUV"), ("psnr_y", "PSNR-Y")):
            v = [_bd(x[sl], l, key) for x, l in zip(res["x265"], res["lic"])]
            summary[f"lic vs x265 {label} {kname}"] = _mean(v)
            summary[f"lic vs x265 {label} BD-{kname} (dB at equal rate)"] = _mean(
                [_bdp(x[sl], l, key) for x, l in zip(res["x265"], res["lic"])], " dB")
    if res["lof"]:
        for key, kname in (("psnr_yuv", "PSNR-YUV"), ("psnr_y", "PSNR-Y")):
            summary[f"LOF({a.lof_steps}) vs no LOF {kname}"] = _mean(
                [_bd(l, o, key) for l, o in zip(res["lof_base"], res["lof"])])
    print("\nBD-rate (negative: lic / LOF saves bits); BD-PSNR (positive: lic better)")
    for k, v in summary.items():
        print(f"- {k}: {v}")
    res["bd"] = summary
    if not a.no_speed:
        rows = speed(lm, val, min(4, nq))
        res["speed"] = rows
        print(f"\nspeed (torch threads {a.threads}, quality {min(4, nq)})\n| size | encode s | decode s | enc s/MP | "
              "dec s/MP | sequential steps |\n|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['size']} | {r['enc_s']:.2f} | {r['dec_s']:.2f} | {r['enc_s_per_mp']:.2f} | "
                  f"{r['dec_s_per_mp']:.2f} | {r['steps']} |")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1, default=float))


if __name__ == "__main__":
    main()

"""Paired-seed comparisons of overfit encoder changes on TRAINING pictures (for tuning).

    .venv/bin/python benchmarks/overfit_pairs.py run out.jsonl [--pictures Aqua Altai Autumn Cascade]
        [--qualities 1 3] [--seeds 0 1 2] [--preset fast] [--profile mid] [--jobs 2]
    .venv/bin/python benchmarks/overfit_pairs.py compare base.jsonl new.jsonl

Why pairs: fits of one picture from different seeds end up to ~28 % apart in RD cost
(docs/overfit.md), far more than most changes move it, so a change is judged by fits that
share picture, quality and seed, one with and one without it. ``run`` codes the 416x240
centre window of each training picture (``../shared/media/train``; never the validation
pictures) at each quality and seed with ``encode_planes`` (one thread per job) and appends
one JSON row per fit: J = D / lambda + bpp of the coded picture (D: the 6:1:1 MSE of the
decoded 4:2:0 planes on [0, 1]), bpp, PSNR-YUV (the project's metrics), parameter bits,
seconds. Rows already in
``out.jsonl`` are skipped, so an interrupted run resumes. To time a change against the
commit before it, run both checkouts (``git worktree add /tmp/base COMMIT``, then
``PYTHONPATH=/tmp/base .venv/bin/python benchmarks/overfit_pairs.py run base.jsonl``).
``compare`` prints, per pair, the change of J, and the mean change of log J with its
standard error, and the spread of J over the seeds of each file.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_overfit import ROOT, load_picture  # noqa: E402

TRAIN = ROOT.parent / "shared" / "media" / "train"
PICTURES = ["Aqua", "Altai", "Autumn", "Cascade"]


def fit(job: tuple[str, int, int, str, str]) -> dict[str, Any]:
    """One fit of a training picture's 416x240 window; its row."""
    import time

    import torch

    from codeclab.base.frame import Frame
    from codeclab.codecs.overfit.config import PROFILES
    from codeclab.codecs.overfit.encoder import LAMBDAS, PRESETS, encode_planes
    from codeclab.pipeline.metrics import frame_metrics

    pic, q, seed, preset, profile = job
    torch.set_num_threads(1)
    f = load_picture(TRAIN / f"{pic}.png", 416, 240)
    lam = LAMBDAS[q - 1]
    t = time.perf_counter()
    res = encode_planes(f.planes, 8, PROFILES[profile], lam, PRESETS[preset], seed=seed)
    m = frame_metrics(f, Frame(res.planes, f.format), ms_ssim=False)
    d = (6 * m["mse_y"] + m["mse_u"] + m["mse_v"]) / 8 / 255 ** 2  # the encoder's D
    bpp = 8 * len(res.data) / (416 * 240)
    return {"pic": pic, "q": q, "seed": seed, "preset": preset, "profile": profile, "J": d / lam + bpp, "bpp": bpp,
            "psnr_yuv": m["psnr_yuv"], "param_bits": res.stats["param_bits"], "s": time.perf_counter() - t}


def _key(r: dict[str, Any]) -> tuple[str, int, int, str, str]:
    return r["pic"], r["q"], r["seed"], r["preset"], r["profile"]


def run(a: argparse.Namespace) -> None:
    for p in a.pictures:
        if not (TRAIN / f"{p}.png").is_file():
            raise SystemExit(f"overfit_pairs: {TRAIN / f'{p}.png'} does not exist (names without .png)")
    done = {_key(json.loads(line)) for line in a.out.open()} if a.out.exists() else set()
    jobs = [(p, q, s, a.preset, a.profile) for s in a.seeds for p in a.pictures for q in a.qualities]
    jobs = [j for j in jobs if j not in done]
    env = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    os.environ.update(env)
    with ProcessPoolExecutor(max_workers=a.jobs) as ex:
        for r in ex.map(fit, jobs):
            with a.out.open("a") as fh:
                fh.write(json.dumps(r) + "\n")
            print(f"{r['pic']:10s} q{r['q']} seed {r['seed']}  J {r['J']:.4f}  {r['bpp']:.4f} bpp  "
                  f"{r['psnr_yuv']:.2f} dB  parameters {r['param_bits']:.0f} bits  {r['s']:.0f} s", flush=True)


def _load(path: Path) -> dict[tuple[str, int, int, str, str], dict[str, Any]]:
    try:
        return {_key(r): r for r in (json.loads(line) for line in path.open())}
    except (OSError, ValueError, KeyError) as e:
        raise SystemExit(f"overfit_pairs: {path}: not a file of run rows ({e})") from None


def compare(a: argparse.Namespace) -> None:
    base, new = _load(a.base), _load(a.new)
    for name, rows in (("base", base), ("new", new)):
        by = defaultdict(list)
        for k, r in sorted(rows.items()):
            by[(k[0], k[1])].append(r["J"])
        print(f"{name}: J by seed, max / min")
        for (pic, q), js in sorted(by.items()):
            print(f"  {pic:10s} q{q}  {', '.join(f'{j:.4f}' for j in js)}  {max(js) / min(js) - 1:+.1%}")
    pairs = [(k, math.log(new[k]["J"] / base[k]["J"]), new[k]["param_bits"] - base[k]["param_bits"])
             for k in sorted(base) if k in new]
    if not pairs:
        raise SystemExit("overfit_pairs: the two files share no (picture, quality, seed, preset, profile)")
    for k, dl, db in pairs:
        print(f"  {k[0]:10s} q{k[1]} seed {k[2]}  J {math.expm1(dl):+.1%}  parameters {db:+.0f} bits")
    m = sum(p[1] for p in pairs) / len(pairs)
    sd = math.sqrt(sum((p[1] - m) ** 2 for p in pairs) / max(len(pairs) - 1, 1))
    print(f"mean change of log J over {len(pairs)} pairs: {100 * m:+.2f} % +- {100 * sd / math.sqrt(len(pairs)):.2f} % "
          f"(standard error); parameter bits {sum(p[2] for p in pairs) / len(pairs):+.0f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("out", type=Path)
    r.add_argument("--pictures", nargs="+", default=PICTURES)
    r.add_argument("--qualities", nargs="+", type=int, default=[1, 3])
    r.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    r.add_argument("--preset", default="fast")
    r.add_argument("--profile", default="mid")
    r.add_argument("--jobs", type=int, default=2)
    c = sub.add_parser("compare")
    c.add_argument("base", type=Path)
    c.add_argument("new", type=Path)
    a = ap.parse_args(argv)
    if a.cmd == "run":
        run(a)
    else:
        compare(a)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

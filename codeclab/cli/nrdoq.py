"""``codeclab nrdoq data`` / ``codeclab nrdoq train``: recording training data for the neural
quantizers and training them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["add_nrdoq"]


def _data(args: argparse.Namespace) -> int:
    import os

    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    from codeclab.lab.nrdoq_data import generate

    exclude = [Path(p) for p in args.exclude]
    s = generate([Path(p) for p in args.inputs], Path(args.out), qps=(args.qp_min, args.qp_max),
                 per_source=args.qps_per_source, max_side=args.max_side, clip_frames=args.clip_frames,
                 seed=args.seed, exclude=exclude, frames=args.frames, gop=args.gop,
                 presets=tuple(args.presets), bit_depths=tuple(args.bit_depths),
                 keep=_keep(args.keep), progress=not args.quiet)
    print(json.dumps(s, indent=1))
    return 0


def _keep(spec: list[str] | None) -> dict[int, float] | None:
    """``4=0.05 8=0.2 ...`` -> {log2 size: probability}."""
    from codeclab.base.errors import UsageError

    if not spec:
        return None
    out = {}
    for item in spec:
        size, _, prob = item.partition("=")
        try:
            n, p = int(size), float(prob)
        except ValueError:
            raise UsageError(f"nrdoq data: --keep {item!r} is not SIZE=PROBABILITY") from None
        if n not in (4, 8, 16, 32) or not 0 < p <= 1:
            raise UsageError(f"nrdoq data: --keep {item!r}: size 4/8/16/32, probability in (0, 1]")
        out[n.bit_length() - 1] = p
    return out


def _train(args: argparse.Namespace) -> int:
    from codeclab.lab.nrdoq_train import TrainConfig, train

    cfg = TrainConfig(model=args.model, data=tuple(Path(d) for d in args.data), run=Path(args.run), steps=args.steps,
                      coeffs_per_step=args.coeffs_per_step, lr=args.lr, val_fraction=args.val_fraction, seed=args.seed,
                      split_seed=args.split_seed,
                      drop=tuple(args.drop), cw_power=args.cw_power, rd_weight=args.rd_weight, width=args.width,
                      export=Path(args.export) if args.export else None,
                      progress=not args.quiet)
    train(cfg)
    return 0


def add_nrdoq(subparsers: Any) -> None:
    """Add ``nrdoq data`` / ``nrdoq train`` to a CLI's subparsers."""
    p = subparsers.add_parser("nrdoq", help="neural RDOQ quantizers (training data, training)")
    sub = p.add_subparsers(dest="nrdoq_command", required=True)
    d = sub.add_parser("data", help="encode pictures/clips with RDOQ and record every quantized block")
    d.add_argument("inputs", nargs="+", help="folders of pictures (.png ...) and clips (.mp4 ...)")
    d.add_argument("-o", "--out", required=True, help="run folder (writes data/*.npz, summary.json)")
    d.add_argument("--qp-min", type=int, default=17)
    d.add_argument("--qp-max", type=int, default=42)
    d.add_argument("--qps-per-source", type=int, default=4, help="QPs per picture / clip frame (stratified)")
    d.add_argument("--max-side", type=int, default=512, help="random crop of at most this side per encode")
    d.add_argument("--clip-frames", type=int, default=3, help="frames per clip, spread over it")
    d.add_argument("--exclude", nargs="*", default=[],
                   help="evaluation folders whose pictures must not be used (e.g. ../shared/media/val)")
    d.add_argument("--frames", type=int, default=1,
                   help="frames per encode: 1 = one intra picture; more = a sequence in --gop "
                        "(a synthetic camera move over a picture, consecutive frames of a clip)")
    d.add_argument("--gop", default="ai", choices=("ai", "ldp", "ldb", "ra"), help="structure of the sequences")
    d.add_argument("--presets", nargs="+", default=["fast"], choices=("fast", "medium", "slow"),
                   help="encoder presets, cycled over a source's encodes (medium / slow: the RD search, live contexts)")
    d.add_argument("--bit-depths", nargs="+", type=int, default=[8], choices=(8, 10),
                   help="coded bit depths, cycled over a source's encodes")
    d.add_argument("--keep", nargs="*", metavar="SIZE=P",
                   help="keep probability per block size (default with the RD presets: 4=0.1 8=0.1 "
                        "16=0.12 32=0.25; fast: all)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("-q", "--quiet", action="store_true")
    d.set_defaults(func=_data)
    t = sub.add_parser("train", help="train (or resume) nrdoq-fcn / nrdoq-ar on recorded blocks")
    t.add_argument("model", choices=("fcn", "ar"))
    t.add_argument("--data", required=True, nargs="+", help="data folders written by `nrdoq data` (RUN/data)")
    t.add_argument("--run", required=True, help="folder for checkpoints and logs (resumes from its checkpoint)")
    t.add_argument("--steps", type=int, default=3000)
    t.add_argument("--coeffs-per-step", type=int, default=8192,
                   help="coefficients per step (blocks of one size per step)")
    t.add_argument("--lr", type=float, default=3e-3)
    t.add_argument("--cw-power", type=float, default=0.0, help="class weights frequency^-P (0: plain CE)")
    t.add_argument("--rd-weight", type=float, default=0.0,
                   help="add W x the expected RD regret (bits) of the predicted classes to the loss (0: plain CE)")
    t.add_argument("--width", type=int, default=None, help="channels (fcn, default 16) / hidden units (ar, default 32)")
    t.add_argument("--val-fraction", type=float, default=0.12, help="share of *pictures* held out for validation")
    t.add_argument("--drop", nargs="*", default=[], help="input groups to zero (ablation): "
                   "qp, size, comp, scan, pos, frac, level, context")
    t.add_argument("--export", help="write the shipped weights (.npz) + model card (.md) here at the end")
    t.add_argument("--seed", type=int, default=0, help="initialisation and batch sampling")
    t.add_argument("--split-seed", type=int, default=0, help="which pictures are held out for validation")
    t.add_argument("-q", "--quiet", action="store_true")
    t.set_defaults(func=_train)

"""``codeclab lic train`` / ``codeclab lic export``: training the learned intra codec."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["add_lic", "train_main"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="folder of training pictures")
    p.add_argument("--val", help="folder of validation pictures")
    p.add_argument("--out", required=True, help="run folder (checkpoint, log)")
    p.add_argument("--steps", type=int, default=4500)
    p.add_argument("--resume", action="store_true", help="continue from OUT/ckpt.pt if it exists")
    p.add_argument("--lambdas", type=float, nargs="+", help="one lambda per rate point")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--crop", type=int, default=192)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--profile", default="default", help="MSP profile: fast, default, slow")
    p.add_argument("--log-every", type=int, default=25)
    p.add_argument("--val-every", type=int, default=500)
    p.add_argument("--ckpt-every", type=float, default=240.0, help="seconds between checkpoints")


def _run(args: argparse.Namespace) -> int:
    from codeclab.base.errors import UsageError
    from codeclab.lab.lic_train import train

    if args.crop % 64:
        raise UsageError(f"--crop {args.crop}: must be a multiple of 64")
    train(args)
    return 0


def _export(args: argparse.Namespace) -> int:
    from codeclab.base.errors import InputError
    from codeclab.lab.lic_train import export_weights

    if not Path(args.checkpoint).exists():
        raise InputError(f"{args.checkpoint}: no such checkpoint")
    export_weights(args.checkpoint, args.output, args.val)
    return 0


def add_lic(subparsers: Any) -> None:
    """Add ``lic train`` / ``lic export`` to a CLI's subparsers (``codeclab lic train ...``)."""
    lic = subparsers.add_parser("lic", help="learned intra codec tools")
    sub = lic.add_subparsers(dest="lic_command", required=True)
    tp = sub.add_parser("train", help="train (or resume) the learned intra codec")
    add_arguments(tp)
    tp.set_defaults(func=_run)
    ep = sub.add_parser("export", help="checkpoint -> shipped fp16 weights + model card")
    ep.add_argument("checkpoint")
    ep.add_argument("-o", "--output", required=True, help="weights file (.pt); the card is written next to it (.md)")
    ep.add_argument("--val", help="folder of validation pictures for the card's RD table")
    ep.set_defaults(func=_export)


def train_main(argv: list[str] | None = None) -> int:
    """``codeclab lic train ARGS`` as a function (scripts, tests)."""
    p = argparse.ArgumentParser(prog="codeclab lic train")
    add_arguments(p)
    return _run(p.parse_args(argv))

"""``codeclab demo``: code the shipped clip with each demo codec and print a table."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from codeclab.cli.args import progress_on

__all__ = ["add_demo"]


def _cmd_demo(args: argparse.Namespace) -> int:
    from codeclab.pipeline.demo import demo_clip, run_demo

    runs = run_demo(args.out, progress=progress_on(args))
    print(f"demo clip: {demo_clip()}")
    labels = [run.codec + "".join(f" {k}={v}" for k, v in run.options.items())
              + (f" ({run.frames} frame{'s' if run.frames > 1 else ''})" if run.frames else "") for run in runs]
    w = max(18, *(len(label) for label in labels))
    print(f"{'codec':<{w}} {'kbit/s':>9} {'PSNR-Y':>8} {'PSNR-YUV':>9} {'MS-SSIM':>8}")
    for run, label in zip(runs, labels):
        if run.result is None:
            print(f"{label:<{w}} skipped: {run.note}")
            continue
        s = run.result.summary
        print(f"{label:<{w}} {run.result.bitrate_kbps:9.1f} {s['psnr_y']:8.2f} {s['psnr_yuv']:9.2f} "
              f"{s.get('ms_ssim_y', float('nan')):8.4f}")
    print(f"outputs in {Path(args.out).resolve()}:")
    for run in runs:
        if run.result is not None:
            print(f"  {run.result.output.name}  {run.csv.name}  {run.json.name}")
    return 0


def add_demo(sub: Any) -> None:
    p = sub.add_parser("demo", help="code the clip shipped with codeclab and print a summary table",
                       description="Transcode the small real clip shipped inside the package (12 frames, 320x240, "
                       "lossless FFV1; see codeclab/data/demo/PROVENANCE.md) with each demo codec (the overfitted "
                       "codec, whose encoder fits every picture, on the first frame only), write the "
                       "coded files with per-frame metrics (CSV and JSON), and print rate and quality.",
                       epilog="example:\n  codeclab demo --out /tmp/demo",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="codeclab-demo", metavar="DIR", help="output folder (default ./codeclab-demo/)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_demo)

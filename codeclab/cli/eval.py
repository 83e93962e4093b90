"""``codeclab eval run``, ``codeclab eval report`` and ``codeclab bdrate``: batch evaluation."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from codeclab.cli.args import positive

__all__ = ["add_eval", "add_bdrate"]


def _cmd_run(args: argparse.Namespace) -> int:
    from codeclab.base.errors import UsageError
    from codeclab.eval.evaluate import run_evaluation

    if args.scheduler and args.jobs is not None:
        raise UsageError("give --jobs (local pool) or --scheduler (Dask), not both")
    try:
        out = run_evaluation(args.config, args.data, args.db, jobs=args.jobs or 1, scheduler=args.scheduler,
                             progress=not args.quiet)
    except KeyboardInterrupt:
        print(f"codeclab: interrupted; finished jobs are saved in {args.db}, "
              "run the same command again to resume", file=sys.stderr)
        return 130
    s = out.summary
    err = sys.stderr
    for m in out.plan.missing:
        print(f"codeclab: missing: {m}", file=err)
    print(f"{out.experiment.name}: {s.planned} jobs, {s.skipped} already done, {s.done} ran, "
          f"{len(s.failed)} failed ({len(out.plan.sequences)} sequences, {len(out.plan.missing)} missing); "
          f"results in {args.db}", file=err)
    for job, e in s.failed:
        print(f"codeclab: failed: {job.sequence} {job.label} {job.point_option}={job.point}: {e}", file=err)
    if args.report:
        from codeclab.eval.evaluate import report_evaluation

        _, paths = report_evaluation(args.db, args.report, run=out.config_hash)
        print(f"report: {paths['html']}", file=err)
    return 1 if s.failed else 0


def _cmd_report(args: argparse.Namespace) -> int:
    from codeclab.eval.evaluate import report_evaluation

    an, paths = report_evaluation(args.db, args.output, run=args.run, method=args.method, plots=not args.no_plots)
    print(Path(paths["markdown"]).read_text(encoding="utf-8"))
    print(f"report: {paths['html']}", file=sys.stderr)
    return 0


def _cmd_bdrate(args: argparse.Namespace) -> int:
    from codeclab.base.errors import UsageError
    from codeclab.eval.analysis import COMPONENTS, METHODS
    from codeclab.eval.bdrate import bd_psnr, bd_rate_components
    from codeclab.eval.rdcsv import read_rd_csv

    a, t = read_rd_csv(args.anchor), read_rd_csv(args.test)
    if set(a) != set(t):
        only = sorted(set(a) ^ set(t))
        raise UsageError(f"{args.anchor} and {args.test} list different sequences: {', '.join(s or '(none)' for s in only)}")
    methods = METHODS if args.method == "both" else (args.method,)
    print("sequence,method," + ",".join(f"bd_rate_{c.lower()}" for c in COMPONENTS) + ",bd_psnr_y")
    for seq in a:
        for m in methods:
            try:
                bd = bd_rate_components(a[seq], t[seq], method=m)  # type: ignore[arg-type]
                bp = bd_psnr(a[seq]["rate"], a[seq]["psnr_y"], t[seq]["rate"], t[seq]["psnr_y"], method=m)  # type: ignore[arg-type]
            except UsageError as e:
                raise UsageError(f"{seq or args.test}: {e}") from None
            cells = [repr(bd[c]) if c in bd else "" for c in COMPONENTS]
            print(f"{seq},{m}," + ",".join(cells) + f",{bp!r}")
    return 0


def add_eval(subparsers: Any) -> None:
    """Add ``eval {run,report}`` to an argparse sub-parser set."""
    ev = subparsers.add_parser("eval", help="batch evaluation of test sequences (JVET CTC style)",
                               description="Run a codec comparison over a sequence set and report BD-rates.")
    sub = ev.add_subparsers(dest="eval_command", metavar="{run,report}")
    sub.required = True

    run = sub.add_parser("run", help="run (or resume) an experiment", description=(
        "Run every (sequence, codec, QP) job of CONFIG on the sequences found under --data. Finished jobs are "
        "stored in the database at once; the same command resumes an interrupted run. Exit status 1 when a "
        "job failed (each failure is listed), 0 otherwise."),
        epilog="examples:\n  codeclab eval run configs/ai_ctc_x265.toml --data /data/jvet --jobs 2\n"
               "  codeclab eval run configs/ai_ctc_x265.toml --data /data/jvet --scheduler tcp://head:8786 "
               "--report report/",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("config", type=Path, help="experiment TOML (see configs/ and docs/eval.md)")
    run.add_argument("--data", type=Path, required=True, help="folder holding the sequence files")
    where = run.add_mutually_exclusive_group()
    where.add_argument("--jobs", "-j", type=positive, default=None, help="local worker processes (default 1)")
    where.add_argument("--scheduler", metavar="ADDR", help="Dask scheduler, e.g. tcp://host:8786")
    run.add_argument("--db", type=Path, default=Path("results.sqlite"), help="results database (default %(default)s)")
    run.add_argument("--report", type=Path, metavar="DIR", help="also write the report into DIR at the end")
    run.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    run.set_defaults(func=_cmd_run)

    rep = sub.add_parser("report", help="tables, RD plots and HTML from a results database",
                         description="Write summary.md, bdrate_*.csv, rd/*.csv, plots/*.png and report.html "
                         "for one run of the database, and print the Markdown tables.",
                         epilog="example:\n  codeclab eval report --db results.sqlite -o report/",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    rep.add_argument("--db", type=Path, default=Path("results.sqlite"), help="results database (default %(default)s)")
    rep.add_argument("-o", "--output", type=Path, required=True, help="report folder")
    rep.add_argument("--run", help="run name or config hash (default: the latest run)")
    rep.add_argument("--method", choices=("pchip", "cubic"), help="BD interpolation of the headline tables "
                     "(default: the config's bd_method; the CSVs carry both)")
    rep.add_argument("--no-plots", action="store_true", help="skip the RD plots")
    rep.set_defaults(func=_cmd_report)


def add_bdrate(subparsers: Any) -> None:
    """Add ``bdrate`` to an argparse sub-parser set."""
    bd = subparsers.add_parser("bdrate", help="BD-rate of TEST against ANCHOR from two RD-point CSV files",
                               description="CSV: header with rate, psnr_y (or psnr), optional psnr_u, psnr_v and "
                               "sequence columns; see docs/eval.md. Prints CSV: BD-rate per component (%%, negative = "
                               "TEST saves bits) and BD-PSNR Y (dB).")
    bd.add_argument("anchor", type=Path, help="anchor RD points (CSV)")
    bd.add_argument("test", type=Path, help="test RD points (CSV)")
    bd.add_argument("--method", choices=("pchip", "cubic", "both"), default="both", help="default %(default)s")
    bd.set_defaults(func=_cmd_bdrate)

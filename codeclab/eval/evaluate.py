"""The two steps behind ``codeclab eval run`` and ``codeclab eval report``.

``run_evaluation`` plans the job grid, records the run, and runs what the database does
not hold yet; ``report_evaluation`` reads a run back and writes the report. Both are thin:
the work is in :mod:`.jobs`, :mod:`.runner`, :mod:`.store`, :mod:`.analysis`, :mod:`.report`.
"""

from __future__ import annotations

import concurrent.futures as cf
import importlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from codeclab.eval.analysis import Analysis, analyse
from codeclab.eval.config import Experiment, load_experiment
from codeclab.eval.jobs import Plan, plan_jobs
from codeclab.eval.report import write_report
from codeclab.eval.runner import RunSummary, open_executor, run_grid
from codeclab.eval.store import ResultStore

__all__ = ["RunOutcome", "run_evaluation", "load_analysis", "report_evaluation"]


@dataclass
class RunOutcome:
    experiment: Experiment
    plan: Plan
    summary: RunSummary
    config_hash: str


def run_evaluation(
    config: str | Path | Experiment,
    data: str | Path,
    db: str | Path,
    *,
    jobs: int = 1,
    scheduler: str | None = None,
    executor: cf.Executor | None = None,
    progress: bool = True,
) -> RunOutcome:
    """Plan, record and run an experiment; jobs already in ``db`` are skipped.

    ``executor`` (any concurrent.futures Executor) overrides ``jobs``/``scheduler``; it is
    used as given and not shut down here.
    """
    exp = config if isinstance(config, Experiment) else load_experiment(config)
    data = Path(data)
    if not data.is_dir():
        from codeclab.base.errors import InputError

        raise InputError(f"{data}: data folder not found")
    _check_imports(exp)
    plan = plan_jobs(exp, data)
    if not plan.sequences:
        from codeclab.base.errors import InputError

        shown = "; ".join(plan.missing[:3]) + (f"; ... ({len(plan.missing)} in all)" if len(plan.missing) > 3 else "")
        raise InputError(f"{exp.source}: no sequence found under {data}: {shown}")
    with ResultStore(db) as store:
        h = store.register_run(exp, plan.jobs, os.fspath(data.resolve()), plan.missing)
        if executor is not None:
            summary = run_grid(plan.jobs, store, executor, config_hash=h, progress=progress)
        else:
            with open_executor(jobs=jobs, scheduler=scheduler) as ex:
                summary = run_grid(plan.jobs, store, ex, config_hash=h, progress=progress)
    return RunOutcome(exp, plan, summary, h)


def _check_imports(exp: Experiment) -> None:
    """Import the config's codec plugins here first: a typo is one clear error, not N failed jobs."""
    from codeclab.base.errors import UsageError

    for m in exp.imports:
        try:
            importlib.import_module(m)
        except Exception as e:
            raise UsageError(f"{exp.source}: imports: cannot import {m!r} ({type(e).__name__}: {e})") from None


def load_analysis(db: str | Path, run: str | None = None) -> tuple[Analysis, dict]:
    """Analysis of one stored run (the latest by default) and the run's record."""
    with ResultStore(db, create=False) as store:
        rec = store.run(run)
        rows = store.jobs(rec["config_hash"])
    cfg = json.loads(rec["config_json"])
    labels = [c["label"] for c in cfg["codecs"]]
    an = analyse(rows, rec["anchor"], labels, tuple(cfg.get("overall_exclude", ())))
    rec["config"] = cfg
    rec["missing"] = json.loads(rec["missing_json"] or "[]")
    return an, rec


def report_evaluation(db: str | Path, out: str | Path, *, run: str | None = None, method: str | None = None,
                      plots: bool = True) -> tuple[Analysis, dict[str, Path]]:
    """Write the report of one stored run into ``out``."""
    an, rec = load_analysis(db, run)
    title = f"{rec['name']} — codeclab evaluation"
    paths = write_report(an, out, title=title, method=method or rec["config"].get("bd_method", "pchip"),
                         missing=rec["missing"], plots=plots)
    return an, paths

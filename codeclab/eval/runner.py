"""Run a job grid on any ``concurrent.futures.Executor`` and persist each result at once.

The runner knows one interface: ``executor.submit(run_job, job)`` and
``concurrent.futures.as_completed``. A local :class:`~concurrent.futures.ProcessPoolExecutor`
(:func:`local_executor`) and a Dask cluster (:func:`dask_executor`, whose
``client.get_executor()`` is an Executor) are interchangeable.

Never losing work: the driver stores every finished job in its own transaction as soon as
it arrives, and skips keys already stored when it starts, so the same command resumes an
interrupted run. Local workers share a process group of their own (terminal signals reach
the driver only), ignore SIGINT (the driver handles Ctrl-C) and exit by themselves when
the driver dies, even by ``kill -9``, which would otherwise leave idle orphaned pool
workers behind (ecosystem.md section 4).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

from codeclab.base.errors import UsageError
from codeclab.eval.jobs import Job
from codeclab.eval.store import ResultStore
from codeclab.eval.worker import JobResult, describe_error, run_job

__all__ = ["RunSummary", "run_grid", "local_executor", "dask_executor", "open_executor"]


@dataclass
class RunSummary:
    planned: int
    skipped: int  # already in the database
    done: int = 0
    failed: list[tuple[Job, str]] = field(default_factory=list)

    @property
    def ran(self) -> int:
        return self.done + len(self.failed)


def run_grid(
    jobs: Sequence[Job],
    store: ResultStore,
    executor: cf.Executor,
    *,
    config_hash: str | None = None,
    progress: bool = True,
    fn: Callable[[Job], JobResult] = run_job,
    on_result: Callable[[Job, JobResult], None] | None = None,
) -> RunSummary:
    """Run every job not yet done in ``store`` on ``executor``; store each result as it lands.

    Failed jobs (exceptions inside a job, lost workers) are stored with their error and
    do not stop the batch; they are tried again by the next run. On KeyboardInterrupt the
    jobs still queued are cancelled and the exception propagates; what was stored stays.
    """
    done = store.done_keys()
    todo = [j for j in jobs if j.key not in done]
    summary = RunSummary(planned=len(jobs), skipped=len(jobs) - len(todo))
    if not todo:
        return summary
    bar = _progress(len(todo), progress)
    futures: dict[cf.Future, Job] = {}
    try:
        for j in todo:
            futures[executor.submit(fn, j)] = j
        for fut in cf.as_completed(futures):
            job = futures.pop(fut)
            try:
                res = fut.result()
            except Exception as e:  # the worker itself died (BrokenProcessPool, lost Dask worker ...)
                res = JobResult(job.key, False, describe_error(e))
            store.save(job, res, config_hash)
            if res.ok:
                summary.done += 1
            else:
                summary.failed.append((job, res.error or "unknown error"))
            if on_result is not None:
                on_result(job, res)
            if bar is not None:
                bar.set_postfix_str(f"failed {len(summary.failed)}" if summary.failed else "", refresh=False)
                bar.update(1)
    except BaseException:
        for fut in futures:
            fut.cancel()
        raise
    finally:
        if bar is not None:
            bar.close()
    return summary


def _progress(total: int, enabled: bool):  # -> tqdm | None
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="job", desc="eval", dynamic_ncols=True, file=sys.stderr)


# ---- local process pool -------------------------------------------------------------
_PR_SET_PDEATHSIG = 1


def _worker_init(parent: int, group: Any = None) -> None:
    """Orphan-proof a pool worker: own process group, ignore Ctrl-C, die with the driver."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver decides what Ctrl-C means
    if group is not None:
        _join_pool_group(group)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the driver died before we got here
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="parent-watch").start()


def _join_pool_group(group: Any) -> None:
    """Put every worker of a pool in one process group of its own (the first one leads).

    Terminal signals then reach the driver only, and the pool can be killed as a whole
    (``kill -- -PGID``; :func:`kill_pool`). Best effort: a worker that cannot join (the
    group is gone) leads a new one.
    """
    with group.get_lock():
        try:
            if group.value:
                os.setpgid(0, group.value)
                return
        except OSError:
            pass
        with contextlib.suppress(OSError):
            os.setpgid(0, 0)
            group.value = os.getpid()


def _watch_parent(parent: int) -> None:
    """Portable fallback for PDEATHSIG: exit as soon as we are re-parented."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(1)


def local_executor(jobs: int) -> cf.ProcessPoolExecutor:
    """A process pool of ``jobs`` workers in their own process group, that ignore SIGINT
    and exit when the driver dies.

    Workers are started with ``spawn``: a clean interpreter per worker (no inherited
    threads or locks from the driver, the same conditions as a Dask worker), which is also
    why codec plugins are named in a config's ``imports`` (each job imports them first)
    rather than registered in the driver only.
    """
    if jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {jobs}")
    ctx = multiprocessing.get_context("spawn")
    group = ctx.Value("l", 0) if hasattr(os, "setpgid") else None
    ex = cf.ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_worker_init, initargs=(os.getpid(), group))
    ex._codeclab_group = group  # type: ignore[attr-defined]  # read by kill_pool
    return ex


def kill_pool(executor: cf.Executor) -> None:
    """Stop a local pool now (Ctrl-C): cancel what is queued, kill what is running."""
    if isinstance(executor, cf.ProcessPoolExecutor):
        procs = list((getattr(executor, "_processes", None) or {}).values())  # no public API to reach them
        group = getattr(executor, "_codeclab_group", None)
        executor.shutdown(wait=False, cancel_futures=True)
        if group is not None and group.value and group.value != os.getpgrp():
            with contextlib.suppress(OSError):
                os.killpg(group.value, signal.SIGKILL)
        for p in procs:
            with contextlib.suppress(Exception):
                p.kill()
    else:
        executor.shutdown(wait=False, cancel_futures=True)


# ---- Dask ---------------------------------------------------------------------------
@contextlib.contextmanager
def dask_executor(address_or_cluster: object) -> Iterator[cf.Executor]:
    """An Executor on a Dask cluster: a scheduler address ``tcp://host:port`` or a cluster object."""
    try:
        from distributed import Client
    except ImportError:
        raise UsageError("--scheduler needs Dask: pip install 'codeclab[cluster]'") from None
    try:
        client = Client(address_or_cluster, timeout="20s")
    except (OSError, TimeoutError) as e:
        raise UsageError(f"cannot reach Dask scheduler {address_or_cluster}: {e}") from None
    try:
        yield client.get_executor(pure=False)
    finally:
        client.close()


@contextlib.contextmanager
def open_executor(*, jobs: int = 1, scheduler: str | None = None) -> Iterator[cf.Executor]:
    """The executor the CLI asks for; a local pool is killed on the way out of an error."""
    if scheduler:
        with dask_executor(scheduler) as ex:
            yield ex
        return
    ex = local_executor(jobs)
    try:
        yield ex
    except BaseException:
        kill_pool(ex)
        raise
    ex.shutdown(wait=True)

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
import sys
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

from codeclab.base.errors import UsageError
from codeclab.base.pool import kill_pool, process_pool
from codeclab.eval.jobs import Job
from codeclab.eval.store import ResultStore
from codeclab.eval.worker import JobResult, describe_error, run_job

__all__ = ["RunSummary", "run_grid", "local_executor", "kill_pool", "dask_executor", "open_executor"]


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
def local_executor(jobs: int) -> cf.ProcessPoolExecutor:
    """A process pool of ``jobs`` workers (:func:`codeclab.base.pool.process_pool`: spawned,
    in their own process group, ignoring SIGINT, exiting when the driver dies).

    Spawned workers are clean interpreters (no inherited threads or locks from the driver,
    the same conditions as a Dask worker), which is also why codec plugins are named in a
    config's ``imports`` (each job imports them first) rather than registered in the driver
    only.
    """
    if jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {jobs}")
    return process_pool(jobs)


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

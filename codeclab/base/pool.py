"""Local process pools that leave nothing behind, and an ordered, bounded map over one.

One copy of the pool rules for every layer that runs work in processes (the batch
evaluation's job pool, ``transcode --jobs``'s frame workers):

- workers are started with ``spawn``: a clean interpreter each (no threads, locks or
  numba/torch state inherited from the driver);
- they share a process group of their own, so a Ctrl-C at the terminal reaches the driver
  only, which decides what it means (:func:`kill_pool`), and ignore SIGINT themselves;
- they exit when the driver dies, even by ``kill -9`` (``PR_SET_PDEATHSIG``, and a parent
  watch where that is missing), which would otherwise leave idle orphans behind;
- ``env`` is set in each worker before it imports anything heavy: :data:`ONE_THREAD_ENV`
  keeps numba, OpenMP/BLAS and torch to one thread, so N workers use N cores, not N x N.

:func:`ordered_map` keeps a window of tasks in flight on any executor and hands the
results back in input order, which is what a writer of a stream needs.
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
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

__all__ = ["ONE_THREAD_ENV", "usable_cpus", "process_pool", "kill_pool", "ordered_map"]

T = TypeVar("T")
R = TypeVar("R")

#: environment of a worker that must use one core: numba, OpenMP (torch), BLAS libraries
ONE_THREAD_ENV: Mapping[str, str] = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                                     "OPENBLAS_NUM_THREADS": "1"}

_PR_SET_PDEATHSIG = 1


def usable_cpus() -> int:
    """Cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _worker_init(parent: int, group: Any = None, env: Mapping[str, str] | None = None) -> None:
    """Orphan-proof a pool worker: own process group, ignore Ctrl-C, die with the driver."""
    if env:
        os.environ.update(env)
        if "torch" in sys.modules and "OMP_NUM_THREADS" in env:  # imported before us: tell it directly
            sys.modules["torch"].set_num_threads(int(env["OMP_NUM_THREADS"]))
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


def process_pool(jobs: int, *, env: Mapping[str, str] | None = None) -> cf.ProcessPoolExecutor:
    """A pool of ``jobs`` spawned workers in their own process group, that ignore SIGINT,
    exit when the driver dies and run with ``env`` set (see the module docstring)."""
    if jobs < 1:
        raise ValueError(f"a pool needs at least one worker, got {jobs}")
    ctx = multiprocessing.get_context("spawn")
    group = ctx.Value("l", 0) if hasattr(os, "setpgid") else None
    ex = cf.ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_worker_init,
                                initargs=(os.getpid(), group, dict(env) if env else None))
    ex._codeclab_group = group  # type: ignore[attr-defined]  # read by kill_pool
    return ex


def kill_pool(executor: cf.Executor) -> None:
    """Stop a pool now (Ctrl-C, an error): cancel what is queued, kill what is running.

    The executor's own manager thread reaps the killed workers; this waits for it (at
    most 10 s), so no zombies are left and the executor is not collected mid-cleanup.
    """
    if isinstance(executor, cf.ProcessPoolExecutor):
        procs = list((getattr(executor, "_processes", None) or {}).values())  # no public API to reach them
        group = getattr(executor, "_codeclab_group", None)
        manager = getattr(executor, "_executor_manager_thread", None)  # shutdown() drops it
        executor.shutdown(wait=False, cancel_futures=True)
        if group is not None and group.value and group.value != os.getpgrp():
            with contextlib.suppress(OSError):
                os.killpg(group.value, signal.SIGKILL)
        for p in procs:
            with contextlib.suppress(Exception):
                p.kill()
        # Wait (bounded) for the manager thread to reap the killed workers while the executor
        # is still referenced here. Dropped earlier, the executor can be garbage-collected
        # while that thread holds its shutdown lock (terminate_broken), and the collector's
        # weakref callback then waits on the lock forever: a hang seen in the test suite on
        # CPython 3.12.1 (later 3.12 releases no longer take the lock in that callback).
        if manager is not None and manager is not threading.current_thread():
            manager.join(timeout=10)
    else:
        executor.shutdown(wait=False, cancel_futures=True)


def ordered_map(executor: cf.Executor, fn: Callable[[T], R], items: Iterable[T],
                window: int) -> Iterator[tuple[T, cf.Future[R]]]:
    """``fn(item)`` for every item on ``executor``; ``(item, future)`` pairs in input order.

    At most ``window`` items are pulled from ``items`` and not yet handed back, so memory
    stays bounded however long the input is. Each future handed back is done: its
    ``result()`` is the value or raises the task's exception (the caller knows which item
    failed). Closing the iterator early cancels the tasks not yet started.
    """
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    pending: deque[tuple[T, cf.Future[R]]] = deque()
    try:
        for item in items:
            pending.append((item, executor.submit(fn, item)))
            if len(pending) >= window:
                first = pending.popleft()
                cf.wait([first[1]])
                yield first
        while pending:
            first = pending.popleft()
            cf.wait([first[1]])
            yield first
    finally:
        for _item, fut in pending:
            fut.cancel()

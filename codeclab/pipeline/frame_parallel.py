"""Frame-parallel encoding: code the pictures of a ``frame_parallel`` codec in worker processes.

Why it is exact: such a codec codes every picture on its own (``CodecSpec.frame_parallel``;
for ``hevc`` every access unit is an IDR with its parameter sets), so an encoder in any
process gives picture k the same bytes, and handing the packets back in input order
(:func:`codeclab.base.pool.ordered_map`) makes the stream identical to one encoder's.

Each worker is a spawned process with one thread (``ONE_THREAD_ENV``) that builds its own
encoder from ``(spec, format, options)`` on its first frame and keeps it. At most
``window`` frames (default 2 x jobs) are read from the source and not yet handed back, so
memory does not grow with the clip. Any failure stops the pool at once (queued frames are
cancelled, running workers killed) and comes back as a one-line error: the worker's own
:class:`~codeclab.base.errors.CodeclabError` unchanged, anything else as a
:class:`~codeclab.base.errors.CodecError` naming the frame.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import itertools
import pickle
import time
from collections.abc import Iterable, Iterator
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from codeclab.base.errors import CodecError, CodeclabError
from codeclab.base.frame import Frame
from codeclab.base.pool import ONE_THREAD_ENV, kill_pool, ordered_map, process_pool
from codeclab.codecs.base import CodecSpec, Encoder, Packet

__all__ = ["encode_in_workers"]

#: the encoder this worker process built, with the (codec, format, options) it was built for
_WORKER_ENCODER: tuple[tuple[str, Any, Any], Encoder] | None = None


def _encode_one(spec: CodecSpec, options: Any, frame: Frame) -> tuple[list[Packet], float]:
    """Worker side: code one frame with this process's encoder; (packets, wall seconds).

    Errors that are not codeclab's own become a CodecError here, so that what crosses the
    process boundary always pickles and prints as one line.
    """
    global _WORKER_ENCODER
    try:
        key = (spec.name, frame.format, options)
        if _WORKER_ENCODER is None or _WORKER_ENCODER[0] != key:
            _WORKER_ENCODER = (key, spec.make_encoder(frame.format, options))
        t0 = time.perf_counter()
        packets = _WORKER_ENCODER[1].encode(frame)
        return packets, time.perf_counter() - t0
    except CodeclabError:
        raise
    except Exception as e:  # noqa: BLE001  # reported, with its type, as the codec's failure
        text = " ".join(str(e).split())
        raise CodecError(f"codec {spec.name}: frame {frame.index} failed in a worker process: "
                         f"{type(e).__name__}{': ' + text if text else ''}") from None


def encode_in_workers(frames: Iterable[Frame], spec: CodecSpec, options: Any, jobs: int,
                      window: int | None = None) -> Iterator[tuple[Frame, list[Packet], float]]:
    """``(frame, its packets, encode seconds)`` for every frame, in input order, coded by
    ``jobs`` worker processes; at most ``window`` (default ``2 * jobs``) frames in flight.

    The pool starts with the first frame (no frames, no processes) and is gone when the
    iterator ends or is closed: close it (``contextlib.closing``) when stopping early, so
    that an error or Ctrl-C does not wait for the frames still being coded.

    Raises:
        CodecError: the codec is not ``frame_parallel``; a worker failed or died.
    """
    if not spec.parallel(options):
        raise CodecError(f"codec {spec.name} codes frames in order (not frame_parallel): use one job")
    window = window or 2 * jobs
    it = iter(frames)
    first = next(it, None)
    if first is None:
        return
    try:  # here, not in the pool's queue feeder thread: CPython 3.12.1 deadlocks on a pickling
        # error there (the feeder's error handler and the manager thread both take the
        # executor's shutdown lock), which hung a later garbage collection in the test suite
        pickle.dumps((spec, options, first))
    except Exception as e:  # noqa: BLE001  # any pickling failure is the same user error
        raise CodecError(f"codec {spec.name}: frame {first.index} could not be passed to or from a worker "
                         f"process: {type(e).__name__}: {' '.join(str(e).split())}") from None
    pool = process_pool(jobs, env=ONE_THREAD_ENV)
    ok = False
    try:
        task = functools.partial(_encode_one, spec, options)
        for frame, fut in ordered_map(pool, task, itertools.chain([first], it), window):
            try:
                packets, seconds = fut.result()
            except (BrokenProcessPool, cf.CancelledError):
                raise CodecError(f"codec {spec.name}: the worker process coding frame {frame.index} died "
                                 "(killed, or out of memory?)") from None
            except CodeclabError:
                raise
            except Exception as e:  # noqa: BLE001  # not the codec's: the frame or spec did not pickle
                raise CodecError(f"codec {spec.name}: frame {frame.index} could not be passed to or from a "
                                 f"worker process: {type(e).__name__}: {' '.join(str(e).split())}") from None
            yield frame, packets, seconds
        ok = True
    except BrokenProcessPool:  # from submit: the pool broke between two results
        raise CodecError(f"codec {spec.name}: a worker process died (killed, or out of memory?)") from None
    finally:
        if ok:
            pool.shutdown(wait=True)
        else:
            kill_pool(pool)

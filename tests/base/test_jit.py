"""base/jit.unit: a unit is compiled once and called by symbol from jitted callers, in the
process that compiled it and in later processes that load the callers from numba's cache;
a cached caller of a unit whose types changed is a one-line stale-cache error.
base/jit.borrow: the same arrays, types and data without an owner (no reference counts).
base/jit.view: what reshape returns for a contiguous array, or reshape's error."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from typing import NamedTuple

from llvmlite import ir
from numba import njit, types
from numba.core.errors import TypingError
from numba.extending import intrinsic
from numba.typed import List

from codeclab.base.jit import borrow, unit, view


@unit
def _scaled_sum(a, k):  # pragma: no cover - numba
    s = 0.0
    for v in a:
        s += v * k
    return s, a.shape[0]


@njit
def _caller(a):  # pragma: no cover - numba
    t = 0.0
    for k in range(3):  # a literal int and a plain int reach the same compiled unit
        s, n = _scaled_sum(a, k)
        t += s + n
    s, n = _scaled_sum(a, 2)
    return t + s


def test_unit_called_from_jitted_code():
    a = np.arange(5.0)
    assert _caller(a) == pytest.approx(10.0 * 3 + 15 + 20.0)
    assert len(_scaled_sum.dispatcher.signatures) == 1
    assert _scaled_sum.dispatcher(a, 2) == (20.0, 5)


UNIT = """
from codeclab.base.jit import unit

@unit
def leaf(a, k):
    a[0] += k
    return {ret}
"""
CALLER = """
import numpy as np
from numba import njit
from mod_unit import leaf

@njit(cache=True)
def caller(a):
    return leaf(a, 3)

if __name__ == "__main__":
    a = np.zeros(4, dtype=np.int64)
    print(caller(a), a[0], caller.stats.cache_hits.get(caller.signatures[0], 0) if caller.signatures else 0)
"""


def _run(tmp: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp / "cache"),
               PYTHONPATH=os.pathsep.join([str(tmp), *sys.path]))
    return subprocess.run([sys.executable, str(tmp / "mod_caller.py")], env=env,
                          capture_output=True, text=True, timeout=300)


def test_cached_callers_find_their_units_in_a_new_process(tmp_path):
    (tmp_path / "mod_unit.py").write_text(UNIT.format(ret="a.sum() * 2"))
    (tmp_path / "mod_caller.py").write_text(CALLER)
    first = _run(tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.split() == ["6", "3", "0"]
    second = _run(tmp_path)  # the caller comes from the cache, the unit's symbol is bound again
    assert second.returncode == 0, second.stderr
    assert second.stdout.split() == ["6", "3", "1"]
    # the unit's code changes (same types): the cached caller calls the new code
    (tmp_path / "mod_unit.py").write_text(UNIT.format(ret="a.sum() * 5"))
    third = _run(tmp_path)
    assert third.returncode == 0, third.stderr
    assert third.stdout.split() == ["15", "3", "1"]
    # the unit's return type changes: the cached caller is reported stale, never called
    (tmp_path / "mod_unit.py").write_text(UNIT.format(ret="a.sum() * 0.5"))
    fourth = _run(tmp_path)
    assert fourth.returncode != 0
    assert "StaleCacheError" in fourth.stderr and "is stale" in fourth.stderr


class _State(NamedTuple):
    planes: tuple[np.ndarray, np.ndarray]
    k: int
    flag: np.ndarray


@intrinsic
def _meminfo(typingctx, a):  # the address of an array's owner (0: none)
    def codegen(context, builder, sig, args):
        ary = context.make_array(a)(context, builder, value=args[0])
        return builder.ptrtoint(ary.meminfo, ir.IntType(64))

    return types.int64(a), codegen


@njit
def _through_borrow(st):  # pragma: no cover - numba
    b = borrow(st)
    b.planes[1][0, 1] = 7  # writes reach the caller's array
    return _meminfo(st.planes[1]) != 0, _meminfo(b.planes[1]), _meminfo(b.flag), b.k + b.planes[0].sum()


def test_borrow_shares_data_and_types_without_an_owner():
    st = _State((np.arange(4.0), np.zeros((2, 3), dtype=np.int32)), 5, np.ones(2, dtype=np.uint8))
    owned, mi_plane, mi_flag, total = _through_borrow(st)
    assert owned and mi_plane == 0 and mi_flag == 0
    assert total == 5 + 6.0
    assert st.planes[1][0, 1] == 7


def test_borrow_rejects_reference_counted_non_arrays():
    @njit
    def f(x):  # pragma: no cover - numba
        return borrow(x)

    with pytest.raises(TypingError):
        f(List([1, 2]))


@njit
def _views(buf, n):  # pragma: no cover - numba
    a = view(buf[3:3 + 2 * n * n], (2, n, n))
    a[1, 0, 1] = -1  # a view: writes reach buf
    b = view(a[1], (n * n,))
    return a.copy(), b.copy(), a.strides, _meminfo(a) == _meminfo(buf)


def test_view_is_reshape_without_a_copy():
    buf = np.arange(40, dtype=np.int32)
    expect = buf[3:21].copy().reshape(2, 3, 3)
    expect[1, 0, 1] = -1
    a, b, strides, shared = _views(buf, 3)
    assert (a == expect).all() and (b == expect[1].ravel()).all()
    assert strides == (36, 12, 4) and shared
    assert buf[3 + 9 + 1] == -1


def test_view_rejects_a_shape_of_another_size():
    @njit
    def f(buf):  # pragma: no cover - numba
        return view(buf[:5], (2, 2))

    with pytest.raises(ValueError, match="shape"):
        f(np.zeros(8))

"""Compiled code in units that numba compiles once (:func:`unit`), arguments without
reference counting (:func:`borrow`), and reshaped views of scratch buffers (:func:`view`).

numba links the LLVM IR of every jitted function a jitted function calls into the caller's
module, then optimises and generates machine code for the whole again. Down a call chain
ten functions deep (the HEVC search: picture, CU, PU, TU tree, TB, quantizer, CABAC
pricing) each function is compiled once for itself and again inside every caller above
it: minutes of CPU for a cold compile, nearly all of it re-optimising the same callees.

A function decorated with :func:`unit` is compiled (and cached) on its own; a jitted caller
sees only a declaration and calls it through the address of numba's C wrapper of it. Before
a caller is loaded from numba's cache in another process, the address is registered again
under the same symbol (numba's ``reload_init`` hook), so caches keep working. A unit whose
source changed is recompiled from its own cache stamp and its callers call the new code;
a unit whose argument or return types changed under a cached caller is reported as a stale
cache (one line), never called with the wrong layout.

Costs: no inlining across the boundary and a call through the wrapper (arguments passed by
value): make units of functions that do real work per call, not of per-sample helpers.
Exceptions cannot cross the boundary (numba's C wrapper prints them as unraisable and
returns zeros), so units must not raise: pass errors of Python callbacks out by flags.
Units are called from jitted code only; from Python call ``f.dispatcher``.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import inspect
from collections.abc import Callable
from typing import Any

import llvmlite.binding as ll
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.core.imputils import impl_ret_borrowed
from numba.core.typing import signature
from numba.extending import intrinsic
from numba.np.arrayobj import populate_array

__all__ = ["StaleCacheError", "borrow", "unit", "view"]

_DISPATCHERS: dict[tuple[str, str], Any] = {}
_BOUND: dict[tuple[str, str, tuple], tuple[str, Any]] = {}


class StaleCacheError(RuntimeError):
    """A cached caller expects a unit with other argument or return types."""


def _symbol(modname: str, qualname: str, argtys: tuple, restype: Any) -> str:
    digest = hashlib.sha1(f"{argtys}->{restype}".encode()).hexdigest()[:20]
    return f"codeclab.unit.{modname}.{qualname}.{digest}"


def _bind(modname: str, qualname: str, argtys: tuple, expect: str | None = None) -> tuple[str, Any]:
    """Compile (or load) the unit for ``argtys`` and register its wrapper's address under
    a name that depends only on the unit and its types (so a cached caller finds it)."""
    key = (modname, qualname, argtys)
    if key not in _BOUND:
        importlib.import_module(modname)
        disp = _DISPATCHERS[(modname, qualname)]
        disp.compile(argtys)
        cres = disp.overloads[argtys]
        restype = cres.signature.return_type
        name = _symbol(modname, qualname, argtys, restype)
        ll.add_symbol(name, cres.library.get_pointer_to_function(cres.fndesc.llvm_cfunc_wrapper_name))
        _BOUND[key] = (name, restype)
    name, restype = _BOUND[key]
    if expect is not None and name != expect:
        raise StaleCacheError(f"numba cache of a caller of {modname}.{qualname} is stale "
                              f"(its types changed): delete the __pycache__ *.nbi/*.nbc files "
                              f"or NUMBA_CACHE_DIR")
    return name, restype


def unit(fn: Callable) -> Any:
    """``njit(cache=True)`` ``fn`` and return an intrinsic that calls it without linking
    its IR into the caller (see the module docstring). Literal arguments are passed as
    plain values, so one compiled version serves every call site with the same types."""
    disp = njit(cache=True)(fn)
    modname, qualname = fn.__module__, fn.__qualname__
    _DISPATCHERS[(modname, qualname)] = disp
    params = list(inspect.signature(fn).parameters)

    def typer(typingctx: Any, *args: Any) -> Any:
        argtys = tuple(types.unliteral(a) for a in args)
        name, restype = _bind(modname, qualname, argtys)

        def codegen(context: Any, builder: Any, sig: Any, llargs: Any) -> Any:
            context.active_code_library._reload_init.add(
                functools.partial(_bind, modname, qualname, argtys, name))
            vals = [context.cast(builder, v, f, t) for v, f, t in zip(llargs, sig.args, argtys)]
            fnty = ir.FunctionType(context.get_value_type(restype),
                                   [context.get_value_type(t) for t in argtys])
            return builder.call(cgutils.get_or_insert_function(builder.module, fnty, name), vals)

        return signature(restype, *args), codegen

    # an intrinsic needs the unit's own parameter list (numba does not fold *args here)
    src = (f"def {fn.__name__}(typingctx, {', '.join(params)}):\n"
           f"    return typer(typingctx, {', '.join(params)})\n")
    ns: dict[str, Any] = {"typer": typer}
    exec(src, ns)  # noqa: S102 - a fixed template over the function's own parameter names
    out = intrinsic(ns[fn.__name__])
    out.dispatcher = disp
    out.__doc__ = fn.__doc__
    return out


def _strip(context: Any, builder: Any, ty: Any, val: Any) -> Any:
    if isinstance(ty, types.Array):
        ary = context.make_array(ty)(context, builder, value=val)
        ary.meminfo = cgutils.get_null_value(ary.meminfo.type)
        ary.parent = cgutils.get_null_value(ary.parent.type)
        return ary._getvalue()
    if isinstance(ty, types.BaseTuple):
        return context.make_tuple(builder, ty, [_strip(context, builder, t, builder.extract_value(val, i))
                                                for i, t in enumerate(ty)])
    return val


def _plain(ty: Any) -> bool:
    if isinstance(ty, types.Array):
        return True
    if isinstance(ty, types.BaseTuple):
        return all(_plain(t) for t in ty)
    return isinstance(ty, (types.Number, types.Boolean, types.NoneType))


@intrinsic
def borrow(typingctx: Any, x: Any) -> Any:
    """``x`` (an array, or a tuple / NamedTuple of arrays and scalars) with every array's
    reference count detached: the same data, shapes and types, no owner.

    numba counts references to arrays with atomic increments and decrements, and does so
    for every array of every tuple argument on entry to a call and on exit, and again at
    every inlined call that takes arrays (the HEVC search passes a picture state of 25
    arrays down ten levels: this was a quarter of its time at preset medium, by perf). An
    array without an owner skips the atomics. Borrow only a function's own arguments (its
    caller keeps their owners alive for the whole call), and never let a borrowed array
    (or a view of it) be returned or stored past that call."""
    if not _plain(x):
        return None

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        return _strip(context, builder, x, args[0])

    return x(x), codegen


@intrinsic
def _view(typingctx: Any, a: Any, shape: Any) -> Any:
    if not (isinstance(a, types.Array) and a.layout == "C"
            and isinstance(shape, types.UniTuple) and isinstance(shape.dtype, types.Integer)):
        return None
    retty = a.copy(ndim=shape.count, layout="C")

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        src = context.make_array(sig.args[0])(context, builder, value=args[0])
        out = context.make_array(retty)(context, builder)
        dims = [context.cast(builder, builder.extract_value(args[1], i), shape.dtype, types.intp)
                for i in range(shape.count)]
        strides, step = [], src.itemsize
        for d in reversed(dims):
            strides.insert(0, step)
            step = builder.mul(step, d)
        populate_array(out, data=src.data, shape=dims, strides=strides, itemsize=src.itemsize,
                       meminfo=src.meminfo, parent=src.parent)
        return impl_ret_borrowed(context, builder, retty, out._getvalue())

    return retty(a, shape), codegen


@njit(cache=True, inline="always")
def view(a, shape):  # type: ignore[no-untyped-def]  # pragma: no cover - numba
    """``a.reshape(shape)`` for a C-contiguous ``a`` (compiled code only), built in place:
    numba's reshape calls a C routine that works out strides for any layout (about 15-30 ns,
    a tenth of a 4x4 block's mode search); this fills the array header directly."""
    n = 1
    for d in shape:
        n *= d
    if n != a.size:
        raise ValueError("view: the shape does not match the array's size")
    return _view(a, shape)

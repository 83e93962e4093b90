"""Write a file under a temporary name and rename it when complete.

One helper for every small text/binary output (metrics CSV/JSON, reports), so a failed or
interrupted run never leaves a file that looks finished. Video sinks and the ``.clc``
writer stream large outputs and do the same with their own temporary files.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from codeclab.base.errors import UsageError

__all__ = ["atomic_write"]


def atomic_write(path: str | os.PathLike[str], write: Callable[[Any], None], *, binary: bool = False) -> None:
    """Call ``write(fileobj)`` on a temporary file next to ``path``, then rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise UsageError(f"cannot write {path}: {e.strerror or e}") from None
    os.fchmod(fd, 0o644)  # mkstemp's 0600 would make the finished file private
    try:
        mode = {"mode": "wb"} if binary else {"mode": "w", "newline": "", "encoding": "utf-8"}
        with os.fdopen(fd, **mode) as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise

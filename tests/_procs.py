"""Processes seen through ``/proc`` (Linux): the pool tests check that workers are gone."""

from __future__ import annotations

from pathlib import Path


def _stat_fields(pid: int | str) -> list[str]:
    """Fields of /proc/PID/stat after the command name (which may hold spaces)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        return _stat_fields(pid)[0] != "Z"
    except (OSError, IndexError):
        return False


def children(pid: int, cmdline_has: bytes | None = None) -> list[int]:
    """Child processes of ``pid`` (those whose command line contains ``cmdline_has``, if given)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int(_stat_fields(d.name)[1])
                cmd = (d / "cmdline").read_bytes() if cmdline_has is not None else b""
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid and (cmdline_has is None or cmdline_has in cmd):
                out.append(int(d.name))
    return out

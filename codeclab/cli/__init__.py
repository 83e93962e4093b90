"""The ``codeclab`` command: argument parsing only; every command is a thin call into the layers.

Commands
    One module per command group (:mod:`.media`: info, convert, metrics;
    :mod:`.transcode`: transcode, decode; :mod:`.demo`; :mod:`.codecs`; :mod:`.eval`:
    eval, bdrate; :mod:`.lic` and :mod:`.nrdoq`: training). Each command is an entry of
    :data:`COMMANDS`, ``name -> "module:adder"``, where ``adder(subparsers)`` adds the
    sub-parser and sets ``func(args) -> int``. Command modules import their layers inside
    the command functions, so building the parser never imports torch, numba or PyAV.
    :func:`register_command` adds one more. Shared argument helpers: :mod:`.args`; codec
    flags: :mod:`.codec_flags`.

Errors
    Exit 0 on success, 2 on usage errors (argparse's and :class:`UsageError`), 1 on any
    other failure, 130 on Ctrl-C. Every :class:`CodeclabError` and ``OSError`` is printed
    as one line ``codeclab: error: <message>`` on stderr; ``CODECLAB_DEBUG=1`` shows the
    traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Callable

from codeclab import __version__
from codeclab.base.registry import Registry

__all__ = ["main", "build_parser", "COMMANDS", "register_command"]

PROG = "codeclab"

#: every command, in the order ``codeclab --help`` lists them
COMMANDS: Registry[Callable[[Any], None]] = Registry("command", {
    "info": "codeclab.cli.media:add_info",
    "convert": "codeclab.cli.media:add_convert",
    "metrics": "codeclab.cli.media:add_metrics",
    "transcode": "codeclab.cli.transcode:add_transcode",
    "demo": "codeclab.cli.demo:add_demo",
    "codecs": "codeclab.cli.codecs:add_codecs",
    "decode": "codeclab.cli.transcode:add_decode",
    "eval": "codeclab.cli.eval:add_eval",
    "bdrate": "codeclab.cli.eval:add_bdrate",
    "lic": "codeclab.cli.lic:add_lic",
    "nrdoq": "codeclab.cli.nrdoq:add_nrdoq",
})


def register_command(name: str, adder: Callable[[Any], None] | str) -> None:
    """Add a command: ``adder(subparsers)`` (or its ``"module:attribute"`` name) adds ``name``."""
    COMMANDS.register(name, adder)


def build_parser() -> argparse.ArgumentParser:
    """The full parser with every command of :data:`COMMANDS`."""
    p = argparse.ArgumentParser(
        prog=PROG,
        description="codeclab: a video coding lab. Decode any video with FFmpeg, code it with x265/x264 or "
        "our own codecs, get playable files and per-frame metrics.",
        epilog="examples:\n  codeclab demo\n  codeclab info clip.mp4\n"
        "  codeclab transcode clip.mp4 -o out.mp4 --codec x265 --qp 32 --metrics out.csv\n"
        "  codeclab metrics clip.mp4 out.mp4\n  codeclab convert clip.mp4 -o clip.y4m --frames 10\n\n"
        "`codeclab COMMAND --help` describes each command. CODECLAB_DEBUG=1 shows tracebacks.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        COMMANDS.get(name)(sub)
    return p


def _one_line(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        where = e.filename if e.filename is not None else ""
        return f"{where}: {e.strerror}" if where else e.strerror
    text = " ".join(str(e).split()) or type(e).__name__
    return text


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``codeclab`` script; returns the exit status."""
    from codeclab.base.errors import CodeclabError, UsageError

    debug = os.environ.get("CODECLAB_DEBUG", "") not in ("", "0")
    args_list = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser().parse_args(args_list)  # argparse errors exit 2 by themselves
        return int(args.func(args) or 0)
    except BrokenPipeError:  # stdout closed early (`codeclab codecs | head`): not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except (CodeclabError, OSError) as e:
        if debug:
            raise
        print(f"{PROG}: error: {_one_line(e)}", file=sys.stderr)
        return 2 if isinstance(e, UsageError) else 1

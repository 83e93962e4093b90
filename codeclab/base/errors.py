"""Exceptions that fit Python's own (as PyAV does): callers may catch the builtin.

Every error that reaches the CLI is printed as one line, ``codeclab: <message>``, and
exits non-zero; messages therefore name the file and the problem themselves.
"""

from __future__ import annotations

__all__ = [
    "CodeclabError",
    "InputError",
    "FormatError",
    "BitstreamError",
    "CodecError",
    "UsageError",
]


class CodeclabError(Exception):
    """Base class of every error codeclab raises on purpose."""


class InputError(CodeclabError, ValueError):
    """A file we were asked to read is missing, unreadable, truncated or not a video."""


class FormatError(CodeclabError, ValueError):
    """A pixel format, size or bit depth we cannot handle (or that does not match)."""


class BitstreamError(CodeclabError, ValueError):
    """A damaged or hostile bitstream/container."""


class CodecError(CodeclabError, RuntimeError):
    """An encoder or decoder failed."""


class UsageError(CodeclabError, ValueError):
    """Bad options (the CLI exits with code 2 for these)."""

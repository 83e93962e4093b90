"""The codec registry and option coercion (codecs/base.py)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from codeclab.base.errors import UsageError
from codeclab.codecs.base import CodecSpec, get_codec, make_options, register_codec


@dataclass(frozen=True)
class _Opts:
    qp: int = 32
    preset: str = "medium"
    fast: bool = False
    crf: float | None = None


def test_make_options_coerces_and_rejects():
    spec = register_codec(CodecSpec("dummy-test", "test only", _Opts, lambda f, o: None, lambda f, o: None))
    assert get_codec("dummy-test") is spec
    o = make_options(spec, {"qp": "27", "fast": "yes", "crf": "23.5", "preset": None})
    assert o == _Opts(qp=27, fast=True, crf=23.5)
    with pytest.raises(UsageError, match="no option 'bogus'"):
        make_options(spec, {"bogus": 1})
    with pytest.raises(UsageError, match="expected int"):
        make_options(spec, {"qp": "high"})
    with pytest.raises(UsageError, match="unknown codec"):
        get_codec("no-such-codec")

"""Registries: entries by object or by "module:attribute", imported on first use."""

from __future__ import annotations

import sys

import pytest

from codeclab.base.errors import UsageError
from codeclab.base.registry import Registry, load


def test_lazy_entry_is_imported_on_first_get() -> None:
    sys.modules.pop("colorsys", None)
    r: Registry[object] = Registry("widget", {"hls": "colorsys:rgb_to_hls"})
    assert "colorsys" not in sys.modules
    f = r.get("hls")
    assert "colorsys" in sys.modules and f(1.0, 0.0, 0.0) == (0.0, 0.5, 1.0)
    assert r.get("hls") is f


def test_unknown_name_lists_what_exists_and_order_is_kept() -> None:
    r: Registry[object] = Registry("widget", {"b": len, "a": "colorsys:rgb_to_hls", "gone": "no_such_module_xyz:f"})
    r.register("c", max)
    assert list(r) == ["b", "a", "gone", "c"]
    assert r.names() == ["a", "b", "c"]  # entries whose module cannot be found are not offered
    with pytest.raises(UsageError, match=r"unknown widget 'z' \(available: a, b, c\)"):
        r.get("z")


def test_load_rejects_malformed_references() -> None:
    with pytest.raises(ValueError, match="module:attribute"):
        load("colorsys.rgb_to_hls")

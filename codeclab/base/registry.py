"""Name -> object registries whose entries may be imported on first use.

Every registry in codeclab (codecs, quantizers, source openers, CLI commands) is one of
these, so there is one way to add an entry and one lazy-loading style: an entry is the
object itself, or its ``"package.module:attribute"`` name, imported only when the entry is
first asked for (so listing codecs or running ``codeclab info`` never imports torch).
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Generic, Iterator, TypeVar

from codeclab.base.errors import UsageError

__all__ = ["Registry", "load"]

T = TypeVar("T")


def load(ref: str) -> object:
    """The object named ``"package.module:attribute"`` (imports the module)."""
    module, sep, attr = ref.partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"registry entry {ref!r} is not 'package.module:attribute'")
    return getattr(importlib.import_module(module), attr)


class Registry(Generic[T]):
    """Entries by name; ``kind`` names them in errors ("unknown codec 'x' (available: ...)")."""

    def __init__(self, kind: str, entries: dict[str, T | str] | None = None) -> None:
        self.kind = kind
        self._entries: dict[str, T | str] = dict(entries or {})

    def register(self, name: str, entry: T | str) -> None:
        """Add or replace ``name``: the object, or its ``"module:attribute"`` name."""
        self._entries[name] = entry

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        """Names in the order they were registered."""
        return iter(list(self._entries))

    def get(self, name: str) -> T:
        """The entry ``name``, imported on first use; unknown names are a :class:`UsageError`."""
        try:
            entry = self._entries[name]
        except KeyError:
            raise UsageError(f"unknown {self.kind} {name!r} (available: {', '.join(self.names())})") from None
        if isinstance(entry, str):
            entry = load(entry)  # type: ignore[assignment]
            self._entries[name] = entry
        return entry  # type: ignore[return-value]

    def names(self) -> list[str]:
        """Sorted names of the entries that are loaded or whose module can be found."""
        out = []
        for name, entry in self._entries.items():
            if isinstance(entry, str) and importlib.util.find_spec(entry.partition(":")[0]) is None:
                continue
            out.append(name)
        return sorted(out)

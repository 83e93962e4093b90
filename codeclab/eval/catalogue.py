"""Test-sequence catalogue: what each sequence is and where its file lies.

Two kinds of entries, both resolved to :class:`Sequence`:

- **Catalogue sequences** (``configs/jvet_ctc.toml``): raw planar YUV files with JVET names,
  whose geometry, frame rate, bit depth and frame count come from the catalogue (a raw
  file does not carry them). A file missing from the data folder is reported, not fatal.
- **User sets** (``[[set]]`` in an experiment config): every file matching a glob under the
  data folder. Containers and pictures describe themselves; raw ``.yuv`` files take
  ``size``/``fps``/``pix_fmt`` from the set, or from their JVET-style name.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from codeclab.base.errors import FormatError, InputError, UsageError
from codeclab.base.frame import VideoFormat

__all__ = ["Sequence", "Catalogue", "load_catalogue", "resolve_set", "RAW_EXTS"]

#: Extensions read as headerless planar YUV; their format must come from outside the file.
RAW_EXTS = frozenset({".yuv"})  # what sources.open_source reads as raw


@dataclass(frozen=True)
class Sequence:
    """One test sequence, located (``path``) or not yet (``path is None``)."""

    name: str
    cls: str  # JVET class: A1, A2, B ... F, or the user set's name
    file: str  # file name as the catalogue gives it (JVET naming) or path relative to the data folder
    width: int | None = None  # None: the file says (containers, pictures)
    height: int | None = None
    fps: Fraction | None = None
    bit_depth: int = 8
    chroma: str = "420"
    frames: int | None = None  # frames in the file; None: unknown / all
    aliases: tuple[str, ...] = ()
    path: Path | None = None
    to_pix_fmt: str | None = None  # convert every frame to this format on reading (a set's choice)

    @property
    def pix_fmt(self) -> str | None:
        """FFmpeg pixel format of a raw file (None when the file describes itself)."""
        if self.width is None or self.height is None:
            return None
        return VideoFormat(self.width, self.height, self.chroma, self.bit_depth).pix_fmt  # type: ignore[arg-type]

    @property
    def size(self) -> tuple[int, int] | None:
        return None if self.width is None or self.height is None else (self.width, self.height)

    def locate(self, data: Path) -> Sequence | None:
        """This sequence with ``path`` set if its file (or an alias) is under ``data``.

        Looks in ``data`` itself, then in a sub-folder named after the class (``data/B/``),
        the two layouts JVET sequence servers use.
        """
        for name in (self.file, *self.aliases):
            for folder in (data, data / self.cls):
                p = folder / name
                if p.is_file():
                    return _replace(self, path=p)
        return None


def _replace(seq: Sequence, **kw: Any) -> Sequence:
    from dataclasses import replace

    return replace(seq, **kw)


@dataclass(frozen=True)
class Catalogue:
    """Sequences by name, in catalogue order."""

    sequences: tuple[Sequence, ...]
    source: str = ""
    classes: tuple[str, ...] = field(default=())

    def select(self, classes: list[str] | None = None, names: list[str] | None = None) -> list[Sequence]:
        """Sequences of the given classes and/or names (all when both are None)."""
        known = {s.name for s in self.sequences}
        for n in names or ():
            if n not in known:
                raise UsageError(f"{self.source}: no sequence named {n!r} in the catalogue")
        for c in classes or ():
            if c not in self.classes:
                raise UsageError(f"{self.source}: no class {c!r} in the catalogue (classes: {', '.join(self.classes)})")
        out = []
        for s in self.sequences:
            if classes is None and names is None:
                out.append(s)
            elif (classes and s.cls in classes) or (names and s.name in names):
                out.append(s)
        return out


def _fps(value: Any, where: str) -> Fraction:
    try:
        f = Fraction(str(value))
    except (ValueError, ZeroDivisionError):
        raise UsageError(f"{where}: bad frame rate {value!r}") from None
    if f <= 0:
        raise UsageError(f"{where}: frame rate must be positive, got {value!r}")
    return f


def load_catalogue(path: str | Path) -> Catalogue:
    """Read a catalogue TOML (``[[sequence]]`` tables; see ``configs/jvet_ctc.toml``)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: catalogue not found") from None
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{path}: not valid TOML: {e}") from None
    seqs: list[Sequence] = []
    seen: set[str] = set()
    for i, t in enumerate(data.get("sequence", [])):
        where = f"{path}: sequence #{i + 1}"
        try:
            name, cls, file = str(t["name"]), str(t["class"]), str(t["file"])
            w, h, depth = int(t["width"]), int(t["height"]), int(t.get("bit_depth", 8))
        except KeyError as e:
            raise UsageError(f"{where}: missing key {e.args[0]!r}") from None
        if name in seen:
            raise UsageError(f"{path}: sequence {name!r} listed twice")
        seen.add(name)
        chroma = str(t.get("chroma", "420"))
        VideoFormat(w, h, chroma, depth)  # type: ignore[arg-type]  # validates, raises FormatError
        frames = t.get("frames")
        seqs.append(
            Sequence(
                name, cls, file, w, h, _fps(t["fps"], where), depth, chroma,
                int(frames) if frames is not None else None, tuple(t.get("aliases", ())),
            )
        )
    classes = tuple(dict.fromkeys(s.cls for s in seqs))
    return Catalogue(tuple(seqs), str(path), classes)


def _parse_size(value: Any, where: str) -> tuple[int, int]:
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return int(value[0]), int(value[1])
    try:
        w, h = str(value).lower().split("x")
        return int(w), int(h)
    except ValueError:
        raise UsageError(f"{where}: size must be WIDTHxHEIGHT, got {value!r}") from None


def resolve_set(spec: dict[str, Any], data: Path, where: str) -> tuple[list[Sequence], list[str]]:
    """Expand one ``[[set]]`` table into located sequences, plus problems found on the way.

    Keys: ``name`` (becomes the class), ``glob`` (relative to ``data``), and for raw files
    ``size`` ("WxH"), ``fps``, ``pix_fmt`` (default yuv420p), ``frames``; ``to_pix_fmt``
    converts every frame of the set on reading (e.g. 4:4:4 clips for 4:2:0-only codecs). A raw file with no
    ``size`` must carry a JVET-style name (``Name_WxH_FPS[_10bit].yuv``). Problems (no match,
    undecidable raw geometry) are returned as messages, so one bad set does not stop the run.
    """
    try:
        name, pattern = str(spec["name"]), str(spec["glob"])
    except KeyError as e:
        raise UsageError(f"{where}: set needs key {e.args[0]!r}") from None
    unknown = set(spec) - {"name", "glob", "size", "fps", "pix_fmt", "frames", "class", "to_pix_fmt"}
    if unknown:
        raise UsageError(f"{where}: unknown set key(s) {', '.join(sorted(unknown))}")
    cls = str(spec.get("class", name))
    size = _parse_size(spec["size"], where) if "size" in spec else None
    fps = _fps(spec["fps"], where) if "fps" in spec else None
    frames = int(spec["frames"]) if "frames" in spec else None
    pix_fmt = spec.get("pix_fmt")
    to_pix_fmt = str(spec["to_pix_fmt"]) if "to_pix_fmt" in spec else None
    if to_pix_fmt is not None:
        try:
            VideoFormat.from_pix_fmt(to_pix_fmt, 2, 2)
        except FormatError:
            raise UsageError(f"{where}: set {name!r}: to_pix_fmt {to_pix_fmt!r} is not a planar YUV / gray format") from None
    files = sorted(p for p in data.glob(pattern) if p.is_file())
    problems: list[str] = []
    if not files:
        problems.append(f"set {name!r}: no file matches {pattern!r} under {data}")
    out: list[Sequence] = []
    for p in files:
        rel = str(p.relative_to(data))
        seq_name = f"{name}/{p.stem}" if len(files) > 1 or p.stem != name else name
        if p.suffix.lower() not in RAW_EXTS:
            out.append(Sequence(seq_name, cls, rel, fps=fps, frames=frames, path=p, to_pix_fmt=to_pix_fmt))
            continue
        w_h, f, depth, chroma = size, fps, 8, "420"
        if pix_fmt is not None:
            fmt = VideoFormat.from_pix_fmt(str(pix_fmt), 2, 2)
            depth, chroma = fmt.bit_depth, fmt.chroma
        if w_h is None or f is None:
            parsed = _parse_jvet(p.name)
            if parsed is None:
                problems.append(
                    f"{p}: raw file in set {name!r} without size/fps, and its name does not give them "
                    "(Name_WxH_FPS[_10bit].yuv); skipped"
                )
                continue
            w_h = w_h or parsed["size"]  # explicit set values win over the name
            f = f or parsed["fps"]
            if pix_fmt is None:
                depth = parsed.get("bit_depth", depth)
                chroma = parsed.get("chroma", chroma)
        out.append(Sequence(seq_name, cls, rel, w_h[0], w_h[1], f, depth, chroma, frames, path=p,
                            to_pix_fmt=to_pix_fmt))
    return out, problems


def _parse_jvet(name: str) -> dict[str, Any] | None:
    """Geometry from a JVET-style file name (the pipeline's one parser); None if it says too little."""
    from codeclab.pipeline.io.jvet_names import parse_jvet_name

    info = parse_jvet_name(name)
    if info is None or info.fps is None:
        return None
    out: dict[str, Any] = {"size": (info.width, info.height), "fps": Fraction(info.fps)}
    if info.bit_depth:
        out["bit_depth"] = int(info.bit_depth)
    if info.chroma:
        out["chroma"] = str(info.chroma)
    return out

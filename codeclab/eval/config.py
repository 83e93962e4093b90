"""Experiment configuration: which codecs, at which rate points, on which frames of which
sequences, compared against which anchor. Read from TOML (see ``docs/eval.md``).

Example::

    name = "ai_ctc_x265"
    catalogue = "jvet_ctc.toml"        # relative to this file
    classes = ["B", "C", "D", "E"]     # or sequences = [...]; default: the whole catalogue
    anchor = "x265-veryslow"
    qps = [22, 27, 32, 37]

    [frames]
    step = 8                           # AI CTC: every 8th frame; count omitted = whole file

    [[codec]]
    label = "x265-veryslow"
    name = "x265"
    options = { preset = "veryslow", tune = "psnr", keyint = 1 }
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from codeclab.base.errors import InputError, UsageError

__all__ = ["CodecConfig", "FrameSelection", "Experiment", "load_experiment", "parse_experiment", "DEFAULT_QPS"]

DEFAULT_QPS = (22, 27, 32, 37)
_TOP_KEYS = {
    "name", "description", "catalogue", "classes", "sequences", "anchor", "qps", "frames", "codec", "set",
    "imports", "ms_ssim", "overall_exclude", "bd_method",
}
_CODEC_KEYS = {"label", "name", "options", "points", "point_option", "qps"}


@dataclass(frozen=True)
class FrameSelection:
    """Frames ``start, start+step, ...``: ``count`` of them, or to the end when None."""

    start: int = 0
    count: int | None = None
    step: int = 1

    def coded_count(self, total: int | None) -> int | None:
        """How many frames are coded from a file of ``total`` frames (None: unknown)."""
        if total is None:
            return self.count
        avail = max(0, -(-(total - self.start) // self.step))
        return avail if self.count is None else min(self.count, avail)


@dataclass(frozen=True)
class CodecConfig:
    """One curve on the RD chart: a codec, fixed options, and the points it is run at."""

    label: str
    name: str
    options: dict[str, Any]
    points: tuple[float | int, ...]
    point_option: str = "qp"  # the option each point sets: qp, crf, quality ...


@dataclass(frozen=True)
class Experiment:
    name: str
    codecs: tuple[CodecConfig, ...]
    anchor: str
    frames: FrameSelection
    catalogue: Path | None = None
    classes: tuple[str, ...] | None = None
    sequences: tuple[str, ...] | None = None
    sets: tuple[dict[str, Any], ...] = ()
    imports: tuple[str, ...] = ()  # modules every worker imports first (codec plugins)
    ms_ssim: bool = False
    overall_exclude: tuple[str, ...] = ()
    bd_method: str = "pchip"  # the method of the headline tables; CSVs carry both
    description: str = ""
    source: str = ""
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def config_hash(self) -> str:
        """Hash of everything that decides the results (not the file's comments or path)."""
        return hashlib.sha256(canonical_json(self.raw).encode()).hexdigest()[:16]

    def codec(self, label: str) -> CodecConfig:
        for c in self.codecs:
            if c.label == label:
                return c
        raise KeyError(label)

    def to_json(self) -> str:
        d = asdict(self)
        d.pop("raw")
        return canonical_json(d)


def canonical_json(obj: Any) -> str:
    """Stable JSON (sorted keys, no spaces, paths and fractions as strings) for hashing."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def _check_keys(d: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = set(d) - allowed
    if unknown:
        raise UsageError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} (allowed: {', '.join(sorted(allowed))})")


def _points(values: Any, where: str) -> tuple[float | int, ...]:
    if not isinstance(values, list) or not values:
        raise UsageError(f"{where}: points must be a non-empty list")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise UsageError(f"{where}: point {v!r} is not a number")
        out.append(v)
    if len(set(out)) != len(out):
        raise UsageError(f"{where}: repeated points {out}")
    return tuple(out)


def parse_experiment(data: dict[str, Any], source: str = "<config>", base: Path | None = None) -> Experiment:
    """Validate a parsed TOML table into an :class:`Experiment`."""
    _check_keys(data, _TOP_KEYS, source)
    qps = _points(list(data.get("qps", DEFAULT_QPS)), f"{source}: qps")
    codecs: list[CodecConfig] = []
    for i, c in enumerate(data.get("codec", [])):
        where = f"{source}: [[codec]] #{i + 1}"
        _check_keys(c, _CODEC_KEYS, where)
        if "name" not in c:
            raise UsageError(f"{where}: missing key 'name'")
        label = str(c.get("label", c["name"]))
        opts = c.get("options", {})
        if not isinstance(opts, dict):
            raise UsageError(f"{where}: options must be a table")
        point_option = str(c.get("point_option", "qp"))
        if point_option in opts:
            raise UsageError(f"{where}: option {point_option!r} is set per point; remove it from options")
        pts = _points(c["points"], where) if "points" in c else _points(c["qps"], where) if "qps" in c else qps
        codecs.append(CodecConfig(label, str(c["name"]), dict(opts), pts, point_option))
    if not codecs:
        raise UsageError(f"{source}: no [[codec]] tables")
    labels = [c.label for c in codecs]
    if len(set(labels)) != len(labels):
        raise UsageError(f"{source}: codec labels must be unique, got {labels}")
    anchor = str(data.get("anchor", labels[0]))
    if anchor not in labels:
        raise UsageError(f"{source}: anchor {anchor!r} is not a codec label ({', '.join(labels)})")
    fr = data.get("frames", {})
    _check_keys(fr, {"start", "count", "step"}, f"{source}: [frames]")
    frames = FrameSelection(int(fr.get("start", 0)), int(fr["count"]) if "count" in fr else None, int(fr.get("step", 1)))
    if frames.start < 0 or frames.step < 1 or (frames.count is not None and frames.count < 1):
        raise UsageError(f"{source}: [frames] needs start >= 0, step >= 1, count >= 1")
    cat = data.get("catalogue")
    cat_path = None
    if cat is not None:
        cat_path = Path(cat)
        if not cat_path.is_absolute() and base is not None:
            cat_path = base / cat_path
    sets = tuple(dict(s) for s in data.get("set", []))
    if cat_path is None and not sets:
        raise UsageError(f"{source}: give a catalogue or at least one [[set]]")
    method = str(data.get("bd_method", "pchip"))
    if method not in ("cubic", "pchip"):
        raise UsageError(f"{source}: bd_method must be 'cubic' or 'pchip', got {method!r}")
    # What the results depend on, for the config hash: everything but prose and file location.
    raw = {k: v for k, v in data.items() if k not in ("description", "name")}
    if cat_path is not None:
        raw["catalogue"] = cat_path.name
    return Experiment(
        name=str(data.get("name", Path(source).stem)),
        codecs=tuple(codecs),
        anchor=anchor,
        frames=frames,
        catalogue=cat_path,
        classes=tuple(data["classes"]) if "classes" in data else None,
        sequences=tuple(data["sequences"]) if "sequences" in data else None,
        sets=sets,
        imports=tuple(str(m) for m in data.get("imports", ())),
        ms_ssim=bool(data.get("ms_ssim", False)),
        overall_exclude=tuple(str(c) for c in data.get("overall_exclude", ())),
        bd_method=method,
        description=str(data.get("description", "")),
        source=source,
        raw=raw,
    )


def load_experiment(path: str | Path) -> Experiment:
    """Read an experiment TOML; relative paths in it are relative to the file."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: config not found") from None
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{path}: not valid TOML: {e}") from None
    return parse_experiment(data, str(path), path.resolve().parent)

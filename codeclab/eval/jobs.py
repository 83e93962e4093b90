"""The job grid: one job per (sequence, codec config, rate point), keyed by content.

A job's key is a hash of what decides its result: the sequence file's identity, the codec
label, name and options, the rate point, the frame selection and the codeclab version. The
same command run again therefore finds the same keys and skips what the database already
holds; a changed option, file or version gives new keys and new work.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from codeclab import __version__
from codeclab.eval.catalogue import Sequence, load_catalogue, resolve_set
from codeclab.eval.config import Experiment, canonical_json

__all__ = ["Job", "Plan", "plan_jobs", "file_identity"]

_ID_CHUNK = 1 << 20


def file_identity(path: Path) -> str:
    """Cheap content identity: name, size, and SHA-256 of the first and last MiB.

    Hashing whole 4K sequences (GBs each) would dominate a resumed run's start-up; the
    ends catch a different or re-generated file, the size a truncated one. Modification
    times are left out so that a copy of the same file keeps its results.
    """
    size = path.stat().st_size
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read(_ID_CHUNK))
        if size > _ID_CHUNK:
            f.seek(max(_ID_CHUNK, size - _ID_CHUNK))
            h.update(f.read(_ID_CHUNK))
    return f"{path.name}:{size}:{h.hexdigest()[:24]}"


@dataclass(frozen=True)
class Job:
    """Everything a worker needs, in plain picklable values (paths as strings)."""

    key: str
    sequence: str
    cls: str
    path: str
    file_id: str
    size: tuple[int, int] | None  # raw files only
    fps: str | None  # as a fraction string, "60" or "30000/1001"
    pix_fmt: str | None  # raw files only
    label: str
    codec: str
    options: tuple[tuple[str, object], ...]  # sorted (name, value), without the point option
    point_option: str
    point: float | int
    start: int
    count: int | None
    step: int
    imports: tuple[str, ...] = ()
    ms_ssim: bool = False
    to_pix_fmt: str | None = None  # the set's conversion on reading

    def codec_values(self) -> dict[str, object]:
        """Options for ``make_options``: the fixed ones plus this job's rate point."""
        return {**dict(self.options), self.point_option: self.point}


@dataclass(frozen=True)
class Plan:
    jobs: tuple[Job, ...]
    sequences: tuple[Sequence, ...]  # located
    missing: tuple[str, ...]  # human-readable problems: missing files, empty sets


def _job_key(file_id: str, label: str, codec: str, values: dict[str, object], frames: tuple,
             to_pix_fmt: str | None = None) -> str:
    ident = {"file": file_id, "label": label, "codec": codec, "options": values, "frames": frames, "version": __version__}
    if to_pix_fmt is not None:  # only then: the keys of unconverted jobs stay what they were
        ident["to_pix_fmt"] = to_pix_fmt
    return hashlib.sha256(canonical_json(ident).encode()).hexdigest()[:32]


def plan_jobs(exp: Experiment, data: str | Path) -> Plan:
    """Locate the experiment's sequences under ``data`` and list every job.

    Missing catalogue files and empty sets are returned in ``Plan.missing``, not raised:
    a partial data folder still gives a partial evaluation.
    """
    data = Path(data)
    found: list[Sequence] = []
    missing: list[str] = []
    if exp.catalogue is not None:
        cat = load_catalogue(exp.catalogue)
        for seq in cat.select(list(exp.classes) if exp.classes else None, list(exp.sequences) if exp.sequences else None):
            located = seq.locate(data)
            if located is None:
                missing.append(f"{seq.name} (class {seq.cls}): {seq.file} not found under {data}")
            else:
                found.append(located)
    for i, s in enumerate(exp.sets):
        seqs, problems = resolve_set(s, data, f"{exp.source}: [[set]] #{i + 1}")
        found.extend(seqs)
        missing.extend(problems)
    names = [s.name for s in found]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        from codeclab.base.errors import UsageError

        raise UsageError(f"{exp.source}: sequence names occur twice: {', '.join(sorted(dup))}")
    jobs: list[Job] = []
    for seq in found:
        assert seq.path is not None
        fid = file_identity(seq.path)
        count = exp.frames.coded_count(seq.frames)
        frames = (exp.frames.start, count, exp.frames.step)
        for c in exp.codecs:
            opts = tuple(sorted(c.options.items()))
            for p in c.points:
                values = {**c.options, c.point_option: p}
                jobs.append(
                    Job(
                        key=_job_key(fid, c.label, c.name, values, frames, seq.to_pix_fmt),
                        sequence=seq.name,
                        cls=seq.cls,
                        path=os.fspath(seq.path.resolve()),
                        file_id=fid,
                        size=seq.size,
                        fps=str(seq.fps) if seq.fps is not None else None,
                        pix_fmt=seq.pix_fmt,
                        label=c.label,
                        codec=c.name,
                        options=opts,
                        point_option=c.point_option,
                        point=p,
                        start=exp.frames.start,
                        count=count,
                        step=exp.frames.step,
                        imports=exp.imports,
                        ms_ssim=exp.ms_ssim,
                        to_pix_fmt=seq.to_pix_fmt,
                    )
                )
    return Plan(tuple(jobs), tuple(found), tuple(missing))

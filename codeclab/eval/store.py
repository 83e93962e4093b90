"""Results database (SQLite, WAL): one row per job, one per coded frame, one per run.

Only the driver writes. Each finished job goes in with its frames in one transaction, so
after a crash or ``kill -9`` the database holds whole jobs or nothing of them; the unique
keys (job key; job key + frame position) make a re-run replace rather than duplicate.

Tables
------
``runs``     one row per experiment config (``config_hash``): name, anchor, config JSON.
``run_jobs`` which job keys belong to which run (a job may serve several runs).
``jobs``     one row per job key: what was coded, status, error, sequence-level means
             (bits, kbps, PSNRs, MS-SSIM), timings, bitstream bytes, host,
             codeclab version, git SHA.
``frames``   one row per coded frame of a finished job.
"""

from __future__ import annotations

import json
import math
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any, Iterable

from codeclab import __version__
from codeclab.base.errors import InputError
from codeclab.eval.config import Experiment
from codeclab.eval.jobs import Job
from codeclab.eval.worker import FRAME_COLUMNS, JobResult

__all__ = ["ResultStore", "git_sha"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    config_hash TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    anchor TEXT NOT NULL,
    config_json TEXT NOT NULL,
    source TEXT,
    data_dir TEXT,
    missing_json TEXT,  -- sequences not found at the last run, for the report
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS run_jobs (
    config_hash TEXT NOT NULL REFERENCES runs(config_hash),
    job_key TEXT NOT NULL,
    PRIMARY KEY (config_hash, job_key)
);
CREATE TABLE IF NOT EXISTS jobs (
    key TEXT PRIMARY KEY,
    sequence TEXT NOT NULL,
    class TEXT NOT NULL,
    path TEXT NOT NULL,
    file_id TEXT NOT NULL,
    label TEXT NOT NULL,
    codec TEXT NOT NULL,
    options_json TEXT NOT NULL,
    point_option TEXT NOT NULL,
    point REAL NOT NULL,
    frame_start INTEGER NOT NULL,
    frame_count INTEGER,
    frame_step INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('done', 'failed')),
    error TEXT,
    n_frames INTEGER,
    bits INTEGER,
    bytes INTEGER,
    kbps REAL,
    psnr_y REAL, psnr_u REAL, psnr_v REAL, psnr_yuv REAL, ms_ssim_y REAL,
    encode_s REAL, decode_s REAL, wall_s REAL,
    host TEXT, worker_pid INTEGER,
    config_hash TEXT,
    codeclab_version TEXT NOT NULL,
    git_sha TEXT,
    finished_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS frames (
    job_key TEXT NOT NULL REFERENCES jobs(key) ON DELETE CASCADE,
    pos INTEGER NOT NULL,
    src_index INTEGER NOT NULL,
    bits INTEGER NOT NULL,
    psnr_y REAL, psnr_u REAL, psnr_v REAL, psnr_yuv REAL, ms_ssim_y REAL,
    encode_s REAL, decode_s REAL,
    PRIMARY KEY (job_key, pos)
);
"""

_GIT_SHA: str | None | bool = False  # False: not looked up yet


def git_sha() -> str | None:
    """Commit of the codeclab checkout in use (None outside a git checkout)."""
    global _GIT_SHA
    if _GIT_SHA is False:
        root = Path(__file__).resolve().parents[2]
        try:
            out = subprocess.run(
                ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
            )
            sha = out.stdout.strip() if out.returncode == 0 else ""
            if sha:
                dirty = subprocess.run(
                    ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                    capture_output=True, text=True, timeout=5,
                ).stdout.strip()
                sha += "-dirty" if dirty else ""
            _GIT_SHA = sha or None
        except (OSError, subprocess.SubprocessError):
            _GIT_SHA = None
    return _GIT_SHA  # type: ignore[return-value]


def _num(v: Any) -> float | None:
    """NaN and missing values are stored as NULL."""
    if v is None:
        return None
    v = float(v)
    return None if math.isnan(v) else v


class ResultStore:
    """The results database of one or more evaluation runs."""

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise InputError(f"{self.path}: results database not found")
        try:
            self.conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable at each commit except on power loss
            self.conn.execute("PRAGMA foreign_keys=ON")
            self.conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError as e:
            raise InputError(f"{self.path}: not a codeclab results database ({e})") from None
        self.conn.row_factory = sqlite3.Row

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- writing ------------------------------------------------------------------
    def register_run(
        self, exp: Experiment, jobs: Iterable[Job], data_dir: str | None = None, missing: Iterable[str] = ()
    ) -> str:
        """Record the run's config and the job keys of its plan (returns the config hash)."""
        h = exp.config_hash
        now = time.time()
        with self._tx():
            self.conn.execute(
                "INSERT INTO runs (config_hash, name, anchor, config_json, source, data_dir, missing_json,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(config_hash) DO UPDATE SET"
                " updated_at = excluded.updated_at, data_dir = excluded.data_dir, source = excluded.source,"
                " missing_json = excluded.missing_json",
                (h, exp.name, exp.anchor, exp.to_json(), exp.source, data_dir, json.dumps(list(missing)), now, now),
            )
            # The run is its latest plan: keys of an earlier plan (a file since changed) drop out.
            self.conn.execute("DELETE FROM run_jobs WHERE config_hash = ?", (h,))
            self.conn.executemany(
                "INSERT OR IGNORE INTO run_jobs (config_hash, job_key) VALUES (?, ?)", [(h, j.key) for j in jobs]
            )
        return h

    def save(self, job: Job, res: JobResult, config_hash: str | None = None) -> None:
        """Store one job and its frames atomically, replacing any earlier attempt."""
        s = res.summary
        row = (
            job.key, job.sequence, job.cls, job.path, job.file_id, job.label, job.codec,
            json.dumps(dict(job.options), sort_keys=True, default=str), job.point_option, float(job.point),
            job.start, job.count, job.step, "done" if res.ok else "failed", res.error,
            len(res.frames) if res.ok else None, int(s["bits_total"]) if "bits_total" in s else None,
            res.bytes if res.ok else None, _num(s.get("bitrate_kbps")),
            _num(s.get("psnr_y")), _num(s.get("psnr_u")), _num(s.get("psnr_v")), _num(s.get("psnr_yuv")),
            _num(s.get("ms_ssim_y")), _num(s.get("encode_s")), _num(s.get("decode_s")), res.wall_s,
            res.host, res.pid, config_hash, __version__, git_sha(), time.time(),
        )
        frames = [
            (job.key, i, int(f.get("src_index", i)), int(f["bits"]), *(_num(f.get(c)) for c in FRAME_COLUMNS[1:]))
            for i, f in enumerate(res.frames)
        ]
        with self._tx():
            self.conn.execute("DELETE FROM frames WHERE job_key = ?", (job.key,))
            self.conn.execute(f"INSERT OR REPLACE INTO jobs VALUES ({', '.join('?' * len(row))})", row)
            self.conn.executemany(f"INSERT INTO frames VALUES ({', '.join('?' * 11)})", frames)

    def _tx(self) -> _Transaction:
        return _Transaction(self.conn)

    # ---- reading ------------------------------------------------------------------
    def done_keys(self) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT key FROM jobs WHERE status = 'done'")}

    def runs(self) -> list[dict[str, Any]]:
        """Runs, most recently updated first."""
        return [dict(r) for r in self.conn.execute("SELECT * FROM runs ORDER BY updated_at DESC, rowid DESC")]

    def run(self, name_or_hash: str | None = None) -> dict[str, Any]:
        """One run by name or config hash (prefix); the most recent when None."""
        runs = self.runs()
        if not runs:
            raise InputError(f"{self.path}: no run recorded in this database")
        if name_or_hash is None:
            return runs[0]
        hits = [r for r in runs if r["name"] == name_or_hash or r["config_hash"].startswith(name_or_hash)]
        if not hits:
            names = ", ".join(f"{r['name']} ({r['config_hash'][:8]})" for r in runs)
            raise InputError(f"{self.path}: no run {name_or_hash!r} (runs: {names})")
        return hits[0]

    def jobs(self, config_hash: str | None = None) -> list[dict[str, Any]]:
        """Job rows (of one run when ``config_hash`` is given), in a stable order."""
        q = "SELECT j.* FROM jobs j"
        args: tuple = ()
        if config_hash is not None:
            q += " JOIN run_jobs r ON r.job_key = j.key WHERE r.config_hash = ?"
            args = (config_hash,)
        q += " ORDER BY j.class, j.sequence, j.label, j.point"
        return [dict(r) for r in self.conn.execute(q, args)]

    def planned(self, config_hash: str) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM run_jobs WHERE config_hash = ?", (config_hash,)).fetchone()[0]

    def frames(self, job_key: str) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute("SELECT * FROM frames WHERE job_key = ? ORDER BY pos", (job_key,))]


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error) on an autocommit connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        self.conn.execute("COMMIT" if exc_type is None else "ROLLBACK")

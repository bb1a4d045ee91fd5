"""Clearing what a killed process left behind, at the start of the next run.

A process killed while writing leaves temporary files (``.<name>.<pid>-<uuid>.tmp``, see
:func:`cx_pipelines.warehouse.temporary_path`) in the warehouse and beside the DuckDB
catalog. Only files whose writer is gone are removed: the process id in the name says
whose it is, so a concurrent run's file in progress is never touched.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from cx_pipelines import config

_TEMPORARY = re.compile(r"^\..+\.(?P<pid>\d+)-[0-9a-f]{32}\.tmp(\.wal)?\Z")
_LEGACY_TEMPORARY = re.compile(r"^\..+\.[0-9a-f]{32}\.tmp(\.wal)?\Z")
LEGACY_TEMPORARY_AGE_SECONDS = 6 * 3600
"""A temporary file from before process ids were in the names is stale after this long."""


def process_is_alive(pid: int) -> bool:
    """Whether a process with id ``pid`` runs on this machine (any user's)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, it is just not ours
    return True


def process_start_ticks(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot, Linux), to spot a reused id."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22, counted after the parenthesised command name (which may hold spaces).
    return int(stat.rsplit(")", 1)[1].split()[19])


def _folders() -> list[Path]:
    warehouse = config.warehouse_dir()
    folders = [config.catalog_path().parent, warehouse]
    if warehouse.exists():
        folders += [path for path in warehouse.iterdir() if path.is_dir()]
    return folders


def stale_temporary_files() -> list[Path]:
    """Temporary files in the warehouse and beside the catalog whose writer has gone."""
    stale = []
    now = time.time()
    for folder in _folders():
        if not folder.exists():
            continue
        for path in folder.glob(".*.tmp*"):
            match = _TEMPORARY.match(path.name)
            if match:
                dead = not process_is_alive(int(match["pid"]))
            else:
                old = now - path.stat().st_mtime > LEGACY_TEMPORARY_AGE_SECONDS
                dead = bool(_LEGACY_TEMPORARY.match(path.name)) and old
            if dead:
                stale.append(path)
    return sorted(stale)


def sweep_temporary_files() -> list[Path]:
    """Remove :func:`stale_temporary_files`; return what was removed."""
    removed = []
    for path in stale_temporary_files():
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed

"""Exports for the action-taking systems: the batch decision log (INTERFACES.md §2).

``<root>/<campaign_id>/<run_key>/`` holds ``contacts.csv`` and ``contacts.parquet`` (the
treated rows: who to contact), ``decisions.parquet`` (every decided row, treated and
control) and ``manifest.json`` (inputs, strategy hash, model versions, every file with
its rows and sha256). ``<root>/<campaign_id>/LATEST`` names the newest run key.

Atomic: the folder is written under a temporary name beside its target and renamed into
place, so a reader or a crash sees the previous export or the new complete one, never a
half-written folder. A killed writer may leave a hidden ``.tmp-*`` (or ``.old-*``,
``.LATEST-*``) entry behind, which readers ignore (they list only run-key folders or
follow ``LATEST``); every such name carries its writer's process id and start time, and
the next export of the campaign removes those whose writer is gone
(:func:`sweep_stale_temporaries`), never one a live writer is still filling. Same
inputs give the same run key and byte-identical files; an export already in place
with the same manifest is left as it is. Only the columns below leave the warehouse:
no email, names, birth year or income.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
import uuid
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cx_pipelines.recovery import (
    LEGACY_TEMPORARY_AGE_SECONDS,
    process_is_alive,
    process_start_ticks,
)

CONTACT_COLUMNS = [
    "contact_id",
    "campaign_id",
    "customer_id",
    "offer_type",
    "channel",
    "treatment",
    "rank",
]
DECISION_COLUMNS = [
    "contact_id",
    "run_key",
    "campaign_id",
    "customer_id",
    "offer_type",
    "channel",
    "treatment",
    "group",
    "rank",
    "p_response",
    "uplift",
    "expected_incremental_profit",
    "selection_probability",
    "exploration",
    "decided_at",
    "strategy_hash",
    "model_versions",
    "test_group",  # the experiment arm (cx_pipelines.campaigns.experiment), null without one
]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata(None)  # no pandas/library metadata: stable bytes
    pq.write_table(table, path, compression="zstd")


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_files(decisions: pd.DataFrame, folder: Path) -> dict[str, dict[str, object]]:
    """Write the three data files into ``folder``; returns {file: {rows, sha256}}."""
    decisions = decisions[DECISION_COLUMNS].sort_values(["rank"], kind="stable")
    decisions = decisions.reset_index(drop=True)
    contacts = decisions.loc[decisions["group"] == "treated", CONTACT_COLUMNS]
    contacts = contacts.reset_index(drop=True)
    contacts.to_csv(folder / "contacts.csv", index=False, lineterminator="\n")
    _write_parquet(contacts, folder / "contacts.parquet")
    _write_parquet(decisions, folder / "decisions.parquet")
    rows = {"contacts.csv": len(contacts), "contacts.parquet": len(contacts)}
    rows["decisions.parquet"] = len(decisions)
    return {name: {"rows": count, "sha256": _sha256(folder / name)} for name, count in rows.items()}


_TEMPORARY = re.compile(
    r"^\.(?:tmp|old|LATEST)-(?:.*-)?(?P<pid>\d+)-(?P<ticks>\d*)-(?P<token>[0-9a-f]{32})\Z"
)
_LEGACY_TEMPORARY = re.compile(r"^\.(?:tmp|old|LATEST)-(?:.*-)?[0-9a-f]{32}\Z")


def _temporary_name(kind: str, run_key: str | None = None) -> str:
    """``.<kind>-[<run_key>-]<pid>-<start ticks>-<32 hex>``: whose it is, and unique."""
    pid = os.getpid()
    middle = f"{run_key}-" if run_key else ""
    return f".{kind}-{middle}{pid}-{process_start_ticks(pid) or ''}-{uuid.uuid4().hex}"


def _writer_gone(name: str, *, modified: float, now: float) -> bool:
    match = _TEMPORARY.match(name)
    if match is None:  # written before names carried the writer: stale once old
        legacy = _LEGACY_TEMPORARY.match(name) is not None
        return legacy and now - modified > LEGACY_TEMPORARY_AGE_SECONDS
    pid = int(match["pid"])
    if not process_is_alive(pid):
        return True
    started = match["ticks"]
    return bool(started) and str(process_start_ticks(pid)) != started  # the id was reused


def stale_temporaries(base: Path) -> list[Path]:
    """Temporary entries in a campaign's export folder whose writer has gone."""
    if not base.is_dir():
        return []
    now = time.time()
    stale = []
    for path in base.glob(".*"):
        try:
            modified = path.lstat().st_mtime
        except FileNotFoundError:  # its live writer just renamed or removed it
            continue
        if _writer_gone(path.name, modified=modified, now=now):
            stale.append(path)
    return sorted(stale)


def sweep_stale_temporaries(base: Path) -> list[Path]:
    """Remove :func:`stale_temporaries` of ``base``; return what was removed."""
    removed = []
    for path in stale_temporaries(base):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def write_export(
    decisions: pd.DataFrame,
    *,
    root: Path,
    campaign_id: str,
    run_key: str,
    manifest: dict[str, object],
) -> Path:
    """Write one campaign's export atomically; returns its folder."""
    if set(decisions["campaign_id"].unique()) - {campaign_id}:
        raise ValueError(f"decisions of other campaigns given for {campaign_id}")
    base = root / campaign_id
    base.mkdir(parents=True, exist_ok=True)
    sweep_stale_temporaries(base)
    final = base / run_key
    staging = base / _temporary_name("tmp", run_key)
    staging.mkdir()
    try:
        files = write_files(decisions, staging)
        content = {
            "run_key": run_key,
            "campaign_id": campaign_id,
            **manifest,
            "files": files,
        }
        (staging / "manifest.json").write_text(
            json.dumps(content, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8"
        )
        for path in staging.iterdir():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
        _fsync_folder(staging)
        _place(staging, final)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    _write_latest(base, run_key)
    return final


def _place(staging: Path, final: Path) -> None:
    """Rename the staged folder into place (an identical export in place is kept)."""
    if final.exists():
        same = (final / "manifest.json").exists() and (final / "manifest.json").read_bytes() == (
            staging / "manifest.json"
        ).read_bytes()
        if same:
            return
        retired = final.with_name(_temporary_name("old", final.name))
        os.replace(final, retired)  # a folder cannot be renamed over a non-empty one
        os.replace(staging, final)
        shutil.rmtree(retired)
    else:
        os.replace(staging, final)
    _fsync_folder(final.parent)


def _write_latest(base: Path, run_key: str) -> None:
    temporary = base / _temporary_name("LATEST")
    temporary.write_text(run_key + "\n", encoding="utf-8")
    os.replace(temporary, base / "LATEST")


def read_manifest(folder: Path) -> dict[str, object]:
    return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))


def verify_export(folder: Path) -> list[str]:
    """Problems with an export folder (missing files, wrong checksums or row counts)."""
    problems = []
    manifest = read_manifest(folder)
    for name, entry in manifest["files"].items():
        path = folder / name
        if not path.exists():
            problems.append(f"{name} is missing")
            continue
        if _sha256(path) != entry["sha256"]:
            problems.append(f"{name}: sha256 differs from the manifest")
        rows = len(pd.read_csv(path)) if name.endswith(".csv") else pq.read_metadata(path).num_rows
        if rows != entry["rows"]:
            problems.append(f"{name}: {rows} rows, manifest says {entry['rows']}")
    return problems

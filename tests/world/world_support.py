"""Helpers of the world tests: build a small world and read it back."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from cx_pipelines.source_schema import SOURCE_TABLES
from cx_pipelines.world import GenerationSummary, generate_world


@dataclass
class World:
    summary: GenerationSummary
    tables: dict[str, pd.DataFrame]
    truth: pd.DataFrame
    population: dict
    url: str


def read_source(url: str) -> dict[str, pd.DataFrame]:
    """Every source table, ordered by its primary key."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return {
                table.name: pd.read_sql_table(table.name, connection)
                .sort_values(list(table.primary_key.columns.keys()))
                .reset_index(drop=True)
                for table in SOURCE_TABLES
            }
    finally:
        engine.dispose()


def build_world(home: Path, *, customers: int, seed: int) -> World:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CX_HOME", str(home))
        url = f"sqlite:///{home / 'source.db'}"
        summary = generate_world(customers=customers, seed=seed, source_url=url)
    return World(
        summary=summary,
        tables=read_source(url),
        truth=pd.read_parquet(summary.truth_path),
        population=json.loads((home / "world" / "population.json").read_text()),
        url=url,
    )

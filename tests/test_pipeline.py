"""End to end: a small synthetic bank, every asset materialised through Dagster, notebooks run."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from cx_pipelines import warehouse
from cx_pipelines.definitions import defs

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.slow
def test_every_asset_is_materialised_as_a_table(materialised_world, monkeypatch):
    monkeypatch.setenv("CX_HOME", str(materialised_world.home))
    tables = set(warehouse.list_tables())
    for spec in defs.resolve_all_asset_specs():
        name = spec.key.path[-1]
        assert name in tables, f"asset {name} left no warehouse table"
    assert warehouse.table_row_count("customers") > 0


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_runs_on_the_materialised_assets(materialised_world, monkeypatch, notebook):
    monkeypatch.setenv("CX_HOME", str(materialised_world.home))
    document = nbformat.read(notebook, as_version=4)
    NotebookClient(document, timeout=300, kernel_name="python3").execute()

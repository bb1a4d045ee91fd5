"""End to end: a small synthetic bank, every asset materialised through Dagster, notebooks run."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from cx_pipelines import config, warehouse
from cx_pipelines.definitions import defs
from cx_pipelines.defs.runs import materialize
from cx_pipelines.world import generate_world

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def small_bank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small world with every asset materialised, shared by the tests of this module."""
    home = tmp_path_factory.mktemp("pipeline") / "cx"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CX_HOME", str(home))
        patch.delenv("CX_SOURCE_URL", raising=False)
        patch.setenv("DAGSTER_HOME", str(home / "dagster"))
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        generate_world(customers=600, seed=11, source_url=config.source_url())
        result = materialize("*")
        assert result.success, result.get_failed_step_keys()
        yield home


@pytest.mark.slow
def test_every_asset_is_materialised_as_a_table(small_bank, monkeypatch):
    monkeypatch.setenv("CX_HOME", str(small_bank))
    tables = set(warehouse.list_tables())
    for spec in defs.resolve_all_asset_specs():
        name = spec.key.path[-1]
        assert name in tables, f"asset {name} left no warehouse table"
    assert warehouse.table_row_count("customers") > 0


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_runs_on_the_materialised_assets(small_bank, monkeypatch, notebook):
    monkeypatch.setenv("CX_HOME", str(small_bank))
    document = nbformat.read(notebook, as_version=4)
    NotebookClient(document, timeout=300, kernel_name="python3").execute()

"""Fixtures of the decision-service tests: a prepared CX_HOME and a running server."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import support


@dataclass
class Prepared:
    home: Path
    strategies: Path

    @property
    def strategy(self) -> Path:
        return self.strategies / support.STRATEGY.name


def prepare(home: Path, *, store_url: str = "", customers: int = 60) -> Prepared:
    """A warehouse of ``customers``, its strategy catalog, online store and records."""
    home.mkdir(parents=True, exist_ok=True)
    with support.environment(home):
        support.write_warehouse(customers)
        folder = support.strategy_folder(home)
        support.materialise(folder, store_url)
    return Prepared(home, folder)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    return prepare(tmp_path_factory.mktemp("service") / "cx")


@pytest.fixture(scope="module")
def server(prepared: Prepared) -> Iterator[support.Server]:
    """One server for a module's read-mostly tests."""
    running = support.start_server(prepared.home, strategy=prepared.strategy)
    yield running
    running.stop()

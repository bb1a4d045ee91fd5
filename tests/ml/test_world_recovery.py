"""Our BTYD models recover the synthetic world's true population parameters (issue 3).

The world draws purchases from BG/NBD and spend from gamma-gamma with the parameters in
``population.json``; fitting our models to the transactions it wrote to the source system
must give those parameters back within 10% on a 20,000-customer world.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
import sqlalchemy as sa

from cx_pipelines import config
from cx_pipelines.ml.btyd import BetaGeoModel, GammaGammaModel
from cx_pipelines.ml.rfm import rfm_summary
from cx_pipelines.world import WORLD_END, generate_world

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world_rfm(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, dict]:
    home = tmp_path_factory.mktemp("recovery") / "cx"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CX_HOME", str(home))
        patch.delenv("CX_SOURCE_URL", raising=False)
        generate_world(customers=20_000, seed=21, source_url=config.source_url())
        engine = sa.create_engine(config.source_url())
        with engine.connect() as connection:
            transactions = pd.read_sql(
                "select customer_id, occurred_at, amount from transactions", connection
            )
        engine.dispose()
        population = json.loads((config.world_dir() / "population.json").read_text())
    transactions["occurred_at"] = pd.to_datetime(transactions["occurred_at"])
    rfm = rfm_summary(
        transactions,
        observation_period_end=pd.Timestamp(WORLD_END),
        time_unit="W",
        merge_same_day=False,  # the world draws purchases in continuous time
    )
    return rfm, population


def test_bg_nbd_recovers_the_world_purchase_process(world_rfm):
    rfm, population = world_rfm
    model = BetaGeoModel().fit(rfm)
    for name, truth in population["bg_nbd"].items():
        assert model.params_[name] == pytest.approx(truth, rel=0.10), name


def test_gamma_gamma_recovers_the_world_spend_process(world_rfm):
    rfm, population = world_rfm
    repeat_buyers = rfm[rfm["frequency"] > 0]
    model = GammaGammaModel().fit(repeat_buyers)
    for name, truth in population["gamma_gamma"].items():
        assert model.params_[name] == pytest.approx(truth, rel=0.10), name

"""The closed loop's contacts, dated after the world's end, reach the response models."""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from cx_pipelines import config, warehouse
from cx_pipelines.defs.training.challenger import as_of_date, contacts_until
from cx_pipelines.defs.training.models import contact_frames
from cx_pipelines.world import WORLD_END, generate_world


def _source(name: str) -> pd.DataFrame:
    engine = sa.create_engine(config.source_url())
    try:
        return pd.read_sql_table(name, engine)
    finally:
        engine.dispose()


def test_results_after_the_world_end_are_trained_on_unless_an_as_of_is_set(cx_home):
    generate_world(customers=400, seed=5, source_url=config.source_url())
    tables = {name: _source(name) for name in ("customers", "accounts", "transactions")}
    history = _source("offer_history")
    loop_contacts = history.head(40).assign(
        campaign_id="LOOP_card_app",
        contacted_at=pd.Timestamp(WORLD_END) + pd.Timedelta(days=10),
    )
    warehouse.write_table("interaction_results", loop_contacts)
    as_of = as_of_date(tables["transactions"], None)
    assert as_of <= pd.Timestamp(WORLD_END), "features stay at the end of the data"

    def trained_campaigns(configured: str | None) -> set[str]:
        cutoff = as_of_date(tables["transactions"], configured)
        train, holdout = contact_frames(
            *tables.values(),
            history,
            as_of=cutoff,
            fraction=0.2,
            until=contacts_until(cutoff, configured),
        )
        return set(train["campaign_id"]) | set(holdout["campaign_id"])

    assert "LOOP_card_app" in trained_campaigns(None)
    assert "LOOP_card_app" not in trained_campaigns("2026-09-30")  # a configured as-of holds
    assert contacts_until(as_of, "2026-09-30") == as_of

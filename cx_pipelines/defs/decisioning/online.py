"""``online_features``: the online store's snapshot of every customer's engine inputs,
from the latest materialised warehouse tables, for the decision service (SPEC S7)."""

import json

import dagster as dg
import pandas as pd

from cx_pipelines import warehouse
from cx_pipelines.decisioning.simulate import engine_inputs, model_versions
from cx_pipelines.defs.decisioning.assets import (
    GROUP,
    StrategyRepository,
    optional_tables,
    upstream_keys,
)


class OnlineStoreResource(dg.ConfigurableResource):
    """Where the online store is (``CX_ONLINE_STORE_URL``; default SQLite in CX_HOME)."""

    url: str = ""

    def open(self):
        from cx_pipelines.online_store import open_store

        return open_store(self.url or None)


def _valid_strategies(strategies: StrategyRepository) -> list:
    from cx_pipelines.engine import load_strategy

    catalog = warehouse.read_table("strategy_catalog")
    valid = catalog.loc[catalog["valid"].astype(bool), "path"]
    return [load_strategy(path) for path in valid if path.startswith(str(strategies.folder()))]


@dg.asset(
    group_name=GROUP,
    kinds={"sqlite", "redis", "postgres", "pandas"},
    deps=[dg.AssetKey("strategy_catalog"), *upstream_keys()],
)
def online_features(
    context: dg.AssetExecutionContext,
    strategies: StrategyRepository,
    online_store: OnlineStoreResource,
) -> dg.Output[pd.DataFrame]:
    """Every customer's engine inputs and accounts, written atomically to the online store."""
    # The table is the snapshot's manifest (one row: generation, backend, counts, model
    # versions); the records themselves live in the store.
    from cx_pipelines.online_store import snapshot_records

    chosen = _valid_strategies(strategies)
    if not chosen:
        raise dg.Failure("strategy_catalog lists no valid strategy; nothing defines the inputs")
    tables = optional_tables()
    customers, accounts = engine_inputs(
        chosen,
        customers=warehouse.read_table("customers"),
        accounts=warehouse.read_table("accounts"),
        tables=tables,
    )
    versions = model_versions(tables.get("customer_scores"))
    store = online_store.open()
    try:
        generation = store.write_snapshot(
            snapshot_records(customers, accounts),
            {
                "model_versions": versions,
                "strategies": {s.name: s.content_hash for s in chosen},
                "tables": sorted(name for name, table in tables.items() if table is not None),
            },
        )
        meta = store.meta() or {}
    finally:
        store.close()
    backend = store.url.split(":", 1)[0]
    context.log.info(
        f"online store ({backend}) generation {generation}: {len(customers)} customers"
    )
    manifest = pd.DataFrame(
        [
            {
                "generation": generation,
                "backend": backend,
                "customers": int(meta.get("customers", len(customers))),
                "accounts": len(accounts),
                "attributes": len(customers.columns) - 1,
                "written_at": pd.Timestamp(meta.get("written_at", 0), unit="s", tz="UTC"),
                "model_versions": json.dumps(versions, sort_keys=True),
                "strategies": json.dumps({s.name: s.content_hash for s in chosen}, sort_keys=True),
            }
        ]
    )
    return dg.Output(
        manifest,
        metadata={
            "backend": backend,
            "generation": generation,
            "customers": int(manifest["customers"].iloc[0]),
            "accounts": len(accounts),
            "model_versions": dg.MetadataValue.json(versions),
        },
    )

"""The Dagster UI (the real dagster-webserver) shows every asset described, grouped, with kinds,
row count and preview, and the asset checks, after `cx materialize` of a small world."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
from ui_support import ASSET_NODES_QUERY, RUN_QUERY, graphql, running_webserver

from cx_pipelines import warehouse
from cx_pipelines.definitions import defs

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class UiState:
    nodes: dict[str, dict]  # asset name -> GraphQL AssetNode
    run_id: str
    run_status: str
    table_rows: dict[str, int]  # warehouse row count of every table the run left


@pytest.fixture(scope="module")
def ui(materialised_world) -> UiState:
    """The shared materialised world, read back through the webserver."""
    home = materialised_world.home
    with materialised_world.environment():
        table_rows = {name: warehouse.table_row_count(name) for name in warehouse.list_tables()}
        env = dict(os.environ)
        with running_webserver(env=env, log_dir=home.parent / "webserver") as base_url:
            nodes = graphql(base_url, ASSET_NODES_QUERY)["assetNodes"]
            run = graphql(base_url, RUN_QUERY, {"runId": materialised_world.run_id})["runOrError"]
    return UiState(
        nodes={"/".join(node["assetKey"]["path"]): node for node in nodes},
        run_id=materialised_world.run_id,
        run_status=run.get("status", run["__typename"]),
        table_rows=table_rows,
    )


def _specs() -> dict[str, object]:
    return {spec.key.to_user_string(): spec for spec in defs.resolve_all_asset_specs()}


def _metadata(node: dict) -> dict[str, dict]:
    materializations = node["assetMaterializations"]
    return {entry["label"]: entry for entry in materializations[0]["metadataEntries"]}


def _preview_columns_and_rows(markdown: str) -> tuple[list[str], int]:
    lines = [line for line in markdown.strip().splitlines() if line.strip()]
    header = [cell.strip() for cell in lines[0].strip().strip("|").split("|")]
    return header, len(lines) - 2  # header and |---| separator


def test_the_run_is_in_the_ui_with_every_defined_asset(ui: UiState):
    assert ui.run_status == "SUCCESS"
    assert set(ui.nodes) == set(_specs())


def test_every_asset_has_a_one_line_description_a_group_and_kinds(ui: UiState):
    specs = _specs()
    problems = []
    for name, node in sorted(ui.nodes.items()):
        spec = specs[name]
        description = node["description"] or ""
        if not description.strip() or "\n" in description.strip():
            problems.append(f"{name}: description is not one line: {description!r}")
        if description != spec.description:
            problems.append(
                f"{name}: UI shows {description!r}, definition says {spec.description!r}"
            )
        if node["groupName"] in ("", "default") or node["groupName"] != spec.group_name:
            problems.append(f"{name}: group {node['groupName']!r} (definition {spec.group_name!r})")
        if not node["kinds"] or set(node["kinds"]) != set(spec.kinds):
            problems.append(f"{name}: kinds {node['kinds']} (definition {sorted(spec.kinds)})")
    assert not problems, "\n".join(problems)


def test_every_asset_shows_its_row_count_from_this_run(ui: UiState):
    problems = []
    for name, node in sorted(ui.nodes.items()):
        if not node["assetMaterializations"]:
            problems.append(f"{name}: no materialisation shown")
            continue
        if node["assetMaterializations"][0]["runId"] != ui.run_id:
            problems.append(f"{name}: latest materialisation is not from run {ui.run_id}")
        row_count = _metadata(node).get("dagster/row_count")
        if row_count is None or row_count["__typename"] != "IntMetadataEntry":
            problems.append(f"{name}: no integer dagster/row_count ({row_count})")
        elif int(row_count["intRepr"]) != ui.table_rows.get(name):
            problems.append(
                f"{name}: UI row count {row_count['intRepr']}, "
                f"warehouse table has {ui.table_rows.get(name)}"
            )
    assert not problems, "\n".join(problems)


def test_every_table_asset_shows_a_preview_matching_its_column_schema(ui: UiState):
    table_assets = {name: node for name, node in ui.nodes.items() if node["isMaterializable"]}
    assert len(table_assets) >= len(ui.nodes) - 1, "only external specs may lack a preview"
    problems = []
    for name, node in sorted(table_assets.items()):
        if not node["assetMaterializations"]:
            problems.append(f"{name}: no materialisation shown")
            continue
        metadata = _metadata(node)
        preview, schema = metadata.get("preview"), metadata.get("dagster/column_schema")
        if preview is None or preview["__typename"] != "MarkdownMetadataEntry":
            problems.append(f"{name}: no markdown preview ({preview})")
            continue
        if schema is None:
            problems.append(f"{name}: no dagster/column_schema")
            continue
        columns, rows = _preview_columns_and_rows(preview["mdStr"])
        schema_columns = [column["name"] for column in schema["schema"]["columns"]]
        if columns != schema_columns:
            problems.append(f"{name}: preview columns {columns} != column schema {schema_columns}")
        total = ui.table_rows.get(name, 0)
        if not (min(total, 1) <= rows <= total):
            problems.append(f"{name}: preview shows {rows} rows of a {total}-row table")
    assert not problems, "\n".join(problems)


def test_every_asset_check_is_listed_with_its_result(ui: UiState, materialised_world):
    graph = defs.resolve_asset_graph()
    expected = {
        (check_key.asset_key.to_user_string(), check_key.name)
        for check_key in graph.asset_check_keys
    }
    assert expected, "the definitions declare no asset checks"
    shown, problems = set(), []
    for name, node in sorted(ui.nodes.items()):
        checks = node["assetChecksOrError"]
        if checks["__typename"] != "AssetChecks":
            problems.append(f"{name}: checks not shown ({checks['__typename']})")
            continue
        if node["hasAssetChecks"] != bool(checks["checks"]):
            problems.append(f"{name}: hasAssetChecks={node['hasAssetChecks']} disagrees")
        for check in checks["checks"]:
            shown.add((name, check["name"]))
            execution = check["executionForLatestMaterialization"]
            passed = materialised_world.check_passed.get((name, check["name"]))
            expected_status = {True: "SUCCEEDED", False: "FAILED"}.get(passed)
            if execution is None or execution != {"runId": ui.run_id, "status": expected_status}:
                problems.append(
                    f"{name}.{check['name']}: shown {execution}, the run said passed={passed}"
                )
    assert shown == expected, f"missing {expected - shown}, unexpected {shown - expected}"
    assert not problems, "\n".join(problems)

import dagster as dg

from cx_pipelines.definitions import defs


def test_definitions_load_and_every_asset_is_described():
    dg.Definitions.validate_loadable(defs)
    for spec in defs.resolve_all_asset_specs():
        assert spec.description, f"{spec.key.to_user_string()} has no description"
        assert spec.group_name and spec.group_name != "default", spec.key.to_user_string()
        assert spec.kinds, f"{spec.key.to_user_string()} has no kinds"

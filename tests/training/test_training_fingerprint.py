"""Campaign results fed back into training count in the fingerprint that decides reuse."""

from __future__ import annotations

import pandas as pd

from cx_pipelines import warehouse
from cx_pipelines.defs.training.challenger import fingerprinted_frames
from cx_pipelines.ml import registry
from cx_pipelines.ml.specs import load_spec

PARAMS = {"random_state": 0, "as_of": None}


def _fingerprint(spec_name: str, frames: dict[str, pd.DataFrame]) -> str:
    spec = load_spec(spec_name)
    return registry.training_fingerprint(spec, frames=fingerprinted_frames(frames), params=PARAMS)


def test_new_interaction_results_change_the_fingerprint_of_contact_models(cx_home):
    frames = {"offer_history": pd.DataFrame({"contact_id": [1, 2], "responded": [True, False]})}
    without_results = _fingerprint("propensity", frames)
    warehouse.write_table(
        "interaction_results", pd.DataFrame({"contact_id": ["a"], "responded": [True]})
    )
    with_results = _fingerprint("propensity", frames)
    warehouse.write_table(
        "interaction_results", pd.DataFrame({"contact_id": ["a", "b"], "responded": [True, True]})
    )
    with_more_results = _fingerprint("propensity", frames)
    assert len({without_results, with_results, with_more_results}) == 3
    assert _fingerprint("propensity", frames) == with_more_results  # same inputs, same print


def test_models_without_contacts_ignore_interaction_results(cx_home):
    frames = {"transactions": pd.DataFrame({"customer_id": [1], "amount": [9.5]})}
    before = _fingerprint("attrition", frames)
    warehouse.write_table(
        "interaction_results", pd.DataFrame({"contact_id": ["a"], "responded": [True]})
    )
    assert _fingerprint("attrition", frames) == before

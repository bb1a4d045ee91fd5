"""The customer simulator answers decisions from the truth, with fatigue, deterministically."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from loop_support import decisions_frame, write_export

from cx_pipelines.source_schema import OFFER_CHANNELS, OFFER_TYPES
from cx_pipelines.world import simulator
from cx_pipelines.world.simulator import (
    FATIGUE_LOG_ODDS_PER_CONTACT,
    RESULT_COLUMNS,
    SimulatorError,
    WorldTruth,
    answer,
    recent_contacts,
    respond,
)

OFFER, CHANNEL = "credit_card", "mobile_app"


def _all_customers(truth: WorldTruth, *, run_key: str, control_every: int = 3) -> pd.DataFrame:
    ids = truth.customer_id
    treated = np.arange(len(ids)) % control_every != 0
    return decisions_frame(
        ids, campaign_id="K1", offer_type=OFFER, channel=CHANNEL, treated=treated, run_key=run_key
    )


def test_every_decided_row_gets_one_outcome_in_the_inbox_format(small_world, tmp_path):
    exports = tmp_path / "exports"
    run = write_export(exports, _all_customers(small_world, run_key="2026-10-05-aaaa"))
    path = respond(run, seed=1, truth=small_world, exports_dir=exports, inbox=tmp_path / "inbox")
    results = pd.read_parquet(path)
    decisions = pd.read_parquet(run / "decisions.parquet")
    assert path.parent == tmp_path / "inbox" and path.suffix == ".parquet"
    assert list(results.columns) == list(RESULT_COLUMNS)
    assert sorted(results["contact_id"]) == sorted(decisions["contact_id"])
    assert set(results["outcome"]) <= {"responded", "not_responded"}
    responded = results["outcome"] == "responded"
    assert (results.loc[~responded, "revenue"] == 0).all()
    assert (results.loc[responded, "revenue"] > 0).all()
    delay = (results["responded_at"] - pd.Timestamp("2026-10-05")) / pd.Timedelta(days=1)
    assert delay.between(1, 7).all()
    assert not list((tmp_path / "inbox").glob(".*")), "no temporary file is left behind"


def test_answers_depend_only_on_seed_and_run_key(small_world):
    frame = _all_customers(small_world, run_key="2026-10-05-aaaa")
    recent = np.zeros(len(frame))
    first = answer(frame, small_world, recent=recent, seed=5)
    shuffled = frame.sample(frac=1.0, random_state=0)
    again = answer(shuffled, small_world, recent=recent, seed=5)
    pd.testing.assert_frame_equal(first, again)
    other_seed = answer(frame, small_world, recent=recent, seed=6)
    other_run = answer(frame.assign(run_key="2026-10-12-bbbb"), small_world, recent=recent, seed=5)
    assert not first["outcome"].equals(other_seed["outcome"])
    assert not first["outcome"].equals(other_run["outcome"])


def test_response_rates_follow_the_truth_of_each_arm(small_world):
    frame = _all_customers(small_world, run_key="r", control_every=2)
    recent = np.zeros(len(frame))
    rows = small_world.positions(frame["customer_id"].to_numpy())
    offer, lane = OFFER_TYPES.index(OFFER), OFFER_CHANNELS.index(CHANNEL)
    treated = (frame["group"] == "treated").to_numpy()
    observed = {True: [], False: []}
    for seed in range(40):  # 40 × 1,000 draws per arm: the mean is tight around the truth
        outcome = answer(frame, small_world, recent=recent, seed=seed)["outcome"] == "responded"
        order = np.argsort(frame["contact_id"].to_numpy(str), kind="stable")
        for arm in (True, False):
            observed[arm].append(outcome.to_numpy()[np.argsort(order)][treated == arm].mean())
    expected = {
        True: small_world.p_treated[rows[treated], offer, lane].mean(),
        False: small_world.p_control[rows[~treated], offer].mean(),
    }
    for arm in (True, False):
        p = expected[arm]
        standard_error = np.sqrt(p * (1 - p) / (1000 * 40))
        assert abs(np.mean(observed[arm]) - p) < 4 * standard_error, arm
    assert expected[True] > expected[False], "mobile credit-card offers lift response on average"


def test_recent_treated_contacts_lower_the_treated_response(small_world, tmp_path):
    exports = tmp_path / "exports"
    ids = small_world.customer_id[:10]

    def earlier(customers, run_key, day, *, treated=True):
        arm = np.full(len(customers), treated)
        frame = decisions_frame(
            customers,
            campaign_id="K0",
            offer_type="savings",
            channel="email",
            treated=arm,
            run_key=run_key,
            decided_at=day,
        )
        write_export(exports, frame)

    earlier(ids[:4], "old1", "2026-09-20")
    earlier(ids[:2], "old2", "2026-09-28")
    earlier(ids[4:6], "stale", "2026-08-01")
    earlier(ids[6:8], "ctl", "2026-09-30", treated=False)
    now = pd.Series(pd.Timestamp("2026-10-05"), index=range(10))
    counts = recent_contacts(ids, now, exports_dir=exports, exclude_run_key="now")
    # two contacts in the window, one, none (older than 28 days), none (control is not contact)
    assert counts.tolist() == [2, 2, 1, 1, 0, 0, 0, 0, 0, 0]

    rows = small_world.positions(ids[:3])
    offers, channels = np.zeros(3, dtype=int), np.ones(3, dtype=int)
    fresh = small_world.treated_probability(rows, offers, channels, np.zeros(3))
    tired = small_world.treated_probability(rows, offers, channels, np.array([0, 1, 2]))
    logit = np.log(tired / (1 - tired)) - np.log(fresh / (1 - fresh))
    np.testing.assert_allclose(
        logit, [0, -FATIGUE_LOG_ODDS_PER_CONTACT, -2 * FATIGUE_LOG_ODDS_PER_CONTACT]
    )


def test_fatigue_lowers_realised_response(small_world):
    frame = _all_customers(small_world, run_key="r", control_every=10**9)  # all treated
    fresh = answer(frame, small_world, recent=np.zeros(len(frame)), seed=2)
    tired = answer(frame, small_world, recent=np.full(len(frame), 3), seed=2)
    rate = {
        name: (f["outcome"] == "responded").mean()
        for name, f in [("fresh", fresh), ("tired", tired)]
    }
    assert rate["tired"] < rate["fresh"]


def test_unknown_customers_and_values_are_clear_errors(small_world, tmp_path):
    frame = _all_customers(small_world, run_key="r").head(5)
    with pytest.raises(SimulatorError, match="not in the world's truth, e.g. customer_id 999999"):
        answer(frame.assign(customer_id=999_999), small_world, recent=np.zeros(5), seed=1)
    with pytest.raises(SimulatorError, match="column 'channel' holds unknown values \\['fax'\\]"):
        answer(frame.assign(channel="fax"), small_world, recent=np.zeros(5), seed=1)
    with pytest.raises(SimulatorError, match="lacks column\\(s\\) \\['decided_at'\\]"):
        run = write_export(tmp_path, frame.drop(columns="decided_at"))
        respond(run, seed=1, truth=small_world, exports_dir=tmp_path, inbox=tmp_path / "inbox")
    with pytest.raises(SimulatorError, match="no ground truth at"):
        WorldTruth.load(truth_path=tmp_path / "missing.parquet", source_url="sqlite://")
    assert simulator.inbox_dir().name == "inbox"


def test_campaigns_of_one_run_key_answer_independently(small_world):
    """Every campaign of a decision date shares the run key; each export run still draws
    its own uniforms (keyed by the run key alone, the k-th contact of every campaign got
    the same uniform and two campaigns on the same customers answered identically)."""
    ids = small_world.customer_id
    treated = np.ones(len(ids), dtype=bool)
    common = {"offer_type": OFFER, "channel": CHANNEL, "treated": treated, "run_key": "r1"}
    first = answer(decisions_frame(ids, campaign_id="K1", **common), small_world,
                   recent=np.zeros(len(ids)), seed=3)  # fmt: skip
    second = answer(decisions_frame(ids, campaign_id="K2", **common), small_world,
                    recent=np.zeros(len(ids)), seed=3)  # fmt: skip
    by_customer = [
        part.set_index("customer_id")["outcome"].eq("responded") for part in (first, second)
    ]
    differ = int((by_customer[0] != by_customer[1].reindex(by_customer[0].index)).sum())
    rows = small_world.positions(ids)
    p = small_world.p_treated[rows, OFFER_TYPES.index(OFFER), OFFER_CHANNELS.index(CHANNEL)]
    expected = float((2 * p * (1 - p)).sum())  # customers answering differently if independent
    assert abs(differ - expected) < 4 * np.sqrt(expected) + 1, (differ, expected)

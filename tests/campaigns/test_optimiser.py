"""The targeting optimiser: feasibility, and a certified gap checked against HiGHS."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

from cx_pipelines.campaigns.optimiser import OptimiserInputError, assign, capacities


def _program(value, cost, budget, volume_cap):
    """The integer program of INTERFACES.md §1 with the raw budget and volume rows."""
    customers, campaigns = value.shape
    gains = np.where(np.isnan(value), 0.0, value).ravel()
    upper = np.where(np.isnan(value), 0.0, 1.0).ravel()
    per_customer = sparse.kron(sparse.eye(customers), np.ones((1, campaigns)))
    per_campaign = sparse.kron(np.ones((1, customers)), sparse.eye(campaigns))
    spend = per_campaign.multiply(np.tile(cost, customers)[None, :])
    matrix = sparse.vstack([per_customer, per_campaign, spend]).tocsr()
    limits = np.concatenate([np.ones(customers), volume_cap, budget])
    return gains, upper, matrix, limits


def exact_optimum(value, cost, budget, volume_cap) -> float:
    gains, upper, matrix, limits = _program(value, cost, budget, volume_cap)
    result = milp(
        -gains,
        constraints=LinearConstraint(matrix, -np.inf, limits),
        integrality=np.ones(len(gains)),
        bounds=Bounds(0.0, upper),
    )
    assert result.status == 0
    return -float(result.fun)


def lp_optimum(value, cost, budget, volume_cap) -> float:
    gains, upper, matrix, limits = _program(value, cost, budget, volume_cap)
    finite = np.isfinite(limits)
    result = linprog(
        -gains,
        A_ub=matrix[finite],
        b_ub=limits[finite],
        bounds=np.c_[np.zeros(len(gains)), upper],
        method="highs",
    )
    assert result.status == 0
    return -float(result.fun)


def random_instance(seed: int):
    rng = np.random.default_rng(seed)
    customers, campaigns = int(rng.integers(1, 50)), int(rng.integers(1, 6))
    value = rng.normal(0.0, 1.0, (customers, campaigns))
    if seed % 3 == 0:  # whole numbers: many ties, where plain coordinate descent stalls
        value = np.round(value)
    value[rng.random(value.shape) < 0.2] = np.nan
    cost = rng.uniform(0.0, 3.0, campaigns)
    budget = np.where(rng.random(campaigns) < 0.5, rng.uniform(0, customers, campaigns), np.inf)
    volume_cap = np.where(
        rng.random(campaigns) < 0.6, rng.integers(0, customers + 1, campaigns), np.inf
    ).astype(float)
    return value, cost, budget, volume_cap


def assert_feasible(result, value, cost, budget, volume_cap) -> None:
    choice = result.choice
    assert choice.shape == (value.shape[0],)
    assert ((choice >= -1) & (choice < value.shape[1])).all()
    taken = choice >= 0
    assert not np.isnan(value[np.flatnonzero(taken), choice[taken]]).any(), "ineligible chosen"
    counts = np.bincount(choice[taken], minlength=value.shape[1])
    assert (counts <= volume_cap).all()
    assert (counts * cost <= budget + 1e-9).all()
    assert result.objective == pytest.approx(value[np.flatnonzero(taken), choice[taken]].sum())


@pytest.mark.parametrize("seed", range(60))
def test_bound_and_objective_bracket_the_highs_optimum(seed: int) -> None:
    value, cost, budget, volume_cap = random_instance(seed)
    optimum = exact_optimum(value, cost, budget, volume_cap)
    for tolerance in (1e-5, 1e-9):  # the default, and a tight one: the gap closes
        result = assign(value, cost=cost, budget=budget, volume_cap=volume_cap, tolerance=tolerance)
        assert_feasible(result, value, cost, budget, volume_cap)
        assert result.upper_bound >= optimum - 1e-7
        assert result.objective <= optimum + 1e-7
        assert result.gap <= tolerance
    assert result.gap == pytest.approx(
        (result.upper_bound - result.objective) / max(abs(result.upper_bound), 1e-12)
    )


@pytest.mark.parametrize("seed", range(20))
def test_bound_is_above_the_lp_relaxation_with_whole_number_caps(seed: int) -> None:
    """With caps folded to whole numbers the LP is integral, so the bound covers it too."""
    value, cost, budget, volume_cap = random_instance(seed)
    capacity = capacities(
        cost=cost, budget=budget, volume_cap=volume_cap, customers=value.shape[0]
    ).astype(float)
    free = np.full(value.shape[1], np.inf)
    result = assign(value, cost=np.zeros(value.shape[1]), budget=free, volume_cap=capacity)
    lp = lp_optimum(value, np.zeros(value.shape[1]), free, capacity)
    assert result.upper_bound >= lp - 1e-7
    assert lp == pytest.approx(exact_optimum(value, np.zeros(value.shape[1]), free, capacity))


def test_larger_instance_gap_is_small_and_caps_hold() -> None:
    rng = np.random.default_rng(7)
    customers, campaigns = 3_000, 6
    margin, cost = rng.uniform(50, 300, campaigns), rng.uniform(0.5, 4, campaigns)
    value = (rng.beta(1.2, 30, (customers, campaigns)) - 0.01) * margin - cost
    value[rng.random(value.shape) < 0.3] = np.nan
    volume_cap = np.array([200, np.inf, 500, 100, np.inf, 50.0])
    budget = np.array([np.inf, 300.0, np.inf, np.inf, 900.0, np.inf])
    result = assign(value, cost=cost, budget=budget, volume_cap=volume_cap)
    assert_feasible(result, value, cost, budget, volume_cap)
    assert result.gap < 1e-4
    optimum = exact_optimum(value, cost, budget, volume_cap)
    assert result.objective <= optimum + 1e-6 <= result.upper_bound + 2e-6
    # folding budgets to whole contacts makes the bound tighter than the raw LP relaxation
    assert result.upper_bound <= lp_optimum(value, cost, budget, volume_cap) + 1e-6
    assert (result.prices >= 0).all()
    binding = np.flatnonzero(result.prices > 0)
    assert len(binding), "caps this tight must bind somewhere"


def test_customer_left_out_when_nothing_is_worth_it() -> None:
    value = np.array([[-1.0, np.nan], [np.nan, np.nan], [2.0, 1.0]])
    result = assign(value, cost=np.ones(2), budget=np.full(2, np.inf), volume_cap=np.full(2, 5.0))
    assert result.choice.tolist() == [-1, -1, 0]
    assert result.objective == 2.0 and result.upper_bound == 2.0 and result.gap == 0.0


def test_budget_is_a_cap_on_contacts() -> None:
    value = np.array([[5.0], [4.0], [3.0], [2.0]])
    result = assign(value, cost=np.array([2.0]), budget=np.array([5.0]), volume_cap=np.array([9]))
    assert sorted(result.choice.tolist()) == [-1, -1, 0, 0]  # floor(5 / 2) = 2 contacts
    assert result.objective == 9.0
    assert result.capacity.tolist() == [2]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"value": np.ones(3)}, "customers x campaigns"),
        ({"cost": np.ones(3)}, "cost must have one entry per campaign"),
        ({"budget": np.array([-1.0, 1.0])}, "budget must be >= 0"),
        ({"value": np.array([[np.inf, 1.0]])}, "finite or NaN"),
    ],
)
def test_bad_input_is_refused_with_a_clear_error(kwargs, message) -> None:
    arguments = {
        "value": np.ones((2, 2)),
        "cost": np.ones(2),
        "budget": np.full(2, np.inf),
        "volume_cap": np.ones(2),
    }
    arguments.update(kwargs)
    value = arguments.pop("value")
    with pytest.raises(OptimiserInputError, match=message):
        assign(value, **arguments)

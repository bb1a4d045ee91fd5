"""One offer per customer across competing campaigns, under per-campaign caps, with a
certified optimality gap.

The problem (customers ``i``, campaigns ``j``, ``x_ij`` in {0, 1})::

    maximise    sum_ij value_ij * x_ij
    subject to  sum_j x_ij <= 1                       (one campaign per customer)
                sum_i x_ij <= volume_cap_j            (contacts)
                sum_i cost_j * x_ij <= budget_j       (spend)

Because a campaign's cost per contact is one number, its budget is a cap on its number
of contacts too: both caps fold into one whole-number capacity
``K_j = min(floor(volume_cap_j), floor(budget_j / cost_j))`` with exactly the same
feasible set. What is left is a transportation problem, whose constraint matrix is
totally unimodular: its LP relaxation has an integral optimum, so the LP dual is a bound
that closes on the integer optimum.

Method (documented in the returned :class:`Assignment`):

1. **Dual** — Lagrangian prices ``p_j >= 0`` on the capacities give
   ``L(p) = sum_i max(0, max_j(value_ij - p_j)) + sum_j p_j K_j``, an upper bound on the
   optimum for *every* ``p >= 0`` (weak duality), with subgradient ``K_j - takers_j``.
   It is first lowered by exact coordinate descent: with the other prices fixed, ``L`` is
   convex piecewise linear in ``p_j``, minimised at the ``(K_j + 1)``-th largest
   advantage of campaign ``j`` over each customer's best alternative (one
   ``np.partition``). Coordinate descent can stall where several prices must rise
   together (ties), so a level bundle method (cutting planes of ``L``, each step two tiny
   LPs over the prices solved by HiGHS) continues from the best prices; it converges to
   the dual optimum and gives a lower bound on it as it goes.
2. **Primal** — each customer takes its campaign of largest ``value_ij - p_j`` when that
   is positive; a campaign over its capacity (ties at the price) keeps the customers with
   the largest advantage; a greedy repair offers the released and unassigned customers
   their best campaign that still has room, in rounds, until nothing moves. If the gap
   is still open, the customers the prices leave undecided (within a band of a tie) are
   re-assigned exactly as a small integer program, the others staying fixed.
3. **Certificate** — ``upper_bound`` is the smallest ``L(p)`` seen, ``objective`` the
   primal value of a feasible assignment, ``gap = (upper_bound - objective) /
   max(|upper_bound|, tiny)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TINY = 1e-12


@dataclass(frozen=True)
class Assignment:
    """A feasible assignment, its value, and a certified upper bound on the optimum."""

    choice: np.ndarray  # (customers,) campaign index, -1 = none
    objective: float
    upper_bound: float
    gap: float
    prices: np.ndarray  # (campaigns,) Lagrangian price per contact of each capacity
    iterations: int
    capacity: np.ndarray  # (campaigns,) the whole-number capacity K_j the caps fold into


class OptimiserInputError(ValueError):
    """The arrays given to :func:`assign` do not describe a targeting problem."""


def capacities(
    *, cost: np.ndarray, budget: np.ndarray, volume_cap: np.ndarray, customers: int
) -> np.ndarray:
    """Whole-number contact capacity of each campaign (``customers`` when uncapped)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        by_budget = np.where(cost > 0, np.floor(budget / np.where(cost > 0, cost, 1.0)), np.inf)
    capacity = np.minimum(np.floor(volume_cap), by_budget)
    return np.minimum(capacity, customers).astype(np.int64)


def _validate(value, cost, budget, volume_cap) -> tuple[np.ndarray, ...]:
    value = np.asarray(value, dtype=np.float64)
    if value.ndim != 2:
        raise OptimiserInputError(f"value must be customers x campaigns, got shape {value.shape}")
    campaigns = value.shape[1]
    arrays = []
    for name, array in (("cost", cost), ("budget", budget), ("volume_cap", volume_cap)):
        array = np.asarray(array, dtype=np.float64)
        if array.shape != (campaigns,):
            raise OptimiserInputError(
                f"{name} must have one entry per campaign ({campaigns}), got shape {array.shape}"
            )
        if np.isnan(array).any() or (array < 0).any():
            raise OptimiserInputError(f"{name} must be >= 0 (np.inf for none), got {array}")
        arrays.append(array)
    if np.isinf(value).any():
        raise OptimiserInputError("value must be finite or NaN (not eligible)")
    return value, *arrays


def _advantage(reduced: np.ndarray, column: int) -> np.ndarray:
    """Best alternative ``max(0, max_{k != column} reduced_k)`` of every active customer."""
    others = np.delete(reduced, column, axis=0) if reduced.shape[0] > 1 else None
    if others is None:
        return np.zeros(reduced.shape[1])
    return np.maximum(others.max(axis=0), 0.0)


def _price(advantage: np.ndarray, capacity: int) -> float:
    """Minimiser of ``sum max(0, advantage - p) + p * capacity`` over ``p >= 0``."""
    positive = advantage[advantage > 0]
    if capacity >= len(positive):
        return 0.0
    # the (capacity + 1)-th largest: exactly `capacity` customers strictly prefer the campaign
    kth = len(positive) - capacity - 1
    return float(max(np.partition(positive, kth)[kth], 0.0))


def _primal(
    positive: np.ndarray, reduced: np.ndarray, capacity: np.ndarray
) -> tuple[np.ndarray, float]:
    """Assignment of the active customers from the prices, repaired to feasibility."""
    campaigns, count = positive.shape
    choice = np.full(count, -1, dtype=np.int64)
    if count == 0:
        return choice, 0.0
    best = reduced.argmax(axis=0)
    columns = np.arange(count)
    chosen = reduced[best, columns] > 0
    choice[chosen] = best[chosen]
    for j in range(campaigns):
        members = np.flatnonzero(choice == j)
        if len(members) > capacity[j]:
            others = np.delete(reduced[:, members], j, axis=0)
            alternative = np.maximum(others.max(axis=0), 0.0) if len(others) else 0.0
            margin = reduced[j, members] - alternative
            keep = np.argsort(-margin, kind="stable")[: capacity[j]]
            released = np.ones(len(members), dtype=bool)
            released[keep] = False
            choice[members[released]] = -1
    _greedy_fill(choice, positive, capacity)
    objective = float(positive[choice[choice >= 0], columns[choice >= 0]].sum())
    return choice, objective


def _polish(
    positive: np.ndarray,
    reduced: np.ndarray,
    capacity: np.ndarray,
    *,
    band: float,
    limit: int,
) -> tuple[np.ndarray, float] | None:
    """Fix the customers the prices decide by more than ``band``; solve the rest exactly.

    The rest (customers near a tie at the prices, and any a campaign over its capacity
    releases) is a small transportation problem, solved as an integer program by HiGHS
    (its LP is integral: dual simplex gives a whole vertex; HiGHS's MIP solver is the
    fallback). Returns None when more than ``limit`` customers are left.
    """
    from scipy import sparse
    from scipy.optimize import Bounds, LinearConstraint, linprog, milp

    campaigns, count = positive.shape
    columns = np.arange(count)
    order = np.argsort(-reduced, axis=0, kind="stable")
    first = reduced[order[0], columns]
    second = reduced[order[1], columns] if campaigns > 1 else np.full(count, -np.inf)
    margin = np.minimum(first - np.maximum(second, 0.0), np.abs(first))
    choice = np.where((first > 0) & (margin > band), order[0], -1)
    free = margin <= band
    for j in range(campaigns):
        members = np.flatnonzero(choice == j)
        if len(members) > capacity[j]:
            drop = members[np.argsort(margin[members], kind="stable")[: len(members) - capacity[j]]]
            choice[drop] = -1
            free[drop] = True
    room = capacity - np.bincount(choice[choice >= 0], minlength=campaigns)
    loose = np.flatnonzero(free)
    if len(loose) > limit:
        return None
    rows, cols = np.nonzero(np.isfinite(positive[:, loose]) & (room[:, None] > 0))
    if len(rows):
        variables = len(rows)
        gains = positive[rows, loose[cols]]
        one_each = sparse.csr_matrix((np.ones(variables), (cols, np.arange(variables))))
        per_campaign = sparse.csr_matrix(
            (np.ones(variables), (rows, np.arange(variables))), shape=(campaigns, variables)
        )
        # the constraint matrix is totally unimodular: a simplex vertex is already whole
        result = linprog(
            -gains,
            A_ub=sparse.vstack([one_each, per_campaign]).tocsr(),
            b_ub=np.r_[np.ones(one_each.shape[0]), room.astype(float)],
            bounds=(0.0, 1.0),
            method="highs-ds",
        )
        if result.status != 0 or result.x is None:
            return None
        if np.abs(result.x - np.round(result.x)).max(initial=0.0) > 1e-7:
            result = milp(
                -gains,
                constraints=[
                    LinearConstraint(one_each, -np.inf, 1.0),
                    LinearConstraint(per_campaign, -np.inf, room.astype(float)),
                ],
                integrality=np.ones(variables),
                bounds=Bounds(0.0, 1.0),
            )
            if result.status != 0 or result.x is None:
                return None
        picked = result.x > 0.5
        choice[loose[cols[picked]]] = rows[picked]
    objective = float(positive[choice[choice >= 0], columns[choice >= 0]].sum())
    return choice, objective


def _greedy_fill(choice: np.ndarray, positive: np.ndarray, capacity: np.ndarray) -> None:
    """Offer unassigned customers their best campaign with room, in rounds (in place)."""
    campaigns = positive.shape[0]
    used = np.bincount(choice[choice >= 0], minlength=campaigns)
    while True:
        room = capacity - used
        open_campaigns = room > 0
        if not open_campaigns.any():
            return
        waiting = np.flatnonzero(choice < 0)
        if len(waiting) == 0:
            return
        candidate = np.where(open_campaigns[:, None], positive[:, waiting], -np.inf)
        wanted = candidate.argmax(axis=0)
        worth = candidate[wanted, np.arange(len(waiting))]
        proposing = worth > 0
        if not proposing.any():
            return
        moved = 0
        for j in np.unique(wanted[proposing]):
            applicants = np.flatnonzero(proposing & (wanted == j))
            take = applicants[np.argsort(-worth[applicants], kind="stable")[: room[j]]]
            choice[waiting[take]] = j
            used[j] += len(take)
            moved += len(take)
        if moved == 0:
            return


class _Dual:
    """The Lagrangian dual ``L(p)`` of the active customers, with its cutting-plane model."""

    def __init__(self, positive: np.ndarray, capacity: np.ndarray, bounded: np.ndarray) -> None:
        self.positive = positive
        self.capacity = capacity
        self.bounded = bounded
        self.cuts: list[tuple[float, np.ndarray, np.ndarray]] = []  # (L(p), subgradient, p)

    def evaluate(self, prices: np.ndarray) -> tuple[float, np.ndarray]:
        """``L(prices)`` and the reduced values; records a cut (value, subgradient, point)."""
        reduced = self.positive - prices[:, None]
        if reduced.shape[1] == 0:
            value, counts = 0.0, np.zeros(len(prices))
        else:
            best = reduced.argmax(axis=0)
            best_value = reduced[best, np.arange(reduced.shape[1])]
            taken = best_value > 0
            value = float(best_value[taken].sum())
            counts = np.bincount(best[taken], minlength=len(prices)).astype(float)
        bounded = self.bounded
        value += float((prices[bounded] * self.capacity[bounded]).sum())
        subgradient = self.capacity[bounded] - counts[bounded]
        self.cuts.append((value, subgradient, prices[bounded].copy()))
        return value, reduced

    def level_step(
        self, best: np.ndarray, upper: float, ceiling: float
    ) -> tuple[np.ndarray, float]:
        """Next prices of a level bundle method (infinity-norm projection), and the model's
        lower bound on the dual optimum."""
        from scipy.optimize import linprog

        size = len(self.bounded)
        values = np.array([cut[0] - cut[1] @ cut[2] for cut in self.cuts])
        slopes = np.array([cut[1] for cut in self.cuts])
        # lower bound: min t s.t. t >= value_k + g_k (p - p_k), 0 <= p <= ceiling
        lower = linprog(
            np.r_[np.zeros(size), 1.0],
            A_ub=np.c_[slopes, -np.ones(len(values))],
            b_ub=-values,
            bounds=[(0.0, ceiling)] * size + [(None, None)],
            method="highs",
        )
        bound = float(lower.fun) if lower.status == 0 else -np.inf
        level = bound + 0.3 * (upper - bound)
        # projection: min s s.t. model(p) <= level, |p - best| <= s
        identity = np.eye(size)
        projection = linprog(
            np.r_[np.zeros(size), 1.0],
            A_ub=np.vstack(
                [
                    np.c_[slopes, np.zeros(len(values))],
                    np.c_[identity, -np.ones(size)],
                    np.c_[-identity, -np.ones(size)],
                ]
            ),
            b_ub=np.r_[level - values, best, -best],
            bounds=[(0.0, ceiling)] * size + [(0.0, None)],
            method="highs",
        )
        if projection.status != 0:
            return best.copy(), bound
        return np.clip(projection.x[:size], 0.0, ceiling), bound


def assign(
    value: np.ndarray,
    *,
    cost: np.ndarray,
    budget: np.ndarray,
    volume_cap: np.ndarray,
    max_iterations: int = 200,
    tolerance: float = 1e-5,
    coordinate_sweeps: int = 8,
    polish_limit: int = 20_000,
) -> Assignment:
    """Give each customer at most one campaign, maximising total value under the caps.

    ``value`` is customers x campaigns (NaN: not eligible); ``cost``, ``budget`` and
    ``volume_cap`` have one entry per campaign (``np.inf``: no cap). A customer is left
    out (``choice == -1``) when no campaign is worth a positive value. Prices start with
    up to ``coordinate_sweeps`` exact coordinate-descent sweeps, then a level bundle
    method (cutting planes solved by HiGHS, which cannot stall where coordinate descent
    does, on ties) runs until the certified gap is below ``tolerance`` or
    ``max_iterations`` dual evaluations are spent. If the gap is still above
    ``tolerance``, customers near a tie at the final prices (at most ``polish_limit``)
    are re-assigned exactly (:func:`_polish`). The gap is certified wherever it stops.
    """
    value, cost, budget, volume_cap = _validate(value, cost, budget, volume_cap)
    customers, campaigns = value.shape
    capacity = capacities(cost=cost, budget=budget, volume_cap=volume_cap, customers=customers)
    worth = np.where(np.isnan(value), -np.inf, value)
    active = np.flatnonzero((worth > 0).any(axis=1))
    # campaigns x active customers, contiguous per campaign; -inf where not worth anything
    positive = np.ascontiguousarray(np.where(worth[active] > 0, worth[active], -np.inf).T)
    # a cap binds only when fewer contacts are allowed than customers would take it
    takers = (positive > 0).sum(axis=1)
    bounded = np.flatnonzero(capacity < takers)
    dual = _Dual(positive, capacity, bounded)

    prices = np.zeros(campaigns)
    upper, reduced = dual.evaluate(prices)
    best_prices = prices.copy()
    choice_active, objective = _primal(positive, reduced, capacity)
    iterations = 1
    lower = -np.inf

    def consider(candidate: np.ndarray) -> None:
        nonlocal upper, best_prices, choice_active, objective, iterations
        bound, candidate_reduced = dual.evaluate(candidate)
        iterations += 1
        if bound < upper:
            upper, best_prices = bound, candidate.copy()
            primal_choice, primal_value = _primal(positive, candidate_reduced, capacity)
            if primal_value > objective:
                choice_active, objective = primal_choice, primal_value

    for _ in range(coordinate_sweeps):
        if _gap(upper, objective) <= tolerance or iterations >= max_iterations:
            break
        previous = upper
        prices = best_prices.copy()
        reduced = positive - prices[:, None]
        for j in bounded:
            advantage = positive[j] - _advantage(reduced, j)
            prices[j] = _price(advantage, int(capacity[j]))
            reduced[j] = positive[j] - prices[j]
        consider(prices)
        if upper >= previous * (1 - 1e-12) - TINY:
            break  # coordinate descent stalled: the bundle method takes over
    ceiling = float(positive.max()) if positive.size and len(bounded) else 0.0
    while (
        len(bounded)
        and _gap(upper, objective) > tolerance
        and iterations < max_iterations
        and (upper - lower) > tolerance * max(abs(upper), TINY)
    ):
        candidate, lower = dual.level_step(best_prices[bounded], upper, ceiling)
        full = best_prices.copy()
        full[bounded] = candidate
        consider(full)

    band = 1e-9 * max(float(np.abs(positive[np.isfinite(positive)]).max(initial=0.0)), 1.0)
    while _gap(upper, objective) > tolerance and band < np.inf:
        polished = _polish(
            positive, positive - best_prices[:, None], capacity, band=band, limit=polish_limit
        )
        if polished is None:
            break
        if polished[1] > objective:
            choice_active, objective = polished
        band = band * 100 if band < ceiling else np.inf

    choice = np.full(customers, -1, dtype=np.int64)
    choice[active] = choice_active
    if objective > upper + 1e-9 * max(abs(upper), 1.0):
        raise ArithmeticError(f"primal {objective} above the dual bound {upper}: a bug")
    upper = max(upper, objective)  # float round-off at the optimum only
    return Assignment(
        choice=choice,
        objective=objective,
        upper_bound=upper,
        gap=_gap(upper, objective),
        prices=best_prices,
        iterations=iterations,
        capacity=capacity,
    )


def _gap(upper_bound: float, objective: float) -> float:
    return (upper_bound - objective) / max(abs(upper_bound), TINY)

"""A generator of small random (valid) strategies for the evaluator property test."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import strategies as st

CUSTOMER = {
    "customer_id": "string",
    "x1": "number",
    "x2": "number",
    "s1": "string",
    "b1": "boolean",
}
ACCOUNT = {"a1": "number", "a2": "number", "flag": "boolean"}
STRINGS = ["a", "b", "c"]
CHANNELS = ["email", "sms", "branch"]
TREATMENTS = ["t_one", "t_two", "t_three", "t_four"]

# Hypothesis inputs for the random strategies: customers, accounts and contacts.
numbers = st.one_of(st.none(), st.integers(-3, 14).map(float), st.sampled_from([0.5, 2.25, 7.75]))
customer_rows = st.fixed_dictionaries(
    {
        "x1": numbers,
        "x2": numbers,
        "s1": st.one_of(st.none(), st.sampled_from(STRINGS)),
        "b1": st.one_of(st.none(), st.booleans()),
    }
)
account_rows = st.fixed_dictionaries(
    {"a1": numbers, "a2": numbers, "flag": st.one_of(st.none(), st.booleans())}
)


def contact_rows(days_ago: st.SearchStrategy) -> st.SearchStrategy:
    """One contact of the history, ``days_ago`` drawn from the given strategy."""
    return st.fixed_dictionaries(
        {
            "channel": st.sampled_from(CHANNELS),
            "treatment": st.sampled_from(TREATMENTS),
            "days_ago": days_ago,
            "declined": st.booleans(),
        }
    )


def _number_condition(rng: random.Random, names: list[str]) -> str:
    name = rng.choice(names)
    return f"{name} {rng.choice(['<', '<=', '>', '>='])} {rng.randint(-2, 12)}"


def _condition(rng: random.Random, over: bool) -> str:
    numbers = ["x1", "x2"] + (["acc.a1", "acc.a2"] if over else [])
    kind = rng.random()
    if kind < 0.5:
        return _number_condition(rng, numbers)
    if kind < 0.65:
        return f"s1 == '{rng.choice(STRINGS)}'"
    if kind < 0.75:
        return "b1" if not over or rng.random() < 0.5 else "acc.flag"
    if kind < 0.85:
        return f"x1 is null or {_number_condition(rng, numbers)}"
    return f"{_number_condition(rng, numbers)} and not {_condition(rng, over)}"


def _tree(rng: random.Random, depth: int, over: bool, values: list[Any], calls: list[str]) -> list:
    branches = []
    for _ in range(rng.randint(1, 3)):
        if depth > 0 and rng.random() < 0.4:
            outcome: Any = _tree(rng, depth - 1, over, values, calls)
        elif calls and rng.random() < 0.3:
            outcome = {"decision": rng.choice(values), "call": rng.choice(calls)}
        else:
            outcome = rng.choice(values)
        branches.append({"when": _condition(rng, over), "then": outcome})
    if rng.random() < 0.7:
        branches.append({"else": rng.choice(values)})
    return branches


def _bands(rng: random.Random) -> list:
    edges = sorted(rng.sample(range(-1, 12), rng.randint(1, 3)))
    bands = []
    low = None if rng.random() < 0.6 else edges[0] - 3
    for edge in edges:
        bands.append([low, edge])
        low = edge
    bands.append([low, None if rng.random() < 0.6 else low + 5])
    return bands


def _cell(rng: random.Random, kind: str) -> str:
    if rng.random() < 0.3:
        return "-"
    if kind == "string":
        return rng.choice([f"'{rng.choice(STRINGS)}'", "in ['a', 'b']", "is null", "!= 'c'"])
    low = rng.randint(-2, 10)
    return rng.choice(
        [
            f"{rng.choice(['<', '<=', '>', '>='])} {rng.randint(-2, 12)}",
            f"[{low}..{low + rng.randint(0, 5)})",
            f"({low}..{low + rng.randint(1, 5)}]",
            f"in {low}..{low + 2}",
            str(low),
            "is null",
        ]
    )


_TABLES = ["table_first", "table_collect", "table_accounts"]


def _decision_tables(rng: random.Random) -> dict[str, Any]:
    """A first-hit table, a collecting one and an iterative one over accounts."""
    inputs = [("x1", "number"), ("s1", "string"), ("x2 - x1", "number")]

    def rules(columns, values):
        return [
            {"when": [_cell(rng, kind) for _, kind in columns], "then": rng.choice(values)}
            for _ in range(rng.randint(1, 5))
        ]

    first = {
        "type": "decision_table",
        "output": "table_pick",
        "inputs": [text for text, _ in inputs],
        "rules": rules(inputs, ["p", "q", "r"]),
    }
    if rng.random() < 0.5:
        first["default"] = "none"
    collect = {
        "type": "decision_table",
        "output": "table_total",
        "hit_policy": "collect",
        "aggregate": rng.choice(["sum", "min", "max", "count"]),
        "inputs": ["x1", "s1"],
        "rules": rules(inputs[:2], [1, 2.5, -4, 10]),
    }
    if rng.random() < 0.3:
        collect["default"] = -1
    columns = [("acc.a1", "number"), ("x2", "number")]
    accounts = {
        "type": "decision_table",
        "over": "acc",
        "output": "acc.table_step",
        "hit_policy": rng.choice(["first", "collect"]),
        "inputs": [text for text, _ in columns],
        "rules": rules(columns, [0, 5, 50]),
    }
    if accounts["hit_policy"] == "collect":
        accounts["aggregate"] = rng.choice(["sum", "max"])
    return {"table_first": first, "table_collect": collect, "table_accounts": accounts}


def random_strategy(seed: int) -> dict:
    """A valid strategy using every construct, shaped by ``seed``."""
    rng = random.Random(seed)
    mechanisms: dict[str, Any] = {}
    customer = {name: {"type": kind} for name, kind in CUSTOMER.items()}
    account = {name: {"type": kind} for name, kind in ACCOUNT.items()}
    derived = {
        "score": "number",
        "band": "string",
        "cell": "number",
        "n_hits": "number",
        "total": "number",
        "low": "number",
        "high": "number",
        "avg": "number",
        "any_hit": "boolean",
        "all_hit": "boolean",
        "pick": "string",
        "prob": "number",
        "exit_value": "number",
        "tree2": "string",
        "deposits": "number",
        "calc_number": "number",
        "calc_text": "string",
        "calc_flag": "boolean",
        "table_pick": "string",
        "table_total": "number",
    }
    for name, kind in derived.items():
        customer[name] = {"type": kind, "derived": True}
    for name, kind in {
        "decision": "string",
        "amount": "number",
        "points": "number",
        "new_a1": "number",
        "table_step": "number",
    }.items():
        account[name] = {"type": kind, "derived": True}

    mechanisms["acc_matrix"] = {
        "type": "matrix",
        "over": "acc",
        "output": "acc.amount",
        "rows": {"attribute": "acc.a1", "bands": (rows := _bands(rng))},
        "columns": {"attribute": "x2", "bands": (cols := _bands(rng))},
        "values": [[rng.randint(0, 9) * 10 for _ in cols] for _ in rows],
        "default": rng.choice([0, -1]),
    }
    mechanisms["acc_tree"] = {
        "type": "decision_tree",
        "over": "acc",
        "output": "acc.decision",
        "tree": _tree(rng, 2, True, ["D1", "D2", "D3"], ["acc_matrix"]),
    }
    mechanisms["acc_tree_b"] = {
        "type": "decision_tree",
        "over": "acc",
        "output": "acc.decision",
        "tree": _tree(rng, 1, True, ["D1", "D4"], []),
    }
    mechanisms["acc_score"] = {
        "type": "scorecard",
        "over": "acc",
        "output": "acc.points",
        "base": rng.randint(0, 50),
        "characteristics": [
            {
                "attribute": "acc.a2",
                "bins": [{"range": b, "points": rng.randint(-5, 5)} for b in _bands(rng)],
                "missing": rng.randint(-3, 3),
            },
        ],
    }
    mechanisms["scorecard"] = {
        "type": "scorecard",
        "output": "score",
        "base": rng.randint(0, 100),
        "characteristics": [
            {
                "attribute": "x1",
                "bins": [{"range": b, "points": rng.randint(-20, 20)} for b in _bands(rng)],
                "missing": rng.randint(-5, 5),
                "other": rng.randint(-2, 2),
            },
            {
                "attribute": "s1",
                "categories": {s: rng.randint(-10, 10) for s in rng.sample(STRINGS, 2)},
                "other": rng.randint(-3, 3),
                "missing": 1,
            },
        ],
    }
    mechanisms["band_tree"] = {
        "type": "decision_tree",
        "output": "band",
        "tree": _tree(rng, 2, False, ["low", "mid", "high"], []),
    }
    mechanisms["tree2"] = {
        "type": "decision_tree",
        "output": "tree2",
        "tree": _tree(rng, 1, False, ["p", "q"], []),
    }
    mechanisms["cell_matrix"] = {
        "type": "matrix",
        "output": "cell",
        "rows": {"attribute": "s1", "categories": rng.sample(STRINGS, 2)},
        "columns": {"expression": "x1 + x2", "bands": (c2 := _bands(rng))},
        "values": [[rng.randint(0, 5) for _ in c2] for _ in range(2)],
    }
    for name, function, value in [
        ("n_hits", "count", "acc.decision == 'D1' or acc.flag"),
        ("total", "sum", "acc.a1 * 2"),
        ("low", "min", "acc.amount"),
        ("high", "max", "acc.points"),
        ("avg", "mean", "acc.a2"),
        ("any_hit", "any", "acc.a1 > x1"),
        ("all_hit", "all", "acc.decision != 'D2'"),
    ]:
        spec = {
            "type": "aggregate",
            "over": "acc",
            "function": function,
            "value": value,
            "output": name,
        }
        if rng.random() < 0.3:
            spec["where"] = _condition(rng, True)
        mechanisms["agg_" + name] = spec
    mechanisms["dep_total"] = {
        "type": "aggregate",
        "over": "dep",
        "function": "sum",
        "value": "dep.bal",
        "output": "deposits",
    }
    mechanisms["dep_band"] = {
        "type": "decision_tree",
        "over": "dep",
        "output": "dep.band",
        "tree": [{"when": f"dep.bal > {rng.randint(0, 10)}", "then": "rich"}, {"else": "poor"}],
    }
    mechanisms["prob_model"] = {
        "type": "model_score",
        "model": "m1",
        "input": "x2",
        "output": "prob",
        "default": rng.choice([0.5, None]),
    }
    mechanisms["pick_list"] = {
        "type": "list_processor",
        "output": "pick",
        "items": [
            {
                "id": f"i{k}",
                "when": _condition(rng, False),
                "score": rng.choice(["x1", "x2 * 2", "score", "3"]),
            }
            for k in range(3)
        ],
    }
    mechanisms["exit"] = {
        "type": "user_exit",
        "function": "tests.clipped_sum",
        "inputs": ["x1", "total"],
        "output": "exit_value",
    }
    calculations = {
        "calc_number": rng.choice(["x1 * 1.05 + x2", "round(x1 / x2, 2)", "coalesce(x1, 0) - 3"]),
        "calc_text": rng.choice(["if(x1 > x2, s1, 'none')", "upper(s1)", "band"]),
        "calc_flag": _condition(rng, False),
    }
    for name, value in calculations.items():
        mechanisms[name] = {"type": "calculation", "value": value, "output": name}
    mechanisms["acc_calc"] = {
        "type": "calculation",
        "over": "acc",
        "value": rng.choice(["acc.a1 * 1.05", "if(acc.flag, acc.a1 + x1, null)", "acc.a2 % 3"]),
        "output": "acc.new_a1",
    }
    mechanisms.update(_decision_tables(rng))
    segments = [
        {"name": "seg_a", "when": _condition(rng, False)},
        {"name": "seg_b", "when": _condition(rng, False)},
        {"name": "seg_c"},
    ]
    split = rng.randint(0, 100)
    test_groups = {
        "salt": f"salt-{seed}",
        "by_segment": {
            "seg_a": {"champion": split, "challenger": 100 - split},
            "seg_b": {"champion": 50, "challenger": 25, "holdout": 25},
        },
    }
    processes = {
        "accounts": {
            "by_test_group": {
                "champion": "acc_tree",
                "challenger": ["acc_tree_b", "acc_matrix"],
                "default": "acc_tree",
            }
        },
        "account_points": {"mechanism": "acc_score"},
        "customer": {
            "mechanisms": ["scorecard", "band_tree", "tree2", "cell_matrix", "prob_model"]
        },
        "summary": {
            "mechanisms": [k for k in mechanisms if k.startswith("agg_")]
            + ["dep_band", "dep_total"]
        },
        "finish": {"mechanisms": ["pick_list", "exit", *calculations, "acc_calc", *_TABLES]},
    }
    process_order = ["accounts", "account_points", "customer", "summary", "finish"]
    if rng.random() < 0.3:
        process_order.remove("account_points")
        # nothing then writes acc.points: reading it would be a load error (dataflow check)
        mechanisms["agg_high"]["value"] = "acc.a2"
    groups = [
        {
            "scope": {},
            "rules": [{"treatment": t, "when": _condition(rng, False)} for t in TREATMENTS],
        }
    ]
    for _ in range(rng.randint(0, 4)):
        scope = {}
        if rng.random() < 0.5:
            scope["segment"] = rng.choice(["seg_a", "seg_b", "seg_c"])
        if rng.random() < 0.5:
            scope["channel"] = rng.choice(CHANNELS)
        if rng.random() < 0.3:
            scope["interaction_type"] = rng.choice(["outbound", "inbound"])
        if any(g["scope"] == scope for g in groups):
            continue
        rules = []
        for t in rng.sample(TREATMENTS, rng.randint(1, 3)):
            rule: dict[str, Any] = {"treatment": t}
            if rng.random() < 0.3:
                rule["exclude"] = True
            elif rng.random() < 0.7:
                rule["when"] = _condition(rng, False)
            rules.append(rule)
        groups.append({"scope": scope, "rules": rules})
    catalogue = {
        "t_one": {"propensity": "prob", "value": 100, "margin": 0.3},
        "t_two": {
            "propensity": "x2 / 10",
            "value": "x1",
            "margin": 0.5,
            "uplift": "x1 / 100",
            "formula": "uplift * margin * value",
        },
        "t_three": {
            "propensity": 0.2,
            "value": "score",
            "margin": 0.1,
            "cost": 2,
            "formula": "propensity * value - cost",
        },
        "t_four": {"propensity": 0.1, "value": 50, "margin": 1},
    }
    return {
        "strategy": f"random_{seed}",
        "version": 1,
        "data_dictionary": {
            "customer": customer,
            "accounts": {
                "acc": {"max_iterations": 5, "attributes": account},
                "dep": {
                    "attributes": {
                        "bal": {"type": "number"},
                        "band": {"type": "string", "derived": True},
                    }
                },
            },
        },
        "channels": CHANNELS,
        "interaction_types": ["outbound", "inbound"],
        "events": {
            "review": {
                "interaction_type": rng.choice(["outbound", "inbound"]),
                "processes": process_order,
            }
        },
        "segments": segments,
        "test_groups": test_groups,
        "processes": processes,
        "mechanisms": mechanisms,
        "categories": {
            "rules": [
                {"name": "gold", "when": _condition(rng, False)},
                {"name": "silver", "when": "score > 50"},
                {"name": "bronze"},
            ],
            "account_actions": [
                {"category": "gold", "account_type": "acc", "when": "acc.flag", "action": "waive"},
                {
                    "category": rng.choice(["gold", "silver"]),
                    "account_type": "acc",
                    "action": "review",
                },
                {
                    "category": "bronze",
                    "account_type": "dep",
                    "when": "dep.band == 'rich'",
                    "action": "upsell",
                },
            ],
        },
        "treatments": {"catalogue": catalogue, "groups": groups},
        "policies": {
            "eligibility": [
                {
                    "treatments": ["t_one", "t_two"],
                    "when": _condition(rng, False),
                    "reason": "not_eligible",
                }
            ],
            "suitability": [
                {"treatments": "*", "when": "not (b1 and x1 > 10)", "reason": "unsuitable"}
            ],
            "contact": {
                "caps": [
                    {"channel": rng.choice(CHANNELS), "max": rng.randint(1, 3), "period_days": 7},
                    {"channel": "*", "max": rng.randint(2, 6), "period_days": 30},
                ],
                "suppress_after_declines": {"declines": rng.randint(1, 3), "within_days": 60},
            },
        },
        "arbitration": {
            "formula": "propensity * value * lever",
            "levers": {"t_one": 1.5, "default": 1.0},
            "max_per_channel": rng.randint(1, 3),
        },
    }


def clipped_sum(x1, total):
    """The user exit random strategies call (per record)."""
    if x1 is None:
        return None
    return min(x1 + (total or 0.0), 20.0)

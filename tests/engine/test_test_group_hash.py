"""The test-group hash can be reproduced from FORMAT.md alone.

The worked example's numbers are read from the document and recomputed here with
``hashlib`` and plain integers (no engine code), then compared with both evaluators.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pandas as pd
import pytest

from cx_pipelines.engine import evaluate_batch, evaluate_customer, load_strategy

ENGINE = Path(__file__).resolve().parents[2] / "cx_pipelines" / "engine"
FORMAT = (ENGINE / "FORMAT.md").read_text()
MASK = (1 << 64) - 1


def _example() -> dict:
    match = re.search(r"salt `([^`]+)`, customer id `([^`]+)`", FORMAT)
    assert match, "FORMAT.md lost its worked example"
    rows = re.findall(r"^\s*\| (.+?) \| `(0x[0-9a-f]+|\d+)` \|$", FORMAT, flags=re.M)
    values = {label: int(value, 0) for label, value in rows}
    u = re.search(r"`u = (\d+) \* 100 / 2\^53 = ([0-9.]+)`", FORMAT)
    other = re.search(r"customer `([^`]+)` \(u = ([0-9.]+)\) is `(\w+)`", FORMAT)
    return {
        "salt": match.group(1),
        "id": match.group(2),
        "values": values,
        "top": int(u.group(1)),
        "u": u.group(2),
        "other": (other.group(1), other.group(2), other.group(3)),
    }


def _independent_steps(salt: str, key: str) -> list[int]:
    """The document's recipe, step by step, in plain Python."""
    digest = int.from_bytes(hashlib.blake2b(salt.encode("utf-8"), digest_size=8).digest(), "big")
    h = 0xCBF29CE484222325 ^ digest
    steps = [digest, h]
    for byte in key.encode("utf-8"):
        h = ((h ^ byte) * 0x100000001B3) & MASK
        steps.append(h)
    h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    steps.append(h)
    h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & MASK
    steps.append(h)
    h ^= h >> 31
    steps += [h, h >> 11]
    return steps


def _u(salt: str, key: str) -> float:
    return float(_independent_steps(salt, key)[-1]) * (100 / 2**53)


def test_format_md_worked_example_recomputes_step_by_step():
    example = _example()
    documented = list(example["values"].values())
    assert len(documented) == 9  # S, seed, three bytes of C13, three mix steps, h >> 11
    assert _independent_steps(example["salt"], example["id"]) == documented
    assert example["top"] == documented[-1]
    assert repr(_u(example["salt"], example["id"])) == example["u"]
    other, other_u, _ = example["other"]
    assert repr(_u(example["salt"], other)) == other_u


def test_the_engine_draws_what_format_md_documents():
    """The trace's draw (rounded to 6 places) is the documented u, for every id spelling."""
    strategy = load_strategy(ENGINE / "examples" / "small_bank.yaml")
    example = _example()
    customer = strategy.golden_cases[0].data["customer"]
    other, other_u, _ = example["other"]
    for customer_id, u in [(example["id"], example["u"])] + [
        (same, other_u) for same in (other, int(other), float(other))
    ]:
        record = evaluate_customer(
            strategy,
            event="periodic_review",
            customer={**customer, "customer_id": customer_id},
        )
        assert record["trace"]["test_group_draw"] == round(float(u), 6)


@pytest.mark.parametrize("income, segment", [(150000, "affluent"), (50000, "mass")])
def test_both_evaluators_put_the_example_customers_in_the_documented_groups(income, segment):
    strategy = load_strategy(ENGINE / "examples" / "small_bank.yaml")
    example = _example()
    assert strategy.salt == example["salt"]
    case = strategy.golden_cases[0].data
    other, _, other_group = example["other"]
    for customer_id, expected in ((example["id"], "challenger"), (other, other_group)):
        customer = {**case["customer"], "customer_id": customer_id, "income": income}
        record = evaluate_customer(strategy, event="periodic_review", customer=customer)
        batch = evaluate_batch(
            strategy, event="periodic_review", customers=pd.DataFrame([customer]), trace=False
        )
        assert record["segment"] == segment
        assert record["test_group"] == expected
        assert batch.customers["test_group"].tolist() == [expected]

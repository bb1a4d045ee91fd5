"""User exits of the small_bank example strategy."""

from __future__ import annotations

import math

import numpy as np

from cx_pipelines.engine.language.user_exits import register_user_exit


def hardship(income: float, total_card_balance: float) -> bool:
    """Low income carrying a large card balance."""
    if income is None or math.isnan(income):
        return False
    return bool(income < 20000 and (total_card_balance or 0.0) > 5000)


def hardship_batch(income: np.ndarray, total_card_balance: np.ndarray) -> np.ndarray:
    balance = np.nan_to_num(total_card_balance, nan=0.0)
    with np.errstate(invalid="ignore"):
        return (income < 20000) & (balance > 5000) & ~np.isnan(income)


register_user_exit("small_bank.hardship", hardship, batch_function=hardship_batch)

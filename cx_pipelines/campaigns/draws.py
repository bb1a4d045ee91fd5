"""Deterministic uniform draws from a customer id and a salt (control groups, exploration).

``u = splitmix64(customer_id + splitmix64(salt_key)) / 2**64`` with ``salt_key`` the first
8 bytes (big-endian) of ``sha256(salt)`` and all arithmetic modulo 2**64. The same customer
and salt give the same ``u`` on every run and machine; different salts are independent.
Example: ``uniform([1], "card_young_mobile")`` is the same number in every process.
"""

from __future__ import annotations

import hashlib

import numpy as np

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def splitmix64(values: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser of ``values + golden gamma`` (uint64, wrapping)."""
    with np.errstate(over="ignore"):
        z = values.astype(np.uint64) + _GAMMA
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        return z ^ (z >> np.uint64(31))


def salt_key(salt: str) -> np.uint64:
    return np.uint64(int.from_bytes(hashlib.sha256(salt.encode("utf-8")).digest()[:8], "big"))


def uniform(customer_ids: np.ndarray, salt: str) -> np.ndarray:
    """One uniform in [0, 1) per customer id (whole numbers), fixed by the salt."""
    ids = np.asarray(customer_ids).astype(np.int64).view(np.uint64)
    key = splitmix64(np.array([salt_key(salt)], dtype=np.uint64))[0]
    with np.errstate(over="ignore"):
        mixed = splitmix64(ids + key)
    return (mixed >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def contact_ids(customer_ids: np.ndarray, *, campaign_id: str, run_key: str) -> np.ndarray:
    """Deterministic positive 63-bit contact ids from (campaign_id, run_key, customer_id)."""
    ids = np.asarray(customer_ids).astype(np.int64).view(np.uint64)
    key = splitmix64(np.array([salt_key(f"{campaign_id}\x1f{run_key}")], dtype=np.uint64))[0]
    with np.errstate(over="ignore"):
        mixed = splitmix64(splitmix64(ids ^ key) + key)
    return (mixed >> np.uint64(1)).astype(np.int64)

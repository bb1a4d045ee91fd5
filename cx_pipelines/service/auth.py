"""API keys (stored hashed, configured outside the repository), scopes, and a rate limit
per key.

A key is a random token given to a client once (``cx api-key``); the service keeps only
its SHA-256. Keys come from ``CX_API_KEYS_FILE`` (JSON or YAML: a list of
``{name, sha256, scopes, rate_per_second?}``) and/or ``CX_API_KEYS``
(``name:sha256:decide+respond[:rate];...``). Scopes: ``decide`` (decisions, profiles),
``respond`` (outcomes), ``admin`` (reload). The limit is a token bucket per key and per
worker process (with ``--workers N`` a key may make N times the rate in all).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

SCOPES = ("decide", "respond", "admin")
_REPOSITORY = Path(__file__).resolve().parents[2]


class ApiKeyError(ValueError):
    """The API key configuration is missing or malformed (says where)."""


def hash_key(key: str) -> str:
    """The SHA-256 (hex) the service stores for a key."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """A fresh random key (256 bits)."""
    return "cx_" + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class ApiKey:
    name: str
    sha256: str
    scopes: frozenset[str]
    rate_per_second: float | None = None


def _checked(entry: dict, where: str) -> ApiKey:
    missing = [field for field in ("name", "sha256", "scopes") if not entry.get(field)]
    if missing:
        raise ApiKeyError(f"{where}: API key entry lacks {', '.join(missing)}")
    digest = str(entry["sha256"]).lower()
    if len(digest) != 64 or any(ch not in "0123456789abcdef" for ch in digest):
        raise ApiKeyError(f"{where}: sha256 of key {entry['name']!r} is not 64 hex digits")
    scopes = entry["scopes"]
    scopes = scopes.replace("+", ",").split(",") if isinstance(scopes, str) else list(scopes)
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise ApiKeyError(
            f"{where}: key {entry['name']!r} has unknown scope {unknown[0]!r} "
            f"(known: {', '.join(SCOPES)})"
        )
    rate = entry.get("rate_per_second")
    return ApiKey(str(entry["name"]), digest, frozenset(scopes), float(rate) if rate else None)


def load_keys(file: str, text: str) -> dict[str, ApiKey]:
    """Keys by hash from a file and/or environment text; refuses a file in the repository."""
    keys: list[ApiKey] = []
    if file:
        path = Path(file).resolve()
        if path.is_relative_to(_REPOSITORY) and (_REPOSITORY / ".git").exists():
            raise ApiKeyError(f"CX_API_KEYS_FILE {path} is inside the repository; keep it outside")
        if not path.is_file():
            raise ApiKeyError(f"CX_API_KEYS_FILE {path} does not exist")
        entries = yaml.safe_load(path.read_text()) or []
        if not isinstance(entries, list):
            raise ApiKeyError(f"{path}: expected a list of key entries")
        keys += [_checked(entry, f"{path}[{index}]") for index, entry in enumerate(entries)]
    for index, item in enumerate(part for part in text.split(";") if part.strip()):
        fields = item.strip().split(":")
        if len(fields) not in (3, 4):
            raise ApiKeyError(f"CX_API_KEYS entry {index + 1}: expected name:sha256:scopes[:rate]")
        entry = {"name": fields[0], "sha256": fields[1], "scopes": fields[2]}
        if len(fields) == 4:
            entry["rate_per_second"] = fields[3]
        keys.append(_checked(entry, f"CX_API_KEYS entry {index + 1}"))
    if not keys:
        raise ApiKeyError(
            "no API keys configured: set CX_API_KEYS_FILE or CX_API_KEYS (cx api-key)"
        )
    return {key.sha256: key for key in keys}


class RateLimiter:
    """Token buckets by key name: ``rate`` requests per second, bursts up to one second's."""

    def __init__(self) -> None:
        self._buckets: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def allow(self, name: str, rate: float, cost: float = 1.0) -> float:
        """0 when allowed, else the seconds to wait before retrying."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(name, (rate, now))
            tokens = min(rate, tokens + (now - last) * rate)
            if tokens >= cost:
                self._buckets[name] = [tokens - cost, now]
                return 0.0
            self._buckets[name] = [tokens, now]
            return (cost - tokens) / rate

"""What targeting reads about the population: rule attributes, scores and contact history.

* :func:`population_attributes` — one row per customer who joined by the decision date:
  the attributes of :data:`cx_pipelines.campaigns.rules.ATTRIBUTES`, from the training
  features (``cx_pipelines.ml.training_data.customer_features``) as of the decision date,
  the behavioural ``segment`` when ``customer_segments`` is given, and a few model scores.
* :func:`contact_history` — past treated and control contacts: ``offer_history`` plus the
  campaigns' ``interaction_results`` when that table exists, plus the real-time service's
  contacts from its decision log (:func:`service_contacts`), so caps hold across batch
  and real time (the service counts the batch's contacts through the online store).
* :func:`contact_policy` — the strategy's engagement policies applied to that history:
  a customer is blocked on a channel when its treated contacts on that channel (or on
  every channel, for a ``"*"`` cap) within the cap's period reach the cap's ``max``, and
  for an offer when its declines (treated contacts it did not respond to) of that offer
  within ``within_days`` reach ``declines``. Only contacts before the decision date count.
  Vectorised, one pass over the history (no per-customer loop), so it stays flat as the
  loop's history grows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.json as pajson

from cx_pipelines import config
from cx_pipelines.campaigns.catalog import Campaign
from cx_pipelines.campaigns.rules import ATTRIBUTES
from cx_pipelines.ml import training_data

SCORE_ATTRIBUTES = ("attrition_risk", "probability_alive", "clv")


def population_attributes(
    customers: pd.DataFrame,
    accounts: pd.DataFrame,
    transactions: pd.DataFrame,
    *,
    as_of: pd.Timestamp,
    customer_scores: pd.DataFrame,
    segments: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Rule attributes of every customer who joined by ``as_of`` (sorted by customer_id)."""
    frame = training_data.customer_features(customers, accounts, transactions, as_of=as_of)
    scores = customer_scores.set_index("customer_id")
    for column in SCORE_ATTRIBUTES:
        source = scores[column] if column in scores else pd.Series(dtype=float)
        frame[column] = frame["customer_id"].map(source).astype(float)
    if segments is not None and "segment" in segments:
        frame["segment"] = frame["customer_id"].map(segments.set_index("customer_id")["segment"])
    else:
        frame["segment"] = None
    frame = frame.sort_values("customer_id", kind="stable").reset_index(drop=True)
    return frame[["customer_id", *ATTRIBUTES]]


def contact_history(
    offer_history: pd.DataFrame,
    interaction_results: pd.DataFrame | None,
    service: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Every past contact (treated and control): offer history plus interaction results,
    plus the real-time service's contacts (:func:`service_contacts`) not already answered
    in ``interaction_results`` (a service response is matched there by its decision id).

    Column ``answered`` says whether the contact's outcome is known: a service contact
    still waiting for one is no decline (and no positive).
    """
    history = training_data.contacts(offer_history, interaction_results)
    history["answered"] = True
    if service is None or service.empty:
        return history
    if interaction_results is not None and "contact_id" in interaction_results:
        known = interaction_results["contact_id"].astype(str)
        service = service[~service["contact_id"].isin(known)]
    extra = service.reindex(columns=history.columns)
    extra = extra.astype({"treated": bool, "responded": bool, "answered": bool})
    return pd.concat([history, extra], ignore_index=True)


SERVICE_COLUMNS = (
    "contact_id",
    "campaign_id",
    "customer_id",
    "offer_type",
    "channel",
    "treated",
    "contacted_at",
    "responded",
    "answered",
)


SERVICE_CAMPAIGN = "realtime"
"""The campaign id the service gives its decisions (``cx_pipelines.service.decide``)."""

_SERVICE_DTYPES = {
    "contact_id": "str",
    "campaign_id": "str",
    "customer_id": "int64",
    "offer_type": "object",
    "channel": "str",
    "treated": "bool",
    "contacted_at": "datetime64[us]",
    "responded": "bool",
    "answered": "bool",
}


_LOG_SCHEMA = pa.schema(
    [
        ("decision_id", pa.string()),
        ("customer_id", pa.string()),
        ("channel", pa.string()),
        ("offer_type", pa.string()),
        ("campaign_id", pa.string()),
        ("rank", pa.float64()),
        ("decided_at", pa.string()),
        ("known_customer", pa.bool_()),
        ("contact_recorded", pa.bool_()),
    ]
)


def _log_entries(path: Path) -> pd.DataFrame:
    """The contact fields of one service log file (pyarrow's JSON reader; line by line,
    skipping a line cut short or not an object, if the file does not parse whole)."""
    options = pajson.ParseOptions(explicit_schema=_LOG_SCHEMA, unexpected_field_behavior="ignore")
    try:
        return pajson.read_json(path, parse_options=options).to_pandas()
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    records = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a write cut short: that decision was never acknowledged
            if isinstance(record, dict):
                records.append({name: record.get(name) for name in _LOG_SCHEMA.names})
    return pd.DataFrame(records, columns=_LOG_SCHEMA.names)


def service_contacts(folder: Path | None = None) -> pd.DataFrame:
    """The contacts the real-time service made, from its decision log (INTERFACES §4).

    A logged decision is a contact when it presented a treatment (``rank`` set) to a known
    customer (``known_customer`` not false) — what the service records in the online
    store's contact counters — unless the entry says ``contact_recorded: false``. One row
    per decision id (columns :data:`SERVICE_COLUMNS`, ``treated``, not yet ``answered``).
    """
    folder = folder or config.decision_log_dir()
    files = sorted(folder.glob("*.jsonl")) if folder.is_dir() else []
    frames = [frame for frame in map(_log_entries, files) if len(frame)]
    if not frames:
        return pd.DataFrame(
            {name: pd.Series(dtype=dtype) for name, dtype in _SERVICE_DTYPES.items()}
        )
    log = pd.concat(frames, ignore_index=True)
    customer = pd.to_numeric(log["customer_id"], errors="coerce")
    decided = pd.to_datetime(log["decided_at"], errors="coerce", utc=True, format="ISO8601")
    contact = (
        log["decision_id"].notna()
        & log["rank"].notna()
        & log["known_customer"].ne(False)
        & log["contact_recorded"].ne(False)
        & log["channel"].notna()
        & customer.notna()
        & decided.notna()
    )
    frame = pd.DataFrame(
        {
            "contact_id": log["decision_id"].astype(str),
            "campaign_id": log["campaign_id"].fillna(SERVICE_CAMPAIGN).astype(str),
            "customer_id": customer,
            "offer_type": log["offer_type"],
            "channel": log["channel"],
            "treated": True,
            "contacted_at": decided.dt.tz_localize(None),
            "responded": False,
            "answered": False,
        }
    )[contact.to_numpy()]
    frame = frame.drop_duplicates("contact_id", keep="first").reset_index(drop=True)
    return frame.astype(_SERVICE_DTYPES)


@dataclass(frozen=True)
class PolicyOutcome:
    """Which customers each campaign's engagement policies allow, and why not."""

    allowed: np.ndarray  # customers x campaigns, bool
    reasons: dict[str, dict[str, int]]  # campaign_id -> reason -> customers blocked


def contact_policy(
    customer_ids: np.ndarray,
    campaigns: list[Campaign],
    history: pd.DataFrame,
    *,
    decision_date: pd.Timestamp,
    caps: list[tuple[str, int, float]],
    decline_limit: tuple[int, float] | None,
) -> PolicyOutcome:
    """Apply contact caps ``(channel or "*", max, period_days)`` and decline suppression.

    One pass over the history: each contact's customer position, channel and offer codes
    are computed once, then every cap is a ``bincount`` of the contacts in its window.
    A decline is a treated contact whose outcome is known (``answered``, true when the
    column is absent) and was not a response.
    """
    customers = len(customer_ids)
    allowed = np.ones((customers, len(campaigns)), dtype=bool)
    reasons: dict[str, dict[str, int]] = {c.campaign_id: {} for c in campaigns}
    windows = [period for _, _, period in caps] + ([decline_limit[1]] if decline_limit else [])
    if not windows or not campaigns:
        return PolicyOutcome(allowed=allowed, reasons=reasons)
    # the one pass: treated contacts inside the longest window before the decision date
    at = pd.to_datetime(history["contacted_at"]).to_numpy()
    earliest = np.datetime64(decision_date - pd.Timedelta(days=max(windows)))
    rows = np.flatnonzero(
        history["treated"].to_numpy(bool) & (at < np.datetime64(decision_date)) & (at >= earliest)
    )
    position = pd.Index(customer_ids).get_indexer(history["customer_id"].to_numpy()[rows])
    rows, position = rows[position >= 0], position[position >= 0]
    at = at[rows]
    # factorise the window's rows only (a str column is Arrow-backed: no object copy of it all)
    channel_codes, channels = pd.factorize(history["channel"].take(rows))

    def since(days: float) -> np.ndarray:
        return at >= np.datetime64(decision_date - pd.Timedelta(days=days))

    for channel, maximum, period_days in caps:
        window = since(period_days)
        if channel != "*":
            window &= channel_codes == _code(channels, channel)
        full = np.bincount(position[window], minlength=customers) >= maximum
        for column, campaign in enumerate(campaigns):
            if channel in ("*", campaign.channel):
                reason = f"contact cap {channel}: {maximum} per {period_days:g} days"
                _block(allowed, reasons, column, campaign, full, reason)

    if decline_limit is not None:
        declines, within_days = decline_limit
        answered = (
            history["answered"].to_numpy(bool)[rows]
            if "answered" in history
            else np.ones(len(rows), dtype=bool)
        )
        window = since(within_days) & ~history["responded"].to_numpy(bool)[rows] & answered
        offer_codes, offers = pd.factorize(history["offer_type"].take(rows))
        window &= offer_codes >= 0
        flat = np.bincount(
            position[window] * max(len(offers), 1) + offer_codes[window],
            minlength=customers * max(len(offers), 1),
        ).reshape(customers, max(len(offers), 1))
        for column, campaign in enumerate(campaigns):
            code = _code(offers, campaign.offer)
            if code < 0:
                continue
            suppressed = flat[:, code] >= declines
            reason = f"suppressed: {declines} declines of {campaign.offer} in {within_days:g} days"
            _block(allowed, reasons, column, campaign, suppressed, reason)
    return PolicyOutcome(allowed=allowed, reasons=reasons)


def _code(uniques: pd.Index | np.ndarray, value: str) -> int:
    """Position of ``value`` among factorised ``uniques``; -1 when absent."""
    matches = np.flatnonzero(np.asarray(uniques, dtype=object) == value)
    return int(matches[0]) if len(matches) else -1


def _block(allowed, reasons, column: int, campaign: Campaign, blocked, reason: str) -> None:
    newly = blocked & allowed[:, column]
    if newly.any():
        reasons[campaign.campaign_id][reason] = int(newly.sum())
    allowed[:, column] &= ~blocked

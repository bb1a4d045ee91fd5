"""The customer simulator: the synthetic world's customers answering the platform's decisions.

It reads one export run's ``decisions.parquet`` (every decided row, treated and control)
and answers each row from the ground truth in ``truth.parquet``: a treated customer takes
the offer up with ``p_treated[offer, channel]`` lowered by contact fatigue, a control
customer (not contacted) with ``p_control[offer]``. Revenue follows the world's revenue
model (offer value × (income / 60k)^0.2 × log-normal noise, as in ``offers.py``), and the
outcome arrives one to seven days after the decision. The answers go to
``$CX_HOME/inbox/`` as one Parquet file per export run, in the format the feedback domain
ingests (``offer_responses`` columns).

Contact fatigue is a realism addition on top of the world's response model, which it does
not change: every treated contact of the same customer in the ``FATIGUE_WINDOW_DAYS``
before a decision lowers the treated log-odds by ``FATIGUE_LOG_ODDS_PER_CONTACT``. It makes
the loop's job harder, never easier: contacting the same good customers cycle after cycle
pays less than the models (trained on one-off campaigns) predict.

Draws are seeded per (seed, export run) and made in ``contact_id`` order, so answering the
same export twice writes the same file, whatever the row order of the decisions. An export
run is one campaign's rows of one targeting run (``exports/<campaign>/<run_key>/``), and
every campaign of a decision date shares the run key, so the stream is keyed by the run key
*and* the campaign(s) (:func:`run_generator`). Keyed by the run key alone (before
2026-12-01) every campaign of a date drew the same uniforms in the same order: the k-th
contact of one campaign answered with the same uniform as the k-th of every other, which
left each row's probability right but tied the campaigns' outcomes together (their totals
correlated, so a sum over campaigns varied more than independent customers allow and
more than any per-customer interval says).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import sqlalchemy as sa

from cx_pipelines import config
from cx_pipelines.feedback.inbox import RESULT_COLUMNS
from cx_pipelines.source_schema import OFFER_CHANNELS, OFFER_TYPES
from cx_pipelines.world import population as pop

FATIGUE_WINDOW_DAYS = 28
"""Treated contacts this many days before a decision count towards fatigue."""

FATIGUE_LOG_ODDS_PER_CONTACT = 0.35
"""Log-odds taken off the treated response per recent treated contact."""

RESPONSE_DELAY_DAYS = (1.0, 7.0)
"""An outcome is recorded uniformly between one and seven days after the decision."""

REVENUE_NOISE_SIGMA = 0.3
"""Log-normal noise of the revenue of one response (the world's revenue model)."""

DECISION_COLUMNS = (
    "contact_id",
    "run_key",
    "campaign_id",
    "customer_id",
    "offer_type",
    "channel",
    "group",
    "decided_at",
)


class SimulatorError(ValueError):
    """The simulator cannot answer these decisions (missing truth, unknown customer or value)."""


@dataclass(frozen=True)
class WorldTruth:
    """The response truth of every customer, row-aligned on sorted ``customer_id``."""

    customer_id: np.ndarray
    p_control: np.ndarray  # customers × offers
    p_treated: np.ndarray  # customers × offers × channels
    annual_income: np.ndarray  # customers; drives revenue, never written anywhere

    @classmethod
    def load(cls, *, truth_path: Path | None = None, source_url: str | None = None) -> WorldTruth:
        """Read ``truth.parquet`` and the customers' incomes from the source system."""
        path = truth_path or config.world_dir() / "truth.parquet"
        if not path.exists():
            raise SimulatorError(
                f"no ground truth at {path}: the simulator plays a synthetic world; "
                "run `cx generate` first (a loaded real data set has no truth)"
            )
        columns = ["customer_id"]
        columns += [f"p_control__{offer}__{OFFER_CHANNELS[0]}" for offer in OFFER_TYPES]
        columns += [
            f"p_treated__{offer}__{channel}" for offer in OFFER_TYPES for channel in OFFER_CHANNELS
        ]
        truth = pq.read_table(path, columns=columns).to_pandas().sort_values("customer_id")
        customer_id = truth["customer_id"].to_numpy(np.int64)
        p_control = truth[columns[1 : 1 + len(OFFER_TYPES)]].to_numpy(np.float64)
        p_treated = truth[columns[1 + len(OFFER_TYPES) :]].to_numpy(np.float64)
        p_treated = p_treated.reshape(len(truth), len(OFFER_TYPES), len(OFFER_CHANNELS))
        income = _incomes(source_url or config.source_url(), customer_id)
        return cls(customer_id, p_control, p_treated, income)

    def positions(self, customer_ids: np.ndarray) -> np.ndarray:
        """Row of each customer in the truth; :class:`SimulatorError` for unknown customers."""
        ids = np.asarray(customer_ids, dtype=np.int64)
        rows = np.searchsorted(self.customer_id, ids)
        rows = np.minimum(rows, len(self.customer_id) - 1)
        unknown = self.customer_id[rows] != ids
        if unknown.any():
            raise SimulatorError(
                f"{int(unknown.sum())} decided customer(s) are not in the world's truth, "
                f"e.g. customer_id {int(ids[unknown][0])}; was the world regenerated?"
            )
        return rows

    def control_probability(self, rows: np.ndarray, offers: np.ndarray) -> np.ndarray:
        """Take-up probability without contact."""
        return self.p_control[rows, offers]

    def treated_probability(
        self, rows: np.ndarray, offers: np.ndarray, channels: np.ndarray, recent: np.ndarray
    ) -> np.ndarray:
        """Take-up probability when contacted, after ``recent`` treated contacts (fatigue)."""
        base = np.clip(self.p_treated[rows, offers, channels], 1e-12, 1 - 1e-12)
        log_odds = np.log(base / (1 - base)) - FATIGUE_LOG_ODDS_PER_CONTACT * recent
        return 1.0 / (1.0 + np.exp(-log_odds))

    def offer_value(self, rows: np.ndarray, offers: np.ndarray) -> np.ndarray:
        """Median revenue of a response: offer value × (income / 60k)^0.2, as in the world."""
        values = np.array([pop.OFFER_VALUE[offer] for offer in OFFER_TYPES])[offers]
        return values * (np.maximum(self.annual_income[rows], 1_000) / 60_000) ** 0.2


def _incomes(source_url: str, customer_id: np.ndarray) -> np.ndarray:
    engine = sa.create_engine(source_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT customer_id, annual_income FROM customers")
            ).all()
    finally:
        engine.dispose()
    income = pd.Series({int(key): value for key, value in rows}, dtype="float64")
    return income.reindex(customer_id).fillna(0.0).to_numpy(np.float64)


def codes(values: pd.Series, domain: tuple[str, ...], *, column: str) -> np.ndarray:
    """Index of each value in ``domain``; :class:`SimulatorError` naming unknown values."""
    lookup = {name: index for index, name in enumerate(domain)}
    mapped = values.map(lookup)
    if mapped.isna().any():
        bad = sorted(set(values[mapped.isna()].astype(str)))[:5]
        raise SimulatorError(f"column {column!r} holds unknown values {bad}; expected {domain}")
    return mapped.to_numpy(np.int64)


def read_decisions(path: Path) -> pd.DataFrame:
    """One export run's ``decisions.parquet``, checked for the columns the simulator reads."""
    if not path.exists():
        raise SimulatorError(f"no decisions file at {path}")
    frame = pq.read_table(path).to_pandas()
    missing = [column for column in DECISION_COLUMNS if column not in frame.columns]
    if missing:
        raise SimulatorError(f"{path} lacks column(s) {missing}")
    bad_groups = set(frame["group"].unique()) - {"treated", "control"}
    if bad_groups:
        raise SimulatorError(f"{path}: column 'group' holds {sorted(bad_groups)}")
    frame["decided_at"] = pd.to_datetime(frame["decided_at"])
    return frame


def recent_contacts(
    customer_ids: np.ndarray,
    decided_at: pd.Series,
    *,
    exports_dir: Path,
    exclude_run_key: str,
    window_days: float = FATIGUE_WINDOW_DAYS,
) -> np.ndarray:
    """Treated contacts of each customer in any other export run in the window before its
    decision (the platform's own decision log is what the customer was exposed to)."""
    earlier = []
    for path in sorted(exports_dir.glob("*/*/decisions.parquet")):
        frame = pq.read_table(path, columns=["run_key", "customer_id", "group", "decided_at"])
        frame = frame.to_pandas()
        earlier.append(frame[(frame["group"] == "treated") & (frame["run_key"] != exclude_run_key)])
    counts = np.zeros(len(customer_ids), dtype=np.int64)
    if not earlier:
        return counts
    log = pd.concat(earlier, ignore_index=True)
    log["decided_at"] = pd.to_datetime(log["decided_at"])
    query = pd.DataFrame({"customer_id": customer_ids, "at": decided_at.to_numpy()})
    query["row"] = np.arange(len(query))
    joined = query.merge(log, on="customer_id")
    age = (joined["at"] - joined["decided_at"]) / pd.Timedelta(days=1)
    inside = joined[(age > 0) & (age <= window_days)]
    np.add.at(counts, inside["row"].to_numpy(np.int64), 1)
    return counts


def run_generator(seed: int, run_key: str, campaigns: tuple[str, ...] = ()) -> np.random.Generator:
    """The random stream of one (seed, export run), stable across processes and machines:
    the run key and the export's campaign ids (campaigns of one date share the run key)."""
    key = "\x1f".join((run_key, *sorted(campaigns))) if campaigns else run_key
    digest = hashlib.sha256(key.encode()).digest()
    return np.random.default_rng(np.random.SeedSequence([seed, int.from_bytes(digest[:8], "big")]))


def answer(
    decisions: pd.DataFrame, truth: WorldTruth, *, recent: np.ndarray, seed: int
) -> pd.DataFrame:
    """One outcome per decided row (columns ``RESULT_COLUMNS``), drawn from the truth."""
    run_keys = decisions["run_key"].unique()
    if len(run_keys) != 1:
        raise SimulatorError(f"decisions of one export run expected, got run keys {run_keys}")
    order = np.argsort(decisions["contact_id"].astype(str).to_numpy(), kind="stable")
    frame = decisions.iloc[order].reset_index(drop=True)
    recent = np.asarray(recent)[order]
    campaigns = tuple(str(name) for name in frame["campaign_id"].unique())
    rng = run_generator(seed, str(run_keys[0]), campaigns)
    rows = truth.positions(frame["customer_id"].to_numpy())
    offers = codes(frame["offer_type"], OFFER_TYPES, column="offer_type")
    channels = codes(frame["channel"], OFFER_CHANNELS, column="channel")
    treated = (frame["group"] == "treated").to_numpy()
    probability = np.where(
        treated,
        truth.treated_probability(rows, offers, channels, recent),
        truth.control_probability(rows, offers),
    )
    responded = rng.random(len(frame)) < probability
    noise = rng.lognormal(0.0, REVENUE_NOISE_SIGMA, len(frame))
    revenue = np.where(responded, np.round(truth.offer_value(rows, offers) * noise, 2), 0.0)
    delay = rng.uniform(*RESPONSE_DELAY_DAYS, len(frame))
    responded_at = frame["decided_at"] + pd.to_timedelta(np.round(delay * 86_400), unit="s")
    return pd.DataFrame(
        {
            "contact_id": frame["contact_id"],
            "customer_id": frame["customer_id"].astype(np.int64),
            "campaign_id": frame["campaign_id"],
            "offer_type": frame["offer_type"],
            "channel": frame["channel"],
            "outcome": np.where(responded, "responded", "not_responded"),
            "revenue": revenue,
            "responded_at": responded_at.astype("datetime64[us]"),
        }
    )


def inbox_dir() -> Path:
    """The drop folder for interaction results (``$CX_HOME/inbox``)."""
    return config.cx_home() / "inbox"


def write_results(results: pd.DataFrame, *, name: str, inbox: Path | None = None) -> Path:
    """Write results atomically as ``<inbox>/<name>.parquet`` (a hidden temp file, renamed)."""
    folder = inbox or inbox_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}.parquet"
    partial = folder / f".{name}.{os.getpid()}.partial"
    try:
        results.to_parquet(partial, index=False)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def respond(
    export_run: Path,
    *,
    seed: int,
    truth: WorldTruth | None = None,
    exports_dir: Path | None = None,
    inbox: Path | None = None,
) -> Path:
    """Answer one export run (``exports/<campaign>/<run_key>/``) into the inbox; the file path."""
    decisions = read_decisions(export_run / "decisions.parquet")
    truth = truth or WorldTruth.load()
    run_key = export_run.name
    recent = recent_contacts(
        decisions["customer_id"].to_numpy(np.int64),
        decisions["decided_at"],
        exports_dir=exports_dir or config.exports_dir(),
        exclude_run_key=str(decisions["run_key"].iloc[0]) if len(decisions) else run_key,
    )
    if decisions.empty:
        results = pd.DataFrame({column: [] for column in RESULT_COLUMNS})
    else:
        results = answer(decisions, truth, recent=recent, seed=seed)
    name = f"responses__{export_run.parent.name}__{run_key}"
    return write_results(results, name=name, inbox=inbox)

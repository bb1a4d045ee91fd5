"""BTYD fits of cx-pipelines next to the `lifetimes` package, in the same run.

1. CDNOW (2,357-customer sample, 39-week calibration, same-day purchases merged):
   BG/NBD, Pareto/NBD and Gamma-Gamma fit times and parameters, ours and lifetimes'.
2. 1,000,000 synthetic customers simulated from known BG/NBD and Gamma-Gamma parameters
   (seeded): fit and scoring times, peak memory and parameter recovery.

lifetimes 0.11.3 (2020) does not run on this project's pandas 3 / numpy 2, so it lives in
its own virtual environment, created on first use (a minute or two):

    python3 -m venv /tmp/lifetimes-venv
    /tmp/lifetimes-venv/bin/pip install lifetimes==0.11.3 "pandas<2" "numpy<1.24" "scipy<1.11"

(``CX_LIFETIMES_VENV`` moves it.) Its part runs there in a subprocess that reads the same
RFM arrays from .npz files. Run: ``.venv/bin/python benchmarks/btyd.py`` (``--customers N``
for a smaller synthetic run, ``--transactions 25000000`` to also time ``rfm_summary`` on a
synthetic log of that size, ``--skip-lifetimes`` without the peer). Targets: at least as
fast as lifetimes on CDNOW; 1M customers BG/NBD fit plus scoring under 20 s and under 2 GB.
Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from cx_pipelines.datasets import read_cdnow
from cx_pipelines.ml.btyd import BetaGeoModel, GammaGammaModel, ParetoNBDModel
from cx_pipelines.ml.btyd.simulation import simulate_beta_geo
from cx_pipelines.ml.rfm import rfm_summary

LIFETIMES_VENV = Path(os.environ.get("CX_LIFETIMES_VENV", "/tmp/lifetimes-venv"))
LIFETIMES_PINS = ["lifetimes==0.11.3", "pandas<2", "numpy<1.24", "scipy<1.11"]
TRUTH = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}
SPEND_TRUTH = {"p": 6.0, "q": 4.0, "v": 15.0}
PUBLISHED = {
    "bg_nbd": {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426, "log_likelihood": -9582.4},
    "pareto_nbd": {
        "r": 0.553,
        "alpha": 10.578,
        "s": 0.606,
        "beta": 11.669,
        "log_likelihood": -9595.0,
    },
    "gamma_gamma": {"p": 6.25, "q": 3.74, "v": 15.44},
}

LIFETIMES_SCRIPT = r"""
import json, sys, time
import numpy as np
from lifetimes import BetaGeoFitter, GammaGammaFitter, ParetoNBDFitter

data = np.load(sys.argv[1])
models = sys.argv[2].split(",")
x, t_x, T, m = data["frequency"], data["recency"], data["T"], data["monetary_value"]
out = {}
def record(name, fitter, seconds):
    out[name] = {
        "seconds": seconds,
        "params": {k: float(v) for k, v in fitter.params_.items()},
    }
if "bg_nbd" in models:
    start = time.perf_counter()
    bg = BetaGeoFitter().fit(x, t_x, T)
    record("bg_nbd", bg, time.perf_counter() - start)
    start = time.perf_counter()
    bg.conditional_probability_alive(x, t_x, T)
    bg.conditional_expected_number_of_purchases_up_to_time(52.0, x, t_x, T)
    out["bg_nbd"]["scoring_seconds"] = time.perf_counter() - start
if "pareto_nbd" in models:
    start = time.perf_counter()
    pareto = ParetoNBDFitter().fit(x, t_x, T)
    record("pareto_nbd", pareto, time.perf_counter() - start)
if "gamma_gamma" in models:
    repeat = x > 0
    start = time.perf_counter()
    gg = GammaGammaFitter().fit(x[repeat], m[repeat])
    record("gamma_gamma", gg, time.perf_counter() - start)
print(json.dumps(out))
"""


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kB on Linux


def ensure_lifetimes_venv() -> Path | None:
    """Python of the lifetimes venv, creating it when missing; None if it cannot be made."""
    python = LIFETIMES_VENV / "bin" / "python"
    if python.exists():
        return python
    print(f"creating {LIFETIMES_VENV} for lifetimes (once): pip install {' '.join(LIFETIMES_PINS)}")
    try:
        base = shutil.which("python3") or sys.executable
        subprocess.run([base, "-m", "venv", str(LIFETIMES_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *LIFETIMES_PINS], check=True)
    except (subprocess.CalledProcessError, FileNotFoundError) as error:
        print(f"could not set up lifetimes ({error}); its columns will be empty")
        return None
    return python


def run_lifetimes(python: Path | None, frame: pd.DataFrame, models: list[str], timeout: float):
    """Fit ``models`` with lifetimes on ``frame``; {} when unavailable or out of time."""
    if python is None:
        return {}
    with tempfile.TemporaryDirectory(prefix="cx-btyd-") as folder:
        arrays = Path(folder) / "rfm.npz"
        np.savez(
            arrays,
            **{
                c: frame[c].to_numpy(dtype="float64")
                for c in ("frequency", "recency", "T", "monetary_value")
            },
        )
        script = Path(folder) / "fit_lifetimes.py"
        script.write_text(LIFETIMES_SCRIPT)
        try:
            completed = subprocess.run(
                [str(python), str(script), str(arrays), ",".join(models)],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            print(f"lifetimes did not finish {models} within {timeout:.0f} s")
            return {"timed_out_after_seconds": timeout}
    if completed.returncode != 0:
        print(f"lifetimes failed:\n{completed.stderr[-2000:]}")
        return {}
    return json.loads(completed.stdout.strip().splitlines()[-1])


MODEL_CLASSES = {
    "bg_nbd": BetaGeoModel,
    "pareto_nbd": ParetoNBDModel,
    "gamma_gamma": GammaGammaModel,
}


def add_peer_log_likelihoods(theirs: dict, data: pd.DataFrame) -> None:
    """lifetimes rescales time inside its likelihood, so its own value is not comparable:
    evaluate the papers' likelihood (ours) at lifetimes' estimates instead."""
    for name, result in theirs.items():
        if isinstance(result, dict) and "params" in result:
            result["log_likelihood"] = MODEL_CLASSES[name]().log_likelihood(
                data, params=result["params"]
            )


def timed_fit(model, data: pd.DataFrame, repeats: int = 1):
    """Fit ``repeats`` times and keep the fastest (the machine is shared)."""
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        model.fit(data)
        best = min(best, time.perf_counter() - start)
    return model, best


def _ours(model, seconds: float) -> dict:
    return {
        "seconds": seconds,
        "params": {k: float(v) for k, v in model.params_.items()},
        "log_likelihood": model.log_likelihood_,
    }


def _print_side_by_side(title: str, ours: dict, theirs: dict, reference: dict) -> None:
    print(f"\n== {title}")
    print(f"{'model':<12}{'param':<16}{'reference':>12}{'cx-pipelines':>15}{'lifetimes':>15}")
    for name, result in ours.items():
        peer = theirs.get(name, {})
        for param, value in result["params"].items():
            other = peer.get("params", {}).get(param)
            ref = reference.get(name, {}).get(param)
            print(
                f"{name:<12}{param:<16}{'' if ref is None else f'{ref:.3f}':>12}{value:>15.4f}"
                f"{'' if other is None else f'{other:.4f}':>15}"
            )
        other_ll = peer.get("log_likelihood")
        ref_ll = reference.get(name, {}).get("log_likelihood")
        print(
            f"{name:<12}{'log_likelihood':<16}{'' if ref_ll is None else f'{ref_ll:.1f}':>12}"
            f"{result['log_likelihood']:>15.2f}{'' if other_ll is None else f'{other_ll:.2f}':>15}"
        )
        other_s = peer.get("seconds")
        print(
            f"{name:<12}{'fit seconds':<16}{'':>12}{result['seconds']:>15.3f}"
            f"{'' if other_s is None else f'{other_s:.3f}':>15}"
        )


def benchmark_cdnow(python: Path | None) -> dict:
    transactions = read_cdnow()
    start = time.perf_counter()
    rfm = rfm_summary(
        transactions,
        datetime_col="date",
        monetary_value_col="dollar_value",
        observation_period_end="1997-09-30",
    )
    rfm_seconds = time.perf_counter() - start
    ours = {
        "bg_nbd": _ours(*timed_fit(BetaGeoModel(), rfm, repeats=3)),
        "pareto_nbd": _ours(*timed_fit(ParetoNBDModel(), rfm, repeats=3)),
        "gamma_gamma": _ours(*timed_fit(GammaGammaModel(), rfm, repeats=3)),
    }
    theirs = run_lifetimes(python, rfm, ["bg_nbd", "pareto_nbd", "gamma_gamma"], timeout=600)
    add_peer_log_likelihoods(theirs, rfm)
    _print_side_by_side(
        "CDNOW sample, 2,357 customers, 39-week calibration", ours, theirs, PUBLISHED
    )
    print(f"rfm_summary of {len(transactions)} CDNOW transactions: {rfm_seconds:.3f} s")
    return {"rfm_seconds": rfm_seconds, "ours": ours, "lifetimes": theirs}


def benchmark_synthetic(python: Path | None, customers: int) -> dict:
    start = time.perf_counter()
    data = simulate_beta_geo(
        customers, **TRUTH, spend=tuple(SPEND_TRUTH.values()), random_state=2026
    )
    simulate_seconds = time.perf_counter() - start
    bg, bg_seconds = timed_fit(BetaGeoModel(), data)
    start = time.perf_counter()
    bg.expected_probability_alive(data)
    bg.expected_transactions(data, future_t=52.0)
    scoring_seconds = time.perf_counter() - start
    peak_after_bg = _peak_rss_mb()
    pareto, pareto_seconds = timed_fit(ParetoNBDModel(), data)
    gamma, gamma_seconds = timed_fit(GammaGammaModel(), data)
    ours = {
        "bg_nbd": _ours(bg, bg_seconds) | {"scoring_seconds": scoring_seconds},
        "pareto_nbd": _ours(pareto, pareto_seconds),
        "gamma_gamma": _ours(gamma, gamma_seconds),
    }
    theirs = run_lifetimes(python, data, ["bg_nbd", "gamma_gamma"], timeout=600)
    add_peer_log_likelihoods(theirs, data)
    reference = {"bg_nbd": TRUTH, "gamma_gamma": SPEND_TRUTH}
    _print_side_by_side(
        f"{customers:,} simulated customers (reference = simulation truth)", ours, theirs, reference
    )
    peer_scoring = theirs.get("bg_nbd", {}).get("scoring_seconds")
    print(
        "BG/NBD fit + scoring (P(alive), 52-week expectation): "
        f"{bg_seconds + scoring_seconds:.2f} s"
        + (
            f" (lifetimes {theirs['bg_nbd']['seconds'] + peer_scoring:.2f} s)"
            if peer_scoring
            else ""
        )
    )
    print(
        f"peak RSS after BG/NBD fit and scoring: {peak_after_bg:.0f} MB; "
        f"simulation {simulate_seconds:.1f} s"
    )
    recovery = {
        name: float(ours["bg_nbd"]["params"][name] / value - 1) for name, value in TRUTH.items()
    } | {
        name: float(ours["gamma_gamma"]["params"][name] / value - 1)
        for name, value in SPEND_TRUTH.items()
    }
    print(
        "relative error against the truth: "
        + ", ".join(f"{k} {v:+.3f}" for k, v in recovery.items())
    )
    return {
        "customers": customers,
        "ours": ours,
        "lifetimes": theirs,
        "bg_fit_plus_scoring_seconds": bg_seconds + scoring_seconds,
        "peak_rss_mb_after_bg": peak_after_bg,
        "relative_error": recovery,
    }


def benchmark_rfm(transactions: int) -> dict:
    """rfm_summary over a synthetic log of ``transactions`` purchases over two years."""
    rng = np.random.default_rng(7)
    log = pd.DataFrame(
        {
            "customer_id": rng.integers(0, max(transactions // 12, 1), transactions),
            "occurred_at": pd.Timestamp("2024-10-01")
            + pd.to_timedelta(rng.integers(0, 730 * 86_400, transactions), unit="s"),
            "amount": rng.gamma(2.0, 20.0, transactions),
        }
    )
    start = time.perf_counter()
    rfm = rfm_summary(log)
    seconds = time.perf_counter() - start
    print(
        f"\nrfm_summary of {transactions:,} transactions ({len(rfm):,} customers): "
        f"{seconds:.2f} s, "
        f"peak RSS {_peak_rss_mb():.0f} MB"
    )
    return {"transactions": transactions, "seconds": seconds, "peak_rss_mb": _peak_rss_mb()}


def _json_safe(value):
    """NaN and inf are not JSON: report them as null."""
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--skip-lifetimes", action="store_true")
    parser.add_argument(
        "--transactions",
        type=int,
        default=0,
        help="also time rfm_summary on this many synthetic transactions (e.g. 25000000)",
    )
    arguments = parser.parse_args()
    python = None if arguments.skip_lifetimes else ensure_lifetimes_venv()
    cdnow = benchmark_cdnow(python)
    synthetic = benchmark_synthetic(python, arguments.customers)
    rfm = benchmark_rfm(arguments.transactions) if arguments.transactions else None
    figures = {
        "cdnow": cdnow,
        "synthetic": synthetic,
        "rfm": rfm,
        "peak_rss_mb": _peak_rss_mb(),
        "lifetimes_python": str(python) if python else None,
    }
    print(json.dumps(_json_safe(figures)))


if __name__ == "__main__":
    main()

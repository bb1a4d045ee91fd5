"""Wall time and peak memory of the whole foundation: generate a synthetic bank, then materialise.

Usage: python benchmarks/pipeline.py --customers 100000 [--selection "*kpi_clusters"]

Generation runs as a child process (`cx generate`) whose peak RSS the kernel reports;
the assets run in one Dagster run in this process while a thread samples the resident
set size, so each step's peak is the highest sample inside that step's start and end.
Target (issue 2): 100,000 customers from nothing to clusters in under 3 minutes and
under 4 GB on a 2-core machine. The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

TARGET_SECONDS = 180
TARGET_PEAK_GB = 4.0


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class MemorySampler(threading.Thread):
    """Samples this process's resident set size every few milliseconds."""

    def __init__(self, interval: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._finished = threading.Event()

    def run(self) -> None:
        while not self._finished.is_set():
            self.samples.append((time.time(), resident_bytes()))
            time.sleep(self.interval)

    def stop(self) -> None:
        self._finished.set()
        self.join()

    def peak_between(self, start: float, end: float) -> int:
        inside = [rss for stamp, rss in self.samples if start <= stamp <= end]
        return max(inside, default=0)


def generate(customers: int, seed: int) -> tuple[float, int]:
    """Run `cx generate` in a child; return its wall time and peak RSS in bytes."""
    started = time.perf_counter()
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cx_pipelines.cli",
            "generate",
            "--customers",
            str(customers),
            "--seed",
            str(seed),
        ],
        stdout=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit("cx generate failed")
    return time.perf_counter() - started, usage.ru_maxrss * 1024


def step_windows(run_id: str) -> dict[str, tuple[float, float]]:
    """Start and end time of every step of a finished Dagster run, by step key."""
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        return {
            stats.step_key: (stats.start_time, stats.end_time)
            for stats in instance.get_run_step_stats(run_id)
            if stats.start_time is not None and stats.end_time is not None
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--selection", default="*kpi_clusters", help="Dagster asset selection")
    parser.add_argument("--keep", action="store_true", help="keep the CX_HOME folder")
    arguments = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="cx-bench-"))
    os.environ["CX_HOME"] = str(home)
    os.environ.pop("CX_SOURCE_URL", None)
    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    try:
        generation_seconds, generation_peak = generate(arguments.customers, arguments.seed)
        print(
            f"{'generate':<28} {generation_seconds:8.1f} s  {generation_peak / 2**30:6.2f} GB peak"
        )

        from cx_pipelines.defs.runs import materialize

        sampler = MemorySampler()
        sampler.start()
        started = time.perf_counter()
        result = materialize(arguments.selection)
        materialize_seconds = time.perf_counter() - started
        sampler.stop()
        if not result.success:
            raise SystemExit(f"materialisation failed: {result.get_failed_step_keys()}")

        steps = {}
        for step, (start, end) in sorted(
            step_windows(result.run_id).items(), key=lambda item: item[1]
        ):
            peak = sampler.peak_between(start, end)
            steps[step] = {"seconds": round(end - start, 2), "peak_gb": round(peak / 2**30, 3)}
            print(f"{step:<28} {end - start:8.1f} s  {peak / 2**30:6.2f} GB peak")

        total_seconds = generation_seconds + materialize_seconds
        peak_gb = max(generation_peak, max(rss for _, rss in sampler.samples)) / 2**30
        print(
            f"{'total':<28} {total_seconds:8.1f} s  {peak_gb:6.2f} GB peak "
            f"(target < {TARGET_SECONDS} s and < {TARGET_PEAK_GB} GB for 100,000 customers)"
        )
        print(
            json.dumps(
                {
                    "customers": arguments.customers,
                    "selection": arguments.selection,
                    "generate_seconds": round(generation_seconds, 2),
                    "generate_peak_gb": round(generation_peak / 2**30, 3),
                    "materialize_seconds": round(materialize_seconds, 2),
                    "total_seconds": round(total_seconds, 2),
                    "peak_gb": round(peak_gb, 3),
                    "steps": steps,
                }
            )
        )
    finally:
        if not arguments.keep:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()

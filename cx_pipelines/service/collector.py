"""The garbage collector while the service runs.

A batch of 1,000 decisions builds some 100,000 dicts and lists (records, treatments,
terms) that live until its answer is sent. With CPython's default thresholds (700, 10, 10)
they outlive the young collections, reach the oldest generation and set off full
collections that walk the whole heap, the startup's objects (modules, strategy, pandas)
and the cached customer records included. Measured in process (``time.process_time`` in
``gc.callbacks``, 36 batches of 1,000): 11 full collections took 1.27 s of CPU, about a
third of the service's CPU per batched decision. So, while the service runs:

- what startup allocated is frozen (``gc.freeze``: kept out of every later collection);
- the young generation is collected every 50,000 net allocations instead of 700, so a
  batch's short-lived objects are freed by reference counting before a collection sees
  them. Reference cycles are still collected, later (a few MB at most in between).

:func:`tuned` restores the previous settings when the service stops (tests run apps in
process).
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_THRESHOLD = 50_000


@contextmanager
def tuned() -> Iterator[None]:
    """Freeze the startup's objects and collect the young generation less often."""
    previous = gc.get_threshold()
    switch = sys.getswitchinterval()
    if os.environ.get("CX_SERVICE_SWITCH_INTERVAL_MS"):
        sys.setswitchinterval(float(os.environ["CX_SERVICE_SWITCH_INTERVAL_MS"]) / 1000)
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, previous[1], previous[2])
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        sys.setswitchinterval(switch)
        gc.unfreeze()

"""The garbage collector (and the GIL's switch interval) while the service runs.

What startup allocated (modules, strategy, pandas) is frozen (``gc.freeze``: kept out of
every later collection). Then the thresholds, chosen for both paths:

- A batch of 1,000 decisions builds some 100,000 dicts and lists that live until its
  answer is sent. With CPython's default thresholds (700, 10, 10) they reached the
  oldest generation and set off full collections over the whole heap: 11 full
  collections took 1.27 s of CPU in 36 batches of 1,000 (issue 9, session 3). What costs
  is the *middle and old* collections: a young collection visits only the objects
  allocated since the previous one that are still alive, so the young threshold does not
  change how much a batch's objects are visited in young collections, only how many at a
  time. Middle collections come every ``older`` young ones: at 10 of 50,000 they come every
  ~500,000 net allocations, after the batch that made the objects is over.
- A single decision leaves almost nothing behind (about 100 objects in 8,000 requests,
  measured in process), so in steady state collections are rare whatever the threshold;
  they come while a worker's record cache fills (about 3 tracked objects per customer)
  and during batches. Each young collection stops the event loop for as long as it
  takes: at a young threshold of 50,000 a young collection took 15-27 ms of CPU in the
  service (``benchmarks/service_tail.py``, the paced phase's workers, loaded machine),
  a fifth of the requests' 5 ms budget at one collection per few thousand requests. At
  5,000 it takes a tenth of that.

So: young threshold ``young`` (50,000), middle ``older`` (10), oldest unchanged, and no
collection while a batch is decided (:func:`paused` around its synchronous part: its
objects live until its answer is built and die with it, so a collection in between only
visits them). A batch leaves no reference cycle (the one it left, the decision tree's
recursive walk holding the batch evaluator's run, ~1.4 MB per 1,000 decisions, is gone),
so its arrays are freed as it ends, with no collection after it.
A young threshold of 5,000 (middle 100) was measured against it on a quiet machine, one
run each (``benchmarks/service_load.py --log-sync write``, issue 9, session 4): with the
batch phases alone (``--phases batch``) the untraced batch of 1,000 ran at 13.9 against
19.4 calls/s and the traced batch of 100 at 67.5 against 69.6; the paced phase's p99 was
9.8 against 11.9 ms. Whole runs differ as much from one run to the next (the untraced
batch 14.0-19.1 calls/s), so these are single draws, not settled differences.
``CX_SERVICE_GC_YOUNG`` and ``CX_SERVICE_GC_OLDER`` set them (service/settings.py).

The switch interval (``CX_SERVICE_SWITCH_INTERVAL_MS``, Python's 5 ms unless set) is how
long a thread waiting for the GIL waits before it asks the holder to let go: the event
loop's thread waits that long when a background thread (contact writer, decision-log
syncer, deployment watcher) holds the GIL.

:func:`tuned` restores the previous settings when the service stops (tests run apps in
process).
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_THRESHOLD = 50_000
OLDER_THRESHOLD = 10


@contextmanager
def paused() -> Iterator[None]:
    """No automatic collection in this block (synchronous code only: nothing else runs on
    the event loop meanwhile); collections resume after it."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@contextmanager
def tuned(
    *,
    young: int = YOUNG_THRESHOLD,
    older: int = OLDER_THRESHOLD,
    switch_interval_ms: float | None = None,
) -> Iterator[None]:
    """Freeze the startup's objects, set the thresholds (and the switch interval)."""
    previous = gc.get_threshold()
    switch = sys.getswitchinterval()
    gc.collect()
    gc.freeze()
    gc.set_threshold(young, older, previous[2])
    if switch_interval_ms is not None:
        sys.setswitchinterval(switch_interval_ms / 1000)
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        sys.setswitchinterval(switch)
        gc.unfreeze()

"""The decision log: every real-time decision, appended durably before it is answered.

``$CX_HOME/decision_log/<started>-<pid>-<random>.jsonl``, one JSON object per line
(INTERFACES.md §4), one file per server process, opened ``O_APPEND``. A writer thread
takes every line queued since its last write, writes them in one go and ``fsync``s the
file (group commit), and only then are the waiting requests acknowledged: a decision the
service answered is on disk even if the server is killed with ``kill -9`` a moment later.

Two durability settings (``CX_DECISION_LOG_SYNC``):

- ``write`` (the default): each request writes its own lines with one ``write()`` on the
  event loop (calls from outside a loop go through the writer thread) and is acknowledged
  once it has returned, that is once the kernel holds them; a syncer thread ``fsync``s the
  file within
  ``CX_DECISION_LOG_FSYNC_MS`` (default 20 ms) of a write. ``kill -9`` of the server, or
  any crash of the process, loses nothing acknowledged (the page cache belongs to the
  kernel, not the process); only a power cut or kernel crash can lose the last few
  milliseconds of decisions. This is the durability the service promises (survives
  ``kill -9``), without waiting for the disk on every answer: on this machine's disk an
  ``fsync`` under load takes ~24 ms at p99, more than the whole latency budget.
  One write per request, not one per loop iteration for all the requests read in it: a
  grouped write made every request of a burst wait for the whole burst's work before any
  was answered (the slowest 1 % of the paced phase spent 4.3-4.6 ms of their 7.6-8.4 ms
  waiting for it, ``benchmarks/service_tail.py``, quiet machine), while a ``write()`` of one
  line costs ~40 µs against ~750 µs of CPU for the whole request.
- ``fsync``: the writer thread's group commit; a group is acknowledged only after its
  ``fsync`` (power-loss durable, each answer waits for the disk).
A crash can leave the last line of a file cut short; :func:`read_decision_log` skips such
a line (that decision was never acknowledged). No FastAPI here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

LOGGER = logging.getLogger("cx_pipelines.service")
SYNC_MODES = ("write", "fsync")
_Waiter = Callable[[BaseException | None], None] | tuple[asyncio.AbstractEventLoop, asyncio.Future]


class DecisionLogError(RuntimeError):
    """The decision log could not be written (the decisions were not acknowledged)."""


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class DurableLog:
    """An append-only JSON-lines file with group-committed ``fsync``.

    ``after_write`` runs with the payloads of each durable group (in the writer thread, or
    on the event loop in ``write`` mode) before their requests are acknowledged; it must
    not block (the service hands the contacts to its contact writer thread there,
    :mod:`cx_pipelines.service.contacts`).
    """

    def __init__(
        self,
        folder: Path,
        *,
        prefix: str = "",
        after_write: Callable[[list[Any]], None] | None = None,
        sync: str = "write",
        fsync_ms: float = 20.0,
    ) -> None:
        if sync not in SYNC_MODES:
            raise ValueError(f"decision log sync {sync!r} is not one of {', '.join(SYNC_MODES)}")
        self.sync, self._fsync_seconds = sync, fsync_ms / 1000
        folder.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        self.path = folder / f"{prefix}{stamp}-{os.getpid()}-{secrets.token_hex(3)}.jsonl"
        self._descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        _fsync_folder(folder)  # the new file's name is durable too
        self._after_write = after_write
        # (data, payloads, waiter): a waiter is a callback (blocking callers) or the
        # (event loop, future) of an awaiting request; futures are settled one call per
        # loop and group, not one thread-safe wake-up per request
        self._pending: list[tuple[bytes, list[Any], _Waiter]] = []
        self._condition = threading.Condition()
        self._closed = False
        self._write_lock = threading.Lock()  # the loop's and the writer thread's writes
        self.written = 0
        self.synced_at = time.monotonic()  # the last fsync that covered every written line
        self._dirty = threading.Event()  # written since the last fsync ("write" mode)
        self._thread = threading.Thread(target=self._run, name="decision-log", daemon=True)
        self._thread.start()
        self._syncer = None
        if sync == "write":
            self._syncer = threading.Thread(
                target=self._sync, name="decision-log-sync", daemon=True
            )
            self._syncer.start()

    async def append(self, lines: Sequence[bytes], payloads: Sequence[Any] = ()) -> None:
        """Append ``lines`` (each ending in a newline); return once they are written
        (``write`` mode) or fsync'd (``fsync`` mode)."""
        if self.sync == "write":
            # written by the request itself, at once: it answers as soon as its own line is
            # in the kernel's hands, not after every request that arrived with it
            if self._closed:
                raise DecisionLogError(f"decision log {self.path.name} is closed")
            error = self._commit([(b"".join(lines), list(payloads), None)])
            if error is not None:
                raise error
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._enqueue(b"".join(lines), list(payloads), (loop, future))
        await future

    def append_blocking(self, lines: Sequence[bytes], payloads: Sequence[Any] = ()) -> None:
        """The same as :meth:`append` for code outside an event loop."""
        finished = threading.Event()
        failure: list[BaseException] = []

        def done(error: BaseException | None) -> None:
            if error is not None:
                failure.append(error)
            finished.set()

        self._enqueue(b"".join(lines), list(payloads), done)
        finished.wait()
        if failure:
            raise failure[0]

    def _enqueue(self, data: bytes, payloads: list[Any], done: _Waiter) -> None:
        with self._condition:
            if self._closed:
                raise DecisionLogError(f"decision log {self.path.name} is closed")
            self._pending.append((data, payloads, done))
            self._condition.notify()

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._pending and not self._closed:
                    self._condition.wait()
                if not self._pending and self._closed:
                    return
                group, self._pending = self._pending, []
            _wake([item[2] for item in group], self._commit(group))

    def _commit(self, group: list[tuple[bytes, list[Any], _Waiter]]) -> BaseException | None:
        """Write a group (and fsync it in ``fsync`` mode), then hand on its payloads; the
        error to give its waiters, if any."""
        try:
            data = memoryview(b"".join(item[0] for item in group))
            with self._write_lock:
                while data:
                    data = data[os.write(self._descriptor, data) :]
            if self.sync == "fsync":
                os.fsync(self._descriptor)
                self.synced_at = time.monotonic()
            else:
                self._dirty.set()
            self.written += len(group)
        except OSError as failure:
            LOGGER.error("decision log %s: write failed: %s", self.path.name, failure)
            return DecisionLogError(f"decision log write failed: {failure.strerror}")
        if self._after_write is not None:
            payloads = [payload for item in group for payload in item[1]]
            if payloads:
                try:
                    self._after_write(payloads)
                except RuntimeError as failure:  # the store's errors: log, stay durable
                    LOGGER.warning("after decision log write: %s", failure)
        return None

    def _sync(self) -> None:
        """``write`` mode: fsync within ``fsync_ms`` of any write, off the answer's path."""
        while True:
            self._dirty.wait()
            if self._closed and not self._dirty.is_set():
                return
            time.sleep(self._fsync_seconds)  # gather what else is written meanwhile
            self._dirty.clear()
            started = time.monotonic()
            try:
                os.fsync(self._descriptor)
                self.synced_at = started
            except OSError as failure:  # a later write reports it to its request
                LOGGER.error("decision log %s: fsync failed: %s", self.path.name, failure)
            if self._closed and not self._dirty.is_set():
                return

    def close(self) -> None:
        with self._condition:
            self._closed = True
            self._condition.notify()
        self._thread.join(timeout=10)
        if self._syncer is not None:
            self._dirty.set()  # one last fsync, then the syncer ends
            self._syncer.join(timeout=10)
        os.close(self._descriptor)


def _wake(waiters: list[_Waiter], error: BaseException | None) -> None:
    """Tell every waiter of a group how it went: callbacks now, futures one call per loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future]] = {}
    for waiter in waiters:
        if isinstance(waiter, tuple):
            by_loop.setdefault(waiter[0], []).append(waiter[1])
        else:
            waiter(error)
    for loop, futures in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle, futures, error)
        except RuntimeError:  # the loop is closed: nobody waits any more
            LOGGER.warning("decision log: %d waiters of a closed event loop", len(futures))


def _settle(futures: list[asyncio.Future], error: BaseException | None) -> None:
    for future in futures:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


def read_decision_log(folder: Path, *, prefix: str = "") -> Iterator[dict[str, Any]]:
    """Every complete entry of every ``<prefix>*.jsonl`` file in ``folder``, file by file.

    A last line without its newline (the server died while writing it, before it was
    acknowledged) is skipped.
    """
    for path in sorted(folder.glob(f"{prefix}*.jsonl")):
        with path.open("rb") as handle:
            for line in handle:
                if not line.endswith(b"\n"):
                    break
                yield json.loads(line)

"""Per-request timing of the service's phases, for finding where latency goes (issue 9).

Off unless ``CX_SERVICE_TIMING`` names a folder; then each worker process records, for
every request, when its bytes were read by the event loop, when its ASGI task started,
the time spent in the online store, the engine and the rest of its own work, when it
asked the decision log to append and when the append returned, and when its answer had
been written; beside it, over the request's life, the worker thread's CPU time and its
wait on the kernel's run queue (``/proc/thread-self/schedstat``), and the garbage
collector's pauses (``gc.callbacks``). Off-path threads are timed too: each contact
writer flush (wall and thread CPU) and each decision-log write. A worker writes
``timing-<pid>.json`` into the folder when it stops. ``benchmarks/service_tail.py``
reads them.

What the off-CPU time of a request is made of follows from these: wall time = thread CPU
(its own work and that of the requests ahead of it on the loop) + run-queue wait (the
kernel ran something else) + the rest, during which the thread was neither running nor
runnable: waiting for the GIL (or blocked in a system call).

The hooks wrap uvicorn's httptools protocol and the service's parts in place; they cost
a few microseconds a request and are meant for diagnosis, not production.
"""

from __future__ import annotations

import gc
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ENVIRONMENT_VARIABLE = "CX_SERVICE_TIMING"
FIELDS = (
    "arrived",  # the event loop read the request's bytes (data_received)
    "started",  # its ASGI task began
    "appended",  # its own work done: it asked the decision log to append
    "logged",  # the append returned (written, or fsync'd)
    "ended",  # the answer was written to the socket
    "store",  # ns in online-store reads (records, contacts)
    "engine",  # ns in the engine (decide_customer)
    "own_cpu",  # thread CPU ns from started to appended (its own work)
    "cpu",  # thread CPU ns from arrived to ended (its own and the others' on the loop)
    "run_delay",  # ns on the kernel's run queue from arrived to ended
    "gc",  # ns of garbage collection (any thread) from arrived to ended
)


def _schedstat_reader() -> Callable[[], int]:
    """The calling thread's total run-queue wait in ns (0 where /proc has none)."""
    try:
        descriptor = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
    except OSError:
        return lambda: 0

    def run_delay() -> int:
        return int(os.pread(descriptor, 128, 0).split()[1])

    return run_delay


class Recorder:
    """What one worker process measured (see the module docstring)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.requests: list[list[int]] = []
        # start, wall ns, generation, 1 on the event loop's thread, thread CPU ns
        self.collections: list[tuple[int, int, int, int, int]] = []
        # start, wall ns, thread CPU ns, run-queue wait ns, contacts
        self.flushes: list[tuple[int, int, int, int, int]] = []
        # start, wall ns, thread CPU ns, run-queue wait ns, lines, ns handing contacts on
        self.commits: list[list[int]] = []
        self.main_thread = threading.get_ident()
        self.run_delay = _schedstat_reader()
        self.current: list[int] | None = None
        self.arrival: tuple[int, int, int] = (0, 0, 0)
        self.gc_total = 0
        self._gc_started = self._gc_cpu = 0
        self._handing = 0

    def on_gc(self, phase: str, info: dict[str, Any]) -> None:
        now = time.perf_counter_ns()
        if phase == "start":
            self._gc_started, self._gc_cpu = now, time.thread_time_ns()
            return
        spent = now - self._gc_started
        self.gc_total += spent
        main = int(threading.get_ident() == self.main_thread)
        cpu = time.thread_time_ns() - self._gc_cpu
        self.collections.append((self._gc_started, spent, info["generation"], main, cpu))

    def dump(self) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"timing-{os.getpid()}.json"
        content = {
            "pid": os.getpid(),
            "fields": FIELDS,
            "requests": self.requests,
            "collections": self.collections,
            "flushes": self.flushes,
            "commits": self.commits,
        }
        path.write_text(json.dumps(content))
        return path


def _timed_into(recorder: Recorder, index: int, function: Callable) -> Callable:
    """``function`` adding its wall time to field ``index`` of the current request (calls
    from other threads, such as the deployment watcher, are not counted)."""

    def timed(*args: Any, **kwargs: Any) -> Any:
        record = recorder.current
        if record is None or threading.get_ident() != recorder.main_thread:
            return function(*args, **kwargs)
        start = time.perf_counter_ns()
        try:
            return function(*args, **kwargs)
        finally:
            record[index] += time.perf_counter_ns() - start

    return timed


def _hook_protocol(recorder: Recorder) -> None:
    from uvicorn.protocols.http import httptools_impl

    protocol = httptools_impl.HttpToolsProtocol
    cycle_class = httptools_impl.RequestResponseCycle
    data_received, start_task = protocol.data_received, protocol._start_asgi_task
    run_asgi = cycle_class.run_asgi

    def timed_data_received(self, data: bytes) -> None:
        recorder.arrival = (time.perf_counter_ns(), time.thread_time_ns(), recorder.run_delay())
        data_received(self, data)

    def timed_start_task(self, cycle, app) -> None:
        cycle.cx_arrival = recorder.arrival
        start_task(self, cycle, app)

    async def timed_run_asgi(self, app) -> None:
        arrived, cpu, delay = getattr(self, "cx_arrival", None) or recorder.arrival
        record = [arrived, time.perf_counter_ns(), 0, 0, 0, 0, 0, 0, cpu, delay, recorder.gc_total]
        recorder.current = record
        record[7] = time.thread_time_ns()
        try:
            await run_asgi(self, app)
        finally:
            if recorder.current is record:
                recorder.current = None
            record[4] = time.perf_counter_ns()
            record[8] = time.thread_time_ns() - record[8]
            record[9] = recorder.run_delay() - record[9]
            record[10] = recorder.gc_total - record[10]
            if record[2]:  # a decision (it reached the decision log)
                recorder.requests.append(record)

    protocol.data_received = timed_data_received
    protocol._start_asgi_task = timed_start_task
    cycle_class.run_asgi = timed_run_asgi


def _hook_log(recorder: Recorder, log: Any) -> None:
    append, commit, after_write = log.append, log._commit, log._after_write

    async def timed_append(lines, payloads=()) -> None:
        record = recorder.current
        recorder.current = None
        if record is not None:
            record[2] = time.perf_counter_ns()
            record[7] = time.thread_time_ns() - record[7]
        await append(lines, payloads)
        if record is not None:
            record[3] = time.perf_counter_ns()

    def timed_commit(group):
        start, cpu, delay = time.perf_counter_ns(), time.thread_time_ns(), recorder.run_delay()
        recorder._handing = 0
        try:
            return commit(group)
        finally:
            wall = time.perf_counter_ns() - start
            cpu = time.thread_time_ns() - cpu
            delay = recorder.run_delay() - delay
            recorder.commits.append([start, wall, cpu, delay, len(group), recorder._handing])

    def timed_after_write(payloads) -> None:
        start = time.perf_counter_ns()
        try:
            after_write(payloads)
        finally:
            recorder._handing += time.perf_counter_ns() - start

    log.append, log._commit = timed_append, timed_commit
    if after_write is not None:
        log._after_write = timed_after_write


def _hook_contact_writer(recorder: Recorder, writer: Any) -> None:
    store = writer.store
    record_contacts = store.record_contacts

    run_delay = _schedstat_reader  # per thread: opened in the writer's own thread
    readers: dict[int, Callable[[], int]] = {}

    def timed_record(contacts) -> None:
        reader = readers.get(threading.get_ident())
        if reader is None:
            reader = readers[threading.get_ident()] = run_delay()
        start, cpu, delay = time.perf_counter_ns(), time.thread_time_ns(), reader()
        try:
            record_contacts(contacts)
        finally:
            wall = time.perf_counter_ns() - start
            cpu, delay = time.thread_time_ns() - cpu, reader() - delay
            recorder.flushes.append((start, wall, cpu, delay, len(contacts)))

    store.record_contacts = timed_record


def install(service: Any) -> Recorder | None:
    """Time ``service``'s requests when ``CX_SERVICE_TIMING`` is set (else do nothing);
    the measurements are written when the service closes."""
    folder = os.environ.get(ENVIRONMENT_VARIABLE)
    if not folder:
        return None
    from cx_pipelines.service import decide as decide_module

    recorder = Recorder(Path(folder))
    _hook_protocol(recorder)
    _hook_log(recorder, service.log)
    _hook_contact_writer(recorder, service.contacts)
    store = service.store
    for name in (
        "read_many",
        "contacts_many",
        "contacts",
        "recent_contacts",
        "recent_contact_classes",
    ):
        setattr(store, name, _timed_into(recorder, 5, getattr(store, name)))
    decide_module.decide_customer = _timed_into(recorder, 6, decide_module.decide_customer)
    gc.callbacks.append(recorder.on_gc)
    close = service.close

    def closed() -> None:
        close()
        gc.callbacks.remove(recorder.on_gc)
        recorder.dump()

    service.close = closed
    return recorder

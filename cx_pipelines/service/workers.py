"""``cx serve --workers N`` (N > 1): N uvicorn servers, each listening on a socket of its own.

uvicorn's own workers share one listening socket, and whichever worker wakes first takes
every connection waiting on it: a client that opens a few long-lived connections at once
(a channel system's batch feed, the load benchmark's four) can leave one worker carrying
all of them while the other idles. Here each worker binds its own socket to the same
address with ``SO_REUSEPORT``, and the kernel spreads new connections over the workers'
sockets by a hash of each connection's addresses and ports; a worker that is not running
has no socket, so nothing waits on a dead one. The supervisor holds the address (bound,
not listening) while it runs, restarts a worker that exits, and stops every worker on
SIGINT or SIGTERM.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import threading

import uvicorn
from uvicorn.config import STARTUP_FAILURE

LOGGER = logging.getLogger("cx_pipelines.service")
_SPAWN = multiprocessing.get_context("spawn")  # a fresh interpreter: no state forked over
_STOP_SECONDS = 30  # a stopping worker's graceful shutdown, then SIGKILL


def reuseport_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``(host, port)`` with ``SO_REUSEPORT`` (not yet listening)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _worker(config: uvicorn.Config) -> None:
    """One worker process: its own socket on the shared address, then uvicorn's server."""
    config.configure_logging()
    uvicorn.Server(config).run(sockets=[reuseport_socket(config.host, config.port)])


class Supervisor:
    """Runs ``workers`` copies of :func:`_worker` until SIGINT/SIGTERM, replacing any that
    exits; a worker that fails its start-up (uvicorn's exit code 3: the strategy, keys or
    store would fail every restart the same way) stops the service with that code."""

    def __init__(self, config: uvicorn.Config, workers: int) -> None:
        self.config, self.workers = config, workers
        self.stopping = threading.Event()

    def run(self) -> int:
        """Serve until stopped; the exit code (0, or :data:`STARTUP_FAILURE`)."""
        try:
            holder = reuseport_socket(self.config.host, self.config.port)
        except OSError as error:
            LOGGER.error("cannot bind %s:%s: %s", self.config.host, self.config.port, error)
            return STARTUP_FAILURE
        self.config.port = holder.getsockname()[1]  # port 0: every worker on the one chosen
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, lambda *_: self.stopping.set())
        processes = [self._start() for _ in range(self.workers)]
        LOGGER.info(
            "serving on %s:%s with %d workers (SO_REUSEPORT)",
            self.config.host,
            self.config.port,
            self.workers,
        )
        code = 0
        while not self.stopping.wait(0.2):
            for index, process in enumerate(processes):
                if process.is_alive():
                    continue
                if process.exitcode == STARTUP_FAILURE:
                    LOGGER.error("worker %s failed to start; stopping", process.pid)
                    code = STARTUP_FAILURE
                    self.stopping.set()
                    break
                LOGGER.warning(
                    "worker %s exited (%s); starting another", process.pid, process.exitcode
                )
                processes[index] = self._start()
        self._stop(processes)
        holder.close()
        return code

    def _start(self) -> multiprocessing.process.BaseProcess:
        process = _SPAWN.Process(target=_worker, args=(self.config,), name="cx-serve-worker")
        process.start()
        return process

    @staticmethod
    def _stop(processes: list) -> None:
        for process in processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn finishes the requests in flight
        for process in processes:
            process.join(_STOP_SECONDS)
            if process.is_alive():
                process.kill()
                process.join()

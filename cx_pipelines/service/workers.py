"""``cx serve --workers N`` (N > 1): a supervisor that accepts connections and deals them
to N uvicorn workers in turn.

uvicorn's own workers share one listening socket, and whichever worker wakes first takes
every connection waiting on it: a client that opens a few long-lived connections at once
(a channel system's batch feed, the load benchmark's four) can leave one worker carrying
all of them while the other idles. ``SO_REUSEPORT`` sockets (one per worker) spread
connections by a hash of their ports, which still gives one worker all four connections
one time in eight. So the supervisor accepts, and hands each connection's descriptor to
the next ready worker over a Unix socket (``SCM_RIGHTS``), as Node's cluster module does:
four connections are two per worker. Only the accept goes through the supervisor; the
requests go straight to the worker. A worker says when it is ready (its application
started) and gets no connection before; the address is refused until every worker is
ready, then a worker that exits is replaced while the others serve; a worker that fails
its start-up (uvicorn's exit code 3: the strategy, keys or store would fail every restart
the same way) stops the service with that code, as uvicorn's supervisor does. SIGINT or
SIGTERM stops every worker gracefully; a worker whose supervisor has gone stops too.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import multiprocessing
import selectors
import signal
import socket
from dataclasses import dataclass

import uvicorn
from uvicorn.config import STARTUP_FAILURE

LOGGER = logging.getLogger("cx_pipelines.service")
_SPAWN = multiprocessing.get_context("spawn")  # a fresh interpreter: no state forked over
_READY = b"r"  # a worker's one message to the supervisor
_STOP_SECONDS = 30  # a stopping worker's graceful shutdown, then SIGKILL


class DealtServer(uvicorn.Server):
    """uvicorn's server without a listening socket of its own: it serves the accepted
    connections the supervisor sends over ``channel`` (one descriptor per message)."""

    def __init__(self, config: uvicorn.Config, channel: socket.socket) -> None:
        super().__init__(config)
        self.channel = channel

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])  # the application's lifespan, no listener
        loop = asyncio.get_running_loop()
        self.channel.setblocking(False)
        loop.add_reader(self.channel.fileno(), self._adopt, loop)
        self.channel.send(_READY)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        asyncio.get_running_loop().remove_reader(self.channel.fileno())
        await super().shutdown(sockets=sockets)

    def _adopt(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            message, descriptors, _, _ = socket.recv_fds(self.channel, 64, 64)
        except (BlockingIOError, InterruptedError):
            return
        if not message:  # the supervisor is gone: finish what is in flight and stop
            loop.remove_reader(self.channel.fileno())
            self.should_exit = True
            return
        for descriptor in descriptors:
            connection = socket.socket(fileno=descriptor)
            loop.create_task(loop.connect_accepted_socket(self._protocol, connection))

    def _protocol(self) -> asyncio.Protocol:
        """What uvicorn's own listener makes for each connection."""
        return self.config.http_protocol_class(  # type: ignore[call-arg]
            config=self.config, server_state=self.server_state, app_state=self.lifespan.state
        )


def _worker(config: uvicorn.Config, channel: socket.socket) -> None:
    """One worker process: uvicorn's server on the connections dealt to it."""
    config.configure_logging()
    DealtServer(config, channel).run()


@dataclass(eq=False)
class _Worker:
    process: multiprocessing.process.BaseProcess
    channel: socket.socket  # the supervisor's end
    ready: bool = False


class Supervisor:
    """Accepts on ``config``'s address and deals connections to ``workers`` workers."""

    def __init__(self, config: uvicorn.Config, workers: int) -> None:
        self.config, self.count = config, workers
        self.stopping = False
        self.selector = selectors.DefaultSelector()
        self.workers: list[_Worker] = []
        self.turn = itertools.count()

    def run(self) -> int:
        """Serve until SIGINT/SIGTERM; the exit code (0, or :data:`STARTUP_FAILURE`)."""
        family = socket.AF_INET6 if ":" in self.config.host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((self.config.host, self.config.port))
        except OSError as error:
            listener.close()
            LOGGER.error("cannot bind %s:%s: %s", self.config.host, self.config.port, error)
            return STARTUP_FAILURE
        listener.setblocking(False)
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, self._stop)
        self.workers = [self._start() for _ in range(self.count)]
        code = 0
        listening = accepting = False
        while not self.stopping:
            ready = any(worker.ready for worker in self.workers)
            if not listening and all(worker.ready for worker in self.workers):
                # refused until every worker has started (as by one uvicorn process), so
                # the first connections are dealt to all of them, not all to the first
                listener.listen(self.config.backlog)
                listening = True
            if listening and ready != accepting:  # none ready: they wait in the backlog
                if ready:
                    self.selector.register(listener, selectors.EVENT_READ)
                else:
                    self.selector.unregister(listener)
                accepting = ready
            for key, _ in self.selector.select(0.2):
                if key.fileobj is listener:
                    self._deal(listener)
                else:
                    self._heard(key.data)
            code = self._replace_exited()
            if code:
                break
        self.selector.close()
        listener.close()
        self._stop_workers()
        return code

    def _stop(self, *_) -> None:
        self.stopping = True

    def _start(self) -> _Worker:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)  # one message each
        process = _SPAWN.Process(target=_worker, args=(self.config, theirs), name="cx-worker")
        process.start()
        theirs.close()
        ours.setblocking(False)
        worker = _Worker(process, ours)
        self.selector.register(ours, selectors.EVENT_READ, worker)
        return worker

    def _heard(self, worker: _Worker) -> None:
        """The worker's ready message, or the end of its channel (it has exited)."""
        try:
            message = worker.channel.recv(64)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            message = b""
        worker.ready = bool(message)
        if not message:
            self.selector.unregister(worker.channel)

    def _deal(self, listener: socket.socket) -> None:
        """Every waiting connection to the next ready worker in turn (closed if none can
        take it: every channel full)."""
        while True:
            try:
                connection, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            with connection:
                ready = [worker for worker in self.workers if worker.ready]
                for _ in range(len(ready)):
                    worker = ready[next(self.turn) % len(ready)]
                    try:
                        socket.send_fds(worker.channel, [b"c"], [connection.fileno()])
                        break
                    except (BlockingIOError, InterruptedError):  # its channel is full
                        continue
                    except OSError:  # it has exited
                        worker.ready = False

    def _replace_exited(self) -> int:
        for index, worker in enumerate(self.workers):
            if worker.process.is_alive() or self.stopping:
                continue
            worker.process.join()
            if worker.channel.fileno() in self.selector.get_map():
                self.selector.unregister(worker.channel)
            worker.channel.close()
            if worker.process.exitcode == STARTUP_FAILURE:
                LOGGER.error("worker %s failed to start; stopping", worker.process.pid)
                return STARTUP_FAILURE
            LOGGER.warning(
                "worker %s exited (%s); starting another",
                worker.process.pid,
                worker.process.exitcode,
            )
            self.workers[index] = self._start()
        return 0

    def _stop_workers(self) -> None:
        for worker in self.workers:
            if worker.process.is_alive():
                worker.process.terminate()  # SIGTERM: uvicorn finishes the requests in flight
        for worker in self.workers:
            worker.process.join(_STOP_SECONDS)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.channel.close()

"""Contact recording off the request path: a writer thread per worker, batching.

Every decision that presents a treatment to a known customer is a contact, counted in
the online store's contact counters, which the contact policy reads on the next decision
(of any worker; the batch side counts the same contacts from the decision log). Writing
each contact inside the request, in its own transaction, put the store's write latency on
every answer: with two workers on one SQLite file, the writers wait for each other's lock
(SQLite's busy handler sleeps in millisecond steps) and a WAL checkpoint fsyncs, so one
write in twenty took over 5 ms (``benchmarks/service_load.py``'s paced phase, issue 9).

:class:`ContactWriter` takes a decision's contacts in memory (:meth:`record`, a list
append), and a thread writes whatever has gathered every ``flush_ms`` in one
``record_contacts`` call (one transaction). Until a contact is written it is *pending*:
:class:`RecordedContacts`, the store as this worker's requests see it, adds the pending
contacts to every contact read, so a worker's caps count its own contacts at once, as
before. Other workers see a contact once it is written, at most ``flush_ms`` plus one
write after it was decided (before: when its answer went out).

What can be lost: nothing on a clean shutdown (:meth:`ContactWriter.close` writes every
pending contact, retrying for ``close_seconds``). On ``kill -9`` (or a crash) the contacts
still pending, those of the last ``flush_ms`` or so, never reach the store's counters;
they are in the decision log, written before the answer, which stays the source of truth
(the batch side's caps read it, :func:`cx_pipelines.campaigns.population.service_contacts`).
When the store cannot be written the contacts stay pending (and counted) and are retried;
beyond ``max_pending`` the oldest are dropped from memory with an error in the log.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from cx_pipelines.online_store import (
    DAY,
    ClassSummary,
    Contact,
    ContactClasses,
    ContactRow,
    OnlineStore,
    StoreUnavailable,
    recent_contact_classes,
    summarise,
)

LOGGER = logging.getLogger("cx_pipelines.service")


class ContactWriter:
    """Pending contacts of this worker and the thread that writes them to ``store``."""

    def __init__(
        self,
        store: OnlineStore,
        *,
        flush_ms: float = 10.0,
        max_pending: int = 100_000,
        retry_seconds: float = 0.5,
        close_seconds: float = 10.0,
    ) -> None:
        self.store = store
        self._flush_seconds = flush_ms / 1000
        self._max_pending = max_pending
        self._retry_seconds = retry_seconds
        self._close_seconds = close_seconds
        self._queued: list[Contact] = []  # not yet taken by the writer
        self._writing: list[Contact] = []  # taken, being written
        self._by_customer: dict[str, list[Contact]] = {}  # queued and being written
        self._condition = threading.Condition()
        self._closed = False
        self._hurry = False  # a flush() waits: write without gathering
        self._idle = False  # the writer waits for a first contact (record() wakes it)
        self._give_up_at = float("inf")  # set by close(): stop retrying a failing store
        self._dropped_logged_at = -1.0
        self.written = 0
        self.dropped = 0
        self.failures = 0
        self._thread = threading.Thread(target=self._run, name="contact-writer", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        """Contacts recorded here and not yet in the store."""
        with self._condition:
            return len(self._queued) + len(self._writing)

    def record(self, contacts: Sequence[Contact]) -> None:
        """Take ``contacts`` (pending at once, written by the thread); never blocks on the store."""
        if not contacts:
            return
        with self._condition:
            if self._closed:
                raise StoreUnavailable("contact writer is closed")
            for contact in contacts:
                self._queued.append(contact)
                self._by_customer.setdefault(contact.customer_id, []).append(contact)
            overflow = len(self._queued) + len(self._writing) - self._max_pending
            if overflow > 0:
                self._drop(min(overflow, len(self._queued)))
            if self._idle:  # wake the writer only once per write, not per decision
                self._idle = False
                self._condition.notify()

    def _drop(self, count: int) -> None:
        dropped, self._queued = self._queued[:count], self._queued[count:]
        self._forget(dropped)
        self.dropped += count
        if time.monotonic() - self._dropped_logged_at >= 1.0:  # once a second at most
            self._dropped_logged_at = time.monotonic()
            LOGGER.error(
                "contact writer: %d pending contacts dropped so far (over %d; the store is "
                "not taking writes); they stay in the decision log",
                self.dropped,
                self._max_pending,
            )

    def _forget(self, contacts: Sequence[Contact]) -> None:
        for contact in contacts:
            mine = self._by_customer.get(contact.customer_id)
            if mine is None:
                continue
            try:
                mine.remove(contact)
            except ValueError:
                continue
            if not mine:
                del self._by_customer[contact.customer_id]

    def pending_for(self, customer_ids: Sequence[str]) -> dict[str, list[Contact]]:
        """The pending contacts of each of ``customer_ids`` that has any."""
        by_customer = self._by_customer
        if not by_customer:
            return {}
        with self._condition:
            return {c: list(by_customer[c]) for c in customer_ids if c in by_customer}

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every contact recorded before this call is written (or ``timeout``)."""
        deadline = time.monotonic() + timeout
        with self._condition:
            target = self.written + self.dropped + len(self._queued) + len(self._writing)
            self._hurry = True
            self._condition.notify_all()
            while self.written + self.dropped < target:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._condition.wait(min(left, 0.05))
        return True

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._queued and not self._closed:
                    self._idle = True
                    self._condition.wait()
                self._idle = False
                if self._closed and not self._queued:
                    return
                # gather what else is decided for flush_ms (a flush or close cuts it short)
                deadline = time.monotonic() + self._flush_seconds
                while not self._closed and not self._hurry:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._condition.wait(left)
                self._hurry = False
                batch, self._queued = self._queued, []
                self._writing = batch
            self._write(batch)

    def _write(self, batch: list[Contact]) -> None:
        """Write ``batch`` (retrying while the store fails; the contacts stay pending)."""
        while True:
            try:
                self.store.record_contacts(batch)
            except StoreUnavailable as error:
                self.failures += 1
                LOGGER.warning("contact writer: %d contacts not yet written: %s", len(batch), error)
                with self._condition:
                    if self._closed and time.monotonic() >= self._give_up_at:
                        lost = batch + self._queued
                        self._writing, self._queued = [], []
                        self._forget(lost)
                        self.dropped += len(lost)
                        self._condition.notify_all()
                        LOGGER.error(
                            "contact writer: %d contacts not written at shutdown; they stay "
                            "in the decision log",
                            len(lost),
                        )
                        return
                    # what arrives meanwhile waits its turn
                    self._condition.wait(0.1 if self._closed else self._retry_seconds)
                continue
            with self._condition:
                self._writing = []
                self._forget(batch)
                self.written += len(batch)
                self._condition.notify_all()
            return

    def close(self) -> None:
        """Write every pending contact (retrying up to ``close_seconds``), then stop."""
        with self._condition:
            self._closed = True
            self._give_up_at = time.monotonic() + self._close_seconds
            self._condition.notify_all()
        self._thread.join(timeout=self._close_seconds + 5)
        self.store.close()


class RecordedContacts:
    """The online store as one worker's requests see it: contact reads include the
    contacts this worker recorded that are still pending; everything else is the store's.

    The pending contacts are taken *before* the store is read, so a contact written in
    between is seen in the store (never missed); one seen in both is counted once.
    """

    def __init__(self, store: OnlineStore, writer: ContactWriter) -> None:
        self._store = store
        self._writer = writer
        self.url = store.url

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def contacts(self, customer_id: str) -> list[Contact]:
        pending = self._writer.pending_for([customer_id])
        stored = self._store.contacts(customer_id)
        return _merged(stored, pending.get(customer_id)) if pending else stored

    def contacts_many(self, customer_ids: Sequence[str]) -> dict[str, list[Contact]]:
        pending = self._writer.pending_for(customer_ids)
        stored = self._store.contacts_many(customer_ids)
        for customer_id, mine in pending.items():
            stored[customer_id] = _merged(stored.get(customer_id, []), mine)
        return stored

    def recent_contacts(self, customer_ids: Sequence[str], since: float) -> list[ContactRow]:
        pending = self._writer.pending_for(customer_ids)
        stored = self._store.recent_contacts(customer_ids, since)
        if not pending:
            return stored
        # only the customers with pending contacts are merged (their rows moved to the
        # end, still together and in time order); the others' rows stay as read
        seen = {row[:4] for row in stored if row[0] in pending}
        extra = [
            (c.customer_id, c.channel, c.treatment, c.at, c.declined)
            for mine in pending.values()
            for c in mine
            if c.at > since and (c.customer_id, c.channel, c.treatment, c.at) not in seen
        ]
        if not extra:
            return stored
        merged = {row[0] for row in extra}
        moved = [row for row in stored if row[0] in merged]
        kept = [row for row in stored if row[0] not in merged]
        return kept + sorted(moved + extra, key=lambda row: (row[0], row[3]))

    def recent_contact_classes(
        self, customer_ids: Sequence[str], now: float, classes: ContactClasses
    ) -> list[ClassSummary]:
        """:meth:`recent_contacts` as class summaries: grouped by the store for the
        customers without pending contacts, from the merged rows for the others."""
        pending = self._writer.pending_for(customer_ids)
        if not pending:
            return recent_contact_classes(self._store, customer_ids, now, classes)
        others = [c for c in dict.fromkeys(customer_ids) if c not in pending]
        rows = self.recent_contacts(list(pending), now - (classes.window + 1) * DAY)
        return recent_contact_classes(self._store, others, now, classes) + summarise(
            rows, now, classes
        )

    def record_contacts(self, contacts: Sequence[Contact]) -> None:
        self._writer.record(contacts)

    def mark_declined(self, customer_id: str, contact_id: str) -> bool:
        pending = self._writer.pending_for([customer_id]).get(customer_id, ())
        # a contact still on its way to the store is written first (a few ms at most)
        if any(c.contact_id == contact_id for c in pending) and not self._writer.flush(2.0):
            raise StoreUnavailable("the contact is not yet in the online store; retry")
        return self._store.mark_declined(customer_id, contact_id)


def _merged(stored: list[Contact], pending: list[Contact] | None) -> list[Contact]:
    if not pending:
        return stored
    seen = {contact.contact_id for contact in stored}
    extra = [contact for contact in pending if contact.contact_id not in seen]
    return sorted(stored + extra, key=lambda contact: contact.at) if extra else stored

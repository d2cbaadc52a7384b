"""Leader election with fencing tokens: one active `watch_flux` per cluster, the others on standby.

The contract:
- A lease is a database row (`Lease`) named after what it guards (`flux-watch:<cluster>`): its
  `holder` (host:pid), its `token` and `expires_at`. `Elector.acquire` takes a lease that has
  expired or was released, and adds 1 to its token; `renew` extends it only while the token is
  still the caller's; `release` (clean shutdown) lets a standby take over at its next poll.
- The **token is the fence**. Every status write of the watcher runs `Fence.check()` inside its own
  transaction: the write commits only if the lease still carries this holder's token. A leader
  that stalled past its lease (GC pause, SIGSTOP, a partitioned node) and was replaced finds a
  higher token and its write is refused (`Deposed`), even if it has not noticed yet. On PostgreSQL
  the check reads the lease row `FOR SHARE`: a takeover (an UPDATE of that row) waits for the
  leader's write transactions in flight and every later one sees the new token. SQLite runs write
  transactions one at a time (`BEGIN IMMEDIATE`), which orders them the same way.
- Expiry is decided by the **database's clock** (`now()` in the conditional UPDATE), never by the
  clocks of the watcher processes, so skew between nodes cannot make two leaders.

Why a database row rather than a Valkey lock: the lease protects what the watcher writes, and a
fencing token only protects a resource that checks it itself; that resource is the database. A
Valkey lock (SET NX PX plus an INCR token) would still need a row in the database holding the
highest token seen, checked in every write transaction; the row alone is both the lock and the
fence, in one system with one clock. It also holds where a Valkey lock does not: across a Valkey
failover (an asynchronous replica can hand the same lock out twice) and in embedded mode with no
Valkey at all (SQLite: the same code, tested the same way).

Timing: a standby polls every `FLUX_LEASE_RENEW_SECONDS`, so it takes over at most
`FLUX_LEASE_SECONDS + FLUX_LEASE_RENEW_SECONDS` after the leader died (one renew interval after a
clean stop, which releases the lease). A leader that cannot renew (database unreachable) steps down
when its lease would have run out.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import DateTimeField, ExpressionWrapper, F, Q, Value
from django.db.models.functions import Now
from django.utils import timezone

from .models import Lease

log = logging.getLogger(__name__)


class Deposed(Exception):
    """The lease changed hands: this holder's token is stale and its write was refused."""


def holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _expires_in(seconds: float) -> ExpressionWrapper:
    """`now() + seconds` on the database's clock."""
    return ExpressionWrapper(
        Now() + Value(timedelta(seconds=seconds)), output_field=DateTimeField()
    )


class Fence:
    """The token one holder won: `check()` in a write transaction refuses stale writes."""

    def __init__(self, name: str, token: int, holder: str) -> None:
        self.name, self.token, self.holder = name, token, holder
        self.deposed = threading.Event()  # set once a check or a renewal found the lease lost

    def check(self) -> None:
        """Raise `Deposed` unless the lease still carries this token. Call it inside the write's
        transaction (it locks the lease row against a takeover until that transaction ends)."""
        if not connection.in_atomic_block:
            raise RuntimeError("Fence.check() belongs inside the write's transaction")
        table = connection.ops.quote_name(Lease._meta.db_table)
        lock = " FOR SHARE" if connection.vendor == "postgresql" else ""
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT token FROM {table} WHERE name = %s{lock}", [self.name])  # noqa: S608 - quoted model table
            row = cursor.fetchone()
        current = int(row[0]) if row else None
        if current != self.token:
            self.deposed.set()
            raise Deposed(
                f"lease {self.name}: token {self.token} of {self.holder} is stale "
                f"(the lease now carries {current}); write refused"
            )

    def __repr__(self) -> str:
        return f"Fence({self.name!r}, token={self.token}, holder={self.holder!r})"


class Elector:
    """Acquire, renew and release one named lease for this process."""

    def __init__(
        self,
        name: str,
        *,
        holder: str | None = None,
        lease_seconds: float | None = None,
        renew_seconds: float | None = None,
    ) -> None:
        self.name = name
        self.holder = holder or holder_id()
        self.lease_seconds = lease_seconds or settings.FLUX_LEASE_SECONDS
        self.renew_seconds = renew_seconds or settings.FLUX_LEASE_RENEW_SECONDS

    def _row(self) -> None:
        Lease.objects.get_or_create(
            name=self.name, defaults={"expires_at": timezone.now() - timedelta(days=1)}
        )

    def try_acquire(self) -> Fence | None:
        """Take the lease if it expired or was released (token + 1); None when it is held."""
        try:
            self._row()
            with transaction.atomic():
                taken = (
                    Lease.objects.filter(name=self.name)
                    .filter(Q(holder="") | Q(expires_at__lt=Now()))
                    .update(
                        holder=self.holder,
                        token=F("token") + 1,
                        acquired_at=Now(),
                        expires_at=_expires_in(self.lease_seconds),
                    )
                )
                if not taken:
                    return None
                token = Lease.objects.filter(name=self.name).values_list("token", flat=True).get()
        finally:
            connection.close()  # back to the pool between polls
        return Fence(self.name, int(token), self.holder)

    def acquire(self, stop: threading.Event) -> Fence | None:
        """Wait (polling every renew interval) until this process holds the lease, or `stop`."""
        announced = False
        while not stop.is_set():
            try:
                fence = self.try_acquire()
            except Exception as exc:  # database down: keep waiting, the lease is not ours
                log.warning("lease %s: cannot reach the database (%s)", self.name, exc)
                fence = None
            if fence is not None:
                log.info("lease %s: leading as %s (token %s)", self.name, self.holder, fence.token)
                return fence
            if not announced:
                log.info("lease %s: standing by (held by another watcher)", self.name)
                announced = True
            stop.wait(self.renew_seconds)
        return None

    def renew(self, fence: Fence) -> bool:
        """Extend the lease; False once its token is no longer `fence`'s."""
        try:
            return bool(
                Lease.objects.filter(name=self.name, token=fence.token, holder=fence.holder).update(
                    expires_at=_expires_in(self.lease_seconds)
                )
            )
        finally:
            connection.close()

    def release(self, fence: Fence) -> None:
        """Give the lease up (clean shutdown): a standby takes it at its next poll."""
        try:
            Lease.objects.filter(name=self.name, token=fence.token, holder=fence.holder).update(
                holder="", expires_at=Now()
            )
        except Exception as exc:
            log.warning("lease %s: not released (%s); it expires by itself", self.name, exc)
        finally:
            connection.close()

    def keep(self, fence: Fence, stop: threading.Event, term: threading.Event) -> None:
        """Renew every renew interval until `stop` (then release) or until the lease is lost
        (then set `term`: the caller stops its work and stands by again). A renewal that fails
        on a database error is retried until the lease would have run out."""
        valid_until = time.monotonic() + self.lease_seconds
        try:
            while not stop.wait(self.renew_seconds):
                if term.is_set() or fence.deposed.is_set():
                    return
                try:
                    if not self.renew(fence):
                        fence.deposed.set()
                        log.warning(
                            "lease %s: lost (token %s is stale); standing by",
                            self.name,
                            fence.token,
                        )
                        return
                    valid_until = time.monotonic() + self.lease_seconds
                except Exception as exc:
                    if time.monotonic() >= valid_until:
                        fence.deposed.set()
                        log.warning(
                            "lease %s: not renewed before it ran out (%s); standing by",
                            self.name,
                            exc,
                        )
                        return
                    log.warning("lease %s: renewal failed (%s); retrying", self.name, exc)
            self.release(fence)
        finally:
            term.set()

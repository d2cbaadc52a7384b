"""Versions of shared data, for caching what pages render from it (issue 12, "Speed").

A `Version` is a random token on the shared cache (Valkey) that changes whenever the data it
stands for changes: writers call `bump()` (model signals do, through `renew_on_write`; bulk
writes, which send none, call it themselves). Readers `fetch()` what they cache: every entry is
stored with the version it was built under and is used only while that is still the version, so
a change is seen by every process on its next read (entries are never updated in place: a
changed version just stops matching, and entries expire after `ttl`).

Ordering: a reader reads the version before (or with) the entries and before the data it builds
from, and `bump()` changes the token both at once and again after the writer's transaction
commits. A reader racing a writer may store old data under a version that is already gone (never
used again), or new data under the version of the moment before the commit (it shows the change
a moment early), but never old data under the version that follows the commit.

`fetch()` builds every value (caching nothing) when page caching is off
(`settings.PAGE_CACHE`, on by default with a shared Valkey: a process-local cache cannot see
another process's bumps, e.g. `manage.py sync_catalog` run from a shell) and while Valkey is
unreachable (`core.cache.ResilientRedisCache` then answers from a cache of this process only).
A bump made while Valkey was down is lost to it: the version itself expires after `ttl`, which
bounds how long entries cached before the outage can be served after it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save

DEFAULT_TTL = 300  # seconds: versions and the entries keyed by them


def enabled() -> bool:
    """Whether pages may cache now: on, and the shared cache is reachable."""
    if not getattr(settings, "PAGE_CACHE", False):
        return False
    is_down = getattr(cache, "is_down", None)
    return not (is_down is not None and is_down())


class Version:
    def __init__(self, name: str, *, ttl: int = DEFAULT_TTL) -> None:
        self.name = name
        self.key = f"version:{name}"
        self.ttl = ttl

    def fetch(self, builders: dict[str, Callable[[], Any]]) -> list[Any]:
        """Each builder's value, in order: from the cache when it was stored under the current
        version, else built and stored (with the version it was built under). One round trip
        reads the version and every entry. Caching off or Valkey down: each is built."""
        if not enabled():
            return [build() for build in builders.values()]
        keys = [f"{self.name}:{key}" for key in builders]
        found = cache.get_many([self.key, *keys])
        token = found.get(self.key)
        if token is None:
            fresh = uuid.uuid4().hex
            token = fresh if cache.add(self.key, fresh, self.ttl) else cache.get(self.key)
        if token is None or not enabled():  # Valkey failed while answering: not shared
            return [build() for build in builders.values()]
        values, missing = [], {}
        for key, build in zip(keys, builders.values(), strict=True):
            entry = found.get(key)
            if isinstance(entry, tuple) and len(entry) == 2 and entry[0] == token:
                values.append(entry[1])
            else:
                value = build()
                values.append(value)
                missing[key] = (token, value)
        if missing:
            cache.set_many(missing, self.ttl)
        return values

    def bump(self) -> None:
        """The data changed (or is changing in the current transaction)."""
        self._renew()
        transaction.on_commit(self._renew)

    def renew_on_write(self, model: str) -> None:
        """Bump on every save and delete of `model` ("app_label.Model"). Bulk writes and
        `QuerySet.update()` send no signal: their callers bump themselves."""

        def renew(**_: object) -> None:
            self.bump()

        uid = f"version-{self.name}-{model}"
        post_save.connect(renew, sender=model, weak=False, dispatch_uid=f"{uid}-save")
        post_delete.connect(renew, sender=model, weak=False, dispatch_uid=f"{uid}-delete")

    def _renew(self) -> None:
        cache.set(self.key, uuid.uuid4().hex, self.ttl)


# What every page's frame shows of the site, read on every page otherwise: the Sovereign's name
# and whether any Flux cluster reports back (renewed by orgs and gitops on every write of them).
SITE = Version("site")

# What every signed-in page's frame lists: the Organizations a set of grants opens (the switcher)
# and the current one's Environments (the navigation). Renewed by orgs on every save and delete
# of an Organization or an Environment; the entries are keyed by the grants that chose them.
SHELL = Version("shell")

"""Every signed-in page's frame, in-process (issue 12, "Speed"). Run:
`VALKEY_URL=redis://127.0.0.1:6379/<db> python -m bench bench_frame` (a throwaway database; with
DATABASE_URL=postgres://… it is PostgreSQL's).

The demo data, as its Organization owner: the five pages the serving bench browses, each served by
Django's test client in this process, the median CPU of this process a request. The figure is
the frame's Organizations and Environments cached (`core.versioned.SHELL`); the baseline is the
same page in the same run with them read on every request (`SHELL.fetch` building each time, as
before the cache), alternated with it in rounds so both see the same machine.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import median, report, setup_django, throwaway_database, timed_cpu

PAGES = [
    "/marketplace/",
    "/orgs/",
    "/orgs/acme-shop/",
    "/marketplace/bp-wordpress/",
    "/marketplace/apps/",
]
ROUNDS = 4
REPEAT = 40


def _getter(client: Any, path: str) -> Callable[[], Any]:
    return lambda: client.get(path)


def main() -> None:
    setup_django()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    from core import versioned

    if not settings.PAGE_CACHE:
        print("  skipped: set VALKEY_URL (page caching is on with a shared Valkey)")
        return
    settings.GIT_ROOT = Path(tempfile.mkdtemp(prefix="bench-frame-")) / "git"
    cached = versioned.SHELL.fetch

    def built(builders: dict[str, Callable[[], Any]]) -> list[Any]:
        return [build() for build in builders.values()]

    with throwaway_database():
        call_command("load_demo", verbosity=0)
        client = Client()
        client.force_login(get_user_model().objects.get(username="alice"))
        cpu: dict[tuple[str, bool], list[float]] = {
            (p, on): [] for p in PAGES for on in (False, True)
        }
        try:
            for _ in range(ROUNDS):
                for on in (False, True):
                    versioned.SHELL.fetch = cached if on else built  # type: ignore[method-assign]
                    for path in PAGES:
                        cpu[(path, on)] += timed_cpu(_getter(client, path), repeat=REPEAT)
        finally:
            versioned.SHELL.fetch = cached  # type: ignore[method-assign]
        for path in PAGES:
            report(
                f"{path}: CPU a request",
                median(cpu[(path, True)]),
                baseline=median(cpu[(path, False)]),
                baseline_name="the frame read on every request",
            )
        report(
            "the five pages together: CPU",
            sum(median(cpu[(p, True)]) for p in PAGES),
            baseline=sum(median(cpu[(p, False)]) for p in PAGES),
            baseline_name="the frame read on every request",
        )


if __name__ == "__main__":
    main()

"""The catalog page's own server time, in-process (issue 12, "Speed": the catalog page against a
bare view). Run: `python -m bench bench_catalog_page` (a throwaway database; with
DATABASE_URL=postgres://… it is PostgreSQL's).

The demo data, then 46 more Blueprints (60: one full page of cards). Each figure is the page
served by Django's test client in this process — the middleware, the view, its queries and the
template, no HTTP server — as the demo's Organization owner: the median CPU of this process a
request (what the page costs a core, unaffected by other work waiting for the same cores) and
the wall median, and the queries a request runs. The baseline is the same page in the same run
with page caching off (`PAGE_CACHE=False`: every request reads and renders the cards, as before
caching), alternated with it in rounds so both see the same machine.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from bench.common import median, report, setup_django, throwaway_database, timed, timed_cpu

REPEAT = 300
ROUNDS = 5


def _extra_blueprints(directory: Path, count: int) -> None:
    import yaml

    for i in range(count):
        doc = {
            "apiVersion": "catalyst.openova.io/v1",
            "kind": "Blueprint",
            "metadata": {"name": f"bp-extra{i:02d}"},
            "spec": {
                "version": "1.0.0",
                "card": {
                    "title": f"Extra {i:02d}",
                    "summary": f"An extra application, number {i}",
                    "category": ["testing", "databases", "observability"][i % 3],
                    "tags": ["sso", "web", f"t{i % 5}"],
                },
                "manifests": {
                    "chart": {
                        "repository": "https://dl.gitea.com/charts",
                        "name": "gitea",
                        "version": "1.0.0",
                    }
                },
            },
        }
        (directory / f"bp-extra{i:02d}.yaml").write_text(yaml.safe_dump(doc))


def _queries(client: Any, path: str) -> int:
    from django.db import connection

    seen: list[str] = []

    def count(execute: Any, sql: str, *args: Any) -> Any:
        seen.append(sql)
        return execute(sql, *args)

    with connection.execute_wrapper(count):
        assert client.get(path).status_code == 200
    return len(seen)


def _measure(client: Any, path: str, label: str) -> None:
    """Caching off and on alternately, ROUNDS times (so both see the same machine), medians."""
    from django.conf import settings

    cpu: dict[bool, list[float]] = {False: [], True: []}
    wall: dict[bool, list[float]] = {False: [], True: []}
    queries = {}
    for _ in range(ROUNDS):
        for cached in (False, True):
            settings.PAGE_CACHE = cached
            client.get(path)
            queries[cached] = _queries(client, path)
            cpu[cached] += timed_cpu(lambda: client.get(path), repeat=REPEAT // ROUNDS)
            wall[cached] += timed(lambda: client.get(path), repeat=REPEAT // ROUNDS)
    off = "page caching off"
    report(
        f"{label}: CPU a request", median(cpu[True]), baseline=median(cpu[False]), baseline_name=off
    )
    report(f"{label}: wall", median(wall[True]), baseline=median(wall[False]), baseline_name=off)
    print(f"  {label}: queries a request {queries[True]} ({off}: {queries[False]})", flush=True)


def main() -> None:
    setup_django()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    from marketplace import loader
    from marketplace.models import Blueprint, CatalogSource

    settings.GIT_ROOT = Path(tempfile.mkdtemp(prefix="bench-catalog-page-")) / "git"
    with throwaway_database():
        call_command("load_demo", verbosity=0)
        client = Client()
        client.force_login(get_user_model().objects.get(username="alice"))
        _measure(client, "/healthz", "bare view (/healthz)")
        _measure(client, "/marketplace/", f"catalog page, {Blueprint.objects.count()} Blueprints")
        extra = Path(tempfile.mkdtemp(prefix="bench-catalog-extra-"))
        _extra_blueprints(extra, 46)
        source = CatalogSource.objects.create(name="extra", kind="directory", location=str(extra))
        loader.sync_source(source)
        _measure(client, "/marketplace/", f"catalog page, {Blueprint.objects.count()} Blueprints")
        _measure(client, "/marketplace/bp-wordpress/", "a Blueprint's page")

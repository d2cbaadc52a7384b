"""Issue 10 §8: five parallel POSTs with one Idempotency-Key give one execution and four replays
(they gave one 201 and four 400s). PostgreSQL only, as the other concurrency tests: SQLite
serialises writers anyway."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection, connections
from django.test import Client

from core.models import AuditEvent
from marketplace.models import Application, IdempotencyKey

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
URL = "/api/v1/orgs/acme/environments/acme-prod/applications/"
BODY = {"name": "cache", "blueprint": "bp-valkey"}


@pytest.fixture(autouse=True)
def _postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL)")


def _post(cookies: Any, barrier: threading.Barrier, key: str) -> tuple[int, dict, str]:
    client = Client()
    client.cookies = cookies
    try:
        barrier.wait(timeout=30)
        response = client.post(URL, BODY, content_type="application/json", HTTP_IDEMPOTENCY_KEY=key)
        return response.status_code, response.json(), response.get("Idempotent-Replayed", "")
    finally:
        connections.close_all()


def test_parallel_repeats_run_once_and_replay(catalog, cast, client_for):
    cookies = client_for(cast["admin"]).cookies
    for round_ in range(3):
        key = f"parallel-{round_}"
        Application.objects.all().delete()
        barrier = threading.Barrier(5)
        with ThreadPoolExecutor(max_workers=5) as pool:
            futures = [pool.submit(_post, cookies, barrier, key) for _ in range(5)]
            results = [f.result() for f in futures]
        statuses = sorted(r[0] for r in results)
        assert statuses == [201] * 5, results
        assert sorted(r[2] for r in results) == ["", "true", "true", "true", "true"]
        first = next(r[1] for r in results if not r[2])
        for r in results:
            assert r[1] == first, {
                k: (v, r[1].get(k)) for k, v in first.items() if r[1].get(k) != v
            }
        assert Application.objects.filter(name="cache").count() == 1
        assert IdempotencyKey.objects.get(key=key).status == 201
    assert AuditEvent.objects.filter(action="applications.install").count() == 3

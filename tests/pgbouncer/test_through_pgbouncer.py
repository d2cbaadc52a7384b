"""The portal behind PgBouncer in transaction mode (`PORTAL_DB_PGBOUNCER=true`).

`.ci/run` starts Debian's PgBouncer (pool_mode=transaction) in front of PostgreSQL and runs this
folder, with a representative subset of the suite, with DATABASE_URL pointing at it; elsewhere
these tests are skipped. What they show: the connection really goes through PgBouncer in
transaction mode; more clients than PostgreSQL's max_connections share a few server connections;
and the served portal (two workers, sessions, the API, a delivery committed to Git) works through
it with no server-side cursors and no prepared statements.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import psycopg
import pytest
from django.conf import settings as django_settings
from django.db import connection

from accounts.services import create_api_token
from core.models import OutboxItem
from orgs.models import Organization
from tests.serving import browse, serve, signed_in

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.xdist_group("serve"),
    pytest.mark.skipif(
        not getattr(django_settings, "DB_PGBOUNCER", False),
        reason="DATABASE_URL is not PgBouncer (PORTAL_DB_PGBOUNCER=true; .ci/run sets it up)",
    ),
]
__all__ = ["serve"]


def _dsn(dbname: str) -> dict[str, Any]:
    db = connection.settings_dict
    return {
        "host": db["HOST"] or "127.0.0.1",
        "port": int(db["PORT"] or 5432),
        "user": db["USER"],
        "password": db["PASSWORD"] or None,
        "dbname": dbname,
        "autocommit": True,
    }


def admin(command: str) -> list[dict[str, Any]]:
    """A SHOW command on PgBouncer's admin console (the `pgbouncer` database)."""
    with psycopg.connect(**_dsn("pgbouncer")) as console:
        cursor = console.execute(command)
        names = [column.name for column in cursor.description or []]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def our_pool() -> dict[str, Any]:
    name = connection.settings_dict["NAME"]
    return next(p for p in admin("SHOW POOLS") if p["database"] == name)


def server_connections(pool: dict[str, Any]) -> int:
    return int(pool["sv_active"] + pool["sv_idle"] + pool["sv_used"] + pool["sv_tested"])


def test_the_portal_talks_to_postgresql_through_pgbouncer_in_transaction_mode() -> None:
    db = connection.settings_dict
    with connection.cursor() as cursor:
        cursor.execute("SELECT inet_server_port(), current_database()")
        server_port, name = cursor.fetchone()
    assert server_port != int(db["PORT"])  # PostgreSQL's own port, behind the proxy's
    assert name == db["NAME"] and our_pool()["pool_mode"] == "transaction"
    # what transaction pooling needs of the portal (settings.py, PORTAL_DB_PGBOUNCER)
    assert db["DISABLE_SERVER_SIDE_CURSORS"] is True
    assert db["OPTIONS"]["prepare_threshold"] is None


def test_more_clients_than_postgresql_allows_share_a_few_server_connections() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SHOW max_connections")
        limit = int(cursor.fetchone()[0])
    config = {row["key"]: row["value"] for row in admin("SHOW CONFIG")}
    pool_size = int(config["default_pool_size"])
    assert pool_size < limit
    clients = [psycopg.connect(**_dsn(connection.settings_dict["NAME"])) for _ in range(limit + 20)]
    try:
        for client in clients:  # one short transaction each, all of them still connected
            assert client.execute("SELECT count(*) FROM core_outboxitem").fetchone() is not None
        pool = our_pool()
        assert pool["cl_active"] + pool["cl_waiting"] >= limit + 20
        assert server_connections(pool) <= pool_size  # what PostgreSQL sees of them
    finally:
        for client in clients:
            client.close()


def test_served_pages_api_and_deliveries_work_through_pgbouncer(serve: Any, cast: Any) -> None:
    server = serve(PORTAL_WEB_WORKERS="2", PORTAL_DB_POOL_MAX="16", PORTAL_TASKS_EAGER="true")
    browser = signed_in(server.url, cast["owner"])  # a database session, read on every request
    statuses = browse(browser, ["/orgs/", "/orgs/acme/", "/orgs/acme/audit/"], users=20, rounds=3)
    assert statuses == Counter({200: 180})

    token = create_api_token(user=cast["owner"], name="pgbouncer")[1]
    created = httpx.post(
        f"{server.url}/api/v1/orgs/",
        json={"slug": "pooled-co", "display_name": "Pooled Co"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    org = Organization.objects.get(slug="pooled-co")
    assert org.last_commit_sha  # the delivery task claimed its row and committed to Git
    assert not OutboxItem.objects.pending().filter(key=str(org.pk)).exists()
    listed = httpx.get(
        f"{server.url}/api/v1/orgs/", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    body = listed.json()
    rows = body["results"] if isinstance(body, dict) else body  # paginated or not
    assert {o["slug"] for o in rows} >= {"acme", "pooled-co"}
    # the other Organization's owner is still refused through the same pool
    other = signed_in(server.url, cast["member_b"])
    assert other.get("/orgs/acme/").status_code == 404

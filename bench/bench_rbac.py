"""RBAC at scale: 10,000 Environments in 2,000 Organizations, one user with 50 grants.

Asserts that `visible()` is one SQL query once the grants are read, and that `can()` costs no
query after the first in a request; measures the Organization list page (median ms) for the scoped
user and for a global-scope user (same page size), and prints the ratio.

`python -m bench.bench_rbac` — SQLite by default, PostgreSQL when DATABASE_URL is set.
"""

from __future__ import annotations

import os

from bench.common import median, p95, report, setup_django, throwaway_database, timed

ORGS = 2_000
ENV_TYPES = ("prod", "stg", "uat", "dev", "poc")  # 5 per Organization → 10,000 Environments
GRANTS = 50
REPEAT = 30
TARGET_MS = 50


def _populate() -> None:
    from django.contrib.auth import get_user_model

    from orgs.models import Environment, Organization, Sovereign
    from rbac.models import UserAccess
    from rbac.services import GLOBAL_SCOPE, ORG_LABEL, normalize_scopes

    Sovereign.objects.create(fqdn="bench.local")
    orgs = Organization.objects.bulk_create(
        Organization(slug=f"org{i:04d}", display_name=f"Org {i}", state="ready")
        for i in range(ORGS)
    )
    Environment.objects.bulk_create(
        Environment(organization=o, env_type=t, name=f"{o.slug}-{t}")
        for o in orgs
        for t in ENV_TYPES
    )
    users = get_user_model().objects
    scoped = users.create_user(username="scoped", email="scoped@bench.local", password="x")
    operator = users.create_user(username="global", email="global@bench.local", password="x")
    grants = []
    step = ORGS // GRANTS
    for n in range(GRANTS):
        slug = orgs[n * step].slug
        if n % 10 == 8:  # developer grants: forced to env-type=dev
            tier, terms = "developer", [{"key": ORG_LABEL, "value": slug}]
        elif n % 10 == 9:  # one Environment only
            tier, terms = "operator", [{"key": "openova.io/environment", "value": f"{slug}-prod"}]
        else:
            tier, terms = (
                ("viewer", "operator", "admin", "owner")[n % 4],
                [{"key": ORG_LABEL, "value": slug}],
            )
        scopes = normalize_scopes(tier, terms)
        grants.append(
            UserAccess(
                user=scoped,
                tier=tier,
                scopes=scopes,
                org_slug=scopes[0]["value"] if scopes[0]["key"] == ORG_LABEL else slug,
            )
        )
    grants.append(UserAccess(user=operator, tier="viewer", scopes=GLOBAL_SCOPE, org_slug=""))
    UserAccess.objects.bulk_create(grants)


def main() -> None:
    setup_django()
    from django.contrib.auth import get_user_model
    from django.core.signals import request_started
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from orgs.models import Environment, Organization
    from rbac import access

    if connection.vendor == "postgresql":  # never clobber test_<name>, which test runs use
        connection.settings_dict.setdefault("TEST", {})["NAME"] = f"bench_rbac_{os.getpid()}"
    with throwaway_database():
        print(f"  database: {connection.vendor}", flush=True)
        _populate()
        print(
            f"  {Organization.objects.count()} Organizations, {Environment.objects.count()} Environments, "
            f"{GRANTS} grants for one user",
            flush=True,
        )

        # visible(): one SQL query once the user's grants are loaded
        user = get_user_model().objects.get(username="scoped")
        access.grants_for(user)
        with CaptureQueriesContext(connection) as queries:
            envs = list(access.visible(user, Environment.objects.all(), "environments.read"))
        assert len(queries) == 1, f"visible() ran {len(queries)} queries"
        print(f"  visible(Environments): {len(envs)} rows in {len(queries)} SQL query", flush=True)
        report(
            "visible(Environments) median",
            median(
                timed(
                    lambda: list(
                        access.visible(user, Environment.objects.all(), "environments.read")
                    ),
                    repeat=REPEAT,
                )
            ),
        )

        # can(): the first call reads the grants, later calls cost nothing
        fresh = get_user_model().objects.get(username="scoped")
        sample = envs[:200] + list(Environment.objects.exclude(pk__in=[e.pk for e in envs])[:800])
        for env in sample:
            env.organization  # noqa: B018 (load labels outside the measured block)
        with CaptureQueriesContext(connection) as first:
            access.can(fresh, "environments.read", sample[0])
        with CaptureQueriesContext(connection) as later:
            allowed = sum(access.can(fresh, "environments.read", e) for e in sample)
        assert len(first) == 1 and len(later) == 0, (len(first), len(later))
        print(
            f"  can(): first call {len(first)} query, next {len(sample)} calls {len(later)} queries ({allowed} allowed)"
        )

        # the Organization list page, 50 a page, scoped vs global user
        def page_for(username: str) -> tuple[list[float], int, int]:
            client = Client()
            client.force_login(get_user_model().objects.get(username=username))
            reset_queries()  # the log is a bounded deque: a full one counts nothing
            with CaptureQueriesContext(connection) as q:
                response = client.get("/orgs/")
            assert response.status_code == 200, response.status_code
            rows, count = len(response.context["orgs"].object_list), len(q)
            return timed(lambda: client.get("/orgs/"), repeat=REPEAT), count, rows

        request_started.disconnect(reset_queries)  # keep the query log across the request
        scoped_ms, scoped_q, scoped_rows = page_for("scoped")
        global_ms, global_q, global_rows = page_for("global")
        print(
            f"  list page: scoped user {scoped_rows} rows / {scoped_q} queries; global user {global_rows} rows / {global_q} queries"
        )
        report(
            "org list page median (scoped, 50 grants)",
            median(scoped_ms),
            target=TARGET_MS if connection.vendor == "postgresql" else None,
            baseline=median(global_ms),
            baseline_name="global-scope user",
        )
        report("org list page p95 (scoped)", p95(scoped_ms))


if __name__ == "__main__":
    main()

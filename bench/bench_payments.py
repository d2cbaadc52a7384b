"""Issue 11 figures: a quote for an Organization with 20 Applications, a Stripe webhook that pays an
order (acknowledged in the request, applied by a worker: both measured), and 500 concurrent
confirmations of distinct quotes (each charged exactly once).

`python -m bench bench_payments` (SQLite), or on PostgreSQL:
`DATABASE_URL=postgres://postgres@127.0.0.1:5432/cat_i11 python -m bench bench_payments`.
Delivery tasks (the Organization CR commit after a plan change) are queued in the outbox but not
run here: a worker runs them after the response, so they are not part of a request's cost.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.common import (
    median,
    report,
    run_concurrently,
    setup_django,
    throwaway_database,
    timed,
    timed_cpu,
)

APPS = 20
QUOTES = 60
WEBHOOKS = 200
CONFIRMATIONS = 500
WORKERS = 20  # a bounded pool: PostgreSQL's max_connections (100) is shared with other work
PROCESSES = 4  # like 4 web workers of 5 threads each: 20 connections, both cores busy


def _chunk(args: tuple[str, list[Any], int]) -> tuple[float, Counter[str]]:
    """One worker process: its share of the work over `threads` threads."""
    name, work, threads = args
    return run_concurrently(work, globals()[name], workers=threads)


def _run_in_processes(work: list[Any], name: str) -> tuple[float, Counter[str], float]:
    """`name`(item) over `work` in PROCESSES forked processes × WORKERS/PROCESSES threads: the
    GIL of one process would otherwise measure Python, not the database. Returns wall seconds,
    outcomes and the CPU seconds the worker processes used."""
    import multiprocessing
    import resource

    from django.db import connections

    connections.close_all()  # children open their own connections
    for conn in connections.all(initialized_only=True):
        # A psycopg pool's sockets and filler threads do not survive fork: children sharing the
        # parent's sockets corrupt each other's transactions and wait on threads that are gone.
        if hasattr(conn, "close_pool"):
            conn.close_pool()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    pool = multiprocessing.get_context("fork").Pool(PROCESSES)
    try:
        shares = [(name, work[i::PROCESSES], WORKERS // PROCESSES) for i in range(PROCESSES)]
        start = time.perf_counter()
        results = pool.map(_chunk, shares)
        seconds = time.perf_counter() - start
    finally:
        pool.close()
        pool.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    outcomes: Counter[str] = Counter()
    for _, counted in results:
        outcomes.update(counted)
    return seconds, outcomes, cpu


def _org_with_apps(owner: Any) -> Any:
    """An Organization on plan S with 20 Applications of mixed sizes and placements."""
    from billing import ledger, quotes
    from billing.checkout import confirm_quote
    from marketplace.models import Application, Blueprint, BlueprintVersion, CatalogSource
    from orgs.models import Environment, HostCluster, Organization

    org = Organization.objects.create(slug="bench-apps", display_name="Bench Apps")
    env = Environment.objects.create(organization=org, env_type="prod", name="bench-apps-prod")
    env.regions.set(HostCluster.objects.all())
    source = CatalogSource.objects.create(name="bench", kind="directory", location="-")
    blueprint = Blueprint.objects.create(
        name="bp-bench", title="Bench", source=source, category="bench", latest_version="1.0.0"
    )
    version = BlueprintVersion.objects.create(blueprint=blueprint, version="1.0.0", spec={})
    sizes = ["small", "medium", "large"]
    Application.objects.bulk_create(
        [
            Application(
                environment=env,
                name=f"app-{i:02d}",
                blueprint_version=version,
                size=sizes[i % 3],
                placement="active-hotstandby" if i % 4 == 0 else "single-region",
                regions=["hz-fsn-rtz-prod", "hz-hel-rtz-prod"]
                if i % 4 == 0
                else ["hz-fsn-rtz-prod"],
            )
            for i in range(APPS)
        ]
    )
    ledger.append(org=org, amount_minor=10**9, reason="bench")
    quote = quotes.save(quotes.for_plan_change(by=owner, org=org, plan_code="s"))
    confirm_quote(by=owner, quote_id=quote.pk)
    return org


def _bench_quote(owner: Any) -> None:
    from billing import pricing, quotes

    org = _org_with_apps(owner)
    first = quotes.for_plan_change(by=owner, org=org, plan_code="xl")
    extras = [line for line in first.recurring_lines if line["kind"] == "app_extra"]
    assert len(extras) == 3 and sum(line["quantity"] for line in extras) == 18, extras

    def quote() -> None:
        quotes.save(quotes.for_plan_change(by=owner, org=org, plan_code="xl"))

    def plan_only() -> None:
        pricing.quote(plan_code="xl")

    name = "the pre-issue plan-only quote (POST /api/v1/quote's)"
    report(
        f"quote (upgrade S → XL, prorated, {APPS} Applications, saved), median of {QUOTES}",
        median(timed(quote, repeat=QUOTES, warmup=5)),
        target=20,
        baseline=median(timed(plan_only, repeat=QUOTES, warmup=5)),
        baseline_name=name,
    )
    report(
        "  same, CPU time of the portal process",
        median(timed_cpu(quote, repeat=QUOTES)),
        baseline=median(timed_cpu(plan_only, repeat=QUOTES)),
        baseline_name=name,
    )


def _awaiting_card_orders(owner: Any, count: int, prefix: str) -> list[Any]:
    """`count` Organizations, each with an order awaiting a card payment (a Checkout Session)."""
    from billing import checkout, quotes
    from billing.models import Payment
    from orgs.models import Organization

    orgs = Organization.objects.bulk_create(
        [Organization(slug=f"{prefix}-{i:04d}", display_name=f"{prefix} {i}") for i in range(count)]
    )
    payments = []
    for org in orgs:
        quote = quotes.save(quotes.for_plan_change(by=owner, org=org, plan_code="m"))
        order = checkout.confirm_quote(by=owner, quote_id=quote.pk).order
        payments.append(
            Payment(
                order=order,
                provider="stripe",
                external_id=f"cs_test_{prefix}_{order.pk}",
                amount_minor=order.due_minor,
                currency=order.currency,
            )
        )
    return Payment.objects.bulk_create(payments)


def _bench_webhook(owner: Any) -> None:
    from django.conf import settings
    from django.test import Client

    from billing.models import Order, ProviderEvent
    from billing.payments import events as events_module
    from tests.billing.stripe_emulator import StripeEmulator

    emulator = StripeEmulator()  # objects and signatures only: no HTTP is needed here
    emulator._server = None
    settings.PAYMENT_PROVIDER = "stripe"
    settings.STRIPE_SECRET_KEY = emulator.api_key
    settings.STRIPE_WEBHOOK_SECRET = emulator.webhook_secret
    settings.CELERY_TASK_ALWAYS_EAGER = False  # as in production: a worker applies the event
    payments = iter(_awaiting_card_orders(owner, WEBHOOKS + 5, "hook"))
    events = []
    for payment in payments:
        session = emulator._object(
            "checkout.session",
            id=payment.external_id,
            status="complete",
            payment_status="paid",
            amount_total=payment.amount_minor,
            currency=payment.currency.lower(),
            payment_intent=f"pi_test_{payment.pk}",
            customer=f"cus_test_{payment.pk}",
        )
        events.append(emulator.event("checkout.session.completed", session))
    client = Client()
    pending = iter(events)
    sent: list[tuple[bytes, dict[str, str]]] = []

    def deliver() -> None:
        body, headers = next(pending)
        sent.append((body, headers))
        response = client.post(
            "/billing/webhooks/stripe/",
            body,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=headers["Stripe-Signature"],
        )
        assert response.status_code == 200 and response.json()["outcome"] == "received", (
            response.content
        )

    replays = iter(range(10**6))

    def replay() -> None:
        body, headers = sent[next(replays) % len(sent)]
        response = client.post(
            "/billing/webhooks/stripe/",
            body,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=headers["Stripe-Signature"],
        )
        assert response.json()["outcome"] in ("already received", "already applied")

    acking_cpu = median(timed_cpu(deliver, repeat=WEBHOOKS // 2, warmup=5))
    acking = median(timed(deliver, repeat=WEBHOOKS // 2, warmup=0))
    name = "the same webhook replayed (signature + idempotency check only)"
    report(
        f"webhook checkout.session.completed answered (verified, recorded, queued), "
        f"median of {WEBHOOKS // 2}",
        acking,
        target=10,
        baseline=median(timed(replay, repeat=WEBHOOKS, warmup=5)),
        baseline_name=name,
    )
    report(
        "  same, CPU time of the portal process",
        acking_cpu,
        baseline=median(timed_cpu(replay, repeat=WEBHOOKS)),
        baseline_name=name,
    )
    # the worker's part: apply each recorded event (order paid, subscription, plan, ledger …)
    rows = iter(
        ProviderEvent.objects.filter(applied_at__isnull=True)
        .order_by("pk")
        .values_list("pk", flat=True)
    )

    def apply() -> None:
        assert events_module.apply_received(event_row_id=next(rows)).startswith("paid")

    applying_cpu = median(timed_cpu(apply, repeat=WEBHOOKS // 2, warmup=5))
    applying = median(timed(apply, repeat=WEBHOOKS // 2, warmup=0))
    assert (
        Order.objects.filter(organization__slug__startswith="hook-", status="paid").count()
        == WEBHOOKS + 5
    )
    report(
        "  then applying it (the worker's job, after the response): order paid, subscription, plan",
        applying,
        baseline=acking,
        baseline_name="answering it",
    )
    report("  same, CPU time", applying_cpu, baseline=acking_cpu, baseline_name="answering it")


_OWNER: Any = None
_LOCK = ""


def _bare_lock(org_id: int) -> str:
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT id FROM orgs_organization WHERE id = %s" + _LOCK, [org_id])
        cursor.execute(
            "SELECT COALESCE(SUM(amount_minor), 0) FROM billing_ledgerentry"
            " WHERE organization_id = %s",
            [org_id],
        )
        cursor.fetchone()
    return "ok"


def _confirm(quote_id: int) -> str:
    from billing import checkout

    done = checkout.confirm_quote(by=_OWNER, quote_id=quote_id)
    return done.order.status if done.order else "scheduled"


def _bench_confirmations(owner: Any, vendor: str) -> None:
    from billing import ledger, quotes
    from billing.models import LedgerEntry, Order
    from orgs.models import Organization

    orgs = Organization.objects.bulk_create(
        [Organization(slug=f"conf-{i:04d}", display_name=f"Conf {i}") for i in range(CONFIRMATIONS)]
    )
    LedgerEntry.objects.bulk_create(
        [LedgerEntry(organization=org, amount_minor=100_000, reason="bench") for org in orgs]
    )
    quote_ids = [
        quotes.save(quotes.for_plan_change(by=owner, org=org, plan_code="l")).pk for org in orgs
    ]
    global _OWNER, _LOCK
    _OWNER, _LOCK = owner, " FOR UPDATE" if vendor == "postgresql" else ""

    base_seconds, _, base_cpu = _run_in_processes([org.pk for org in orgs], "_bare_lock")
    seconds, outcomes, cpu = _run_in_processes(quote_ids, "_confirm")
    assert outcomes == {"paid": CONFIRMATIONS}, outcomes
    again_seconds, again, _ = _run_in_processes(quote_ids, "_confirm")  # each clicked twice
    assert again == {"paid": CONFIRMATIONS}, again
    orders = Order.objects.filter(organization__slug__startswith="conf-")
    assert orders.count() == CONFIRMATIONS  # each charged exactly once
    for org in orgs[:: max(1, CONFIRMATIONS // 50)]:
        assert ledger.balance(org) == 100_000 - 57_750
    print(
        f"  {CONFIRMATIONS} quotes of {CONFIRMATIONS} Organizations, {PROCESSES} processes × "
        f"{WORKERS // PROCESSES} threads = {WORKERS} connections ({vendor})"
    )
    report(
        "concurrent confirmations (plan L paid from credit), wall time",
        seconds * 1000,
        target=5000,
        baseline=base_seconds * 1000,
        baseline_name="bare row lock + balance read per Organization",
    )
    report(
        "  same, CPU time of the portal processes per confirmation",
        cpu * 1000 / CONFIRMATIONS,
        baseline=base_cpu * 1000 / CONFIRMATIONS,
        baseline_name="bare row lock + balance read",
    )
    report("the same 500 confirmed again (no second charge), wall time", again_seconds * 1000)


def main() -> None:
    setup_django()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection

    from core import outbox
    from orgs.models import HostCluster, Sovereign

    outbox.send = lambda item_id, task_name: True  # type: ignore[assignment]  # a worker's job
    if connection.vendor == "sqlite":
        tmp = Path(tempfile.mkdtemp(prefix="bench-payments-"))
        connection.settings_dict["TEST"]["NAME"] = str(tmp / "bench.sqlite3")
    settings.QUOTE_TTL_SECONDS = 3600
    with throwaway_database():
        sovereign = Sovereign.objects.create(fqdn="bench.local", currency="OMR", tax_rate_bp=500)
        for region in ("fsn", "hel"):
            HostCluster.objects.create(
                sovereign=sovereign,
                provider="hetzner",
                region=region,
                building_block="rtz",
                env_type="prod",
            )
        owner = get_user_model().objects.create_user("bench-owner", "o@example.test", "x" * 12)
        print(f"  database: {connection.vendor}")
        _bench_quote(owner)
        _bench_webhook(owner)
        _bench_confirmations(owner, connection.vendor)


if __name__ == "__main__":
    main()

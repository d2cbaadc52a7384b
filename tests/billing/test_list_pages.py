"""The billing page of an Organization and the operator's customer page hold several lists (credit
ledger, payments, invoices, orders) that grow every month: each is a keyset page of its own with
its own next link (a cursor parameter each), and a page costs the same queries however long the
history is. Before, each list was cut at 50–200 rows with no way to the rest."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import LedgerEntry

pytestmark = pytest.mark.django_db


def _entries(org: Any, count: int, reason: str, start: int = 0) -> None:
    LedgerEntry.objects.bulk_create(
        LedgerEntry(
            organization=org, amount_minor=1000, reason=reason, reference=f"{reason}:{i:04d}"
        )
        for i in range(start, start + count)
    )


def _walk(client: Any, path: str, param: str, row: re.Pattern[str]) -> tuple[list[str], list[int]]:
    link = re.compile(rf'href="\?([^"]*{param}=[^"#]+)(?:#[^"]*)?" rel="next"')
    seen: list[str] = []
    costs: list[int] = []
    url = path
    while True:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        assert response.status_code == 200
        html = response.content.decode()
        rows = row.findall(html)
        assert 0 < len(rows) <= 50
        seen += rows
        costs.append(len(queries))
        found = link.search(html)
        if not found:
            return seen, costs
        url = f"{path}?{found.group(1).replace('&amp;', '&')}"


@pytest.mark.parametrize("page", ["account", "customer"])
def test_the_ledger_and_payments_are_paged_each_on_its_own(cast, client_for, page):
    acme = cast["acme"]
    _entries(acme, 70, "grant")
    _entries(acme, 60, "payment")
    _entries(cast["globex"], 20, "grant")
    if page == "account":
        client, path = client_for(cast["owner"]), "/billing/acme/"
    else:
        client, path = client_for(cast["sovereign_operator"]), "/bss/customers/acme/"
    ledger = [
        f"{e.reason}:{e.reference.split(':')[1]}"
        for e in LedgerEntry.objects.filter(organization=acme).order_by("-created_at", "-id")
    ]
    grant_or_payment = re.compile(r"<td>((?:grant|payment):\d{4})</td>")
    # pages of at most 50 rows (the ledger's, and the payments' first page beside them), at a cost
    # that does not change from page to page
    _, costs = _walk(client, path, "entries", grant_or_payment)
    assert len(costs) >= 3
    assert max(costs) - min(costs) <= 2, costs
    html = client.get(path).content.decode()
    ledger_html = html.split('id="ledger"', 1)[1]
    assert grant_or_payment.findall(ledger_html)[:50] == ledger[:50]
    assert 'aria-label="Pages of the credit ledger"' in ledger_html
    if page == "account":
        payments_html = html.split('id="payments"', 1)[1].split('id="orders"', 1)[0]
        payment_rows = re.findall(r"<td>(\d{4})</td>", payments_html)
        assert len(payment_rows) == 50
        assert 'rel="next"' in payments_html
    # the ledger's every row once, across its pages
    entries_only: list[str] = []
    url = path
    while url:
        body = client.get(url).content.decode().split('id="ledger"', 1)[1]
        entries_only += grant_or_payment.findall(body)
        found = re.search(r'href="\?([^"]*entries=[^"#]+)(?:#[^"]*)?" rel="next"', body)
        url = f"{path}?{found.group(1).replace('&amp;', '&')}" if found else ""
    assert entries_only == ledger
    # a longer history costs the first page nothing more
    before = costs[0]
    _entries(acme, 300, "grant", start=1000)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(path).status_code == 200
    assert len(queries) <= before + 1

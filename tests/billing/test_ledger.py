from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from billing import ledger
from billing.models import AppendOnlyError, LedgerEntry
from core.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_entries_cannot_be_changed_or_deleted(cast):
    entry = ledger.append(org=cast["acme"], amount_minor=1_000, reason="test")
    entry.amount_minor = 9_999_999
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()
    with pytest.raises(AppendOnlyError):
        LedgerEntry.objects.filter(pk=entry.pk).update(amount_minor=5)
    with pytest.raises(AppendOnlyError):
        LedgerEntry.objects.all().delete()
    assert LedgerEntry.objects.get().amount_minor == 1_000


@pytest.mark.postgres
def test_database_refuses_update_and_delete(cast):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL)")
    entry = ledger.append(org=cast["acme"], amount_minor=1_000, reason="test")
    for sql in [
        "UPDATE billing_ledgerentry SET amount_minor = 5 WHERE id = %s",
        "DELETE FROM billing_ledgerentry WHERE id = %s",
    ]:
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, [entry.pk])
    assert LedgerEntry.objects.get().amount_minor == 1_000


def test_operator_grants_and_deducts_credit(cast, operator_client):
    url = "/bss/customers/acme/"
    ok = operator_client.post(
        url, {"direction": "grant", "amount": "20", "reason": "goodwill", "note": "outage"}
    )
    assert ok.status_code == 302
    ok = operator_client.post(
        url, {"direction": "deduct", "amount": "2.500", "reason": "correction", "note": "typo"}
    )
    assert ok.status_code == 302
    assert ledger.balance(cast["acme"]) == 17_500
    events = list(AuditEvent.objects.filter(action__startswith="billing.credit.").order_by("pk"))
    assert [e.action for e in events] == ["billing.credit.grant", "billing.credit.deduct"]
    assert (
        events[1].after["amount_minor"] == -2_500 and events[1].actor == cast["sovereign_operator"]
    )
    page = operator_client.get(url)
    assert b"OMR 17.500" in page.content and b"OMR -2.500" in page.content


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"amount": "-5"}, "amount"),
        ({"amount": "0"}, "amount"),
        ({"amount": "1.0001"}, "amount"),
        ({"note": ""}, "note"),
        ({"direction": "steal"}, "direction"),
    ],
)
def test_bad_adjustments_write_nothing(cast, operator_client, data, field):
    base = {"direction": "grant", "amount": "5", "reason": "goodwill", "note": "why"}
    response = operator_client.post("/bss/customers/acme/", {**base, **data})
    assert response.status_code == 400 and field in response.context["form"].errors
    assert not LedgerEntry.objects.exists()


def test_only_billing_managers_adjust(cast, client_for):
    for who in ["owner", "admin", "outsider"]:
        response = client_for(cast[who]).post(
            "/bss/customers/acme/",
            {"direction": "grant", "amount": "5", "reason": "goodwill", "note": "x"},
        )
        assert response.status_code == 404
    assert not LedgerEntry.objects.exists()

"""Invoices on pages: the operator's list (filters, CSV, issue, payment, void, billing run) and the
customer's billing page (invoices, payments, balance, HTML and PDF), with the wrong roles refused."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.utils import timezone

from billing import ledger, runs
from billing.models import CreditNote, Invoice, InvoiceStatus, OrderStatus
from tests.billing.helpers import order_plan
from tests.billing.test_invoice_run import PERIOD, flexi, use

pytestmark = pytest.mark.django_db


@pytest.fixture
def billed(cast: dict[str, Any], on_commit: Any) -> dict[str, Invoice]:
    """October billed: acme (Flexi, 1.260 to pay) and globex (egress, drafts left for review)."""
    use(flexi(cast["acme"]), "cpu-core-hours", "100")
    use(cast["globex"], "egress-gib", "200")
    with on_commit():
        runs.run(PERIOD, issue=False)
    acme = Invoice.objects.get(organization=cast["acme"], period=PERIOD)
    with on_commit():
        issued = runs.invoices.issue(by=cast["sovereign_operator"], invoice_id=acme.pk)
    return {
        "acme": issued,
        "globex": Invoice.objects.get(organization=cast["globex"], period=PERIOD),
    }


def rows(response: Any) -> list[dict[str, str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


def test_operators_filter_and_export_invoices(
    billed: dict[str, Invoice], operator_client: Any
) -> None:
    page = operator_client.get("/bss/invoices/")
    assert page.status_code == 200
    html = page.content.decode()
    assert billed["acme"].number in html and "(draft)" in html
    drafts = operator_client.get("/bss/invoices/", {"status": "draft"}).content.decode()
    assert billed["acme"].number not in drafts and f"invoice-{billed['globex'].pk}" in drafts
    by_customer = operator_client.get("/bss/invoices/", {"q": "glob"}).content.decode()
    assert f"invoice-{billed['globex'].pk}" in by_customer
    assert f"invoice-{billed['acme'].pk}" not in by_customer
    customer = operator_client.get("/bss/customers/acme/").content.decode()
    assert (
        billed["acme"].number in customer and f"/bss/invoices/{billed['acme'].pk}/pdf/" in customer
    )
    other_month = operator_client.get("/bss/invoices/", {"period": "2026-09"}).content.decode()
    assert "No invoices match." in other_month

    export = operator_client.get("/bss/invoices/export.csv", {"status": "issued"})
    assert export["Content-Type"].startswith("text/csv")
    [row] = rows(export)
    assert row["number"] == billed["acme"].number and row["organization"] == "acme"
    assert (row["subtotal"], row["tax"], row["total"], row["to_pay"]) == (
        "1.200",
        "0.060",
        "1.260",
        "1.260",
    )
    assert len(rows(operator_client.get("/bss/invoices/export.csv"))) == 2


def test_customers_and_tenant_roles_never_see_the_console(
    billed: dict[str, Invoice], cast: dict[str, Any], client_for: Any
) -> None:
    inv = billed["acme"]
    for user in ("owner", "admin", "viewer", "outsider"):
        client = client_for(cast[user])
        assert client.get("/bss/invoices/").status_code == 404
        assert client.get("/bss/invoices/export.csv").status_code == 404
        assert client.get(f"/bss/invoices/{inv.pk}/pdf/").status_code == 404
        void = client.post(f"/bss/invoices/{inv.pk}/void/", {"reason": "x"})
        assert void.status_code == 404
    inv.refresh_from_db()
    assert inv.status == InvoiceStatus.ISSUED and not CreditNote.objects.exists()


def test_an_operator_issues_records_payment_and_voids(
    billed: dict[str, Invoice], operator_client: Any, on_commit: Any
) -> None:
    draft = billed["globex"]
    with on_commit():
        response = operator_client.post(f"/bss/invoices/{draft.pk}/issue/")
    assert response.status_code == 302
    draft.refresh_from_db()
    year = timezone.now().year
    assert draft.status == InvoiceStatus.ISSUED and draft.number == f"INV-{year}-000002"

    missing = operator_client.post(f"/bss/invoices/{draft.pk}/pay/", {"reference": " "})
    assert missing.status_code == 302
    draft.refresh_from_db()
    assert draft.status == InvoiceStatus.ISSUED  # a reference is needed
    operator_client.post(f"/bss/invoices/{draft.pk}/pay/", {"reference": "TR-77"})
    draft.refresh_from_db()
    assert draft.status == InvoiceStatus.PAID and draft.payment_reference == "TR-77"
    assert draft.order.status == OrderStatus.PAID

    acme = billed["acme"]
    empty = operator_client.post(f"/bss/invoices/{acme.pk}/void/", {"reason": ""})
    assert empty.status_code == 302
    acme.refresh_from_db()
    assert acme.status == InvoiceStatus.ISSUED  # a reason is needed
    page = operator_client.post(
        f"/bss/invoices/{acme.pk}/void/",
        {"reason": "wrong meter", "next": "/bss/invoices/"},
        follow=True,
    )
    assert "is void with credit note CN-" in page.content.decode()
    acme.refresh_from_db()
    assert acme.status == InvoiceStatus.VOID and acme.credit_notes.get().amount_minor == 1_260


def test_the_billing_run_starts_from_the_console(
    cast: dict[str, Any], operator_client: Any, on_commit: Any, client_for: Any
) -> None:
    use(flexi(cast["acme"]), "cpu-core-hours", "10")
    assert (
        client_for(cast["owner"]).post("/bss/invoices/run/", {"period": PERIOD}).status_code == 404
    )
    refused = operator_client.post("/bss/invoices/run/", {"period": "2999-01"}, follow=True)
    assert "is not over yet" in refused.content.decode()
    with on_commit():
        response = operator_client.post("/bss/invoices/run/", {"period": PERIOD})
    assert response.status_code == 302 and response["Location"] == f"/bss/invoices/?period={PERIOD}"
    assert Invoice.objects.get(period=PERIOD).status == InvoiceStatus.ISSUED


def test_customers_see_their_invoices_payments_and_balance(
    billed: dict[str, Invoice], cast: dict[str, Any], client_for: Any, operator_client: Any
) -> None:
    acme_inv, globex_draft = billed["acme"], billed["globex"]
    order = order_plan(by=cast["owner"], org=cast["acme"], plan_code="s")
    operator_client.post(f"/bss/invoices/{acme_inv.pk}/pay/", {"reference": "TR-1"})
    ledger.append(org=cast["acme"], amount_minor=2_000, reason="promo", reference="promo:P")

    viewer = client_for(cast["viewer"])  # every tier of the Organization reads its billing
    page = viewer.get("/billing/acme/")
    html = page.content.decode()
    assert page.status_code == 200
    assert acme_inv.number in html and order.invoice.number in html
    assert "TR-1" in html and "OMR 1.260" in html  # the payment
    assert 'id="balance">OMR 2.000<' in html

    doc = viewer.get(f"/billing/acme/invoices/{acme_inv.pk}/")
    text = doc.content.decode()
    assert doc.status_code == 200 and f"Invoice {acme_inv.number}" in text
    assert "CPU (cpu-core-hours)" in text and 'id="due">OMR 1.260<' in text
    pdf = viewer.get(f"/billing/acme/invoices/{acme_inv.pk}/pdf/")
    assert pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")

    # another Organization's invoice, a draft, an outsider: not found
    assert viewer.get(f"/billing/acme/invoices/{globex_draft.pk}/").status_code == 404
    assert viewer.get(f"/billing/globex/invoices/{globex_draft.pk}/").status_code == 404
    outsider = client_for(cast["outsider"])
    assert outsider.get(f"/billing/acme/invoices/{acme_inv.pk}/pdf/").status_code == 404
    member_b = client_for(cast["member_b"])  # owner of globex: its draft is not shown yet
    assert member_b.get(f"/billing/globex/invoices/{globex_draft.pk}/").status_code == 404
    assert (
        globex_draft.number is None
        and "(draft)" not in member_b.get("/billing/globex/").content.decode()
    )


def test_operators_set_the_sovereigns_tax_rate(
    cast: dict[str, Any], operator_client: Any, client_for: Any, on_commit: Any
) -> None:
    from core.models import AuditEvent
    from orgs.models import Sovereign

    assert client_for(cast["owner"]).post("/bss/tax/", {"rate": "0"}).status_code == 404
    bad = operator_client.post("/bss/tax/", {"rate": "150"}, follow=True)
    assert "Tax rate not changed" in bad.content.decode()
    assert Sovereign.objects.get().tax_rate_bp == 500
    operator_client.post("/bss/tax/", {"rate": "5.25"})
    assert Sovereign.objects.get().tax_rate_bp == 525
    event = AuditEvent.objects.get(action="billing.tax.set")
    assert (event.before, event.after) == ({"tax_rate_bp": 500}, {"tax_rate_bp": 525})
    page = operator_client.get("/bss/plans/").content.decode()
    assert "5.25 %" in page and "cpu-core-hours" in page
    use(flexi(cast["acme"]), "cpu-core-hours", "100")  # 1.200 at 5.25 % = 63 baisa
    with on_commit():
        runs.run(PERIOD)
    invoice = Invoice.objects.get(period=PERIOD)
    assert (invoice.tax_rate_bp, invoice.tax_minor) == (525, 63)


def test_a_customer_cannot_cancel_a_months_usage(
    billed: dict[str, Invoice], cast: dict[str, Any], client_for: Any, on_commit: Any
) -> None:
    """The usage was consumed: its order stays due (an operator may void the invoice), while an
    order the customer placed can still be cancelled from the same page."""
    usage = billed["acme"].order
    owner = client_for(cast["owner"])
    page = owner.get("/billing/acme/").content.decode()
    assert f"Cancel order {usage.pk}<" not in page
    with on_commit():
        refused = owner.post(f"/billing/acme/orders/{usage.pk}/cancel/", follow=True)
    assert "usage" in refused.content.decode() and "cannot be cancelled" in refused.content.decode()
    usage.refresh_from_db()
    assert usage.status == OrderStatus.AWAITING_PAYMENT
    assert Invoice.objects.get(pk=billed["acme"].pk).status == InvoiceStatus.ISSUED
    placed = order_plan(by=cast["owner"], org=cast["acme"], plan_code="s")
    assert placed.status == OrderStatus.AWAITING_PAYMENT
    assert f"Cancel order {placed.pk}<" in owner.get("/billing/acme/").content.decode()
    with on_commit():
        owner.post(f"/billing/acme/orders/{placed.pk}/cancel/")
    placed.refresh_from_db()
    assert placed.status == OrderStatus.CANCELLED


def test_csv_money_is_a_plain_number_beside_its_currency(
    cast: dict[str, Any], operator_client: Any, client_for: Any, on_commit: Any
) -> None:
    """No grouping separators in a number column: `1612.000`, not `1,612.000` (issue 15)."""
    assert client_for(cast["owner"]).get("/bss/invoices/export.csv").status_code == 404
    use(flexi(cast["acme"]), "cpu-core-hours", "200000")
    with on_commit():
        runs.run(PERIOD, issue=False)
    [row] = rows(operator_client.get("/bss/invoices/export.csv"))
    assert row["currency"] == "OMR"
    for column in ("subtotal", "tax", "total", "credit_applied", "to_pay"):
        assert "," not in row[column] and float(row[column]) >= 0, (column, row[column])
    assert float(row["subtotal"]) > 1000

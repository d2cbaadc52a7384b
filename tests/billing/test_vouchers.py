"""Operator voucher pages: issue (one, batch), bad input, list filters, CSV, revoke, refusals."""

from __future__ import annotations

import csv
import importlib
import io
import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from billing import vouchers
from billing.models import Voucher
from core.models import AuditEvent

pytestmark = pytest.mark.django_db

VALID = {
    "count": 1,
    "code": "",
    "credit": "10.000",
    "description": "",
    "reason": "campaign",
    "max_redemptions": 1,
    "plan_code": "",
    "recipient_email": "",
    "is_active": "on",
}


def issue(client, **overrides):
    return client.post("/bss/vouchers/new/", {**VALID, **overrides})


def make(credit=10_000, **terms):
    code = terms.pop("code", "")
    return vouchers.issue_vouchers(
        by=None, terms=vouchers.VoucherTerms(credit_minor=credit, **terms), code=code
    )[0]


def test_typed_code_is_stored_upper_case_and_audited(operator_client):
    response = issue(operator_client, code="spring-2026-welcome")
    assert response.status_code == 302
    voucher = Voucher.objects.get()
    assert voucher.code == "SPRING-2026-WELCOME"
    assert response["Location"] == f"/bss/vouchers/{voucher.pk}/"
    event = AuditEvent.objects.get(action="voucher.issue")
    assert event.after["credit_minor"] == 10_000 and event.actor.username == "sovereign_operator"


@pytest.mark.parametrize(
    ("field", "overrides", "message"),
    [
        ("code", {"code": "SHORT-CODE"}, "at least 12 characters"),
        ("code", {"code": "AAAA-BBBB-CCCC-AAAA"}, "at least 6 different"),
        ("credit", {"credit": "-5.000"}, "positive amount"),
        ("credit", {"credit": "0"}, "above zero"),
        ("credit", {"credit": "1.2345"}, "OMR has 3 decimal places"),
        ("credit", {"credit": "ten"}, "Enter an amount in OMR"),
        (
            "valid_until",
            {"valid_from": "2026-06-02T10:00", "valid_until": "2026-06-01T10:00"},
            "must not be before",
        ),
        ("plan_code", {"plan_code": "platinum"}, "Unknown plan"),
        ("code", {"count": 2, "code": "SPRING-2026-WELCOME"}, "Leave the code empty"),
        ("recipient_email", {"count": 3, "recipient_email": "a@b.test"}, "single voucher"),
        ("max_redemptions", {"max_redemptions": -1}, "greater than or equal to 0"),
    ],
)
def test_bad_input_gives_a_field_error_and_writes_nothing(
    operator_client, field, overrides, message
):
    response = issue(operator_client, **overrides)
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert field in errors and message in " ".join(errors[field]), errors
    assert not Voucher.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="voucher.").exists()
    assert not mail.outbox


def test_duplicate_code_is_refused(operator_client):
    make(code="SPRING-2026-WELCOME")
    response = issue(operator_client, code="spring-2026-welcome")
    assert response.status_code == 400
    assert "already in use" in " ".join(response.context["form"].errors["code"])
    assert Voucher.objects.count() == 1


def test_the_batch_bound_is_the_setting_when_the_form_is_used(operator_client, settings):
    """It was read when billing.forms was imported: the form offered and checked the bound of
    that moment (max="10000" after the setting said 3; a raised bound refused by the form)."""
    importlib.import_module("billing.forms")  # loaded first, as in a running server
    settings.VOUCHER_BATCH_MAX = 3
    page = operator_client.get("/bss/vouchers/new/").content.decode()
    assert re.search(r'name="count"[^>]*max="3"', page), page
    refused = issue(operator_client, count=4)
    assert refused.status_code == 400
    assert "less than or equal to 3" in " ".join(refused.context["form"].errors["count"])
    assert Voucher.objects.count() == 0
    assert issue(operator_client, count=3).status_code == 302
    assert Voucher.objects.count() == 3


def test_batch_issue_list_and_csv_export(operator_client):
    response = issue(operator_client, count=25, max_redemptions=0, description="Partner week")
    assert response.status_code == 302
    batch = list(Voucher.objects.order_by("batch").values_list("batch", flat=True).distinct())
    assert len(batch) == 1 and batch[0].startswith("B-")
    assert (
        Voucher.objects.count() == 25
        and len(set(Voucher.objects.values_list("code", flat=True))) == 25
    )
    assert AuditEvent.objects.filter(action="voucher.issue_batch").count() == 1
    listing = operator_client.get(response["Location"])
    assert listing.status_code == 200 and b"redeemed 0/\xe2\x88\x9e" in listing.content
    export = operator_client.get("/bss/vouchers/export.csv", {"q": batch[0]})
    assert export.status_code == 200 and export["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert len(rows) == 25
    # money in CSV: a plain number column beside a currency column (no symbol, no grouping)
    assert rows[0]["credit"] == "10.000" and rows[0]["currency"] == "OMR"
    assert rows[0]["state"] == "active"
    assert rows[0]["link"] == f"https://marketplace.demo.local/redeem/?code={rows[0]['code']}"


def test_list_filters_by_state_and_search(operator_client, cast):
    now = timezone.now()
    active = make(code="ACTIVE-CODE-2345", description="findme")
    inactive = make(code="INACTIVE-CODE-2345", is_active=False)
    expired = make(
        code="EXPIRED-CODE-2345",
        valid_from=now - timedelta(days=3),
        valid_until=now - timedelta(days=1),
    )
    exhausted = make(code="EXHAUSTED-CODE-2345")
    vouchers.redeem_voucher(code=exhausted.code, org=cast["acme"], by=None)
    revoked = make(code="REVOKED-CODE-2345")
    vouchers.revoke_voucher(by=None, voucher=revoked)
    for state, voucher in [
        ("active", active),
        ("inactive", inactive),
        ("expired", expired),
        ("exhausted", exhausted),
        ("revoked", revoked),
    ]:
        page = operator_client.get("/bss/vouchers/", {"state": state})
        codes = [v.code for v in page.context["page"]]
        assert codes == [voucher.code], (state, codes)
    found = operator_client.get("/bss/vouchers/", {"q": "findme"})
    assert [v.code for v in found.context["page"]] == [active.code]


def test_revoke_needs_confirmation_and_keeps_history(operator_client, cast):
    voucher = make(code="REVOKE-ME-23456", max_redemptions=5)
    vouchers.redeem_voucher(code=voucher.code, org=cast["acme"], by=cast["owner"])
    confirm = operator_client.get(f"/bss/vouchers/{voucher.pk}/revoke/")
    assert confirm.status_code == 200 and b"Revoke voucher" in confirm.content
    voucher.refresh_from_db()
    assert voucher.revoked_at is None
    untyped = operator_client.post(f"/bss/vouchers/{voucher.pk}/revoke/")
    assert untyped.status_code == 400 and Voucher.objects.get(pk=voucher.pk).revoked_at is None
    response = operator_client.post(
        f"/bss/vouchers/{voucher.pk}/revoke/", {"confirm": "revoke-me-23456"}
    )
    assert response.status_code == 302
    voucher.refresh_from_db()
    assert voucher.revoked_at is not None and voucher.redemptions.count() == 1
    detail = operator_client.get(f"/bss/vouchers/{voucher.pk}/")
    assert b"voucher.revoke" in detail.content and b"acme" in detail.content
    # a revoked code looks exactly like an unknown one
    assert anonymous_get("/redeem/", voucher.code).status_code == 404


def anonymous_get(path, code):
    from django.test import Client

    return Client().get(path, {"code": code})


def test_deactivate_and_activate(operator_client):
    voucher = make(code="TOGGLE-CODE-2345")
    operator_client.post(f"/bss/vouchers/{voucher.pk}/active/", {"active": "0"})
    voucher.refresh_from_db()
    assert not voucher.is_active
    assert anonymous_get("/redeem/", voucher.code).status_code == 410
    operator_client.post(f"/bss/vouchers/{voucher.pk}/active/", {"active": "1"})
    voucher.refresh_from_db()
    assert voucher.is_active
    assert AuditEvent.objects.filter(action="voucher.deactivate").count() == 1


@pytest.mark.parametrize("who", ["owner", "admin", "viewer", "outsider", "member_b"])
def test_non_operators_get_404_everywhere(cast, client_for, who):
    voucher = make(code="SECRET-CODE-2345")
    client = client_for(cast[who])
    for url in [
        "/bss/",
        "/bss/vouchers/",
        "/bss/vouchers/new/",
        "/bss/vouchers/export.csv",
        f"/bss/vouchers/{voucher.pk}/",
        f"/bss/vouchers/{voucher.pk}/revoke/",
        "/bss/plans/",
        "/bss/plans/s/",
        "/bss/orders/",
        "/bss/customers/",
        "/bss/customers/acme/",
    ]:
        assert client.get(url).status_code == 404, url
    assert issue(client).status_code == 404
    assert client.post(f"/bss/vouchers/{voucher.pk}/revoke/").status_code == 404
    voucher.refresh_from_db()
    assert voucher.revoked_at is None and Voucher.objects.count() == 1


def test_anonymous_is_sent_to_sign_in(client_for):
    assert client_for(None).get("/bss/vouchers/").status_code == 302


def test_every_console_page_renders_for_the_operator(cast, operator_client):
    from tests.billing.helpers import order_plan

    voucher = make(code="RENDER-CODE-23456", max_redemptions=0)
    vouchers.redeem_voucher(code=voucher.code, org=cast["acme"], by=cast["owner"])
    order_plan(by=cast["owner"], org=cast["acme"], plan_code="xl")
    pages = {
        "/bss/": 200,
        "/bss/vouchers/": 200,
        "/bss/vouchers/new/": 200,
        f"/bss/vouchers/{voucher.pk}/": 200,
        f"/bss/vouchers/{voucher.pk}/revoke/": 200,
        "/bss/plans/": 200,
        "/bss/plans/xl/": 200,
        "/bss/addons/new/": 200,
        "/bss/orders/": 200,
        "/bss/orders/?status=awaiting_payment": 200,
        "/bss/customers/": 200,
        "/bss/customers/?q=acm": 200,
        "/bss/customers/acme/": 200,
    }
    for url, status in pages.items():
        response = operator_client.get(url)
        assert response.status_code == status, url
    orders = operator_client.get("/bss/orders/")
    assert b"Record payment" in orders.content and b"OMR 103.950" in orders.content
    assert b'href="/bss/"' in operator_client.get("/bss/vouchers/").content  # nav link
    assert b'href="/bss/"' not in owner_client(cast).get("/orgs/").content


def owner_client(cast):
    from django.test import Client

    client = Client()
    client.force_login(cast["owner"])
    return client


def test_a_mail_server_fault_does_not_lose_the_voucher_email(operator_client, on_commit, settings):
    from unittest import mock

    from core import outbox
    from core.models import OutboxItem

    settings.OUTBOX_RETRY_BASE_SECONDS = 0
    with (
        mock.patch("billing.vouchers.send_mail", side_effect=ConnectionRefusedError("smtp down")),
        on_commit(),
    ):
        response = issue(operator_client, recipient_email="later@example.test")
    assert response.status_code == 302 and Voucher.objects.count() == 1
    item = OutboxItem.objects.get(task_name="billing.tasks.send_voucher_email_task")
    assert "smtp down" in item.last_error and not mail.outbox
    outbox.sweep()  # the mail server is back
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["later@example.test"]
    item.refresh_from_db()
    assert item.done_at is not None

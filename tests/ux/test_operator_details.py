"""Issue 15, "Operator details": a voucher whose validity has already ended is issued only once
confirmed; the plan list shows every scheduled price; scope pickers offer the Organization's real
Environments and Applications instead of raw label keys."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.test import TestCase
from django.utils import timezone

from billing.models import AddOn, Price, UsagePrice, Voucher
from core.models import AuditEvent
from gitops import naming
from orgs.models import Invitation
from tests.ux.test_defects import _install, _text

pytestmark = pytest.mark.django_db

ISSUE = {
    "count": "1",
    "code": "",
    "credit": "5",
    "description": "Late spring campaign",
    "reason": "campaign",
    "max_redemptions": "1",
    "valid_from": "",
    "plan_code": "",
    "recipient_email": "",
    "is_active": "on",
}


def _local(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M")


# --- a voucher whose validity has already ended ---------------------------------------------


def test_an_ended_voucher_is_issued_only_once_confirmed(cast, client_for):
    operator = client_for(cast["sovereign_operator"])
    ended = timezone.now() - timedelta(days=2)
    form = {**ISSUE, "valid_until": _local(ended)}

    asked = operator.post("/bss/vouchers/new/", form)
    html = asked.content.decode()
    assert asked.status_code == 200
    assert not Voucher.objects.exists()  # nothing issued yet
    assert "already ended" in _text(asked) and 'role="alert"' in html
    assert 'name="confirm_ended"' in html and 'type="checkbox"' in html
    assert 'value="Late spring campaign"' in html  # what was typed is kept
    assert f'value="{_local(ended)}"' in html

    again = operator.post("/bss/vouchers/new/", form)  # not ticked: asked again, still nothing
    assert again.status_code == 200 and not Voucher.objects.exists()

    done = operator.post("/bss/vouchers/new/", {**form, "confirm_ended": "on"})
    voucher = Voucher.objects.get()
    assert done.status_code == 302 and done["Location"] == f"/bss/vouchers/{voucher.pk}/"
    assert voucher.valid_until is not None and voucher.valid_until < timezone.now()
    assert AuditEvent.objects.filter(action="voucher.issue").count() == 1
    # customers never reach the console
    assert client_for(cast["owner"]).post("/bss/vouchers/new/", form).status_code == 404


def test_a_voucher_valid_in_the_future_needs_no_confirmation(cast, client_for):
    operator = client_for(cast["sovereign_operator"])
    later = timezone.now() + timedelta(days=30)
    done = operator.post("/bss/vouchers/new/", {**ISSUE, "valid_until": _local(later)})
    assert done.status_code == 302 and Voucher.objects.count() == 1
    assert "confirm_ended" not in operator.get("/bss/vouchers/new/").content.decode()


# --- scheduled prices --------------------------------------------------------------------------


def test_plan_list_shows_scheduled_add_on_and_usage_prices(cast, client_for):
    later = timezone.now() + timedelta(days=30)
    addon = AddOn.objects.filter(is_active=True).first()
    Price.objects.create(addon=addon, amount_minor=7_250, currency="OMR", effective_from=later)
    current = UsagePrice.objects.order_by("sku", "-effective_from").first()
    UsagePrice.objects.create(
        sku=current.sku,
        name=current.name,
        unit=current.unit,
        tiers=[{"up_to": None, "unit_minor": "42"}],
        effective_from=later,
    )
    page = client_for(cast["sovereign_operator"]).get("/bss/plans/")
    text = _text(page)
    assert page.status_code == 200
    assert re.search(rf"from {later:%Y-%m-%d} \d\d:\d\d UTC ?: OMR 7\.250", text)
    usage = text[text.index("Usage prices") :]
    assert re.search(rf"{current.sku} .*from {later:%Y-%m-%d}", usage), usage
    assert "42" in usage
    assert client_for(cast["owner"]).get("/bss/plans/").status_code == 404


# --- scope pickers -----------------------------------------------------------------------------


def _options(html: str) -> dict[str, str]:
    picker = html[html.index('name="scope"') : html.index("</select>", html.index('name="scope"'))]
    return dict(re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', picker))


def test_the_invite_scope_picker_offers_real_environments_and_applications(
    catalog, cast, acme_prod, client_for, on_commit
):
    _install(cast, acme_prod, on_commit=on_commit)
    admin = client_for(cast["admin"])
    options = _options(admin.get("/orgs/acme/members/").content.decode())
    env, app = naming.ENVIRONMENT_LABEL, naming.APPLICATION_LABEL
    assert options[""] == "The whole Organization"
    assert options[f"{env}=acme-prod"] == "acme-prod"
    assert options[f"{env}=acme-dev"] == "acme-dev"
    assert options[f"{env}=acme-prod,{app}=blog"] == "blog in acme-prod"
    assert not any(label.startswith(naming.LABEL_PREFIX) for label in options.values())
    assert not any("globex" in value for value in options)  # another Organization's

    with TestCase.captureOnCommitCallbacks(execute=True):
        sent = admin.post(
            "/orgs/acme/members/invite/",
            {
                "email": "dev@example.test",
                "tier": "operator",
                "scope": f"{env}=acme-prod,{app}=blog",
            },
        )
    assert sent.status_code == 302
    invitation = Invitation.objects.get()
    assert {(s["key"], s["value"]) for s in invitation.scopes} == {
        (naming.ORGANIZATION_LABEL, "acme"),
        (env, "acme-prod"),
        (app, "blog"),
    }
    assert len(mail.outbox) == 1
    listed = _text(admin.get("/orgs/acme/members/"))
    assert "the Application blog in acme-prod" in listed

    # a value the picker does not offer (another Organization's Environment) is refused
    refused = admin.post(
        "/orgs/acme/members/invite/",
        {"email": "x@example.test", "tier": "viewer", "scope": f"{env}=globex-prod"},
    )
    assert refused.status_code == 400 and Invitation.objects.count() == 1
    # the viewer may not invite at all
    viewer = client_for(cast["viewer"]).post(
        "/orgs/acme/members/invite/",
        {"email": "y@example.test", "tier": "viewer", "scope": f"{env}=acme-prod"},
    )
    assert viewer.status_code == 403 and Invitation.objects.count() == 1


def test_members_list_scopes_in_words(cast, client_for):
    text = _text(client_for(cast["viewer"]).get("/orgs/acme/members/"))
    assert "every dev Environment" in text  # the developer's forced scope
    assert "openova.io/" not in text

"""Issue 15, "What people hit today": each defect as it was reported, through real HTTP."""

from __future__ import annotations

import re

import pytest
from django.core import mail

from billing import vouchers
from billing.models import Voucher
from core.models import AuditEvent
from gitops import naming
from marketplace import services
from marketplace.models import Application, BlueprintVersion
from orgs.models import Invitation, Organization
from tests.marketplace.conftest import GITEA_INSTALL_FORM

pytestmark = pytest.mark.django_db

GITEA = GITEA_INSTALL_FORM


def _install(cast, env, name="blog", on_commit=None):
    version = BlueprintVersion.objects.get(blueprint__name="bp-wordpress", version="1.1.0")
    with on_commit():
        return services.install(
            by=cast["admin"],
            env=env,
            version=version,
            name=name,
            values={"domain": f"{name}.acme.test", "admin": {"email": "ops@acme.test"}},
        )


def _text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


# --- homes: an Environment's Applications, "Install here", empty states -------------------------


def test_environment_page_lists_its_applications_and_offers_install_here(
    catalog, cast, acme_prod, client_for, on_commit
):
    _install(cast, acme_prod, on_commit=on_commit)
    page = client_for(cast["admin"]).get("/orgs/acme/environments/acme-prod/")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'href="/marketplace/apps/acme-prod/blog/"' in html
    assert 'href="/marketplace/apps/acme-prod/blog-db/"' in html
    assert 'data-app-state="committed"' in html  # each row shows its live state
    assert 'href="/marketplace/?environment=acme-prod"' in html  # Install into this Environment
    # a viewer sees the Applications but is offered no install
    viewer = client_for(cast["viewer"]).get("/orgs/acme/environments/acme-prod/").content.decode()
    assert "/marketplace/apps/acme-prod/blog/" in viewer and "?environment=acme-prod" not in viewer
    # another Organization's member gets 404, as before
    assert client_for(cast["member_b"]).get("/orgs/acme/environments/acme-prod/").status_code == 404


def test_empty_environment_says_what_to_do_next(catalog, cast, client_for):
    text = _text(client_for(cast["admin"]).get("/orgs/acme/environments/acme-dev/"))
    assert "No Applications in acme-dev yet" in text and "Browse the marketplace" in text


def test_organization_page_lists_applications_by_live_state(
    catalog, cast, acme_prod, client_for, on_commit
):
    _install(cast, acme_prod, on_commit=on_commit)
    html = client_for(cast["viewer"]).get("/orgs/acme/").content.decode()
    assert 'href="/marketplace/apps/acme-prod/blog/"' in html
    assert re.search(r"2\s*committed", _text(client_for(cast["viewer"]).get("/orgs/acme/")))
    assert "/marketplace/apps/acme-prod/blog" not in (
        client_for(cast["member_b"]).get("/orgs/globex/").content.decode()
    )


# --- feedback: a message after every action; one confirmation pattern ---------------------------


def test_install_ends_with_a_success_message_naming_the_application(
    catalog, cast, client_for, on_commit
):
    client = client_for(cast["admin"])
    plan_url = client.post("/marketplace/bp-gitea/install/?version=1.22.0", GITEA)["Location"]
    with on_commit():
        applied = client.post(plan_url)
    done = client.get(applied["Location"])  # the browser follows once the change is committed
    app = Application.objects.get(name="git")
    text = _text(done)
    assert "git (Gitea 1.22.0) installed in acme-prod" in text
    assert app.last_commit_sha[:7] in text  # the commit, linked to the timeline
    assert 'href="#timeline"' in done.content.decode()  # the commit links to the timeline


@pytest.mark.parametrize(
    "url, data, expected",
    [
        ("/orgs/acme/suspend/", {"confirm": "acme"}, "Acme is suspended"),
        ("/orgs/acme/edit/", {"display_name": "Acme Ltd"}, "Acme Ltd: name changed"),
        (
            "/orgs/acme/environments/new/",
            {"env_type": "stg", "regions": ["hz-fsn-rtz-prod"]},
            "Environment acme-stg created",
        ),
    ],
)
def test_organization_actions_end_with_a_success_message(
    cast, client_for, on_commit, url, data, expected
):
    with on_commit():
        done = client_for(cast["owner"]).post(url, data, follow=True)
    assert done.status_code == 200 and expected in _text(done)


def test_revoking_a_voucher_asks_for_its_code(cast, client_for):
    voucher = vouchers.issue_vouchers(
        by=None, terms=vouchers.VoucherTerms(credit_minor=5000), code="SPRING-2026-XYZ"
    )[0]
    client = client_for(cast["sovereign_operator"])
    page = client.get(f"/bss/vouchers/{voucher.pk}/revoke/")
    assert 'name="confirm"' in page.content.decode()
    refused = client.post(f"/bss/vouchers/{voucher.pk}/revoke/")
    assert refused.status_code == 400 and "There is a problem" in _text(refused)
    assert Voucher.objects.get(pk=voucher.pk).revoked_at is None
    done = client.post(
        f"/bss/vouchers/{voucher.pk}/revoke/", {"confirm": "spring-2026-xyz"}, follow=True
    )
    assert Voucher.objects.get(pk=voucher.pk).revoked_at is not None
    assert "Voucher SPRING-2026-XYZ revoked" in _text(done)


def test_removing_a_member_and_revoking_an_invitation_ask_first(cast, client_for):
    client = client_for(cast["owner"])
    page = client.get(f"/orgs/acme/members/{cast['viewer'].pk}/remove/")
    assert page.status_code == 200 and "Remove viewer" in _text(page)
    client.post("/orgs/acme/members/invite/", {"email": "x@example.test", "tier": "viewer"})
    invitation = Invitation.objects.get()
    page = client.get(f"/orgs/acme/members/invitations/{invitation.pk}/revoke/")
    assert page.status_code == 200 and "Revoke the invitation for x@example.test" in _text(page)
    members = client.get("/orgs/acme/members/").content.decode()
    # the list links to the confirmation pages instead of acting on one click
    assert f'href="/orgs/acme/members/{cast["viewer"].pk}/remove/"' in members
    assert f'href="/orgs/acme/members/invitations/{invitation.pk}/revoke/"' in members


# --- forms: one round, merged and deduplicated, error summary, input kept -----------------------


def test_install_form_reports_form_and_schema_errors_in_one_round(catalog, cast, client_for):
    client = client_for(cast["admin"])
    bad = {**GITEA, "name": "Not Valid!", "admin__email": "alice-at-example", "domain": "x y"}
    page = client.post("/marketplace/bp-gitea/install/?version=1.22.0", bad)
    html, text = page.content.decode(), _text(page)
    assert page.status_code == 400
    assert "There is a problem" in text
    summary = html.split('class="error-summary')[1].split("</div>")[0]
    for field in ("id_name", "id_admin__email", "id_domain"):
        assert f'href="#{field}"' in summary  # all three in the first round, each linked
    assert "Enter an e-mail address like name@example.com" in text
    assert "is not a" not in text  # no raw jsonschema message
    assert text.count("Enter an e-mail address like name@example.com") == 2  # summary + field
    assert 'value="alice-at-example"' in html  # what the user typed is kept
    field = re.search(r'<input[^>]*id="id_admin__email"[^>]*>', html)[0]
    assert 'aria-invalid="true"' in field
    assert re.search(r'aria-describedby="[^"]*id_admin__email_error', field)
    assert 'id="id_admin__email_error"' in html


@pytest.mark.parametrize("typed", ["spring 2026 xyz", "spring–2026–xyz", "SPRING--2026-XYZ"])
def test_voucher_codes_are_normalised_before_checking(sovereign, client_for, typed):
    vouchers.issue_vouchers(
        by=None, terms=vouchers.VoucherTerms(credit_minor=5000), code="SPRING-2026-XYZ"
    )
    page = client_for(None).get("/redeem/", {"code": typed})
    assert page.status_code == 200 and "worth" in _text(page)


def test_grouped_generated_codes_are_recognised(sovereign, client_for):
    voucher = vouchers.issue_vouchers(by=None, terms=vouchers.VoucherTerms(credit_minor=5000))[0]
    body = voucher.code.removeprefix("VCH-")
    grouped = f"vch-{body[:4]}-{body[4:8]} {body[8:]}".lower()
    assert client_for(None).get("/redeem/", {"code": grouped}).status_code == 200


def test_an_invalid_voucher_code_keeps_what_was_typed(sovereign, client_for):
    page = client_for(None).get("/redeem/", {"code": "WRONG-CODE-123"})
    assert page.status_code == 404 and 'value="WRONG-CODE-123"' in page.content.decode()


# --- readable data -----------------------------------------------------------------------------


def test_values_are_shown_as_yaml(catalog, cast, acme_prod, client_for, on_commit):
    _install(cast, acme_prod, on_commit=on_commit)
    html = client_for(cast["viewer"]).get("/marketplace/apps/acme-prod/blog/").content.decode()
    assert "domain: blog.acme.test" in html and "{&#x27;domain&#x27;" not in html


def test_audit_changes_are_a_field_diff(cast, client_for, on_commit):
    with on_commit():
        client_for(cast["owner"]).post("/orgs/acme/edit/", {"display_name": "Acme Ltd"})
    event = AuditEvent.objects.filter(action="organization.update").latest("pk")
    assert event.before and event.after
    text = _text(client_for(cast["owner"]).get("/orgs/acme/audit/"))
    assert "display_name: Acme → Acme Ltd" in text
    assert "{'display_name'" not in text and "{&#x27;" not in text


# --- settings and first run --------------------------------------------------------------------


def test_voucher_and_invitation_links_use_the_public_urls(cast, client_for, settings, on_commit):
    settings.PORTAL_PUBLIC_URL = "https://console.acme-sovereign.example"
    settings.MARKETPLACE_URL = "https://shop.acme-sovereign.example"
    assert vouchers.redeem_link("ABC").startswith("https://shop.acme-sovereign.example/redeem/")
    with on_commit():  # the invitation mail leaves through the outbox after the commit
        client_for(cast["owner"]).post(
            "/orgs/acme/members/invite/", {"email": "x@example.test", "tier": "viewer"}
        )
    assert "https://console.acme-sovereign.example/invitations/" in mail.outbox[0].body


def test_embedded_mode_says_no_cluster_is_connected(cast, client_for):
    Organization.objects.filter(slug="acme").update(state="provisioning")
    text = _text(client_for(cast["owner"]).get("/orgs/acme/"))
    assert "No cluster is connected" in text


def test_invitation_landing_names_inviter_tier_and_scope(cast, client_for, on_commit):
    with on_commit():  # the invitation mail leaves through the outbox after the commit
        client_for(cast["owner"]).post(
            "/orgs/acme/members/invite/",
            {
                "email": "outsider@example.test",
                "tier": "viewer",
                "scope": f"{naming.ENVIRONMENT_LABEL}=acme-dev",
            },
        )
    token = re.search(r"/invitations/([^/\s]+)/", mail.outbox[0].body).group(1)
    text = _text(client_for(cast["outsider"]).get(f"/invitations/{token}/"))
    assert "owner invited outsider@example.test" in text
    assert "viewer" in text and "acme-dev" in text


def test_install_here_carries_the_environment_to_the_install_form(catalog, cast, client_for):
    client = client_for(cast["admin"])
    catalog_page = client.get("/marketplace/", {"environment": "acme-dev"}).content.decode()
    assert "Installing into" in catalog_page
    assert 'href="/marketplace/bp-gitea/?environment=acme-dev"' in catalog_page
    detail = client.get("/marketplace/bp-gitea/", {"environment": "acme-dev"}).content.decode()
    link = re.search(r'href="(/marketplace/bp-gitea/install/[^"]+)"', detail)[1]
    assert "environment=acme-dev" in link
    form = client.get(link.replace("&amp;", "&")).content.decode()
    assert re.search(r'<option value="acme-dev" selected>', form)

"""Issue 15, "Feedback": the success message after an action names the commit it made, linked to
the timeline (the Application's, the Organization's audit trail); while the commit is still being
made it says so."""

from __future__ import annotations

import re

import pytest

from marketplace.models import Application
from orgs.models import Environment
from tests.marketplace.rbac_cases import INSTALL_FORM

pytestmark = pytest.mark.django_db

APP = "/marketplace/apps/acme-prod/web/"


def _message(response) -> str:
    found = re.search(
        r'<section class="messages"[^>]*>(.*?)</section>', response.content.decode(), re.S
    )
    assert found, "no message on the page"
    return found[1]


def _commit_link(message: str) -> tuple[str, str]:
    found = re.search(
        r'committed <a href="([^"]+)"><code class="sha"[^>]*>([0-9a-f]{7})</code></a>', message
    )
    assert found, message
    return found[1], found[2]


@pytest.mark.django_db(transaction=True)  # the delivery runs as the service commits, as embedded
def test_install_and_change_messages_link_their_commit_to_the_timeline(catalog, cast, client_for):
    admin = client_for(cast["admin"])
    plan = admin.post("/marketplace/bp-valkey/install/", INSTALL_FORM)
    assert plan.status_code == 302
    done = admin.post(plan["Location"])
    app = Application.objects.get(environment__name="acme-prod", name="web")
    href, sha = _commit_link(_message(admin.get(done["Location"])))
    assert href == f"{APP}#timeline" and app.last_commit_sha.startswith(sha)

    first = app.last_commit_sha
    changed = admin.post(f"{APP}size/", {"size": "large", "confirm": "1"})
    app.refresh_from_db()
    assert app.last_commit_sha != first
    href, sha = _commit_link(_message(admin.get(changed["Location"])))
    assert href == f"{APP}#timeline" and app.last_commit_sha.startswith(sha)
    assert (
        client_for(cast["viewer"])
        .post(f"{APP}size/", {"size": "small", "confirm": "1"})
        .status_code
        == 403
    )


def test_a_commit_not_made_yet_is_announced_as_committing(catalog, cast, client_for):
    admin = client_for(cast["admin"])
    plan = admin.post("/marketplace/bp-valkey/install/", INSTALL_FORM)
    done = admin.post(plan["Location"])  # the delivery runs after the test's transaction: not yet
    message = _message(admin.get(done["Location"]))
    assert "committing to Git, then watching Flux" in message and "committed <a" not in message


@pytest.mark.django_db(transaction=True)
def test_an_environment_created_links_its_commit_to_the_audit_trail(cast, client_for):
    owner = client_for(cast["owner"])
    done = owner.post(
        "/orgs/acme/environments/new/", {"env_type": "stg", "regions": ["hz-fsn-rtz-prod"]}
    )
    assert done.status_code == 302, done.content
    env = Environment.objects.get(name="acme-stg")
    href, sha = _commit_link(_message(owner.get(done["Location"])))
    assert href == "/orgs/acme/audit/" and env.last_commit_sha.startswith(sha)


# --- one confirmation pattern for every destructive action --------------------------------------


def test_revoking_an_api_token_is_confirmed_first(cast, client_for):
    from accounts import services as account_services
    from accounts.models import ApiToken

    token, _secret = account_services.create_api_token(user=cast["owner"], name="deploy-bot")
    owner = client_for(cast["owner"])
    listed = owner.get("/account/tokens/").content.decode()
    assert f'href="/account/tokens/{token.pk}/revoke/"' in listed  # a link to the confirmation
    page = owner.get(f"/account/tokens/{token.pk}/revoke/")
    text = page.content.decode()
    assert page.status_code == 200 and "Revoke deploy-bot" in text
    assert "stop working" in text and 'method="post"' in text
    assert ApiToken.objects.get(pk=token.pk).revoked_at is None  # nothing happened yet
    assert client_for(cast["admin"]).get(f"/account/tokens/{token.pk}/revoke/").status_code == 404
    done = owner.post(f"/account/tokens/{token.pk}/revoke/")
    assert done.status_code == 302 and ApiToken.objects.get(pk=token.pk).revoked_at is not None


def test_cancelling_the_subscription_is_confirmed_first(cast, client_for):
    from billing.models import Subscription
    from tests.billing.test_subscriptions import on_plan

    sub = on_plan(cast, "m", 100_000)
    owner = client_for(cast["owner"])
    account = owner.get("/billing/acme/").content.decode()
    assert 'href="/billing/acme/subscription/cancel/"' in account
    page = owner.get("/billing/acme/subscription/cancel/")
    text = page.content.decode()
    assert page.status_code == 200 and f"ends on {sub.period_end:%Y-%m-%d}" in text
    assert not Subscription.objects.get(pk=sub.pk).cancel_at_period_end
    assert client_for(cast["viewer"]).get("/billing/acme/subscription/cancel/").status_code == 403
    assert owner.post("/billing/acme/subscription/cancel/").status_code == 302
    assert Subscription.objects.get(pk=sub.pk).cancel_at_period_end

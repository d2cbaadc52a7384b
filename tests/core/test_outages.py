"""A dependency down: Valkey down leaves signed-in pages working; PostgreSQL down answers 503 with
a retry hint (pages, API, readiness) while liveness stays up. The real server, over HTTP."""

from __future__ import annotations

import pytest

from accounts.services import create_api_token
from tests.serving import free_port, serve, signed_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("serve")]
__all__ = ["serve"]


def test_valkey_down_signed_in_pages_sign_in_and_sign_out_still_work(serve, cast):
    server = serve(VALKEY_URL=f"redis://127.0.0.1:{free_port()}/0")
    client = signed_in(server.url, cast["owner"])

    orgs = client.get("/orgs/")
    assert orgs.status_code == 200 and "acme" in orgs.text
    assert client.get("/orgs/acme/").status_code == 200

    # Sign-in counts failures on the cache: with Valkey gone it still answers (and still counts).
    anonymous = type(client)(base_url=server.url, timeout=30)
    anonymous.get("/login/")
    wrong = anonymous.post(
        "/login/",
        data={
            "username": cast["viewer"].username,
            "password": "not-the-password",
            "csrfmiddlewaretoken": anonymous.cookies["csrftoken"],
        },
        headers={"Referer": f"{server.url}/login/"},
    )
    assert wrong.status_code == 200 and "Please enter a correct" in wrong.text

    out = client.post(
        "/logout/",
        data={"csrfmiddlewaretoken": client.cookies.get("csrftoken", "")},
        headers={
            "Referer": f"{server.url}/orgs/",
            "X-CSRFToken": client.cookies.get("csrftoken", ""),
        },
    )
    assert out.status_code in (200, 302)
    assert client.get("/orgs/", follow_redirects=False).status_code == 302  # signed out

    assert server.url and client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.headers["Retry-After"]
    assert ready.json()["checks"]["valkey"]["ok"] is False
    assert ready.json()["checks"]["database"]["ok"] is True


def test_postgresql_down_answers_503_with_retry_after_and_liveness_stays_up(serve, cast):
    token = create_api_token(user=cast["owner"], name="outage")[1]
    server = serve(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{free_port()}/gone",
        PORTAL_DB_POOL_TIMEOUT_SECONDS="1",
        VALKEY_URL="",
    )
    client = signed_in(server.url, cast["owner"])

    live = client.get("/healthz")
    assert live.status_code == 200 and live.json() == {"status": "ok"}

    ready = client.get("/readyz")
    assert ready.status_code == 503 and int(ready.headers["Retry-After"]) > 0
    assert ready.json()["checks"]["database"]["ok"] is False

    page = client.get("/orgs/")
    assert page.status_code == 503 and int(page.headers["Retry-After"]) > 0
    assert "temporarily unavailable" in page.text and "Traceback" not in page.text

    api = client.get("/api/v1/orgs/", headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 503 and int(api.headers["Retry-After"]) > 0
    assert api.json() == {
        "errors": {"detail": ["The service is temporarily unavailable; retry shortly."]}
    }

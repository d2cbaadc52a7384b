"""Issue 10 §6: behind the proxy, the client address is the one the trusted proxy saw — counted
from the right of X-Forwarded-For — never the part the client writes itself."""

from __future__ import annotations

import json

import pytest
from django.test import Client, RequestFactory

from core.middleware import client_ip
from tests.conftest import reset_cache

PROXY = ("HTTP_X_FORWARDED_PROTO", "https")


@pytest.mark.parametrize(
    ("hops", "forwarded", "expected"),
    [
        (1, "6.6.6.6, 203.0.113.7", "203.0.113.7"),  # the client wrote 6.6.6.6
        (1, "203.0.113.7", "203.0.113.7"),
        (2, "6.6.6.6, 203.0.113.7, 10.0.0.2", "203.0.113.7"),
        (2, "203.0.113.7", "10.9.9.9"),  # fewer entries than trusted hops: the socket's peer
        (1, "not-an-address", "10.9.9.9"),
        (1, "", "10.9.9.9"),
    ],
)
def test_client_ip_counts_trusted_hops_from_the_right(settings, hops, forwarded, expected):
    settings.SECURE_PROXY_SSL_HEADER = PROXY
    settings.PORTAL_TRUSTED_PROXY_HOPS = hops
    request = RequestFactory().get("/", HTTP_X_FORWARDED_FOR=forwarded, REMOTE_ADDR="10.9.9.9")
    assert client_ip(request) == expected


def test_without_a_proxy_the_header_is_ignored(settings):
    settings.SECURE_PROXY_SSL_HEADER = None
    request = RequestFactory().get("/", HTTP_X_FORWARDED_FOR="6.6.6.6", REMOTE_ADDR="10.9.9.9")
    assert client_ip(request) == "10.9.9.9"


def test_rotating_a_fake_forwarded_address_does_not_escape_the_voucher_limit(sovereign, settings):
    settings.SECURE_PROXY_SSL_HEADER = PROXY
    settings.VOUCHER_PREVIEW_LIMIT_PER_IP = 30
    reset_cache()
    codes = [
        Client()
        .post(
            "/api/v1/vouchers/preview",
            json.dumps({"code": "NO-SUCH-CODE-XYZ"}),
            content_type="application/json",
            HTTP_X_FORWARDED_FOR=f"198.51.100.{i}, 203.0.113.7",
        )
        .status_code
        for i in range(40)
    ]
    assert codes[:30] == [404] * 30 and set(codes[30:]) == {429}


@pytest.mark.django_db
def test_rotating_a_fake_forwarded_address_does_not_escape_the_signup_limit(sovereign, settings):
    from tests.accounts.test_signup import GOOD

    settings.SECURE_PROXY_SSL_HEADER = PROXY
    settings.SIGNUP_LIMIT_PER_IP = 10
    reset_cache()
    codes = [
        Client()
        .post(
            "/signup/",
            {**GOOD, "email": f"u{i}@example.test"},
            HTTP_X_FORWARDED_FOR=f"198.51.100.{i}, 203.0.113.7",
        )
        .status_code
        for i in range(12)
    ]
    assert codes[:10] == [302] * 10 and codes[10:] == [429, 429]

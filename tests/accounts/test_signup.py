from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from core.models import AuditEvent

pytestmark = pytest.mark.django_db

GOOD = {
    "email": "Ada@Example.test",
    "name": "Ada Lovelace",
    "password1": "analytical-engine-1843",
    "password2": "analytical-engine-1843",
}


def test_signup_creates_a_local_account_signs_in_and_follows_next(sovereign):
    client = Client()
    assert client.get("/signup/?next=/redeem/").status_code == 200
    response = client.post("/signup/?next=/checkout/%3Fcode%3DABC", GOOD)
    assert response.status_code == 302 and response["Location"] == "/checkout/?code=ABC"
    user = get_user_model().objects.get()
    assert user.username == "ada@example.test" and user.email == "ada@example.test"
    assert (user.first_name, user.last_name) == ("Ada", "Lovelace")
    assert user.check_password(GOOD["password1"])
    assert int(client.session["_auth_user_id"]) == user.pk
    assert AuditEvent.objects.filter(action="account.signup", actor=user).exists()


def test_signup_refuses_open_redirects(sovereign):
    response = Client().post("/signup/", {**GOOD, "next": "https://evil.example/"})
    assert response.status_code == 302 and response["Location"] == "/"


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"password1": "short", "password2": "short"}, "password1", "too short"),
        ({"password1": "password1234", "password2": "password1234"}, "password1", "too common"),
        (
            {"password1": "8172635498127", "password2": "8172635498127"},
            "password1",
            "entirely numeric",
        ),
        ({"password2": "something-else-entirely"}, "password2", "differ"),
        ({"email": "not-an-email"}, "email", "valid email"),
        ({"name": ""}, "name", "required"),
    ],
)
def test_signup_errors(sovereign, data, field, message):
    response = Client().post("/signup/", {**GOOD, **data})
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert field in errors and message in " ".join(errors[field]), errors
    assert not get_user_model().objects.exists()


def test_signup_refuses_an_existing_email(cast):
    get_user_model().objects.create_user(username="ada@example.test", email="ada@example.test")
    response = Client().post("/signup/", GOOD)
    assert response.status_code == 400 and "already exists" in str(response.context["form"].errors)


def test_signup_is_rate_limited_per_ip(sovereign, settings):
    from tests.conftest import reset_cache

    reset_cache()
    settings.SIGNUP_LIMIT_PER_IP = 2
    codes = [
        Client().post("/signup/", {**GOOD, "email": f"u{i}@example.test"}).status_code
        for i in range(2)
    ]
    assert codes == [302, 302]
    limited = Client().post("/signup/", {**GOOD, "email": "u9@example.test"})
    assert limited.status_code == 429 and b"Too many sign-up attempts" in limited.content
    assert get_user_model().objects.count() == 2


def test_login_page_links_to_signup(sovereign):
    page = Client().get("/login/?next=/redeem/")
    assert (
        b'href="/signup/?next=/redeem/"' in page.content
        or b"/signup/?next=%2Fredeem%2F" in page.content
    )

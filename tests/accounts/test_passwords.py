"""Password change on the account page and reset by e-mail (throttled, single-use, expiring).
Issue 9, defect 13."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.tokens import default_token_generator
from django.core import mail
from django.test import Client

from core.models import AuditEvent
from tests.conftest import PASSWORD, make_user

NEW = "a-brand-new-passphrase-42"


def signed_in(username: str, password: str = PASSWORD) -> Client:
    client = Client()
    assert client.post("/login/", {"username": username, "password": password}).status_code == 302
    return client


def test_change_password_keeps_this_session_and_ends_the_others(sovereign: Any) -> None:
    user = make_user("paula")
    here, elsewhere = signed_in("paula"), signed_in("paula")
    assert here.get("/account/password/").status_code == 200

    wrong = here.post(
        "/account/password/",
        {"old_password": "not-it", "new_password1": NEW, "new_password2": NEW},
    )
    assert wrong.status_code == 400 and b"There is a problem" in wrong.content
    done = here.post(
        "/account/password/",
        {"old_password": PASSWORD, "new_password1": NEW, "new_password2": NEW},
    )
    assert done.status_code == 302 and done["Location"] == "/account/"
    user.refresh_from_db()
    assert user.check_password(NEW)
    assert here.get("/account/").status_code == 200
    assert elsewhere.get("/account/").status_code == 302  # the other session ended
    assert AuditEvent.objects.get(action="account.password.change").actor == user
    assert Client().get("/account/password/").status_code == 302  # sign in first


def reset_link(email: str) -> str:
    body = [m for m in mail.outbox if email in m.to][-1].body
    return re.search(r"http://testserver(/password-reset/\S+/)", body).group(1)


def test_reset_by_email_works_once(sovereign: Any) -> None:
    user = make_user("rita")
    asked = Client().post("/password-reset/", {"email": "RITA@example.test"})
    assert asked.status_code == 302 and asked["Location"] == "/password-reset/sent/"
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["rita@example.test"]
    link = reset_link("rita@example.test")

    browser = Client()
    form = browser.get(link, follow=True)
    assert form.status_code == 200 and b"Choose a new password" in form.content
    done = browser.post(form.redirect_chain[-1][0], {"new_password1": NEW, "new_password2": NEW})
    assert done.status_code == 302 and done["Location"] == "/password-reset/done/"
    user.refresh_from_db()
    assert user.check_password(NEW)
    assert AuditEvent.objects.get(action="account.password.reset").target_id == str(user.pk)

    again = Client().get(link, follow=True)
    assert b"This link does not work" in again.content  # single use
    assert signed_in("rita", NEW)


def test_a_reset_link_expires(sovereign: Any, settings: Any, monkeypatch: Any) -> None:
    make_user("sam")
    Client().post("/password-reset/", {"email": "sam@example.test"})
    link = reset_link("sam@example.test")
    later = datetime.now() + timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT + 60)
    monkeypatch.setattr(default_token_generator, "_now", lambda: later)
    assert b"This link does not work" in Client().get(link, follow=True).content


def test_reset_does_not_tell_who_has_an_account_and_is_throttled(
    sovereign: Any, settings: Any
) -> None:
    settings.PASSWORD_RESET_LIMIT_PER_EMAIL = 2
    make_user("tom")
    unknown = Client().post("/password-reset/", {"email": "ghost@example.test"})
    assert unknown.status_code == 302 and unknown["Location"] == "/password-reset/sent/"
    assert mail.outbox == []
    assert Client().post("/password-reset/", {"email": "tom@example.test"}).status_code == 302
    assert Client().post("/password-reset/", {"email": "tom@example.test"}).status_code == 302
    third = Client().post("/password-reset/", {"email": "tom@example.test"})
    assert third.status_code == 429 and b"Too many reset requests" in third.content
    assert len(mail.outbox) == 2


def test_accounts_without_a_password_get_no_reset_link(sovereign: Any) -> None:
    user = make_user("uma")
    user.set_unusable_password()  # signs in through single sign-on (or by PIN)
    user.save()
    Client().post("/password-reset/", {"email": "uma@example.test"})
    assert mail.outbox == []


def test_a_pin_only_account_can_set_a_password(sovereign: Any) -> None:
    user = make_user("vic")
    user.set_unusable_password()
    user.save()
    client = Client()
    client.force_login(user)
    page = client.get("/account/password/")
    assert b"Set a password" in page.content
    done = client.post("/account/password/", {"new_password1": NEW, "new_password2": NEW})
    assert done.status_code == 302
    user.refresh_from_db()
    assert user.check_password(NEW)
    assert AuditEvent.objects.get(action="account.password.set").actor == user

"""Local sign-in with a username (or the account's e-mail) and a password."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.db.models import Q
from django.http import HttpRequest

from .models import Account


class PasswordBackend(ModelBackend):
    """Django's ModelBackend, answering with the `Account` proxy (so `oidc_groups` is declared)
    and accepting the e-mail address in place of the username."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Account | None:
        if not username or password is None:
            return None
        user = find_account(username)
        if user is None:
            Account().set_password(password)  # the same work as a real check (timing)
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None

    def get_user(self, user_id: Any) -> Account | None:
        user = Account.objects.filter(pk=user_id).first()
        return user if user is not None and self.user_can_authenticate(user) else None


def find_account(identifier: str) -> Account | None:
    """The account whose username is `identifier`, else whose e-mail is (case-insensitive)."""
    identifier = identifier.strip()
    if not identifier:
        return None
    found = list(Account.objects.filter(Q(username=identifier) | Q(email__iexact=identifier))[:2])
    exact = [u for u in found if u.username == identifier]
    if exact:
        return exact[0]
    return found[0] if len(found) == 1 else None

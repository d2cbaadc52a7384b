"""Local sign-in with a username (or the account's e-mail) and a password."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.db import connection
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
        with hashing():
            if user is None:
                Account().set_password(password)  # the same work as a real check (timing)
                return None
            matches = user.check_password(password)
        if matches and self.user_can_authenticate(user):
            return user
        return None

    def get_user(self, user_id: Any) -> Account | None:
        user = Account.objects.filter(pk=user_id).first()
        return user if user is not None and self.user_can_authenticate(user) else None


_hash_slots: threading.BoundedSemaphore | None = None
_slots_lock = threading.Lock()


@contextmanager
def hashing() -> Iterator[None]:
    """Around a password hash (Argon2id: tens of milliseconds of CPU and 19 MiB, on purpose).
    The request's database connection goes back to the pool first — a burst of sign-ins must not hold every
    connection while computing — and at most PASSWORD_HASH_CONCURRENCY hashes run at once in
    this process, so a burst of sign-ins queues instead of starving every other request of CPU
    (the hash itself releases the GIL: pages keep being served meanwhile)."""
    global _hash_slots
    with _slots_lock:
        if _hash_slots is None:
            _hash_slots = threading.BoundedSemaphore(settings.PASSWORD_HASH_CONCURRENCY)
        slots = _hash_slots
    if not connection.in_atomic_block:
        connection.close()
    with slots:
        yield


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

"""Who performs an action: the contract every service function's `by` argument follows.

A signed-in user (`request.user` behind `login_required`, an Account), an anonymous visitor (a
service refuses them where it needs a person), or `None` for the system itself (Celery tasks,
beat, provider webhooks): audit records the last as "system". The kernel names Django's own user
classes so that it imports no app (the Account proxy is a `User`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

Actor: TypeAlias = "User | AnonymousUser | None"


def person(by: Actor) -> User | None:
    """The user to store as who did it (`created_by`, …): an authenticated user, else nobody."""
    from django.contrib.auth.models import User

    return by if isinstance(by, User) and by.is_authenticated else None

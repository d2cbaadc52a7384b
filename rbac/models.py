from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from core.models import DeliveryTracked

from . import tiers

GLOBAL = "*"


class UserAccessQuerySet(models.QuerySet["UserAccess"]):
    def live(self) -> UserAccessQuerySet:
        return self.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))

    def for_subject(self, user: Any) -> UserAccessQuerySet:
        groups = list(getattr(user, "oidc_groups", None) or [])
        subject = Q(user_id=user.pk)
        if groups:
            subject |= Q(group__in=groups)
        return self.live().filter(subject)

    def in_org(self, slug: str) -> UserAccessQuerySet:
        return self.filter(org_slug=slug)


class UserAccess(DeliveryTracked):
    """A grant: a user (or an OIDC group) holds a tier within label scopes.

    `scopes` is a list of {"key": label, "value": value}; all must match (AND); a user's grants
    are ORed. [{"key": "*", "value": "*"}] is global. `org_slug` repeats the organization scope (or
    "" for grants not bound to one Organization) so members pages and filters are one indexed query.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="grants",
    )
    group = models.CharField(max_length=128, blank=True)
    tier = models.CharField(max_length=16, choices=tiers.choices)
    scopes = models.JSONField(default=list)
    org_slug = models.CharField(max_length=32, blank=True, db_index=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = UserAccessQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(Q(user__isnull=False) & Q(group=""))
                | (Q(user__isnull=True) & ~Q(group="")),
                name="useraccess_one_subject",
            )
        ]
        indexes = [models.Index(fields=["user", "org_slug"])]

    def __str__(self) -> str:
        who = self.user.get_username() if self.user_id and self.user else f"group:{self.group}"
        return f"{who} {self.tier} {self.scope_text}"

    @property
    def level(self) -> int:
        return tiers.get(self.tier).level

    @property
    def is_global(self) -> bool:
        return any(s["key"] == GLOBAL for s in self.scopes)

    @property
    def scope_text(self) -> str:
        return ", ".join(f"{s['key']}={s['value']}" for s in self.scopes) or "(none)"

    @property
    def is_live(self) -> bool:
        return self.expires_at is None or self.expires_at > timezone.now()

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def for_org(self, slug: str) -> AuditEventQuerySet:
        return self.filter(org_slug=slug)


class AuditEvent(models.Model):
    """One state change: who did what to which object, before and after. Never updated.

    `labels` are the target's RBAC labels below its Organization (environment, env type,
    application, …), so a grant scoped below the Organization reads only the events of what its
    scope matches; an event without labels (about the Organization itself) is read only by grants
    covering the whole Organization."""

    RBAC_LOOKUPS = {
        "openova.io/organization": "org_slug",
        **{
            f"openova.io/{key}": f"labels__openova.io/{key}"
            for key in (
                "environment",
                "env-type",
                "application",
                "blueprint",
                "blueprint-version",
            )
        },
    }

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_repr = models.CharField(max_length=254, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=64)
    target_id = models.CharField(max_length=64)
    target_repr = models.CharField(max_length=254)
    org_slug = models.CharField(max_length=32, blank=True, db_index=True)
    labels = models.JSONField(default=dict, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)

    objects = AuditEventQuerySet.as_manager()

    EXPORT_FIELDS = [
        "id", "created_at", "actor_repr", "action", "target_type", "target_id", "target_repr",
        "org_slug", "before", "after", "request_id", "ip",
    ]  # fmt: skip

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["org_slug", "-created_at"]),
            models.Index(fields=["target_type", "target_id"]),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} {self.target_repr}"


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Committed"
    RETRYING = "retrying", "Retrying"


class DeliveryTracked(models.Model):
    """Fields every object delivered through Git carries: the last commit and any retry error."""

    delivery_state = models.CharField(
        max_length=16, choices=DeliveryState.choices, default=DeliveryState.PENDING
    )
    delivery_error = models.TextField(blank=True)
    last_commit_sha = models.CharField(max_length=64, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


class OutboxItemQuerySet(models.QuerySet["OutboxItem"]):
    def pending(self) -> OutboxItemQuerySet:
        return self.filter(done_at__isnull=True)

    def due(self, now: Any = None) -> OutboxItemQuerySet:
        now = now or timezone.now()
        return (
            self.pending()
            .filter(available_at__lte=now)
            .filter(models.Q(claimed_until__isnull=True) | models.Q(claimed_until__lt=now))
        )


class OutboxItem(models.Model):
    """Work to do after a commit: written in the same transaction as the change it delivers."""

    task_name = models.CharField(max_length=128)
    key = models.CharField(
        max_length=128, help_text="what the task works on, usually a primary key"
    )
    audit_event = models.ForeignKey(
        AuditEvent, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    request_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    available_at = models.DateTimeField(default=timezone.now)
    claimed_until = models.DateTimeField(null=True, blank=True)
    claim_token = models.CharField(
        max_length=32, blank=True, help_text="whose claim this is: only its holder renews it"
    )
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    done_at = models.DateTimeField(null=True, blank=True)

    objects = OutboxItemQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(
                fields=["available_at"],
                name="outbox_pending_idx",
                condition=models.Q(done_at__isnull=True),
            ),
            models.Index(fields=["task_name", "key"]),
        ]

    def __str__(self) -> str:
        return f"{self.task_name}({self.key})"


class PlatformEvent(models.Model):
    """An event for the rest of the platform (SPEC §8), published to NATS JetStream from the outbox."""

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    subject = models.CharField(max_length=200)
    payload = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.subject

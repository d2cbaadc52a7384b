"""What the Flux watcher has seen: the last-known state of each watched object, a timeline of
its condition changes, and one heartbeat row per cluster connection."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

FLUX_KINDS = ("Kustomization", "HelmRelease", "GitRepository")


def rv_int(resource_version: str | None) -> int | None:
    """A resourceVersion as an int, or None. The portal relies on what every apiserver backed by
    etcd gives: decimal, increasing. An opaque value is never treated as newer or older."""
    if resource_version and resource_version.isdigit():
        return int(resource_version)
    return None


class FluxObjectQuerySet(models.QuerySet["FluxObject"]):
    def live(self) -> FluxObjectQuerySet:
        return self.filter(deleted_at__isnull=True)

    def labelled(self, **labels: str) -> FluxObjectQuerySet:
        """Objects carrying every given label (keys like `openova.io/organization`)."""
        return self.filter(**{f"labels__{key}": value for key, value in labels.items()})


class FluxObject(models.Model):
    """One Flux object on one cluster, as last seen by the watcher. Deletions keep a tombstone
    (deleted_at) so a replayed ADDED older than the DELETED cannot resurrect it."""

    cluster = models.CharField(max_length=63)
    kind = models.CharField(max_length=32)
    namespace = models.CharField(max_length=253)
    name = models.CharField(max_length=253)
    uid = models.CharField(max_length=64, blank=True)
    labels = models.JSONField(default=dict, blank=True)
    generation = models.BigIntegerField(default=0)
    observed_generation = models.BigIntegerField(default=0)
    conditions = models.JSONField(default=list, blank=True)
    ready_status = models.CharField(max_length=8, blank=True, help_text="True, False, Unknown")
    ready_reason = models.CharField(max_length=128, blank=True)
    ready_message = models.TextField(blank=True)
    applied_revision = models.CharField(max_length=255, blank=True)
    attempted_revision = models.CharField(max_length=255, blank=True)
    artifact_revision = models.CharField(max_length=255, blank=True)
    details = models.JSONField(
        default=dict,
        blank=True,
        help_text="kind-specific status as Flux reports it (HelmRelease: chart, history, failures)",
    )
    resource_version = models.BigIntegerField(default=0)
    deleted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = FluxObjectQuerySet.as_manager()

    class Meta:
        ordering = ["cluster", "kind", "namespace", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["cluster", "kind", "namespace", "name"], name="flux_object_identity"
            )
        ]

    def __str__(self) -> str:
        return f"{self.cluster}/{self.kind}/{self.namespace}/{self.name}"

    @property
    def revision(self) -> str:
        """The revision the object reports as reconciled (applied, or the source's artifact)."""
        return self.applied_revision or self.artifact_revision

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    @property
    def is_current(self) -> bool:
        """The controller has looked at the latest spec (status.observedGeneration)."""
        return self.observed_generation >= self.generation


class FluxEvent(models.Model):
    """A change on the timeline of one object: a condition changed, or the object went away.
    (Its first conditions mark its appearance; FluxObject.created_at says when we first saw it.)"""

    obj = models.ForeignKey(FluxObject, on_delete=models.CASCADE, related_name="timeline")
    at = models.DateTimeField(default=timezone.now)
    event = models.CharField(max_length=16, help_text="condition or deleted")
    type = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=8, blank=True)
    reason = models.CharField(max_length=128, blank=True)
    message = models.TextField(blank=True)
    revision = models.CharField(max_length=255, blank=True)
    resource_version = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["obj", "at"])]

    def __str__(self) -> str:
        return f"{self.obj} {self.event} {self.type}={self.status} {self.reason}"


class ObjectEvent(models.Model):
    """A Kubernetes Event a Flux controller recorded for one of its objects (read by the watch:
    `involvedObject` names the object; `count` and the times say how often and when)."""

    cluster = models.CharField(max_length=63)
    uid = models.CharField(max_length=64)
    kind = models.CharField(max_length=32, help_text="the involved object's kind")
    namespace = models.CharField(max_length=253)
    name = models.CharField(max_length=253)
    type = models.CharField(max_length=16, blank=True, help_text="Normal or Warning")
    reason = models.CharField(max_length=128, blank=True)
    message = models.TextField(blank=True)
    count = models.PositiveIntegerField(default=1)
    reporter = models.CharField(max_length=128, blank=True, help_text="the controller")
    revision = models.CharField(max_length=255, blank=True, help_text="annotated by Flux")
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)
    resource_version = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["-last_seen", "-id"]
        constraints = [models.UniqueConstraint(fields=["cluster", "uid"], name="one_object_event")]
        indexes = [models.Index(fields=["cluster", "kind", "namespace", "name", "last_seen"])]

    def __str__(self) -> str:
        return f"{self.cluster}/{self.kind}/{self.namespace}/{self.name} {self.type} {self.reason}"


class FluxCluster(models.Model):
    """Heartbeat of the watcher's connection to one cluster."""

    name = models.CharField(max_length=63, unique=True)
    connected = models.BooleanField(default=False)
    since = models.DateTimeField(default=timezone.now, help_text="when `connected` last flipped")
    last_contact_at = models.DateTimeField(null=True, blank=True)
    last_event_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    watcher = models.CharField(max_length=128, blank=True, help_text="host:pid of the watcher")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_healthy(self) -> bool:
        """Connected, and heard from recently enough that the watcher is alive."""
        if not self.connected or self.last_contact_at is None:
            return False
        stale = timedelta(seconds=settings.FLUX_STALE_SECONDS)
        return timezone.now() - self.last_contact_at <= stale

    @property
    def lost_since(self) -> object:
        """When the connection was lost (None while healthy)."""
        if self.is_healthy:
            return None
        if not self.connected:
            return self.since
        return self.last_contact_at


class Lease(models.Model):
    """A named lease one process holds at a time (gitops/leader.py: leader election of
    `watch_flux`). `token` is the fencing token: it grows by one each time the lease changes
    hands, and every write of the holder checks it in its own transaction."""

    name = models.CharField(max_length=128, unique=True)
    holder = models.CharField(max_length=128, blank=True, help_text="host:pid; empty: released")
    token = models.BigIntegerField(default=0)
    acquired_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(help_text="on the database's clock")

    def __str__(self) -> str:
        return f"{self.name} held by {self.holder or 'nobody'} (token {self.token})"


class GitPush(models.Model):
    """A push a Git server reported through its webhook (signature verified): who moved which
    branch to which commit. The read-back names the pusher from it; a redelivery is ignored."""

    delivery = models.CharField(max_length=64, blank=True, help_text="X-Gitea-Delivery")
    owner = models.CharField(max_length=100)
    repo = models.CharField(max_length=100)
    branch = models.CharField(max_length=255)
    before = models.CharField(max_length=64, blank=True)
    after = models.CharField(max_length=64)
    pusher = models.CharField(max_length=255, blank=True, help_text="login (full name)")
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["owner", "repo", "branch", "after"])]
        constraints = [
            models.UniqueConstraint(
                fields=["delivery"], condition=~models.Q(delivery=""), name="one_git_push_delivery"
            )
        ]

    def __str__(self) -> str:
        return f"{self.owner}/{self.repo}@{self.branch} → {self.after[:12]} by {self.pusher}"

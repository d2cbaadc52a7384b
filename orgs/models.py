from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator
from django.db import models
from django.utils import timezone

from core.models import DeliveryTracked
from gitops import naming

from .naming import ENV_TYPES, PROVIDERS, host_cluster_name

ENV_TYPE_CHOICES = [(t, t) for t in ENV_TYPES]


class Sovereign(models.Model):
    """The one deployed Catalyst this portal fronts (a single row)."""

    fqdn = models.CharField(max_length=253, unique=True)
    display_name = models.CharField(max_length=128, blank=True)
    keycloak_topology = models.CharField(
        max_length=32,
        choices=[
            ("per-organization", "Per Organization (SME)"),
            ("shared-sovereign", "Shared Sovereign (corporate)"),
        ],
        default="per-organization",
    )
    currency = models.CharField(max_length=3, default="OMR")
    tax_rate_bp = models.PositiveIntegerField(
        default=0,
        validators=[MaxValueValidator(10000)],
        help_text="tax rate in basis points (500 = 5%)",
    )

    def __str__(self) -> str:
        return self.fqdn

    @classmethod
    def current(cls) -> Sovereign:
        sovereign = cls.objects.order_by("pk").first()
        if sovereign is None:
            raise cls.DoesNotExist(
                "No Sovereign is configured: run `manage.py load_demo` or create one."
            )
        return sovereign


class HostCluster(models.Model):
    sovereign = models.ForeignKey(Sovereign, on_delete=models.CASCADE, related_name="host_clusters")
    name = models.CharField(max_length=63, unique=True, editable=False)
    provider = models.CharField(max_length=16, choices=[(k, k) for k in PROVIDERS])
    region = models.CharField(max_length=16)
    building_block = models.CharField(
        max_length=8, choices=[("rtz", "rtz"), ("dmz", "dmz"), ("mgt", "mgt")]
    )
    env_type = models.CharField(max_length=8, choices=ENV_TYPE_CHOICES)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: object, **kwargs: object) -> None:
        self.name = host_cluster_name(
            PROVIDERS[self.provider], self.region, self.building_block, self.env_type
        )
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    @property
    def provider_code(self) -> str:
        return PROVIDERS[self.provider]


class OrgState(models.TextChoices):
    PENDING = "pending", "Pending"
    PROVISIONING = "provisioning", "Provisioning"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"
    SUSPENDED = "suspended", "Suspended"
    ARCHIVED = "archived", "Archived"


class OrganizationQuerySet(models.QuerySet["Organization"]):
    def active(self) -> OrganizationQuerySet:
        return self.exclude(state=OrgState.ARCHIVED)


class Organization(DeliveryTracked):
    RBAC_LOOKUPS = {naming.ORGANIZATION_LABEL: "slug"}

    slug = models.SlugField(max_length=32, unique=True)
    display_name = models.CharField(max_length=128)
    kind = models.CharField(
        max_length=16,
        choices=[("customer", "Customer"), ("internal", "Internal")],
        default="customer",
    )
    tier = models.CharField(
        max_length=16, choices=[("sme", "SME"), ("corporate", "Corporate")], default="sme"
    )
    billing_mode = models.CharField(
        max_length=16,
        choices=[("real", "Real"), ("chargeback", "Chargeback"), ("showback", "Showback")],
        default="real",
    )
    plan_code = models.CharField(max_length=32, blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    default_env_type = models.CharField(max_length=8, choices=ENV_TYPE_CHOICES, default="prod")
    state = models.CharField(max_length=16, choices=OrgState.choices, default=OrgState.PENDING)
    suspended_reason = models.CharField(
        max_length=16,
        blank=True,
        choices=[
            ("manual", "Suspended by a person"),
            ("unpaid", "Suspended for an unpaid invoice"),
        ],
    )
    archived_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    def rbac_labels(self) -> dict[str, str]:
        return {naming.ORGANIZATION_LABEL: self.slug}

    @property
    def is_writable(self) -> bool:
        return self.state not in (OrgState.SUSPENDED, OrgState.ARCHIVED)


class Environment(DeliveryTracked):
    RBAC_LOOKUPS = {
        naming.ORGANIZATION_LABEL: "organization__slug",
        naming.ENVIRONMENT_LABEL: "name",
        naming.ENV_TYPE_LABEL: "env_type",
    }

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="environments"
    )
    env_type = models.CharField(max_length=8, choices=ENV_TYPE_CHOICES)
    name = models.CharField(max_length=40, unique=True, editable=False)
    placement = models.CharField(
        max_length=16,
        choices=[("single-region", "Single region"), ("multi-region", "Multi region")],
        default="single-region",
    )
    regions = models.ManyToManyField(HostCluster, related_name="environments")
    policy = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["organization__slug", "env_type"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "env_type"], name="one_env_per_type")
        ]

    def __str__(self) -> str:
        return self.name

    def rbac_labels(self) -> dict[str, str]:
        return {
            naming.ORGANIZATION_LABEL: self.organization.slug,
            naming.ENVIRONMENT_LABEL: self.name,
            naming.ENV_TYPE_LABEL: self.env_type,
        }


MAX_REGIONS = 5


class InvitationState(models.TextChoices):
    PENDING = "pending", "Pending"
    ACCEPTED = "accepted", "Accepted"
    REVOKED = "revoked", "Revoked"
    EXPIRED = "expired", "Expired"


class InvitationQuerySet(models.QuerySet["Invitation"]):
    def open(self) -> InvitationQuerySet:
        return self.filter(state=InvitationState.PENDING, expires_at__gt=timezone.now())


class Invitation(models.Model):
    """An e-mailed invitation to join an Organization with a tier (never owner).

    Only the SHA-256 of the token is stored: the link in the e-mail is the only copy of the secret.
    """

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="invitations"
    )
    email = models.EmailField()
    tier = models.CharField(max_length=16)
    scopes = models.JSONField(default=list, blank=True)
    token_hash = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField()
    state = models.CharField(
        max_length=16, choices=InvitationState.choices, default=InvitationState.PENDING
    )
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    sent_count = models.PositiveIntegerField(default=0)
    accepted_at = models.DateTimeField(null=True, blank=True)

    objects = InvitationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "state"])]

    def __str__(self) -> str:
        return f"{self.email} → {self.organization_id} ({self.tier})"

    @property
    def effective_state(self) -> str:
        if self.state == InvitationState.PENDING and self.expires_at <= timezone.now():
            return InvitationState.EXPIRED
        return self.state

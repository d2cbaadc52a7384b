from __future__ import annotations

from functools import cached_property
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.templatetags.static import static
from django.utils import timezone

from core.models import DeliveryTracked
from gitops import naming
from orgs.models import Environment, Organization


class Visibility(models.TextChoices):
    LISTED = "listed", "Listed"
    UNLISTED = "unlisted", "Unlisted"
    PRIVATE = "private", "Private"


class CatalogSource(models.Model):
    """Where Blueprints come from: the public catalog directory, `catalog-sovereign`, or an Org's
    `shared-blueprints` repo (then `organization` owns what it publishes)."""

    name = models.CharField(max_length=64, unique=True)
    kind = models.CharField(
        max_length=16, choices=[("directory", "Directory"), ("git", "Git repository")]
    )
    location = models.CharField(max_length=255, help_text="a directory, or owner/repo@branch")
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    last_synced_at = models.DateTimeField(null=True, blank=True)
    last_result = models.JSONField(default=dict, blank=True)
    revision = models.CharField(
        max_length=128,
        blank=True,
        help_text="what the last sync read: the Git head, or a digest of the directory's files",
    )

    def __str__(self) -> str:
        return self.name


class CatalogSyncError(models.Model):
    """A Blueprint file that could not be loaded at the last sync of its source."""

    source = models.ForeignKey(CatalogSource, on_delete=models.CASCADE, related_name="errors")
    path = models.CharField(max_length=512)
    error = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["source__name", "path"]

    def __str__(self) -> str:
        return f"{self.path}: {self.error[:80]}"


class BlueprintQuerySet(models.QuerySet["Blueprint"]):
    def visible_to(self, org_slugs: list[str], *, everything: bool = False) -> BlueprintQuerySet:
        """Blueprints a user may open: listed and unlisted, plus private ones of their orgs."""
        if everything:
            return self
        return self.filter(~Q(visibility=Visibility.PRIVATE) | Q(owner__slug__in=org_slugs))

    def listed_for(self, org_slugs: list[str], *, everything: bool = False) -> BlueprintQuerySet:
        """What the catalog cards show: listed ones, plus private ones of the user's orgs."""
        qs = self.visible_to(org_slugs, everything=everything)
        return qs.filter(Q(visibility=Visibility.LISTED) | Q(visibility=Visibility.PRIVATE))

    def search(self, text: str) -> BlueprintQuerySet:
        text = text.strip().lower()
        return self.filter(search_text__contains=text) if text else self


class Blueprint(models.Model):
    """A catalog entry (`bp-<name>`); its card mirrors the latest version."""

    name = models.CharField(max_length=64, unique=True)
    source = models.ForeignKey(CatalogSource, on_delete=models.CASCADE, related_name="blueprints")
    owner = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="blueprints"
    )
    visibility = models.CharField(
        max_length=16, choices=Visibility.choices, default=Visibility.LISTED
    )
    title = models.CharField(max_length=128)
    summary = models.CharField(max_length=512, blank=True)
    icon = models.CharField(max_length=512, blank=True)
    category = models.CharField(max_length=64, db_index=True)
    tags = models.JSONField(default=list)
    license = models.CharField(max_length=64, blank=True)
    docs = models.URLField(blank=True)
    latest_version = models.CharField(max_length=64)
    search_text = models.TextField(blank=True, help_text="lower-case name, title, summary, tags")
    tags_text = models.CharField(
        max_length=1024, blank=True, help_text="`|tag|tag|` for exact tag filters"
    )

    objects = BlueprintQuerySet.as_manager()

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.name

    @property
    def short_name(self) -> str:
        return self.name.removeprefix("bp-")

    @property
    def icon_url(self) -> str:
        """An absolute URL as written, else a static file path (`marketplace/icons/x.svg`)."""
        if not self.icon or self.icon.startswith(("https://", "/")):
            return self.icon
        return static(self.icon)


class BlueprintVersion(models.Model):
    blueprint = models.ForeignKey(Blueprint, on_delete=models.CASCADE, related_name="versions")
    version = models.CharField(max_length=64)
    spec = models.JSONField(help_text="the Blueprint document's spec, as loaded")
    deployable = models.BooleanField(default=True)
    path = models.CharField(max_length=512, blank=True, help_text="file it was loaded from")
    digest = models.CharField(max_length=64, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["blueprint", "version"], name="one_blueprint_version")
        ]

    def __str__(self) -> str:
        return f"{self.blueprint.name}@{self.version}"

    @property
    def config_schema(self) -> dict[str, Any]:
        return dict(self.spec.get("configSchema") or {"type": "object", "properties": {}})

    @property
    def placement_schema(self) -> dict[str, Any]:
        return dict(self.spec.get("placementSchema") or {})

    @property
    def depends(self) -> list[dict[str, Any]]:
        return list(self.spec.get("depends") or [])

    @property
    def upgrades(self) -> dict[str, Any]:
        return dict(self.spec.get("upgrades") or {})

    @property
    def chart(self) -> dict[str, Any]:
        return dict((self.spec.get("manifests") or {}).get("chart") or {})


class AppState(models.TextChoices):
    PENDING = "pending", "Pending"
    COMMITTING = "committing", "Committing"
    COMMITTED = "committed", "Committed"
    RECONCILING = "reconciling", "Reconciling"
    READY = "ready", "Ready"
    DEGRADED = "degraded", "Degraded"
    FAILED = "failed", "Failed"
    UNINSTALLING = "uninstalling", "Uninstalling"


class Placement(models.TextChoices):
    SINGLE = "single-region", "Single region"
    ACTIVE_ACTIVE = "active-active", "Active-active"
    HOT_STANDBY = "active-hotstandby", "Active + hot standby"


SIZES = ["small", "medium", "large"]


class ApplicationQuerySet(models.QuerySet["Application"]):
    def in_org(self, slug: str) -> ApplicationQuerySet:
        return self.filter(environment__organization__slug=slug)


class Application(DeliveryTracked):
    RBAC_LOOKUPS = {
        naming.ORGANIZATION_LABEL: "environment__organization__slug",
        naming.ENVIRONMENT_LABEL: "environment__name",
        naming.ENV_TYPE_LABEL: "environment__env_type",
        naming.APPLICATION_LABEL: "name",
        naming.label_key("blueprint"): "blueprint_version__blueprint__name",
        naming.label_key("blueprint-version"): "blueprint_version__version",
    }

    environment = models.ForeignKey(
        Environment, on_delete=models.PROTECT, related_name="applications"
    )
    name = models.SlugField(max_length=40)
    blueprint_version = models.ForeignKey(
        BlueprintVersion, on_delete=models.PROTECT, related_name="applications"
    )
    values = models.JSONField(
        default=dict, blank=True, help_text="install values; secrets are references only"
    )
    secret_refs = models.JSONField(
        default=dict,
        blank=True,
        help_text="value path → {secret, key}: the Secret generated in-cluster for a password field",
    )
    size = models.CharField(max_length=8, choices=[(s, s) for s in SIZES], default="small")
    placement = models.CharField(max_length=20, choices=Placement.choices, default=Placement.SINGLE)
    regions = models.JSONField(default=list, help_text="host clusters, the active one first")
    dependencies = models.JSONField(
        default=dict, blank=True, help_text="alias → name of the Application it uses"
    )
    state = models.CharField(max_length=16, choices=AppState.choices, default=AppState.PENDING)
    conditions = models.JSONField(default=list, blank=True)
    observed_revision = models.CharField(max_length=128, blank=True)
    status_reason = models.CharField(
        max_length=128, blank=True, help_text="Flux's Ready reason, verbatim"
    )
    status_message = models.TextField(blank=True, help_text="Flux's Ready message, verbatim")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ApplicationQuerySet.as_manager()

    class Meta:
        ordering = ["environment__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["environment", "name"], name="one_app_name_per_env")
        ]

    def __str__(self) -> str:
        return f"{self.environment.name}/{self.name}"

    def rbac_labels(self) -> dict[str, str]:
        env = self.environment
        return {
            "openova.io/organization": env.organization.slug,
            "openova.io/environment": env.name,
            "openova.io/env-type": env.env_type,
            "openova.io/application": self.name,
            "openova.io/blueprint": self.blueprint_version.blueprint.name,
            "openova.io/blueprint-version": self.blueprint_version.version,
        }

    def with_relations_of(self, loaded: Application) -> Application:
        """This row, re-read alone (under a lock, after a change), given the related objects
        `loaded` already holds where the ids agree: its Environment (with the Organization) and
        its Blueprint version (with the Blueprint). An Application's Environment never changes;
        a Blueprint version that did is read when it is used."""
        for name in ("environment", "blueprint_version"):
            field = self._meta.get_field(name)
            assert isinstance(field, models.ForeignKey)
            same = getattr(self, field.attname) == getattr(loaded, field.attname)
            if same and field.is_cached(loaded) and not field.is_cached(self):
                field.set_cached_value(self, field.get_cached_value(loaded))
        return self

    @property
    def blueprint(self) -> Blueprint:
        return self.blueprint_version.blueprint

    @property
    def version(self) -> str:
        return self.blueprint_version.version


class InstallPlan(models.Model):
    """A resolved install, kept between the form, the preview and the confirmation."""

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="+")
    blueprint_version = models.ForeignKey(
        BlueprintVersion, on_delete=models.CASCADE, related_name="+"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    data = models.JSONField(help_text="the resolved plan: apps to create, existing ones to use")
    created_at = models.DateTimeField(default=timezone.now)
    applied_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"plan #{self.pk} {self.blueprint_version} in {self.environment}"

    @cached_property
    def applications(self) -> list[Application]:
        """The Applications the plan creates, unsaved, dependencies first: as the resolution
        that made the plan built them, or (a plan read back) from `data`."""
        from .plans import plan_applications

        return plan_applications(self.environment, self.data)


class IdempotencyKey(models.Model):
    """A POST's `Idempotency-Key`: the same key and body replay the first response."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=128)
    scope = models.CharField(max_length=255, help_text="method and path")
    body_hash = models.CharField(max_length=64)
    status = models.PositiveSmallIntegerField()
    response = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key", "scope"], name="one_idempotency_key")
        ]

    def __str__(self) -> str:
        return f"{self.scope} {self.key}"


class ProposalState(models.TextChoices):
    PENDING = "pending", "Waiting for review"
    PUBLISHED = "published", "Published"
    REJECTED = "rejected", "Rejected"


class CatalogProposal(DeliveryTracked):
    """An Organization's Blueprint proposed to the Sovereign catalog (`catalog-sovereign`): an
    operator reviews it (validation, diff against the last published version) and publishes it
    (a commit; then every Organization sees it) or rejects it with a reason."""

    RBAC_LOOKUPS = {"openova.io/organization": "organization__slug"}

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="catalog_proposals"
    )
    name = models.CharField(max_length=64, help_text="the Blueprint (bp-<name>)")
    versions = models.JSONField(default=list, help_text="the versions proposed, oldest first")
    document = models.TextField(help_text="the Blueprint documents to publish (YAML)")
    state = models.CharField(
        max_length=16, choices=ProposalState.choices, default=ProposalState.PENDING
    )
    reason = models.TextField(blank=True, help_text="why it was rejected")
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    reviewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["name"],
                condition=Q(state="pending"),
                name="one_pending_proposal_per_blueprint",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} from {self.organization.slug} ({self.state})"

    def rbac_labels(self) -> dict[str, str]:
        return {"openova.io/organization": self.organization.slug}


class GitSyncState(models.TextChoices):
    IN_SYNC = "in-sync", "In sync with Git"
    INVALID = "invalid", "Git holds an invalid change"
    CONFLICT = "conflict", "Git and the portal both changed"


class GitSync(models.Model):
    """What the portal knows of an Application's branch in its repo: Git is a surface too.

    `head` is the last commit the portal wrote or read back; `blobs` are the files it owns there
    (the base of the drift guard: an owned file changed since is never overwritten silently);
    `base_values` the configuration Git held at that point (so a portal change not yet committed
    is told apart from a Git change). A push that cannot be adopted leaves `state` invalid (with
    `errors`) or conflict (with `git_values` beside the portal's), until it is fixed in Git or
    resolved here."""

    application = models.OneToOneField(
        Application, on_delete=models.CASCADE, related_name="git_sync"
    )
    head = models.CharField(max_length=64, blank=True)
    blobs = models.JSONField(default=dict, blank=True)
    base_values = models.JSONField(null=True, blank=True)
    state = models.CharField(
        max_length=16, choices=GitSyncState.choices, default=GitSyncState.IN_SYNC
    )
    commit = models.CharField(max_length=64, blank=True, help_text="the Git commit in question")
    pusher = models.CharField(max_length=255, blank=True)
    errors = models.JSONField(default=list, blank=True, help_text="[{path, message}]")
    git_values = models.JSONField(null=True, blank=True)
    git_text = models.TextField(blank=True, help_text="values.yaml as Git holds it")
    checked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.application} git {self.state} @ {self.head[:12]}"

    @property
    def blocked(self) -> bool:
        return self.state != GitSyncState.IN_SYNC


class EnvironmentPolicy(DeliveryTracked):
    """The rules a promotion into `environment` must pass, committed as the EnvironmentPolicy CR
    `policies/{org}-{env}-policy.yaml` in catalyst-config. `rules`: [{name, type, blocking, …}]
    (pr-required: approvers + minApprovals; soak: duration; change-window: cron + duration)."""

    RBAC_LOOKUPS = {
        "openova.io/organization": "environment__organization__slug",
        "openova.io/environment": "environment__name",
        "openova.io/env-type": "environment__env_type",
    }

    environment = models.OneToOneField(
        Environment, on_delete=models.CASCADE, related_name="promotion_policy"
    )
    rules = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.environment.name}-policy"

    def rbac_labels(self) -> dict[str, str]:
        return self.environment.rbac_labels()  # a policy is governed like its Environment


class PromotionState(models.TextChoices):
    OPEN = "open", "Open"
    MERGED = "merged", "Merged"
    CLOSED = "closed", "Closed"


class Promotion(models.Model):
    """A pull request carrying an Application's configuration (values.yaml) from a lower
    Environment's branch to the next higher one, under the target's EnvironmentPolicy."""

    RBAC_LOOKUPS = {
        "openova.io/organization": "target__environment__organization__slug",
        "openova.io/environment": "target__environment__name",
        "openova.io/env-type": "target__environment__env_type",
        "openova.io/application": "target__name",
    }

    source = models.ForeignKey(
        Application,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="the lower Environment's Application (none: a PR from another branch)",
    )
    target = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="promotions")
    source_revision = models.CharField(max_length=64, help_text="the source branch's commit")
    text = models.TextField(help_text="values.yaml as promoted")
    diff = models.TextField(blank=True)
    branch = models.CharField(max_length=255, blank=True, help_text="the PR's head branch")
    pr_number = models.PositiveIntegerField(null=True, blank=True)
    pr_url = models.CharField(max_length=512, blank=True)
    state = models.CharField(
        max_length=16, choices=PromotionState.choices, default=PromotionState.OPEN
    )
    merge_sha = models.CharField(max_length=64, blank=True)
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    opened_in_gitea_by = models.CharField(
        max_length=255, blank=True, help_text="the Gitea login of a PR opened there"
    )
    merged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    merged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"promote {self.source} → {self.target} ({self.state})"

    def rbac_labels(self) -> dict[str, str]:
        return self.target.rbac_labels()


class PromotionApproval(models.Model):
    promotion = models.ForeignKey(Promotion, on_delete=models.CASCADE, related_name="approvals")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["promotion", "user"], name="one_approval_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} approves {self.promotion_id}"

"""An Organization suspended (by a person or for an unpaid invoice) is scaled to zero through Git;
resuming commits the workloads back. The Kustomizations stay reconciling, so Flux applies both."""

from __future__ import annotations

import pytest
import yaml

from gitops.validation import validate_manifest
from marketplace import services
from marketplace.models import BlueprintVersion
from orgs import services as org_services
from orgs.models import Organization
from tests.gitutil import commits, show

pytestmark = pytest.mark.django_db
VALUES = "clusters/hz-fsn-rtz-prod/applications/cache/values.yaml"


def values() -> dict:
    return yaml.safe_load(show(VALUES, "acme", "cache", "main"))


def test_suspension_scales_applications_to_zero_through_git(catalog, cast, acme_prod, on_commit):
    version = BlueprintVersion.objects.get(blueprint__name="bp-valkey", version="2.0.0")
    with on_commit():
        services.install(by=cast["admin"], env=acme_prod, version=version, name="cache", values={})
    assert values()["catalyst"]["role"] == "active" and values().get("replicas") != 0
    before = len(commits("acme", "cache", "main"))
    with on_commit():
        org_services.suspend_organization(by=None, org=cast["acme"], reason="unpaid")
    suspended = values()
    assert suspended["replicas"] == 0 and suspended["replicaCount"] == 0
    assert suspended["catalyst"]["role"] == "suspended"
    assert commits("acme", "cache", "main")[0].startswith("organization.suspend")
    assert len(commits("acme", "cache", "main")) == before + 1
    org_cr = yaml.safe_load(show("organizations/acme/organization.yaml"))
    assert org_cr["spec"]["lifecycle"] == "suspended"
    kustomization = yaml.safe_load(
        show("applications/acme/acme-prod/cache/kustomization-hz-fsn-rtz-prod.yaml")
    )
    assert validate_manifest(kustomization) == [] and not kustomization["spec"].get("suspend")
    with on_commit():
        org_services.resume_organization(by=None, org=Organization.objects.get(slug="acme"))
    assert values()["catalyst"]["role"] == "active" and values().get("replicas") != 0
    assert commits("acme", "cache", "main")[0].startswith("organization.resume")

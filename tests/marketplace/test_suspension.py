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
RELEASE = "overlays/acme-prod/hz-fsn-rtz-prod/helmrelease.yaml"


def release() -> dict:
    docs = yaml.safe_load_all(show(RELEASE, "acme", "cache", "main"))
    return next(d for d in docs if d["kind"] == "HelmRelease")


def role(doc: dict) -> str:
    return doc["metadata"]["annotations"]["catalyst.openova.io/role"]


def scaled_to_zero(doc: dict) -> bool:
    patches = [p for r in doc["spec"].get("postRenderers", []) for p in r["kustomize"]["patches"]]
    kinds = {p["target"]["kind"] for p in patches if yaml.safe_load(p["patch"])[0]["value"] == 0}
    return kinds == {"Deployment", "StatefulSet"}


def test_suspension_scales_applications_to_zero_through_git(catalog, cast, acme_prod, on_commit):
    version = BlueprintVersion.objects.get(blueprint__name="bp-valkey", version="2.0.0")
    with on_commit():
        services.install(by=cast["admin"], env=acme_prod, version=version, name="cache", values={})
    assert role(release()) == "active" and not scaled_to_zero(release())
    before = len(commits("acme", "cache", "main"))
    with on_commit():
        org_services.suspend_organization(by=None, org=cast["acme"], reason="unpaid")
    suspended = release()
    assert validate_manifest(suspended) == [] and scaled_to_zero(suspended)
    assert role(suspended) == "suspended"
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
    assert role(release()) == "active" and not scaled_to_zero(release())
    assert commits("acme", "cache", "main")[0].startswith("organization.resume")

"""Issue 10 §3: tenant manifests do not run with the cluster's power, and an Organization's shared
Blueprints may use only the chart repositories the Sovereign allows."""

from __future__ import annotations

import pytest
import yaml

from gitops import naming
from gitops.validation import validate_manifest
from marketplace import loader, services
from marketplace.models import Blueprint, BlueprintVersion, CatalogSyncError
from tests.gitutil import files, show
from tests.marketplace.conftest import blueprint_doc, share_blueprint

pytestmark = pytest.mark.django_db


def test_tenant_kustomizations_and_helmreleases_are_locked_to_the_tenant(
    catalog, cast, acme_prod, on_commit
):
    version = BlueprintVersion.objects.get(blueprint__name="bp-valkey", version="2.0.0")
    with on_commit():
        services.install(by=cast["admin"], env=acme_prod, version=version, name="web", values={})
    tenant = naming.tenant_service_account("acme")
    config = [p for p in files() if p.startswith("applications/acme/acme-prod/web/kustom")]
    assert config
    for path in config:
        kust = yaml.safe_load(show(path))
        assert kust["spec"]["serviceAccountName"] == tenant
        assert kust["spec"]["targetNamespace"] == "acme-prod"
        assert validate_manifest(kust) == []
    docs = yaml.safe_load_all(
        show("overlays/acme-prod/hz-fsn-rtz-prod/helmrelease.yaml", "acme", "web", "main")
    )
    release = next(d for d in docs if d["kind"] == "HelmRelease")
    assert release["spec"]["serviceAccountName"] == tenant
    assert release["spec"]["targetNamespace"] == "acme-prod"
    assert release["spec"]["storageNamespace"] == "acme-prod"
    assert validate_manifest(release) == []


def test_shared_blueprint_from_a_repository_off_the_allow_list_is_refused(
    catalog, cast, settings, client_for
):
    settings.CHART_REPOSITORIES = ["https://charts.example.test"]
    doc = blueprint_doc("bp-acme-miner", "1.0.0")
    doc["spec"]["manifests"]["chart"]["repository"] = "https://charts.example.test.evil.io/x"
    share_blueprint("acme", doc)
    results = loader.sync_all()
    assert results["org:acme"]["errors"] == 1 and results["org:acme"]["blueprints"] == 0
    assert not Blueprint.objects.filter(name="bp-acme-miner").exists()
    error = CatalogSyncError.objects.get(source__name="org:acme").error
    assert "bp-acme-miner" in error and "https://charts.example.test.evil.io/x" in error
    page = client_for(cast["sovereign_operator"]).get("/marketplace/sync-errors/")
    assert b"bp-acme-miner" in page.content and b"https://charts.example.test" in page.content

    # allowed: the same Blueprint from an allowed repository
    doc["spec"]["manifests"]["chart"]["repository"] = "https://charts.example.test/stable"
    share_blueprint("acme", doc)
    assert loader.sync_all()["org:acme"]["blueprints"] == 1


def test_install_refuses_a_stored_version_whose_repository_left_the_allow_list(
    catalog, cast, acme_prod, settings
):
    from django.core.exceptions import ValidationError

    version = BlueprintVersion.objects.get(blueprint__name="bp-valkey", version="2.0.0")
    settings.CHART_REPOSITORIES = ["https://charts.example.test"]
    with pytest.raises(ValidationError) as refused:
        services.install(by=cast["admin"], env=acme_prod, version=version, name="web", values={})
    assert "bp-valkey" in str(refused.value) and "allow" in str(refused.value)

from __future__ import annotations

import pytest
import yaml

from gitops.validation import validate_files
from marketplace import manifests
from marketplace.models import Application, BlueprintVersion, Placement
from orgs.models import HostCluster

pytestmark = pytest.mark.django_db


def test_every_starter_blueprint_renders_valid_flux_manifests(catalog, acme_prod):
    acme_prod.regions.add(HostCluster.objects.get(name="hz-hel-rtz-prod"))
    for version in BlueprintVersion.objects.select_related("blueprint"):
        modes = version.placement_schema.get("modes") or ["single-region"]
        standby = Placement.HOT_STANDBY in modes
        app = Application(
            environment=acme_prod,
            name=version.blueprint.short_name,
            blueprint_version=version,
            values={},
            placement=Placement.HOT_STANDBY if standby else Placement.SINGLE,
            regions=["hz-fsn-rtz-prod", "hz-hel-rtz-prod"] if standby else ["hz-fsn-rtz-prod"],
            dependencies={"db": "db"},
        )
        for desired in manifests.trees(app):
            assert desired.files, version
            validate_files(desired.files)  # raises with every problem
            for path, text in desired.files.items():
                for doc in yaml.safe_load_all(text):
                    if isinstance(doc, dict) and "metadata" in doc and "labels" in doc["metadata"]:
                        labels = doc["metadata"]["labels"]
                        assert labels["openova.io/application"] == app.name, path
                        assert labels["openova.io/blueprint"] == version.blueprint.name, path
                        assert labels["openova.io/managed-by"] == "flux", path


def test_rendering_is_deterministic_and_holds_no_secret(catalog, acme_prod):
    version = BlueprintVersion.objects.get(blueprint__name="bp-keycloak", version="24.0.0")
    app = Application(
        environment=acme_prod,
        name="sso",
        blueprint_version=version,
        values={"domain": "sso.acme.test"},
        regions=["hz-fsn-rtz-prod"],
    )
    first = [d.files for d in manifests.trees(app)]
    assert first == [d.files for d in manifests.trees(app)]
    values = first[0]["clusters/hz-fsn-rtz-prod/applications/sso/values.yaml"]
    assert "KEYCLOAK_ADMIN_PASSWORD" not in values and "adminPassword" not in values
    release = first[0]["clusters/hz-fsn-rtz-prod/applications/sso/helmrelease.yaml"]
    assert (
        "targetPath: extraEnv.KEYCLOAK_ADMIN_PASSWORD" in release
        and "valuesKey: adminpassword" in release
    )
    secret = yaml.safe_load_all(
        first[0]["clusters/hz-fsn-rtz-prod/applications/sso/externalsecret.yaml"]
    )
    kinds = [d["kind"] for d in secret]
    assert kinds == ["Password", "ExternalSecret"]

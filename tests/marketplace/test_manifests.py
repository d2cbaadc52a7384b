from __future__ import annotations

import pytest
import yaml

from gitops.validation import validate_files
from marketplace import manifests, schema_form
from marketplace.models import Application, BlueprintVersion, Placement
from orgs.models import HostCluster

pytestmark = pytest.mark.django_db


def test_every_starter_blueprint_renders_valid_flux_manifests(catalog, acme_prod):
    acme_prod.regions.add(HostCluster.objects.get(name="hz-hel-rtz-prod"))
    for version in BlueprintVersion.objects.select_related("blueprint"):
        modes = version.placement_schema.get("modes") or ["single-region"]
        standby = Placement.HOT_STANDBY in modes
        example = (version.spec.get("examples") or [{"values": {}}])[0]["values"]
        app = Application(
            environment=acme_prod,
            name=version.blueprint.short_name,
            blueprint_version=version,
            values=schema_form.validate(version.config_schema, example),
            placement=Placement.HOT_STANDBY if standby else Placement.SINGLE,
            regions=["hz-fsn-rtz-prod", "hz-hel-rtz-prod"] if standby else ["hz-fsn-rtz-prod"],
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
    values = yaml.safe_load(first[0]["overlays/acme-prod/hz-fsn-rtz-prod/values.yaml"])
    assert "adminPassword" not in values
    # keycloakx's extraEnv is a template string: the password is a secretKeyRef in it, no value
    env = yaml.safe_load(values["extraEnv"])
    assert env[1] == {
        "name": "KEYCLOAK_ADMIN_PASSWORD",
        "valueFrom": {"secretKeyRef": {"name": "sso-credentials", "key": "adminpassword"}},
    }
    release = first[0]["overlays/acme-prod/hz-fsn-rtz-prod/helmrelease.yaml"]
    assert "targetPath" not in release and "valuesKey: values.yaml" in release
    secret = yaml.safe_load_all(first[0]["secrets/externalsecret.yaml"])
    kinds = [d["kind"] for d in secret]
    assert kinds == ["Password", "ExternalSecret"]

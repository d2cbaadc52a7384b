"""Charts checked against reality: every starter Blueprint version, rendered with its default and
example configs (every size, active and standby, with its dependencies wired), sets only values
that exist in that chart version (../shared/specs/charts/<chart>/<version>/)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from marketplace import chart_values, manifests, schema_form, versions, when, wiring
from marketplace.models import SIZES, Application, BlueprintVersion, Placement

pytestmark = pytest.mark.django_db

# Where each chart is published (the Helm repository of the chart source in specs/charts/README.md).
CHART_REPOSITORIES = {
    "wordpress": "oci://registry-1.docker.io/bitnamicharts",
    "mariadb": "oci://registry-1.docker.io/bitnamicharts",
    "mongodb": "oci://registry-1.docker.io/bitnamicharts",
    "valkey": "oci://registry-1.docker.io/bitnamicharts",
    "cluster": "https://cloudnative-pg.github.io/charts",
    "gitea": "https://dl.gitea.com/charts/",
    "grafana": "https://grafana.github.io/helm-charts",
    "loki": "https://grafana.github.io/helm-charts",
    "keycloakx": "https://codecentric.github.io/helm-charts",
    # 1.8.0 was published from bat-bs/helm-charts (GitHub Pages, CNAME charts.blue-atlas.de);
    # danny-avila/LibreChat's own chart starts at 1.8.8.
    "librechat": "https://charts.blue-atlas.de",
    "matrix-synapse": "https://ananace.gitlab.io/charts",
    "mattermost-team-edition": "https://helm.mattermost.com",
    "nextcloud": "https://nextcloud.github.io/helm/",
    "vaultwarden": "https://guerzon.github.io/vaultwarden",
}


def _configs(version: BlueprintVersion) -> list[tuple[str, dict[str, Any]]]:
    """The default config (defaults, plus the first example's required values) and each example."""
    examples = version.spec.get("examples") or []
    schema = version.config_schema
    required_free = [
        p for p in schema_form.walk(schema) if p.required and "default" not in p.schema
    ]
    base: dict[str, Any] = {}
    for prop in required_free:
        assert examples, f"{version}: required {prop.dotted} has no default and no example"
        schema_form.set_path(
            base, prop.path, schema_form.get_path(examples[0]["values"], prop.path)
        )
    configs = [("default", schema_form.validate(schema, base))]
    configs += [(e["name"], schema_form.validate(schema, e["values"])) for e in examples]
    return configs


def _dependency_apps(app: Application) -> dict[str, Application]:
    """Unsaved Applications serving each dependency `app`'s values call for (newest in range)."""
    found: dict[str, Application] = {}
    for dep in app.blueprint_version.depends:
        if not when.evaluate(dep.get("when"), app.values):
            continue
        rows = list(BlueprintVersion.objects.filter(blueprint__name=dep["blueprint"]))
        chosen = versions.best_match([v.version for v in rows], dep["range"])
        assert chosen, (
            f"{app.blueprint_version}: nothing satisfies {dep['blueprint']} {dep['range']}"
        )
        dep_version = next(v for v in rows if v.version == chosen)
        alias = wiring.alias_of(dep)
        found[alias] = Application(
            environment=app.environment,
            name=f"{app.name}-{alias}",
            blueprint_version=dep_version,
            values=schema_form.validate(dep_version.config_schema, dict(dep.get("values") or {})),
        )
    app.dependencies = {alias: dep.name for alias, dep in found.items()}
    return found


def _with_secret_paths(rendered: manifests.Rendered) -> dict[str, Any]:
    """The values as Helm sees them once `valuesFrom` Secret keys are injected (strings)."""
    values = manifests.deep_merge({}, rendered.values)
    for path, _ref in rendered.secrets:
        wiring.set_value(values, path, "from-a-secret")
    return values


def _problems(version: BlueprintVersion, acme_prod: Any) -> tuple[list[str], set[str]]:
    chart = chart_values.find_chart(version.chart["name"], version.chart["version"])
    assert chart is not None and chart.version == version.chart["version"], (
        f"{version}: no reference values for {version.chart['name']} {version.chart['version']}"
    )
    modes = version.placement_schema.get("modes") or ["single-region"]
    roles = [False, True] if Placement.HOT_STANDBY in modes else [False]
    problems: list[str] = []
    set_paths: set[str] = set()
    for label, values in _configs(version):
        for size in SIZES:
            app = Application(
                environment=acme_prod,
                name="app",
                blueprint_version=version,
                values=values,
                size=size,
            )
            deps = _dependency_apps(app)
            for standby in roles:
                rendered = manifests.render_values(app, deps, standby=standby)
                helm_values = _with_secret_paths(rendered)
                text = manifests.dump(rendered.values)
                assert "&id" not in text and "*id" not in text, f"{version}: YAML alias"
                set_paths |= {".".join(p) for p, _ in chart_values.leaves(helm_values)}
                where = f"{version} [{label}, {size}{', standby' if standby else ''}]"
                problems += [f"{where} {p}" for p in chart_values.check(chart, helm_values)]
    return problems, set_paths


def test_every_starter_blueprint_sets_only_values_its_chart_has(catalog, acme_prod):
    problems: list[str] = []
    for version in BlueprintVersion.objects.select_related("blueprint").order_by("blueprint__name"):
        found, set_paths = _problems(version, acme_prod)
        problems += found
        targets = [
            t.replace("\\.", ".")
            for t in (version.spec["manifests"].get("valuesMap") or {}).values()
            if t
        ]
        unmapped = [t for t in targets if not any(_covers(p, t) for p in set_paths)]
        assert not unmapped, f"{version}: no example sets {unmapped}; add one to `examples`"
    assert problems == [], "\n".join(sorted(set(problems)))


def _covers(rendered: str, target: str) -> bool:
    """A rendered leaf is the target, under it, or a list the target indexes into."""
    return (
        rendered == target or rendered.startswith(target + ".") or target.startswith(rendered + ".")
    )


def test_catalog_names_the_repository_that_published_each_chart(catalog):
    for version in BlueprintVersion.objects.select_related("blueprint"):
        chart = version.chart
        assert chart["repository"] == CHART_REPOSITORIES[chart["name"]], version


def test_checker_catches_what_helm_would_silently_ignore(settings):
    keycloak = chart_values.find_chart("keycloakx", "2.4.4")
    found = chart_values.check(keycloak, {"extraEnv": {"KEYCLOAK_ADMIN_PASSWORD": "x"}})
    assert found[0] == "extraEnv: is a string in the chart, not a map"
    assert "refused by the chart's schema" in found[1]  # keycloakx ships a values.schema.json
    assert chart_values.check(keycloak, {"extraEnv": "- name: A\n  value: b\n"}) == []
    wordpress = chart_values.find_chart("wordpress", "24.0.0")
    assert chart_values.check(wordpress, {"ingress": {"hostnme": "x"}}) == [
        "ingress.hostnme: not a value of wordpress 24.0.0"
    ]
    assert chart_values.check(wordpress, {"ingress": {"enabled": "yes"}})[0].startswith(
        "ingress.enabled: is a boolean in the chart, not a string"
    )
    # sub-chart keys are checked against the sub-chart's own values (mariadb 20.x here)
    assert chart_values.check(wordpress, {"mariadb": {"enabled": False}}) == []
    assert chart_values.check(wordpress, {"mariadb": {"auth": {"databse": "x"}}}) == [
        "mariadb.auth.databse: not a value of mariadb 20.0.0"
    ]
    # free-form ini sections, documented-only (commented) keys and list items
    grafana = chart_values.find_chart("grafana", "8.3.2")
    assert chart_values.check(grafana, {"grafana.ini": {"database": {"type": "postgres"}}}) == []
    assert chart_values.check(grafana, {"ingress": {"hosts": ["a.example"]}}) == []
    assert chart_values.check(grafana, {"ingress": {"hosts": {"0": "a.example"}}}) == [
        "ingress.hosts: is a list in the chart, not a map"
    ]
    text = "image:\n  tag: 1\n  # digest: sha256:abc\n  # pullSecrets:\n  #   - name: x\n"
    assert chart_values.commented_keys(text) == {
        ("image", "digest"),
        ("image", "pullSecrets"),
        ("image", "pullSecrets", "*", "name"),
    }


def test_rendered_yaml_has_no_anchors_or_aliases(catalog, acme_prod):
    version = BlueprintVersion.objects.get(blueprint__name="bp-valkey", version="2.0.0")
    app = Application(
        environment=acme_prod,
        name="cache",
        blueprint_version=version,
        values={},
        regions=["hz-fsn-rtz-prod"],
    )
    for desired in manifests.trees(app):
        for path, text in desired.files.items():
            assert "&id0" not in text and "*id0" not in text, path
            assert list(yaml.safe_load_all(text)), path

"""Issue 10 §1: names of the Flux objects rendered into the shared catalyst-config repo (and the
clusters) never collide across tenants."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from marketplace import services
from marketplace.models import BlueprintVersion
from orgs import services as org_services
from orgs.models import Environment
from tests.gitutil import files, show

pytestmark = pytest.mark.django_db


def _objects(paths: list[str]) -> dict[tuple[str, str, str], str]:
    """(kind, namespace, name) → path of every Flux object in catalyst-config's applications/."""
    seen: dict[tuple[str, str, str], str] = {}
    for path in paths:
        for doc in yaml.safe_load_all(show(path)):
            meta = doc["metadata"]
            key = (doc["kind"], meta.get("namespace", ""), meta["name"])
            assert key not in seen, f"{key} rendered by {seen.get(key)} and {path}"
            seen[key] = path
    return seen


def test_lookalike_tenants_get_distinct_flux_objects(catalog, cast, on_commit):
    """org `qux` app `prod-web` (dev) and org `qux-dev` env prod app `web` rendered the same
    GitRepository `flux-system/qux-dev-prod-web` (and the same Kustomization)."""
    owner = cast["owner"]
    with on_commit():
        for slug, env_type, region in (
            ("qux", "dev", "hz-fsn-rtz-dev"),
            ("qux-dev", "prod", "hz-fsn-rtz-prod"),
        ):
            org_services.create_organization(
                by=owner,
                slug=slug,
                display_name=slug,
                environments=[{"env_type": env_type, "regions": [region]}],
            )
    version = BlueprintVersion.objects.get(blueprint__name="bp-valkey", version="2.0.0")
    with on_commit():
        for env, name in (("qux-dev", "prod-web"), ("qux-dev-prod", "web")):
            env_obj = Environment.objects.get(name=env)
            services.install(by=owner, env=env_obj, version=version, name=name, values={})
    paths = [p for p in files() if p.startswith("applications/qux")]
    assert len(paths) == 4, paths  # a GitRepository and a Kustomization per Application
    objects = _objects(paths)
    names = {key[2] for key in objects}
    assert len(names) == 4 and all(len(n) <= 63 for n in names), names
    # the real identities travel as labels
    for path in paths:
        doc: dict[str, Any] = yaml.safe_load(show(path))
        labels = doc["metadata"]["labels"]
        org, env, app = path.split("/")[1:4]
        assert labels["openova.io/organization"] == org
        assert labels["openova.io/environment"] == env
        assert labels["openova.io/application"] == app


def test_migration_rerenders_existing_applications_under_the_new_names(
    catalog, cast, acme_prod, on_commit
):
    """Files written under the old `{env}-{app}` names are rewritten by the data migration's
    outbox rows (level-triggered: same paths, new names; Flux prunes the old objects)."""
    import importlib

    from django.apps import apps as django_apps

    from core import outbox
    from core.models import OutboxItem
    from gitops import sync as gitops_sync
    from gitops.naming import config_repo, flux_object_name

    version = BlueprintVersion.objects.get(blueprint__name="bp-valkey", version="2.0.0")
    with on_commit():
        services.install(by=cast["admin"], env=acme_prod, version=version, name="web", values={})
    root = "applications/acme/acme-prod/web/"
    new = flux_object_name("acme", "acme-prod", "web")
    current = {p: show(p) for p in files() if p.startswith(root)}
    old = {p: text.replace(new, "acme-prod-web") for p, text in current.items()}
    owner, repo, branch = config_repo()
    gitops_sync.sync(
        gitops_sync.Desired(owner=owner, repo=repo, branch=branch, root=root, files=old),
        author=gitops_sync.Author("test", "test@example.test"),
        message="the names before issue 10",
    )
    assert "name: acme-prod-web\n" in show(root + "gitrepository.yaml")
    migration = importlib.import_module("marketplace.migrations.0004_rerender_flux_names")
    migration.rerender(django_apps, None)
    assert OutboxItem.objects.pending().filter(task_name=services.SYNC_TASK).count() == 1
    outbox.sweep()
    assert {p: show(p) for p in files() if p.startswith(root)} == current
    assert not OutboxItem.objects.pending().exists()

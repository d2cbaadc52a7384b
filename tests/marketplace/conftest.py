from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.test import Client

from gitops import hooks
from gitops import sync as gitops_sync
from marketplace import loader
from marketplace.models import CatalogSource
from orgs.models import Environment
from tests.gitops.conftest import changes, fluxd, kube, start_watcher  # noqa: F401 (emulated Flux)

WEBHOOK_SECRET = "hook-secret-for-tests"


@pytest.fixture
def portal(settings: Any, gitea: Any, on_commit: Any) -> Iterator[Any]:
    """The portal on the Gitea emulator, with its push webhooks delivered to the Django test
    client (held until the test flushes them, like Gitea's asynchronous hook queue)."""
    settings.GITEA_URL = gitea.url
    settings.GITEA_TOKEN = gitea.token
    settings.PORTAL_URL = "http://testserver"
    settings.GITEA_WEBHOOK_SECRET = WEBHOOK_SECRET
    gitops_sync.backend.cache_clear()
    hooks.forget_hooks()
    webhook = Client()

    def transport(url: str, body: bytes, headers: dict[str, str]) -> int:
        extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
        extra.pop("HTTP_CONTENT_TYPE", None)
        return webhook.post(
            urlsplit(url).path, data=body, content_type="application/json", **extra
        ).status_code

    gitea.transport = transport
    gitea.hold_hooks = True

    def flush() -> int:
        with on_commit():
            return gitea.flush_hooks()

    gitea.flush = flush
    yield gitea
    gitops_sync.backend.cache_clear()
    hooks.forget_hooks()


# the install form of bp-gitea 1.22.0, filled in correctly (tests change one field at a time)
GITEA_INSTALL_FORM = {
    "environment": "acme-prod",
    "name": "git",
    "size": "small",
    "placement": "single-region",
    "regions": ["hz-fsn-rtz-prod"],
    "domain": "git.acme.test",
    "admin__username": "root-admin",
    "admin__email": "ops@acme.test",
    "registration": "disabled",
    "storage": "10Gi",
    "dep__db": "new",
}


@pytest.fixture
def catalog(db: Any) -> CatalogSource:
    """The starter catalog shipped in marketplace/catalog/, synced."""
    source, _ = CatalogSource.objects.update_or_create(
        name=loader.PUBLIC_SOURCE,
        defaults={"kind": "directory", "location": str(settings.CATALOG_DIR)},
    )
    result = loader.sync_source(source)
    assert result["errors"] == 0, list(source.errors.values_list("path", "error"))
    return source


@pytest.fixture
def acme_prod(cast: dict[str, Any]) -> Environment:
    return Environment.objects.get(name="acme-prod")


@pytest.fixture
def acme_dev(cast: dict[str, Any]) -> Environment:
    return Environment.objects.get(name="acme-dev")


def blueprint_doc(name: str, version: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "catalyst.openova.io/v1",
        "kind": "Blueprint",
        "metadata": {"name": name},
        "spec": {
            "version": version,
            "card": {
                "title": name.removeprefix("bp-").title(),
                "summary": f"{name} for tests",
                "category": "testing",
            },
            "manifests": {
                "chart": {
                    "repository": "https://charts.example.test",
                    "name": name,
                    "version": "1.0.0",
                }
            },
            **spec,
        },
    }


def private_blueprint_doc(name: str, owner: str, title: str, **card: Any) -> dict[str, Any]:
    """A private Blueprint of `owner` (only its members see it) with this card title."""
    card = {"summary": "x", "category": "testing", **card, "title": title}
    return blueprint_doc(name, "1.0.0", visibility="private", owner=owner, card=card)


@pytest.fixture
def publish(db: Any, tmp_path: Any) -> Any:
    """Write Blueprint documents as files of a second directory source and sync it."""
    import yaml

    directory = tmp_path / "extra-catalog"
    directory.mkdir()

    def run(*docs: dict[str, Any], files: dict[str, str] | None = None) -> dict[str, int]:
        for doc in docs:
            path = directory / f"{doc['metadata']['name']}-{doc['spec']['version']}.yaml"
            path.write_text(yaml.safe_dump(doc))
        for name, text in (files or {}).items():
            (directory / name).write_text(text)
        source, _ = CatalogSource.objects.get_or_create(
            name="extra", defaults={"kind": "directory", "location": str(directory)}
        )
        return loader.sync_source(source)

    return run


def share_blueprint(org: str, doc: dict[str, Any]) -> None:
    """Commit a Blueprint document to the Organization's shared-blueprints repo."""
    import yaml

    from gitops.backend import Author
    from gitops.sync import Desired, sync

    sync(
        Desired(
            owner=org,
            repo="shared-blueprints",
            branch="main",
            root="blueprints/",
            files={f"blueprints/{doc['metadata']['name']}.yaml": yaml.safe_dump(doc)},
        ),
        author=Author("t", "t@example.test"),
        message="share",
    )

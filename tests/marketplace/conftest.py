from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings

from marketplace import loader
from marketplace.models import CatalogSource
from orgs.models import Environment


@pytest.fixture
def catalog(db: Any) -> CatalogSource:
    """The starter catalog shipped in marketplace/catalog/, synced."""
    source, _ = CatalogSource.objects.update_or_create(
        name=loader.PUBLIC_SOURCE, defaults={"kind": "directory", "location": str(settings.CATALOG_DIR)}
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

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import reset_cache


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> Iterator[None]:
    reset_cache()
    yield
    reset_cache()


@pytest.fixture
def operator_client(cast: dict[str, Any], client_for: Any) -> Any:
    return client_for(cast["sovereign_operator"])


def seed_price_book() -> None:
    """The seeded plans, prices, application rates and usage prices (migrations 0002-0004) again:
    transactional tests flush the tables."""
    from importlib import import_module

    from django.apps import apps

    import_module("billing.migrations.0002_plans_and_append_only_ledger").seed_plans(apps, None)
    import_module("billing.migrations.0003_quotes_subscriptions_and_payments").seed_app_extras(
        apps, None
    )
    import_module("billing.migrations.0004_invoices_usage_and_billing_runs").seed_usage_prices(
        apps, None
    )


@pytest.fixture(autouse=True)
def _price_book(request: Any) -> None:
    marker = request.node.get_closest_marker("django_db")
    if marker is not None:
        request.getfixturevalue("transactional_db" if marker.kwargs.get("transaction") else "db")
        seed_price_book()

"""Shared fixtures: a Sovereign with host clusters, a fixed cast of users, Git under tmp_path.

The cast (SPEC §6): owner, admin, operator, developer and viewer of Organization A ("acme");
`member_b`, owner of Organization B ("globex"); `outsider`, signed in with no grants; and
`sovereign_operator`, the BSS operator with a global owner grant.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from gitops import sync as gitops_sync
from orgs import services as org_services
from orgs.models import HostCluster, Organization, Sovereign
from rbac import services as rbac_services

CLUSTERS = [
    ("hetzner", "fsn", "rtz", "prod"),
    ("hetzner", "hel", "rtz", "prod"),
    ("hetzner", "fsn", "rtz", "dev"),
]
PASSWORD = "correct-horse-battery"


@pytest.fixture(autouse=True)
def _isolated_git(settings: Any, tmp_path: Any) -> Iterator[None]:
    settings.GIT_ROOT = tmp_path / "git"
    settings.GITEA_URL = ""
    settings.NATS_URL = ""  # tests that publish events turn it on themselves
    # the test Blueprints' chart repositories join the Sovereign's allow-list
    settings.CHART_REPOSITORIES = [
        *settings.CHART_REPOSITORIES,
        "https://charts.example.test",
        "https://charts.acme.test",
    ]
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.MD5PasswordHasher"
    ]  # fast, tests only
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from catalyst_portal.celery import app

    app.conf.task_always_eager = True
    gitops_sync.backend.cache_clear()
    yield
    gitops_sync.backend.cache_clear()


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    """Hashing the cast's passwords with PBKDF2 costs ~0.5 s a user; tests need no strength."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _shared_cache(settings: Any) -> bool:
    return "RedisCache" in settings.CACHES["default"]["BACKEND"]


@pytest.fixture(autouse=True)
def _isolated_cache(settings: Any) -> None:
    """Under Valkey every test gets a key prefix of its own: parallel workers share the server,
    and rate-limit counters keyed by 127.0.0.1 must not leak from one test into another."""
    if _shared_cache(settings):
        settings.CACHES = {
            "default": {**settings.CACHES["default"], "KEY_PREFIX": f"t{uuid.uuid4().hex}"}
        }
    # Pages cache nothing (core/versioned.py) unless a test turns it on (PAGE_CACHE = True, as
    # tests/marketplace/test_catalog_cache.py does): query counts are the same with and without
    # Valkey, whatever an earlier request of the test cached.
    settings.PAGE_CACHE = False


@pytest.fixture(autouse=True)
def _fresh_events(settings: Any) -> Iterator[None]:
    """Each test publishes live-status events on a stream of its own (parallel workers share Valkey)."""
    from gitops import events

    settings.EVENTS_STREAM_KEY = f"test:events:{uuid.uuid4().hex}"
    events.reset()
    yield
    broker = events.broker()
    if isinstance(broker, events.ValkeyBroker):
        broker._client().delete(settings.EVENTS_STREAM_KEY)
    events.reset()


def reset_cache() -> None:
    """Forget cached counters. With local memory that is `cache.clear()`; under Valkey each test
    already starts with an empty namespace, and FLUSHDB would wipe the other workers' keys and the
    broker's queues, so nothing is done."""
    from django.conf import settings as django_settings
    from django.core.cache import cache

    if not _shared_cache(django_settings):
        cache.clear()


@pytest.fixture
def page_cache(settings: Any) -> Iterator[None]:
    """Page caching on (as with Valkey); under local memory the cache starts and ends empty."""
    settings.PAGE_CACHE = True
    reset_cache()
    yield
    reset_cache()


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks: Any) -> Callable[[], Any]:
    """`with on_commit(): ...` runs after-commit work (the delivery tasks) at the end of the block."""

    @contextmanager
    def run() -> Iterator[Any]:
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            yield callbacks

    return run


@pytest.fixture
def sovereign(db: Any) -> Sovereign:
    sov = Sovereign.objects.create(
        fqdn="demo.local", display_name="Demo", currency="OMR", tax_rate_bp=500
    )
    for provider, region, block, env_type in CLUSTERS:
        HostCluster.objects.create(
            sovereign=sov, provider=provider, region=region, building_block=block, env_type=env_type
        )
    return sov


def make_tokens(user: Any, count: int) -> None:
    """`count` live API tokens of `user` named token-000, token-001, … (rows only: no secret)."""
    import secrets
    from datetime import timedelta

    from django.utils import timezone

    from accounts.models import ApiToken

    ApiToken.objects.bulk_create(
        ApiToken(
            user=user,
            name=f"token-{i:03d}",
            lookup=secrets.token_hex(8),
            hashed="x" * 64,
            expires_at=timezone.now() + timedelta(days=30),
        )
        for i in range(count)
    )


def make_user(username: str, **extra: Any) -> Any:
    user = get_user_model().objects.create_user(
        username=username, email=f"{username}@example.test", password=PASSWORD, **extra
    )
    return user


def grant(user: Any, tier: str, scopes: list[dict[str, str]]) -> Any:
    return rbac_services.assign(by=None, user=user, tier=tier, scopes=scopes).grant


def org_scope(slug: str) -> list[dict[str, str]]:
    return [{"key": "openova.io/organization", "value": slug}]


@pytest.fixture
def cast(sovereign: Sovereign, on_commit: Any) -> dict[str, Any]:
    users = {
        name: make_user(name)
        for name in (
            "owner",
            "admin",
            "operator",
            "developer",
            "viewer",
            "member_b",
            "outsider",
            "sovereign_operator",
        )
    }
    with on_commit():
        acme = org_services.create_organization(
            by=users["owner"],
            slug="acme",
            display_name="Acme",
            environments=[
                {"env_type": "prod", "regions": ["hz-fsn-rtz-prod"]},
                {"env_type": "dev", "regions": ["hz-fsn-rtz-dev"]},
            ],
        )
        globex = org_services.create_organization(
            by=users["member_b"],
            slug="globex",
            display_name="Globex",
            environments=[{"env_type": "prod", "regions": ["hz-hel-rtz-prod"]}],
        )
        for tier in ("admin", "operator", "developer", "viewer"):
            grant(users[tier], tier, org_scope("acme"))
        grant(users["sovereign_operator"], "owner", rbac_services.GLOBAL_SCOPE)
    return {
        **users,
        "acme": Organization.objects.get(pk=acme.pk),
        "globex": Organization.objects.get(pk=globex.pk),
    }


@pytest.fixture
def client_for() -> Callable[[Any], Client]:
    def make(user: Any) -> Client:
        client = Client()
        if user is not None:
            client.force_login(user)
        return client

    return make


@pytest.fixture
def gitea(tmp_path: Any) -> Iterator[Any]:
    """A running Gitea emulator (tests/gitops/gitea_emulator.py); fails the test on a spec violation."""
    from tests.gitops.gitea_emulator import GiteaEmulator

    emulator = GiteaEmulator(tmp_path / "gitea").start()
    yield emulator
    emulator.stop()
    assert emulator.violations == [], "Gitea API contract violated"

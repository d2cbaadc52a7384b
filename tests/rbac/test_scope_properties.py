"""Scope semantics as properties: `can()` (Python) and `visible()` (SQL) agree with a plain
reference evaluator written from SPEC §6, for random grants (AND within a grant, OR across grants,
`*` wildcards, developer forced to env-type=dev, Environment grants bound to their Organization,
expiry, group subjects)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orgs.models import Environment, Organization
from rbac import access, tiers
from rbac.models import UserAccess
from rbac.services import normalize_scopes

pytestmark = pytest.mark.django_db

ORG, ENV, ENV_TYPE = "openova.io/organization", "openova.io/environment", "openova.io/env-type"
ORGS = ("acme", "globex")
ENV_TYPES = ("prod", "dev")
ACTIONS = (
    "organization.read",
    "environments.read",
    "environments.create",
    "workloads.exec",
    "applications.update",
    "organization.update",
    "members.read",
    "rbac.assign",
)
LEVELS = {"viewer": 10, "developer": 20, "operator": 30, "admin": 40, "owner": 50}

term = st.one_of(
    st.just(("*", "*")),
    st.tuples(st.just(ORG), st.sampled_from((*ORGS, "*"))),
    st.tuples(st.just(ENV_TYPE), st.sampled_from((*ENV_TYPES, "*"))),
    st.tuples(st.just(ENV), st.sampled_from([f"{o}-{t}" for o in ORGS for t in ENV_TYPES])),
)
grant = st.fixed_dictionaries(
    {
        "tier": st.sampled_from(tuple(LEVELS)),
        "terms": st.lists(term, min_size=1, max_size=3),
        "subject": st.sampled_from(("user", "my-group", "other-group")),
        "expiry": st.sampled_from((None, "past", "future")),
    }
)


def reference_scopes(tier: str, terms: list[tuple[str, str]]) -> dict[str, str] | None:
    """What a grant request means: developer → env-type=dev; an Environment implies its
    Organization; a global term alone is global. None when the request is contradictory."""
    scope: dict[str, str] = {}
    for key, value in terms:
        if key in scope and scope[key] != value:
            return None
        scope[key] = value
    if ENV in scope:
        org = scope[ENV].rsplit("-", 1)[0]
        if scope.get(ORG, org) not in (org, "*"):
            return None
        scope[ORG] = org
    if tier == "developer":
        scope.pop("*", None)
        scope[ENV_TYPE] = "dev"
    if "*" in scope and len(scope) > 1:
        del scope["*"]
    return scope


def reference_allows(grants: list[dict[str, Any]], action: str, labels: dict[str, str]) -> bool:
    read = action.endswith(".read")
    for g in grants:
        if g["subject"] == "other-group" or g["expiry"] == "past":
            continue
        if action not in tiers.get(g["tier"]).actions:
            continue
        ok = True
        for key, value in g["scope"].items():
            if key == "*":
                continue
            if key not in labels:
                ok = ok and read  # a grant inside a target lets you see the target, not act on it
            elif value != "*" and labels[key] != value:
                ok = False
        if ok:
            return True
    return False


@pytest.fixture
def targets(db: Any) -> list[Any]:
    made: list[Any] = []
    for slug in ORGS:
        org = Organization.objects.create(slug=slug, display_name=slug)
        made.append(org)
        for env_type in ENV_TYPES:
            made.append(
                Environment.objects.create(
                    organization=org, env_type=env_type, name=f"{slug}-{env_type}"
                )
            )
    return made


def labels_of(target: Any) -> dict[str, str]:
    if isinstance(target, Organization):
        return {ORG: target.slug}
    return {ORG: target.organization.slug, ENV: target.name, ENV_TYPE: target.env_type}


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(grants=st.lists(grant, max_size=4), action=st.sampled_from(ACTIONS))
def test_can_and_visible_match_the_reference(targets, grants, action):
    UserAccess.objects.all().delete()
    get_user_model().objects.filter(username="prop").delete()
    user = get_user_model().objects.create_user(username="prop", email="prop@example.test")
    user.oidc_groups = ["my-group"]
    now = timezone.now()
    accepted = []
    for g in grants:
        scope = reference_scopes(g["tier"], g["terms"])
        if scope is None:
            continue
        scopes = normalize_scopes(g["tier"], [{"key": k, "value": v} for k, v in g["terms"]])
        assert {s["key"]: s["value"] for s in scopes} == scope, "normalize_scopes disagrees"
        UserAccess.objects.create(
            user=user if g["subject"] == "user" else None,
            group="" if g["subject"] == "user" else g["subject"],
            tier=g["tier"],
            scopes=scopes,
            expires_at={
                None: None,
                "past": now - timedelta(seconds=1),
                "future": now + timedelta(hours=1),
            }[g["expiry"]],
        )
        accepted.append({**g, "scope": scope})

    for target in targets:
        expected = reference_allows(accepted, action, labels_of(target))
        assert access.can(user, action, target) == expected, (target, action, accepted)
    for model in (Organization, Environment):
        expected_rows = {
            t.pk
            for t in targets
            if isinstance(t, model) and reference_allows(accepted, action, labels_of(t))
        }
        got = set(access.visible(user, model.objects.all(), action).values_list("pk", flat=True))
        assert got == expected_rows, (model.__name__, action, accepted)


def test_developer_scope_cannot_be_escaped():
    for terms in ([{"key": "*", "value": "*"}], [{"key": ENV_TYPE, "value": "prod"}], []):
        scopes = normalize_scopes("developer", terms)
        assert {"key": ENV_TYPE, "value": "dev"} in scopes
        assert all(s["key"] != "*" for s in scopes)

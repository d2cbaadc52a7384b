"""Issue 10: every (kind, namespace, name) and path the portal renders for an Application is a
function of the unambiguous (org, env, app, cluster) tuple that no two tuples share, and fits
Kubernetes name limits."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from gitops import naming

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
WORD = st.from_regex(r"\A[a-z][a-z0-9]{0,6}\Z")
ENV_TYPES = ("prod", "stg", "uat", "dev", "poc")
CLUSTERS = ("hz-fsn-rtz-prod", "hz-fsn-rtz-dev", "hz-hel-rtz-prod", "aws-eu1-rtz-stg")


@st.composite
def dashed(draw: st.DrawFn, low: int, high: int) -> str:
    words = draw(st.lists(WORD, min_size=1, max_size=4))
    text = "-".join(words)[:high].rstrip("-")
    return text if len(text) >= low else text + "a" * (low - len(text))


@st.composite
def tenant(draw: st.DrawFn) -> tuple[str, str, str, str]:
    org = draw(dashed(3, 32))
    env = f"{org}-{draw(st.sampled_from(ENV_TYPES))}"
    app = draw(dashed(3, 40))
    return org, env, app, draw(st.sampled_from(CLUSTERS))


@st.composite
def lookalikes(draw: st.DrawFn) -> list[tuple[str, str, str, str]]:
    """Tuples whose dash-joined forms are the same string, split at different dashes."""
    words = draw(st.lists(WORD, min_size=3, max_size=6))
    env_type = draw(st.sampled_from(ENV_TYPES))
    cluster = draw(st.sampled_from(CLUSTERS))
    out = []
    for cut in range(1, len(words)):
        org = "-".join(words[:cut])
        app = "-".join(words[cut:])
        out.append((org, f"{org}-{env_type}", app, cluster))
    return out


def rendered(org: str, env: str, app: str, cluster: str) -> dict[tuple[str, str, str], tuple]:
    """What one Application puts into shared places — flux-system objects, catalyst-config paths,
    the objects in its Environment's namespace on each host cluster — each with the identity that
    owns it (an Application's GitRepository serves all its regions; the rest is per region)."""
    key = "admin-password"
    app_id, region_id = (org, env, app), (org, env, app, cluster)
    on_cluster = f"{cluster}/{env}"  # a namespace of that host cluster
    return {
        ("GitRepository", "flux-system", naming.flux_object_name(org, env, app)): app_id,
        (
            "Kustomization",
            "flux-system",
            naming.flux_object_name(org, env, app, cluster),
        ): region_id,
        ("path", "", f"applications/{org}/{env}/{app}/kustomization-{cluster}.yaml"): region_id,
        ("HelmRelease", on_cluster, app): region_id,
        ("HelmRepository", on_cluster, f"{app}-charts"): region_id,
        ("ConfigMap", on_cluster, f"{app}-values"): region_id,
        ("Secret", on_cluster, f"{app}-credentials"): region_id,
        ("Password", on_cluster, naming.generator_name(app, key)): region_id,
    }


def _assert_disjoint(tuples: list[tuple[str, str, str, str]]) -> None:
    owner: dict[tuple[str, str, str], tuple] = {}
    for t in dict.fromkeys(tuples):
        for obj, identity in rendered(*t).items():
            assert owner.setdefault(obj, identity) == identity, (
                f"{obj} rendered for {owner[obj]} and {identity}"
            )
            if obj[0] != "path":
                assert len(obj[2]) <= 63 and DNS_LABEL.match(obj[2]), obj


@settings(max_examples=300, deadline=None)
@given(st.lists(tenant(), min_size=2, max_size=20))
def test_random_tenants_never_share_an_object(tuples):
    _assert_disjoint(tuples)


@settings(max_examples=200, deadline=None)
@given(lookalikes())
def test_dash_lookalikes_never_share_an_object(tuples):
    _assert_disjoint(tuples)


@given(st.text(min_size=1, max_size=12), st.text(min_size=1, max_size=12))
def test_generator_names_are_unambiguous(key_a, key_b):
    # app `a` key `b-c` and app `a-b` key `c` once both made the generator `a-b-c`
    assert naming.generator_name("a", f"b-{key_a}") != naming.generator_name("a-b", key_a)
    if key_a != key_b:
        assert naming.generator_name("app", key_a) != naming.generator_name("app", key_b)


def test_long_identities_fit_a_dns_label():
    org, app = "o" * 32, "a" * 40
    name = naming.flux_object_name(org, f"{org}-prod", app, "hz-fsn-rtz-prod")
    assert len(name) <= 63 and DNS_LABEL.match(name)

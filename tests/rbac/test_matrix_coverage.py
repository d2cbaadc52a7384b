"""Every URL pattern of the portal has a row in the access matrix (tests/rbac/matrix.py and the
`tests/<app>/rbac_cases.py` modules): a new page or endpoint fails here until its cases exist."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

from django.urls import URLPattern, URLResolver, get_resolver, resolve

from .matrix import MATRIX_CONTEXT_KEYS, cases

# Not tenant data, so not in the matrix: the liveness and readiness probes, the Prometheus metrics
# (a token or an internal address, not a role: tests/core/test_metrics.py), the OIDC handshake
# (mozilla-django-oidc's own views) and the OpenAPI schema.
ALLOWED_UNCOVERED = ("healthz", "readyz", "metrics", "oidc/", "api/schema/")


def routes(patterns: list = get_resolver().url_patterns, prefix: str = "") -> Iterator[str]:  # noqa: B008
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from routes(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern)


def covered_routes() -> dict[str, list[str]]:
    dummy = {key: "1" for key in MATRIX_CONTEXT_KEYS}
    covered: dict[str, list[str]] = {}
    for case in cases():
        match = resolve(urlsplit(case.url.format(**dummy)).path)
        covered.setdefault(match.route, []).append(case.name)
    return covered


def test_every_url_pattern_has_matrix_cases():
    covered = covered_routes()
    missing = [
        route
        for route in routes()
        if route not in covered and not route.startswith(ALLOWED_UNCOVERED)
    ]
    assert missing == [], (
        "URL patterns without a row in the access matrix (add Case()s to tests/<app>/rbac_cases.py): "
        + ", ".join(missing)
    )


def test_allow_list_is_not_stale():
    """Each allow-list entry still names a pattern (so it cannot hide a renamed page)."""
    all_routes = list(routes())
    for prefix in ALLOWED_UNCOVERED:
        assert any(route.startswith(prefix) for route in all_routes), prefix


def test_case_names_are_unique():
    names = [case.name for case in cases()]
    assert len(names) == len(set(names))

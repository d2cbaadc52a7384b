"""The shell every signed-in page shares (UX.md "Layout"): primary navigation for the current
Organization, the operator console, the Organization switcher and whether a cluster reports back
(or is the simulated demo cluster: every page says so).

Everything here is lazy: a page that does not render the shell (a fragment, an error page) runs no
query, and a page that does reads, on top of the grants every page reads anyway, the Organizations
for the switcher and the current Organization's Environments — from the cache while no
Organization or Environment changed (`core.versioned.SHELL`, keyed by the user's live grants, the
only thing of the user that `access.visible` reads), else two queries. The Sovereign's name and
whether a cluster reports back come from the cache too (`site_facts`, renewed by every write of
them), and the navigation is rendered once though the page shows it twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from django.conf import settings
from django.db.models import Exists
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils.functional import SimpleLazyObject

from core.versioned import SHELL, SITE
from rbac import access

SWITCHER_SIZE = 20

# (label, URL name, needs): "org" items take the current Organization's slug; "action" is checked
# on it. Operator items need a global grant (Sovereign operators).
ORG_NAV = [
    ("Overview", "orgs:detail", "organization.read"),
    ("Applications", "marketplace:apps", "applications.read"),
    ("Marketplace", "marketplace:catalog", ""),
    ("Members", "orgs:members", "members.read"),
    ("Billing", "billing:account", "billing.read"),
    ("Audit", "orgs:audit", "audit.read"),
]
CONSOLE_NAV = [
    ("Overview", "billing:index", "billing.read"),
    ("Revenue", "billing:revenue", "billing.read"),
    ("Organizations", "billing:customers", "billing.read"),
    ("Vouchers", "billing:vouchers", "vouchers.read"),
    ("Plans & prices", "billing:plans", "billing.read"),
    ("Orders", "billing:orders", "billing.read"),
    ("Invoices", "billing:invoices", "billing.read"),
    ("Catalog curation", "marketplace:curation", "catalog.curate"),
    ("Audit", "audit", "audit.read"),
]
ORG_URL_NAMES = {"orgs", "billing"}  # URL namespaces whose `slug` kwarg is an Organization


@dataclass
class Item:
    label: str
    url: str
    current: bool = False
    children: list[Item] = field(default_factory=list)


def _url(name: str, *args: str) -> str | None:
    try:
        return reverse(name, args=args)
    except NoReverseMatch:  # an app whose pages are not installed
        return None


def _mark_current(path: str, items: list[Item]) -> None:
    """The longest URL that prefixes the path is the current item (one per navigation)."""
    flat = [i for item in items for i in (item, *item.children)]
    best = max((i for i in flat if path.startswith(i.url)), key=lambda i: len(i.url), default=None)
    if best is not None:
        best.current = True


class Shell:
    def __init__(self, request: HttpRequest) -> None:
        self.request = request
        self.user = getattr(request, "user", None)
        self.signed_in = bool(getattr(self.user, "is_authenticated", False))

    @cached_property
    def is_operator(self) -> bool:
        return self.signed_in and access.is_operator(self.user, "audit.read")

    @cached_property
    def grants_key(self) -> str:
        """What the lists below depend on besides the rows: the user's live grants (`visible`
        reads nothing else of the user), so an expired or changed grant is a new key."""
        grants = sorted((g.tier.name, g.scopes) for g in access.grants_for(self.user))
        return hashlib.sha256(repr(grants).encode()).hexdigest()[:32]

    @cached_property
    def orgs(self) -> list[Any]:
        """The Organizations the user can open (switcher), most relevant first (cached for
        these grants while no Organization or Environment changed: core.versioned.SHELL)."""
        if not self.signed_in:
            return []
        from orgs.models import Organization

        def read() -> list[Any]:
            qs = access.visible(self.user, Organization.objects.active(), "organization.read")
            only = qs.only("pk", "slug", "display_name", "state")
            return list(only.order_by("slug")[:SWITCHER_SIZE])

        (found,) = SHELL.fetch({f"orgs:{self.grants_key}": read})
        return found

    @cached_property
    def current_org(self) -> Any:
        """The Organization the page is about (from the URL), else the user's first one."""
        match = getattr(self.request, "resolver_match", None)
        slug = ""
        if match is not None:
            kwargs = match.kwargs
            if match.namespace in ORG_URL_NAMES and "slug" in kwargs:
                slug = kwargs["slug"]
            elif "org" in kwargs:
                slug = kwargs["org"]
            elif match.namespace == "marketplace" and "env" in kwargs:
                slug = self._org_of_env(kwargs["env"])
        for org in self.orgs:
            if org.slug == slug:
                return org
        if slug:  # a page of an Organization beyond the switcher's first page
            from orgs.models import Organization

            found = access.visible(
                self.user, Organization.objects.filter(slug=slug), "organization.read"
            ).first()
            if found is not None:
                return found
        return self.orgs[0] if self.orgs else None

    def _org_of_env(self, env: str) -> str:
        from orgs.models import Environment

        return (
            Environment.objects.filter(name=env)
            .values_list("organization__slug", flat=True)
            .first()
            or ""
        )

    @cached_property
    def nav(self) -> list[Item]:
        org = self.current_org
        if org is None:
            items = [Item("Organizations", reverse("orgs:list"))]
            url = _url("marketplace:catalog")
            if url:
                items.append(Item("Marketplace", url))
            _mark_current(self.request.path, items)
            return items
        items = []
        for label, name, action in ORG_NAV:
            takes_slug = name.startswith(("orgs:", "billing:"))
            url = _url(name, org.slug) if takes_slug else _url(name)
            if url is None or (action and not access.can(self.user, action, org)):
                continue
            items.append(Item(label, url))
        overview = items[0]
        overview.children = [
            Item(env.name, reverse("orgs:environment", args=[org.slug, env.name]))
            for env in self.environments
        ]
        _mark_current(self.request.path, items)
        return items

    @cached_property
    def environments(self) -> list[Any]:
        org = self.current_org
        if org is None:
            return []

        def read() -> list[Any]:
            qs = access.visible(self.user, org.environments.all(), "environments.read")
            return list(qs.only("pk", "name", "organization_id").order_by("name"))

        (found,) = SHELL.fetch({f"environments:{org.pk}:{self.grants_key}": read})
        return found

    @cached_property
    def console(self) -> list[Item]:
        if not self.is_operator:
            return []
        items = [
            Item(label, url)
            for label, name, action in CONSOLE_NAV
            if (url := _url(name)) and access.is_operator(self.user, action)
        ]
        _mark_current(self.request.path, items)
        return items

    @cached_property
    def nav_html(self) -> str:
        """The primary navigation, rendered once: the page shows it twice (menu and sidebar)."""
        return render_to_string("partials/nav.html", {"shell": self})

    @cached_property
    def site(self) -> tuple[str, bool]:
        return site_facts()

    def cluster_connected(self) -> bool:
        return settings.FLUX_CLUSTER_CONNECTED or self.site[1]


def _read_site_facts() -> tuple[str, bool]:
    from gitops.models import FluxCluster
    from orgs.models import Sovereign

    clusters = FluxCluster.objects.all()
    row = (
        Sovereign.objects.order_by("pk")
        .annotate(cluster=Exists(clusters))
        .values_list("fqdn", "cluster")
        .first()
    )
    if row is None:  # no Sovereign row yet (a fresh install before the demo data)
        return "Catalyst", clusters.exists()
    return row[0] or "Catalyst", bool(row[1])


def site_facts() -> tuple[str, bool]:
    """The Sovereign's name, and whether any Flux cluster reports back: from the cache while
    neither changed (core.versioned.SITE), else one query."""
    (facts,) = SITE.fetch({"facts": _read_site_facts})
    return facts


def portal(request: HttpRequest) -> dict[str, Any]:
    shell = Shell(request)
    return {
        "sovereign_name": SimpleLazyObject(lambda: shell.site[0]),
        "shell": shell,
        "nav_is_operator": shell.is_operator,
        "cluster_connected": shell.cluster_connected,
        "simulated_cluster": settings.SIMULATED_CLUSTER,
        "local_signup_enabled": settings.LOCAL_SIGNUP_ENABLED,
    }

"""The marketplace's rows of the access matrix (collected by tests/rbac/matrix.py).

Applications live in Environments: a developer's grant is dev-scoped, so acme-prod and what is
installed there are invisible to them (404), like another Organization's; viewers see but may not
change (403). The catalog itself is readable by every signed-in user.
"""

from __future__ import annotations

from tests.rbac.matrix import Case, everyone, expect

CATALOG = ("catalog",)
APPS = ("apps",)
PROD_APP = "/marketplace/apps/acme-prod/cache/"
GLOBEX_APP = "/marketplace/apps/globex-prod/cache/"
API_PROD = "/api/v1/orgs/acme/environments/acme-prod/applications/"
API_DEV = "/api/v1/orgs/acme/environments/acme-dev/applications/"
API_GLOBEX = "/api/v1/orgs/globex/environments/globex-prod/applications/"
INSTALL_BODY = {"name": "web", "blueprint": "bp-valkey"}
INSTALL_FORM = {
    "environment": "acme-prod",
    "name": "web",
    "size": "small",
    "placement": "single-region",
    "regions": ["hz-fsn-rtz-prod"],
    "architecture": "standalone",
}
VALUES_FORM = {"architecture": "replication", "persistence__enabled": "on"}


def prod_writers(ok: int, *, api: bool = False) -> dict[str, int]:
    """applications.install/update/upgrade/uninstall in acme-prod: operator and up; the viewer may
    read (403); the developer's dev-scoped grant does not reach prod (404)."""
    return expect(403, owner=ok, admin=ok, operator=ok, developer=404, api=api)


def globex_only(ok: int, *, api: bool = False) -> dict[str, int]:
    return expect(404, member_b=ok, sovereign_operator=ok, api=api)


CASES: list[Case] = [
    # --- catalog pages ---
    Case("catalog", "GET", "/marketplace/", everyone(200), setup=CATALOG),
    Case(
        "catalog sync errors (operators)",
        "GET",
        "/marketplace/sync-errors/",
        expect(404, sovereign_operator=200),
    ),
    Case("blueprint page", "GET", "/marketplace/bp-valkey/", everyone(200), setup=CATALOG),
    Case("unknown blueprint", "GET", "/marketplace/bp-nope/", everyone(404), setup=CATALOG),
    # a private Blueprint exists only for its Organization (and the Sovereign's operators)
    Case(
        "other org private blueprint",
        "GET",
        "/marketplace/bp-secret/",
        globex_only(200),
        setup=CATALOG,
    ),
    Case(
        "other org private blueprint install page",
        "GET",
        "/marketplace/bp-secret/install/",
        globex_only(200),
        setup=CATALOG,
    ),
    # globex's owner posts acme-prod, which is not theirs: a form error; the operator is refused
    # because bp-secret is private to globex
    Case(
        "other org private blueprint install",
        "POST",
        "/marketplace/bp-secret/install/",
        expect(404, member_b=400, sovereign_operator=400),
        INSTALL_FORM,
        setup=CATALOG,
    ),
    # the install page lists the Environments one may install into: none → 403
    Case(
        "install page",
        "GET",
        "/marketplace/bp-valkey/install/",
        expect(200, viewer=403, member_b=200, outsider=403),
        setup=CATALOG,
    ),
    # acme-prod is not among the choices of a developer or of globex's owner: a form error
    Case(
        "install into acme-prod (plan)",
        "POST",
        "/marketplace/bp-valkey/install/",
        # the dev-scoped admin and developer may install only in acme-dev: a form error
        expect(302, viewer=403, developer=400, dev_admin=400, member_b=400, outsider=403),
        INSTALL_FORM,
        setup=CATALOG,
    ),
    # an InstallPlan is personal: only the user who made it sees or applies it
    Case(
        "install plan page",
        "GET",
        "/marketplace/plans/{install_plan}/",
        expect(404, owner=200, sovereign_operator=404),
        setup=APPS,
    ),
    Case(
        "apply install plan",
        "POST",
        "/marketplace/plans/{install_plan}/",
        expect(404, owner=302, sovereign_operator=404),
        setup=APPS,
    ),
    # --- Applications (pages) ---
    Case("application list", "GET", "/marketplace/apps/", everyone(200), setup=APPS),
    Case("prod application", "GET", PROD_APP, expect(200, developer=404), setup=APPS),
    Case("dev application", "GET", "/marketplace/apps/acme-dev/cache/", expect(200), setup=APPS),
    Case("other org application", "GET", GLOBEX_APP, globex_only(200), setup=APPS),
    # live status over SSE: 401 (not a login redirect) for anonymous EventSource clients
    Case(
        "prod application status stream",
        "GET",
        "/events/apps/acme/acme-prod/cache/",
        expect(200, developer=404, anonymous=401),
        setup=APPS,
    ),
    Case(
        "dev application status stream",
        "GET",
        "/events/apps/acme/acme-dev/cache/",
        expect(200, anonymous=401),
        setup=APPS,
    ),
    Case(
        "other org application status stream",
        "GET",
        "/events/apps/globex/globex-prod/cache/",
        expect(404, member_b=200, sovereign_operator=200, anonymous=401),
        setup=APPS,
    ),
    Case("application edit page", "GET", PROD_APP + "edit/", prod_writers(200), setup=APPS),
    Case(
        "application edit", "POST", PROD_APP + "edit/", prod_writers(302), VALUES_FORM, setup=APPS
    ),
    Case(
        "other org application edit",
        "POST",
        GLOBEX_APP + "edit/",
        globex_only(302),
        VALUES_FORM,
        setup=APPS,
    ),
    Case("application upgrade page", "GET", PROD_APP + "upgrade/", prod_writers(200), setup=APPS),
    # the starter catalog has one version: no upgrade target, so allowed roles get a form error
    Case(
        "application upgrade",
        "POST",
        PROD_APP + "upgrade/",
        prod_writers(400),
        {"version": "2.0.0"},
        setup=APPS,
    ),
    Case(
        "application uninstall page", "GET", PROD_APP + "uninstall/", prod_writers(200), setup=APPS
    ),
    # day-2 pages: POST without `confirm` previews (writes nothing), with it commits
    Case("application size page", "GET", PROD_APP + "size/", prod_writers(200), setup=APPS),
    Case(
        "application size preview",
        "POST",
        PROD_APP + "size/",
        prod_writers(200),
        {"size": "medium"},
        setup=APPS,
    ),
    Case(
        "application size change",
        "POST",
        PROD_APP + "size/",
        prod_writers(302),
        {"size": "medium", "confirm": "1"},
        setup=APPS,
    ),
    Case(
        "other org application size change",
        "POST",
        GLOBEX_APP + "size/",
        globex_only(302),
        {"size": "medium", "confirm": "1"},
        setup=APPS,
    ),
    Case(
        "application placement page", "GET", PROD_APP + "placement/", prod_writers(200), setup=APPS
    ),
    Case(
        "application placement preview",
        "POST",
        PROD_APP + "placement/",
        prod_writers(200),
        {"placement": "single-region", "active": "hz-fsn-rtz-prod"},
        setup=APPS,
    ),
    Case(
        "application switchover page",
        "GET",
        PROD_APP + "switchover/",
        prod_writers(200),
        setup=APPS,
    ),
    # a single-region Application has no standby region to switch to: a form error
    Case(
        "application switchover",
        "POST",
        PROD_APP + "switchover/",
        prod_writers(400),
        {"region": "hz-fsn-rtz-prod", "confirm": "1"},
        setup=APPS,
    ),
    Case(
        "application revisions",
        "GET",
        PROD_APP + "revisions/",
        expect(200, developer=404),
        setup=APPS,
    ),
    Case("application rollback page", "GET", PROD_APP + "rollback/", prod_writers(200), setup=APPS),
    # one revision only: nothing earlier to roll back to
    Case(
        "application rollback",
        "POST",
        PROD_APP + "rollback/",
        prod_writers(400),
        {"revision": "1", "confirm": "1"},
        setup=APPS,
    ),
    Case(
        "application uninstall",
        "POST",
        PROD_APP + "uninstall/",
        prod_writers(302),
        {"confirm": "cache"},
        setup=APPS,
    ),
    Case(
        "other org application uninstall",
        "POST",
        GLOBEX_APP + "uninstall/",
        globex_only(302),
        {"confirm": "cache"},
        setup=APPS,
    ),
    # --- catalog curation: the operators' queue (404 for everyone else); proposing needs a
    # Blueprint of one's own Organization's shared-blueprints (bp-secret is not from one)
    Case("curation queue", "GET", "/marketplace/curation/", expect(404, sovereign_operator=200)),
    Case(
        "curation review of an unknown proposal",
        "GET",
        "/marketplace/curation/999999/",
        expect(404, sovereign_operator=404),
    ),
    Case(
        "propose a Blueprint that is no Organization's own",
        "POST",
        "/marketplace/bp-valkey/propose/",
        expect(404, sovereign_operator=404),
        setup=CATALOG,
    ),
    Case(
        "api proposals",
        "GET",
        "/api/v1/catalog/proposals/",
        expect(404, sovereign_operator=200, api=True),
        api=True,
    ),
    Case(
        "api unknown proposal",
        "GET",
        "/api/v1/catalog/proposals/999999/",
        expect(404, sovereign_operator=404, api=True),
        api=True,
    ),
    Case(
        "api publish unknown proposal",
        "POST",
        "/api/v1/catalog/proposals/999999/publish",
        expect(404, sovereign_operator=404, api=True),
        api=True,
    ),
    Case(
        "api reject unknown proposal",
        "POST",
        "/api/v1/catalog/proposals/999999/reject",
        expect(404, sovereign_operator=404, api=True),
        {"reason": "no"},
        api=True,
    ),
    Case(
        "api propose a Blueprint that is no Organization's own",
        "POST",
        "/api/v1/blueprints/bp-valkey/propose",
        expect(404, sovereign_operator=404, api=True),
        api=True,
        setup=CATALOG,
    ),
    # --- API ---
    Case(
        "api blueprints",
        "GET",
        "/api/v1/blueprints/",
        everyone(200, api=True),
        api=True,
        setup=CATALOG,
    ),
    Case(
        "api blueprint",
        "GET",
        "/api/v1/blueprints/bp-valkey/",
        everyone(200, api=True),
        api=True,
        setup=CATALOG,
    ),
    Case(
        "api other org private blueprint",
        "GET",
        "/api/v1/blueprints/bp-secret/",
        globex_only(200, api=True),
        api=True,
        setup=CATALOG,
    ),
    # installing another Organization's private Blueprint: unknown to tenants, refused to the
    # Sovereign's operators (a private Blueprint is installed only in its Organization): 400
    Case(
        "api install another org's private blueprint",
        "POST",
        API_DEV,
        expect(400, viewer=403, api=True),
        {"name": "web", "blueprint": "bp-secret"},
        api=True,
        setup=CATALOG,
    ),
    Case(
        "api prod applications",
        "GET",
        API_PROD,
        expect(200, developer=404, api=True),
        api=True,
        setup=APPS,
    ),
    Case(
        "api install in prod",
        "POST",
        API_PROD,
        prod_writers(201, api=True),
        INSTALL_BODY,
        api=True,
        setup=CATALOG,
    ),
    Case(
        "api install in dev",
        "POST",
        API_DEV,
        expect(201, viewer=403, api=True),
        INSTALL_BODY,
        api=True,
        setup=CATALOG,
    ),
    Case(
        "api install plan in prod",
        "POST",
        API_PROD + "plan",
        prod_writers(200, api=True),
        INSTALL_BODY,
        api=True,
        setup=CATALOG,
    ),
    Case(
        "api other org applications",
        "GET",
        API_GLOBEX,
        globex_only(200, api=True),
        api=True,
        setup=APPS,
    ),
    # the Organization in the path must own the Environment: no one reaches globex through acme
    Case(
        "api another org's environment under acme",
        "GET",
        "/api/v1/orgs/acme/environments/globex-prod/applications/",
        expect(404, sovereign_operator=404, api=True),
        api=True,
        setup=APPS,
    ),
    Case(
        "api prod application",
        "GET",
        API_PROD + "cache/",
        expect(200, developer=404, api=True),
        api=True,
        setup=APPS,
    ),
    Case(
        "api prod application change",
        "PATCH",
        API_PROD + "cache/",
        prod_writers(200, api=True),
        {"values": {"architecture": "replication"}},
        api=True,
        setup=APPS,
    ),
    Case(
        "api prod application uninstall",
        "DELETE",
        API_PROD + "cache/",
        prod_writers(202, api=True),
        api=True,
        setup=APPS,
    ),
    Case(
        "api prod application upgrade",
        "POST",
        API_PROD + "cache/upgrade",
        prod_writers(400, api=True),
        {"version": "2.0.0"},
        api=True,
        setup=APPS,
    ),
    Case(
        "api prod application upgrade offer",
        "GET",
        API_PROD + "cache/upgrade",
        prod_writers(200, api=True),
        api=True,
        setup=APPS,
    ),
    Case(
        "api prod application resize",
        "POST",
        API_PROD + "cache/resize",
        prod_writers(200, api=True),
        {"size": "medium"},
        api=True,
        setup=APPS,
    ),
    Case(
        "api other org application resize",
        "POST",
        API_GLOBEX + "cache/resize",
        globex_only(200, api=True),
        {"size": "medium"},
        api=True,
        setup=APPS,
    ),
    Case(
        "api prod application placement",
        "POST",
        API_PROD + "cache/placement",
        prod_writers(200, api=True),
        {"placement": "single-region", "regions": ["hz-fsn-rtz-prod"], "preview": True},
        api=True,
        setup=APPS,
    ),
    Case(
        "api prod application switchover",
        "POST",
        API_PROD + "cache/switchover",
        prod_writers(400, api=True),
        {"region": "hz-fsn-rtz-prod"},
        api=True,
        setup=APPS,
    ),
    Case(
        "api prod application revisions",
        "GET",
        API_PROD + "cache/revisions",
        expect(200, developer=404, api=True),
        api=True,
        setup=APPS,
    ),
    Case(
        "api prod application rollback",
        "POST",
        API_PROD + "cache/rollback",
        prod_writers(400, api=True),
        {"revision": 1},
        api=True,
        setup=APPS,
    ),
    Case(
        "api other org application",
        "GET",
        API_GLOBEX + "cache/",
        globex_only(200, api=True),
        api=True,
        setup=APPS,
    ),
    Case(
        "api other org application uninstall",
        "DELETE",
        API_GLOBEX + "cache/",
        globex_only(202, api=True),
        api=True,
        setup=APPS,
    ),
    # --- Git as a surface (issue 16): the Git page, the editor, promotions and policies ---
    Case("application git page", "GET", PROD_APP + "git/", expect(200, developer=404), setup=APPS),
    Case(
        "application git resolve with nothing held",
        "POST",
        PROD_APP + "git/",
        prod_writers(409),
        {"choice": "use-portal"},
        setup=APPS,
    ),
    Case("application editor", "GET", PROD_APP + "editor/", prod_writers(200), setup=APPS),
    Case(
        "application editor save",
        "POST",
        PROD_APP + "editor/",
        prod_writers(302),
        {"values_yaml": "architecture: replication\n", "message": "matrix"},
        setup=APPS,
    ),
    # prod is the highest Environment: the writers are sent back with a message
    Case("application promote", "POST", PROD_APP + "promote/", prod_writers(302), setup=APPS),
    Case(
        "unknown promotion",
        "GET",
        "/marketplace/promotions/999999/",
        expect(404, sovereign_operator=404),
    ),
    Case(
        "approve unknown promotion",
        "POST",
        "/marketplace/promotions/999999/approve/",
        expect(404, sovereign_operator=404),
    ),
    Case(
        "merge unknown promotion",
        "POST",
        "/marketplace/promotions/999999/merge/",
        expect(404, sovereign_operator=404),
    ),
    Case(
        "prod policy page",
        "GET",
        "/marketplace/environments/acme-prod/policy/",
        expect(200, developer=404),
    ),
    Case(
        "prod policy change",
        "POST",
        "/marketplace/environments/acme-prod/policy/",
        expect(403, owner=302, admin=302, developer=404),
        {"rules": ""},
    ),
    Case(
        "api application promote",
        "POST",
        API_PROD + "cache/promote",
        prod_writers(409, api=True),
        api=True,
        setup=APPS,
    ),
    Case(
        "api unknown promotion",
        "GET",
        "/api/v1/promotions/999999/",
        expect(404, sovereign_operator=404, api=True),
        api=True,
    ),
    Case(
        "api approve unknown promotion",
        "POST",
        "/api/v1/promotions/999999/approve",
        expect(404, sovereign_operator=404, api=True),
        api=True,
    ),
    Case(
        "api merge unknown promotion",
        "POST",
        "/api/v1/promotions/999999/merge",
        expect(404, sovereign_operator=404, api=True),
        api=True,
    ),
    Case(
        "api prod policy",
        "GET",
        "/api/v1/orgs/acme/environments/acme-prod/policy",
        expect(200, developer=404, api=True),
        api=True,
    ),
    Case(
        "api prod policy change",
        "PUT",
        "/api/v1/orgs/acme/environments/acme-prod/policy",
        expect(403, owner=200, admin=200, developer=404, api=True),
        {"rules": []},
        api=True,
    ),
    # the Gitea webhook is authenticated by its signature alone: unsigned, refused to everyone
    Case(
        "gitea webhook without a signature",
        "POST",
        "/hooks/gitea/",
        expect(403, member_b=403, outsider=403, anonymous=403),
    ),
]

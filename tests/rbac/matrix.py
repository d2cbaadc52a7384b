"""The access matrix as data: every page and endpoint × the cast → the exact status code.

Other apps extend it by adding a module `tests/<app>/rbac_cases.py` with `CASES = [Case(...), ...]`
(built with `expect()`); `tests/rbac/test_matrix.py` collects them all. URLs and form data may use
the placeholders of `MATRIX_CONTEXT_KEYS` (filled in from the cast for each test). A case that needs
more than the cast names it in `setup` (see `SETUPS`): "catalog" syncs the starter catalog,
"apps" also installs Applications, "billing" issues a voucher and places an order; the other cases
skip that work, which keeps the matrix fast.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ACME_ROLES = ("owner", "admin", "operator", "developer", "viewer")
# dev_admin: an admin of acme scoped to `openova.io/env-type=dev` (issue 10: a grant scoped below
# the Organization acts only in its scope and reads none of the Organization-wide data)
ROLES = (*ACME_ROLES, "dev_admin", "member_b", "outsider", "sovereign_operator", "anonymous")
DEV_ADMIN_SCOPE = [
    {"key": "openova.io/organization", "value": "acme"},
    {"key": "openova.io/env-type", "value": "dev"},
]
MATRIX_CONTEXT_KEYS = (
    "viewer_grant",
    "viewer_id",
    "admin_id",
    "invitation",
    "token",
    "owner_api_token",
    # setup "apps": an InstallPlan of the owner's in acme-prod (Applications are named below)
    "install_plan",
    # setup "billing": an active voucher, its code, acme's order awaiting payment (and its
    # invoice), a quote token
    "voucher",
    "voucher_code",
    "order",
    "invoice",
    "quote",
)
# what each setup provides (besides its placeholders): "apps" installs bp-valkey as `cache` in
# acme-prod, acme-dev and globex-prod; "catalog" also adds bp-secret, a Blueprint private to globex
SETUPS = ("catalog", "apps", "billing")


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    url: str
    expect: dict[str, int]
    data: dict[str, Any] = field(default_factory=dict)
    api: bool = False
    setup: tuple[str, ...] = ()
    anonymous_to: str = "/login/"  # where an anonymous 302 must lead

    def __post_init__(self) -> None:
        missing = set(ROLES) - set(self.expect)
        if missing:
            raise ValueError(f"case {self.name}: no expected status for {sorted(missing)}")
        unknown = set(self.setup) - set(SETUPS)
        if unknown:
            raise ValueError(f"case {self.name}: unknown setup {sorted(unknown)}")


def expect(
    acme: int | None = None,
    *,
    api: bool = False,
    member_b: int = 404,
    outsider: int = 404,
    sovereign_operator: int | None = None,
    anonymous: int | None = None,
    dev_admin: int | None = None,
    **roles: int,
) -> dict[str, int]:
    """Status per role: `acme` for the five tiers of Organization A unless a role is named;
    other Organizations' members get 404; anonymous gets 302 (pages) or 401 (API). The
    dev-scoped admin gets what the admin gets unless named, except where the (equally dev-scoped)
    developer gets 404: what lies outside the scope is not disclosed to either."""
    codes = {role: acme for role in ACME_ROLES}
    codes.update(roles)
    if dev_admin is None:
        dev_admin = 404 if codes["developer"] == 404 else codes["admin"]
    codes["dev_admin"] = dev_admin
    codes["member_b"] = member_b
    codes["outsider"] = outsider
    codes["sovereign_operator"] = (
        codes["owner"] if sovereign_operator is None else sovereign_operator
    )
    codes["anonymous"] = anonymous if anonymous is not None else (401 if api else 302)
    if None in codes.values():
        raise ValueError(f"incomplete expectation {codes}")
    return codes  # type: ignore[return-value]


def owner_only(ok: int, *, api: bool = False) -> dict[str, int]:
    return expect(403, owner=ok, api=api)


def admins(ok: int, *, api: bool = False) -> dict[str, int]:
    """Administration of the whole Organization (members, Environments, billing): the admin
    scoped to dev sees the Organization but may not (403)."""
    return expect(403, owner=ok, admin=ok, api=api, dev_admin=403)


def everyone(ok: int, *, api: bool = False) -> dict[str, int]:
    return expect(ok, member_b=ok, outsider=ok, api=api)


def acme_readers(ok: int = 200, *, api: bool = False) -> dict[str, int]:
    return expect(ok, api=api)


def org_wide_readers(ok: int = 200, *, api: bool = False) -> dict[str, int]:
    """Data of the whole Organization (members, the access matrix, billing): readers whose grant
    covers the Organization; a grant scoped below it is refused (403), developer included."""
    return expect(ok, api=api, developer=403, dev_admin=403)


ENV_STG = {"env_type": "stg", "regions": ["hz-fsn-rtz-prod"]}
ACME_SCOPE = [{"key": "openova.io/organization", "value": "acme"}]


def signed_in(code: int, *, anonymous: int) -> dict[str, int]:
    return expect(code, member_b=code, outsider=code, anonymous=anonymous)


CASES: list[Case] = [
    # --- the front door: signed-in users are sent on to the portal ---
    Case("home", "GET", "/", signed_in(302, anonymous=200)),
    Case("login page", "GET", "/login/", signed_in(302, anonymous=200)),
    Case("sign-up page", "GET", "/signup/", signed_in(302, anonymous=200)),
    Case("logout", "POST", "/logout/", signed_in(302, anonymous=302), anonymous_to="/"),
    # --- Organization pages ---
    Case("org list", "GET", "/orgs/", everyone(200)),
    Case("org create page", "GET", "/orgs/new/", everyone(200)),
    Case(
        "org create",
        "POST",
        "/orgs/new/",
        everyone(302),
        {"slug": "newco", "display_name": "New Co", "default_env_type": "prod"},
    ),
    Case("slug check", "GET", "/orgs/check-slug/?slug=newco", everyone(200)),
    Case("api tokens page", "GET", "/account/tokens/", everyone(200)),
    Case("org detail", "GET", "/orgs/acme/", acme_readers()),
    Case(
        "other org detail",
        "GET",
        "/orgs/globex/",
        expect(404, member_b=200, sovereign_operator=200),
    ),
    Case("org edit page", "GET", "/orgs/acme/edit/", owner_only(200)),
    Case("org edit", "POST", "/orgs/acme/edit/", owner_only(302), {"display_name": "Renamed"}),
    Case("org suspend page", "GET", "/orgs/acme/suspend/", owner_only(200)),
    Case("org suspend", "POST", "/orgs/acme/suspend/", owner_only(302), {"confirm": "acme"}),
    Case("org resume (not suspended)", "POST", "/orgs/acme/resume/", owner_only(409)),
    Case("org archive page", "GET", "/orgs/acme/archive/", owner_only(200)),
    Case("org archive", "POST", "/orgs/acme/archive/", owner_only(302), {"confirm": "acme"}),
    Case("org restore page", "GET", "/orgs/acme/restore/", owner_only(200)),
    Case(
        "org restore (not archived)",
        "POST",
        "/orgs/acme/restore/",
        owner_only(409),
        {"confirm": "acme"},
    ),
    Case(
        "other org suspend",
        "POST",
        "/orgs/globex/suspend/",
        expect(404, member_b=302, sovereign_operator=302),
        {"confirm": "globex"},
    ),
    Case("org audit", "GET", "/orgs/acme/audit/", acme_readers()),
    # live status over SSE: 401 (not a login redirect) for anonymous EventSource clients
    Case("org status stream", "GET", "/events/orgs/acme/", expect(200, anonymous=401)),
    Case(
        "other org status stream",
        "GET",
        "/events/orgs/globex/",
        expect(404, member_b=200, sovereign_operator=200, anonymous=401),
    ),
    Case("environment create page", "GET", "/orgs/acme/environments/new/", admins(200)),
    Case(
        "environment create",
        "POST",
        "/orgs/acme/environments/new/",
        admins(302),
        {"env_type": "stg", "regions": "hz-fsn-rtz-prod"},
    ),
    Case(
        "prod environment", "GET", "/orgs/acme/environments/acme-prod/", expect(200, developer=404)
    ),
    Case("dev environment", "GET", "/orgs/acme/environments/acme-dev/", acme_readers()),
    Case(
        "other org environment",
        "GET",
        "/orgs/globex/environments/globex-prod/",
        expect(404, member_b=200, sovereign_operator=200),
    ),
    Case("global audit", "GET", "/audit/", expect(404, sovereign_operator=200)),
    # --- members and invitations ---
    Case("members page", "GET", "/orgs/acme/members/", org_wide_readers()),
    Case("access matrix", "GET", "/orgs/acme/members/matrix/", org_wide_readers()),
    Case(
        "invite",
        "POST",
        "/orgs/acme/members/invite/",
        admins(302),
        {"email": "fresh@example.test", "tier": "viewer"},
    ),
    Case(
        "invite resend", "POST", "/orgs/acme/members/invitations/{invitation}/resend/", admins(302)
    ),
    Case(
        "invite revoke page",
        "GET",
        "/orgs/acme/members/invitations/{invitation}/revoke/",
        admins(200),
    ),
    Case(
        "invite revoke", "POST", "/orgs/acme/members/invitations/{invitation}/revoke/", admins(302)
    ),
    Case(
        "invite confirm (operators)",
        "POST",
        "/orgs/acme/members/invitations/{invitation}/confirm/",
        expect(403, sovereign_operator=302),
    ),
    Case(
        "change tier",
        "POST",
        "/orgs/acme/members/grants/{viewer_grant}/tier/",
        admins(302),
        {"tier": "operator"},
    ),
    Case("remove member page", "GET", "/orgs/acme/members/{viewer_id}/remove/", admins(200)),
    Case("remove member", "POST", "/orgs/acme/members/{viewer_id}/remove/", admins(302)),
    Case(
        "transfer ownership",
        "POST",
        "/orgs/acme/members/transfer/",
        owner_only(302),
        {"to": "{admin_id}"},
    ),
    # the invitation is for the outsider's address: only they may accept it
    Case(
        "invitation page",
        "GET",
        "/invitations/{token}/",
        expect(403, member_b=403, outsider=200, sovereign_operator=403),
    ),
    Case(
        "accept invitation",
        "POST",
        "/invitations/{token}/",
        expect(403, member_b=403, outsider=302, sovereign_operator=403),
    ),
    # --- API ---
    Case("api org list", "GET", "/api/v1/orgs/", everyone(200, api=True), api=True),
    Case(
        "api org create",
        "POST",
        "/api/v1/orgs/",
        everyone(201, api=True),
        {"slug": "newco", "display_name": "New Co"},
        api=True,
    ),
    Case(
        "api slug check",
        "GET",
        "/api/v1/orgs/check-slug?slug=newco",
        everyone(200, api=True),
        api=True,
    ),
    Case("api org detail", "GET", "/api/v1/orgs/acme/", acme_readers(api=True), api=True),
    Case(
        "api org rename",
        "PATCH",
        "/api/v1/orgs/acme/",
        owner_only(200, api=True),
        {"display_name": "Renamed"},
        api=True,
    ),
    Case(
        "api org suspend", "POST", "/api/v1/orgs/acme/suspend", owner_only(200, api=True), api=True
    ),
    Case(
        "api org resume (not suspended)",
        "POST",
        "/api/v1/orgs/acme/resume",
        owner_only(409, api=True),
        api=True,
    ),
    Case(
        "api org archive", "POST", "/api/v1/orgs/acme/archive", owner_only(200, api=True), api=True
    ),
    Case(
        "api org restore (not archived)",
        "POST",
        "/api/v1/orgs/acme/restore",
        owner_only(409, api=True),
        api=True,
    ),
    Case("api org audit", "GET", "/api/v1/orgs/acme/audit", acme_readers(api=True), api=True),
    Case(
        "api environments",
        "GET",
        "/api/v1/orgs/acme/environments/",
        acme_readers(api=True),
        api=True,
    ),
    Case(
        "api environment create",
        "POST",
        "/api/v1/orgs/acme/environments/",
        admins(201, api=True),
        ENV_STG,
        api=True,
    ),
    Case(
        "api prod environment",
        "GET",
        "/api/v1/orgs/acme/environments/acme-prod/",
        expect(200, developer=404, api=True),
        api=True,
    ),
    Case(
        "api other org",
        "GET",
        "/api/v1/orgs/globex/",
        expect(404, member_b=200, sovereign_operator=200, api=True),
        api=True,
    ),
    Case(
        "api assign",
        "POST",
        "/api/v1/rbac/assign",
        admins(201, api=True),
        {"user": "outsider", "tier": "viewer", "scope": ACME_SCOPE},
        api=True,
    ),
    Case("api tokens", "GET", "/api/v1/tokens/", everyone(200, api=True), api=True),
    Case(
        "api token create",
        "POST",
        "/api/v1/tokens/",
        everyone(201, api=True),
        {"name": "ci", "days": 5},
        api=True,
    ),
    # API tokens are personal: another user's token is not found
    Case(
        "api revoke the owner's token",
        "POST",
        "/api/v1/tokens/{owner_api_token}/revoke",
        expect(404, owner=200, sovereign_operator=404, api=True),
        api=True,
    ),
    Case(
        "revoke the owner's token (confirmation page)",
        "GET",
        "/account/tokens/{owner_api_token}/revoke/",
        expect(404, owner=200, sovereign_operator=404),
    ),
    Case(
        "revoke the owner's token (page)",
        "POST",
        "/account/tokens/{owner_api_token}/revoke/",
        expect(404, owner=302, sovereign_operator=404),
    ),
    Case("api grants", "GET", "/api/v1/rbac/grants/", everyone(200, api=True), api=True),
    Case(
        "api revoke grant",
        "DELETE",
        "/api/v1/rbac/grants/{viewer_grant}",
        admins(204, api=True),
        api=True,
    ),
]


def cases() -> list[Case]:
    """This module's cases plus every `tests/<app>/rbac_cases.py`'s `CASES`."""
    collected = list(CASES)
    tests_dir = Path(__file__).resolve().parent.parent
    for module_file in sorted(tests_dir.glob("*/rbac_cases.py")):
        module = importlib.import_module(f"tests.{module_file.parent.name}.rbac_cases")
        collected.extend(module.CASES)
    return collected

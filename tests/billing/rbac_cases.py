"""The BSS's rows of the access matrix (collected by tests/rbac/matrix.py).

Three kinds of endpoints: public ones (the redeem page, quotes and voucher previews answer
anonymous visitors), a customer's billing pages (billing.read for readers of the Organization,
billing.manage for its admins and owners), and the operator console under /bss/ (404 for everyone
but an admin-or-owner with a global scope, signed-in or not: anonymous visitors go to the login).
"""

from __future__ import annotations

from tests.rbac.matrix import Case, admins, everyone, expect, org_wide_readers

BILLING = ("billing",)
REDEEM_ACME = {"code": "{voucher_code}", "organization": "acme"}
REDEEM_GLOBEX = {"code": "{voucher_code}", "organization": "globex"}


def public(ok: int, *, api: bool = False) -> dict[str, int]:
    return expect(ok, member_b=ok, outsider=ok, anonymous=ok, api=api)


def operators(ok: int) -> dict[str, int]:
    """Operator console pages: not advertised to tenants (404), the login for anonymous visitors."""
    return expect(404, sovereign_operator=ok)


CASES: list[Case] = [
    # --- public pages and API ---
    Case("redeem page", "GET", "/redeem/", public(200)),
    Case(
        "redeem page with a code", "GET", "/redeem/?code={voucher_code}", public(200), setup=BILLING
    ),
    Case("redeem page with an unknown code", "GET", "/redeem/?code=NO-SUCH-CODE-XY", public(404)),
    # one may redeem only into an Organization one manages: any other is not among the choices
    Case(
        "redeem into acme (page)",
        "POST",
        "/redeem/",
        expect(400, owner=302, admin=302, member_b=400, outsider=400, dev_admin=400),
        REDEEM_ACME,
        setup=BILLING,
    ),
    Case(
        "redeem into globex (page)",
        "POST",
        "/redeem/",
        expect(400, member_b=302, outsider=400, sovereign_operator=302),
        REDEEM_GLOBEX,
        setup=BILLING,
    ),
    Case("api quote", "POST", "/api/v1/quote", public(200, api=True), {"plan": "s"}, api=True),
    Case(
        "api voucher preview",
        "POST",
        "/api/v1/vouchers/preview",
        public(200, api=True),
        {"code": "{voucher_code}"},
        api=True,
        setup=BILLING,
    ),
    Case(
        "api redeem into acme",
        "POST",
        "/api/v1/vouchers/redeem",
        admins(201, api=True),
        REDEEM_ACME,
        api=True,
        setup=BILLING,
    ),
    Case(
        "api redeem into globex",
        "POST",
        "/api/v1/vouchers/redeem",
        expect(404, member_b=201, sovereign_operator=201, api=True),
        REDEEM_GLOBEX,
        api=True,
        setup=BILLING,
    ),
    # --- customer pages ---
    Case("checkout page", "GET", "/checkout/", everyone(200)),
    Case(
        "checkout (a new Organization)",
        "POST",
        "/checkout/",
        everyone(302),
        {"slug": "newco", "display_name": "New Co", "plan": "s", "region": "hz-fsn-rtz-prod"},
    ),
    Case("billing account", "GET", "/billing/acme/", org_wide_readers()),
    Case(
        "other org billing account",
        "GET",
        "/billing/globex/",
        expect(404, member_b=200, sovereign_operator=200),
    ),
    Case("change plan", "POST", "/billing/acme/plan/", admins(302), {"plan": "m"}),
    Case("plan change quote", "GET", "/quotes/{quote}/", admins(200), setup=BILLING),
    Case(
        "cancel at period end (no subscription yet)",
        "POST",
        "/billing/acme/subscription/cancel/",
        admins(302),
    ),
    # the confirmation page: managers reach it (404: nothing to cancel in this world), the rest not
    Case(
        "cancel at period end (confirmation page)",
        "GET",
        "/billing/acme/subscription/cancel/",
        admins(404),
    ),
    Case("reactivate", "POST", "/billing/acme/subscription/reactivate/", admins(302)),
    Case(
        "cancel an awaiting order",
        "POST",
        "/billing/acme/orders/{order}/cancel/",
        admins(302),
        setup=BILLING,
    ),
    Case(
        "pay an order by card (no provider: back to the account page)",
        "POST",
        "/billing/acme/orders/{order}/card/",
        admins(302),
        setup=BILLING,
    ),
    # the webhook is authenticated by Stripe's signature; without a provider it does not exist
    Case(
        "stripe webhook (no provider configured)",
        "POST",
        "/billing/webhooks/stripe/",
        expect(404, member_b=404, outsider=404, anonymous=404),
    ),
    Case(
        "other org change plan",
        "POST",
        "/billing/globex/plan/",
        expect(404, member_b=302, sovereign_operator=302),
        {"plan": "m"},
    ),
    # --- operator console (BSS) ---
    Case("bss overview", "GET", "/bss/", operators(200)),
    Case("bss vouchers", "GET", "/bss/vouchers/", operators(200), setup=BILLING),
    Case("bss voucher issue page", "GET", "/bss/vouchers/new/", operators(200)),
    Case(
        "bss voucher issue",
        "POST",
        "/bss/vouchers/new/",
        operators(302),
        {
            "count": 1,
            "code": "",
            "credit": "5.000",
            "reason": "campaign",
            "max_redemptions": 1,
            "is_active": "on",
        },
    ),
    Case("bss voucher export", "GET", "/bss/vouchers/export.csv", operators(200), setup=BILLING),
    Case("bss voucher", "GET", "/bss/vouchers/{voucher}/", operators(200), setup=BILLING),
    Case(
        "bss voucher revoke page",
        "GET",
        "/bss/vouchers/{voucher}/revoke/",
        operators(200),
        setup=BILLING,
    ),
    Case(
        "bss voucher revoke",
        "POST",
        "/bss/vouchers/{voucher}/revoke/",
        operators(302),
        {"confirm": "{voucher_code}"},
        setup=BILLING,
    ),
    Case(
        "bss voucher deactivate",
        "POST",
        "/bss/vouchers/{voucher}/active/",
        operators(302),
        {"active": "0"},
        setup=BILLING,
    ),
    Case("bss plans", "GET", "/bss/plans/", operators(200)),
    Case("bss plan page", "GET", "/bss/plans/s/", operators(200)),
    Case(
        "bss plan price",
        "POST",
        "/bss/plans/s/",
        operators(302),
        {"form": "price", "amount": "16.500", "effective_from": ""},
    ),
    Case("bss add-on page", "GET", "/bss/addons/new/", operators(200)),
    Case(
        "bss add-on create",
        "POST",
        "/bss/addons/new/",
        operators(302),
        {"code": "backup", "name": "Backup", "unit": "GiB", "amount": "1.250"},
    ),
    Case("bss orders", "GET", "/bss/orders/", operators(200), setup=BILLING),
    Case(
        "bss order payment",
        "POST",
        "/bss/orders/{order}/pay/",
        operators(302),
        {"reference": "TX-1"},
        setup=BILLING,
    ),
    Case(
        "bss order refund (not a card payment)",
        "POST",
        "/bss/orders/{order}/refund/",
        operators(302),
        {"amount": "1", "reason": "matrix"},
        setup=BILLING,
    ),
    # --- invoices, usage, revenue, tax (issue 14) ---
    Case(
        "billing invoice document",
        "GET",
        "/billing/acme/invoices/{invoice}/",
        org_wide_readers(),
        setup=BILLING,
    ),
    Case(
        "billing invoice pdf",
        "GET",
        "/billing/acme/invoices/{invoice}/pdf/",
        org_wide_readers(),
        setup=BILLING,
    ),
    Case(
        "another org's invoice through globex",
        "GET",
        "/billing/globex/invoices/{invoice}/",
        expect(404, member_b=404, sovereign_operator=404),
        setup=BILLING,
    ),
    # platform components with a global usage.record grant (the operator tier and above)
    Case(
        "api usage ingestion",
        "POST",
        "/api/v1/usage",
        expect(404, sovereign_operator=200, api=True),
        {
            "records": [
                {
                    "organization": "acme",
                    "source": "matrix",
                    "resource": "pod/x",
                    "kind": "compute",
                    "sku": "egress-gib",
                    "quantity": "1",
                    "unit": "GiB",
                    "window_start": "2026-10-01T00:00:00Z",
                    "window_end": "2026-10-01T01:00:00Z",
                }
            ]
        },
        api=True,
    ),
    Case("bss invoices", "GET", "/bss/invoices/", operators(200), setup=BILLING),
    Case("bss invoice export", "GET", "/bss/invoices/export.csv", operators(200), setup=BILLING),
    Case("bss invoice document", "GET", "/bss/invoices/{invoice}/", operators(200), setup=BILLING),
    Case("bss invoice pdf", "GET", "/bss/invoices/{invoice}/pdf/", operators(200), setup=BILLING),
    Case(
        "bss invoice void",
        "POST",
        "/bss/invoices/{invoice}/void/",
        operators(302),
        {"reason": "matrix"},
        setup=BILLING,
    ),
    Case("bss billing run", "POST", "/bss/invoices/run/", operators(302), {"period": "2026-10"}),
    Case("bss revenue", "GET", "/bss/revenue/", operators(200)),
    Case("bss revenue export", "GET", "/bss/revenue/export.csv", operators(200)),
    Case("bss tax rate", "POST", "/bss/tax/", operators(302), {"rate": "5"}),
    Case("bss customers", "GET", "/bss/customers/", operators(200)),
    Case("bss customer", "GET", "/bss/customers/acme/", operators(200)),
    Case(
        "bss credit adjustment",
        "POST",
        "/bss/customers/acme/",
        operators(302),
        {"direction": "grant", "amount": "5", "reason": "goodwill", "note": "matrix"},
    ),
]

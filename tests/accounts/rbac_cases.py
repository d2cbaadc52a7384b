"""The accounts app's rows of the access matrix (collected by tests/rbac/matrix.py).

Sign-in steps answer anonymous visitors and send signed-in users on; a step reached without its
pending PIN sends the visitor back to the step before. The account pages are each user's own.
"""

from __future__ import annotations

from tests.rbac.matrix import Case, everyone, expect, signed_in


def public(ok: int) -> dict[str, int]:
    return expect(ok, member_b=ok, outsider=ok, anonymous=ok)


CASES: list[Case] = [
    Case("PIN sign-in page", "GET", "/login/pin/", signed_in(302, anonymous=200)),
    Case(
        "PIN sign-in without a PIN pending",
        "GET",
        "/login/pin/confirm/",
        public(302),
        anonymous_to="/login/pin/",
    ),
    Case(
        "sign-up confirmation without a sign-up pending",
        "GET",
        "/signup/confirm/",
        public(302),
        anonymous_to="/signup/",
    ),
    Case("account page", "GET", "/account/", everyone(200)),
    Case("confirm e-mail page", "GET", "/account/email/", everyone(200)),
    Case("password change page", "GET", "/account/password/", everyone(200)),
    Case(
        "unlink an identity that is not yours",
        "POST",
        "/account/identities/999999/unlink/",
        everyone(404),
    ),
    Case("password reset page", "GET", "/password-reset/", public(200)),
    Case("password reset sent", "GET", "/password-reset/sent/", public(200)),
    Case("password reset link", "GET", "/password-reset/MQ/not-a-token/", public(200)),
    Case("password reset done", "GET", "/password-reset/done/", public(200)),
]

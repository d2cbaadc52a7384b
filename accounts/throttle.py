"""Brute-force protection of sign-in: failures counted per account and per client IP on the
shared cache (Valkey in production, so every portal process counts together).

Past `LOGIN_LIMIT_PER_ACCOUNT` failures for one account, or `LOGIN_LIMIT_PER_IP` from one
address, in a `LOGIN_LIMIT_WINDOW_SECONDS` window, sign-in is refused — even with the right
password — until the window ends. Reaching a limit is an audit event (once per window). The
account key is the sign-in name as typed (lower-cased), so the answer is the same whether the
account exists or not.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from core import audit, ratelimit
from core.middleware import client_ip

ACCOUNT_SCOPE = "login-account"
IP_SCOPE = "login-ip"


def _keys(request: HttpRequest, name: str) -> list[tuple[str, str, int]]:
    return [
        (ACCOUNT_SCOPE, name.strip().lower(), settings.LOGIN_LIMIT_PER_ACCOUNT),
        (IP_SCOPE, client_ip(request) or "-", settings.LOGIN_LIMIT_PER_IP),
    ]


def blocked(request: HttpRequest, name: str) -> bool:
    window = settings.LOGIN_LIMIT_WINDOW_SECONDS
    return any(
        limit > 0 and ratelimit.peek(scope, key, window=window) >= limit
        for scope, key, limit in _keys(request, name)
    )


def failed(request: HttpRequest, name: str) -> None:
    """Count a failed sign-in; the failure that reaches a limit is audited."""
    window = settings.LOGIN_LIMIT_WINDOW_SECONDS
    for scope, key, limit in _keys(request, name):
        if limit > 0 and ratelimit.count(scope, key, window=window) == limit:
            audit.record(
                "account.login.throttled",
                actor=None,
                target=audit.Ref(scope, key[:64], key[:254]),
                after={"limit": limit, "window_seconds": window, "ip": client_ip(request)},
            )


def message() -> str:
    minutes = max(1, -(-ratelimit.seconds_left(settings.LOGIN_LIMIT_WINDOW_SECONDS) // 60))
    return (
        f"Too many failed sign-in attempts. Wait {minutes} minute{'s' if minutes != 1 else ''} "
        "and try again, or reset your password."
    )

"""Rate limits for the public voucher surfaces (per IP and per account)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from core import ratelimit
from core.middleware import client_ip

TOO_MANY = "Too many attempts. Please wait a minute and try again."


def allow(request: HttpRequest, action: str) -> bool:
    """Count one `action` ("preview" or "redeem") for this IP and account; False when over a limit."""
    window = settings.BILLING_RATE_WINDOW_SECONDS
    allowed = True
    if action == "preview":
        allowed = ratelimit.hit(
            "voucher-preview-ip",
            client_ip(request) or "-",
            limit=settings.VOUCHER_PREVIEW_LIMIT_PER_IP,
            window=window,
        )
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        limit = (
            settings.VOUCHER_PREVIEW_LIMIT_PER_USER
            if action == "preview"
            else settings.VOUCHER_REDEEM_LIMIT_PER_USER
        )
        allowed = (
            ratelimit.hit(f"voucher-{action}-user", str(user.pk), limit=limit, window=window)
            and allowed
        )
    return allowed

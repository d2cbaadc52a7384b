"""Absolute links the portal sends (e-mails, payment return URLs): one place decides the host.

`PORTAL_PUBLIC_URL` is the console's public address; `MARKETPLACE_URL` the public voucher and
marketplace pages (defaults to the console). Unset, a link falls back to the address the caller
knows (the request's host, or the Sovereign's conventional name), as before these settings.
"""

from __future__ import annotations

from django.conf import settings


def _join(base: str, path: str) -> str:
    return base.rstrip("/") + "/" + path.lstrip("/")


def portal_url(path: str, *, fallback: str) -> str:
    return _join(settings.PORTAL_PUBLIC_URL or fallback, path)


def marketplace_url(path: str, *, fallback: str) -> str:
    return _join(settings.MARKETPLACE_URL or settings.PORTAL_PUBLIC_URL or fallback, path)

from __future__ import annotations

import functools
import ipaddress
import logging
import re
import time
import uuid
from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from . import context, metrics
from .text import redact_secrets

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}\Z")


def client_ip(request: HttpRequest) -> str | None:
    """The client's address as the trusted proxy saw it.

    Behind the proxy (`PORTAL_BEHIND_PROXY`) each of the `PORTAL_TRUSTED_PROXY_HOPS` proxies
    appends the address it received the request from, so the client is the entry that many
    places from the RIGHT of X-Forwarded-For. Everything left of it was written by the client and
    is never trusted (a rotating fake address would escape every per-IP limit). Fewer entries than
    hops, or an entry that is not an address: the socket's peer."""
    peer = request.META.get("REMOTE_ADDR") or None
    if not settings.SECURE_PROXY_SSL_HEADER:
        return peer
    entries = [e.strip() for e in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    entries = [e for e in entries if e]
    hops = settings.PORTAL_TRUSTED_PROXY_HOPS
    if len(entries) < hops:
        return peer
    candidate = entries[-hops]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return peer


class RequestContextMiddleware:
    """Give every request an id (honouring a well-formed X-Request-ID) and bind it with the IP."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        token = context.bind(context.RequestMeta(request_id=request_id, ip=client_ip(request)))
        try:
            response = self.get_response(request)
        finally:
            context.reset(token)
        response["X-Request-ID"] = request_id
        return response


@functools.lru_cache(maxsize=8)
def content_security_policy(policy: str, issuer: str) -> str:
    """`policy` with the single sign-on issuer's origin added to its form-action directive.

    Signing out posts a form whose answer redirects to the issuer's end-session endpoint; a
    browser checks every redirect of a form submission against form-action, so without the
    issuer there the provider's session would survive the sign-out."""
    if not issuer or not policy:
        return policy
    parts = urlsplit(issuer)
    origin = f"{parts.scheme}://{parts.netloc}"
    directives = [d.strip() for d in policy.split(";") if d.strip()]
    for i, directive in enumerate(directives):
        name, *sources = directive.split()
        if name.lower() == "form-action" and origin not in sources and "*" not in sources:
            directives[i] = " ".join([name, *[s for s in sources if s != "'none'"], origin])
    return "; ".join(directives)


def with_nonce(policy: str, directive: str, nonce: str) -> str:
    """`policy` letting elements with this nonce through `directive` (e.g. the `<style>` a code
    editor injects: `style-src`), starting from `default-src` when the directive is absent."""
    directives = [d.strip() for d in policy.split(";") if d.strip()]
    names = [d.split()[0].lower() for d in directives]
    source = f"'nonce-{nonce}'"
    if directive in names:
        i = names.index(directive)
        directives[i] = " ".join([*directives[i].split(), source])
    else:
        default = next((d.split()[1:] for d in directives if d.split()[0] == "default-src"), [])
        directives.append(" ".join([directive, *default, source]))
    return "; ".join(directives)


def set_policy_nonce(response: HttpResponse, directive: str, nonce: str) -> None:
    """The page's CSP with a nonce for `directive` (the middleware leaves a set header alone)."""
    policy = content_security_policy(settings.CONTENT_SECURITY_POLICY, settings.OIDC_ISSUER)
    if policy:
        response["Content-Security-Policy"] = with_nonce(policy, directive, nonce)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if settings.CONTENT_SECURITY_POLICY and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = content_security_policy(
                settings.CONTENT_SECURITY_POLICY, settings.OIDC_ISSUER
            )
        return response


class RedactSecretsLogFilter(logging.Filter):
    """Invitation tokens, quote ids and voucher codes travel in URLs; every log line (Django's
    `Not Found: /invitations/<token>/`, uvicorn's access log) gets them replaced."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_secrets(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


class RequestIdLogFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = context.current().request_id or "-"
        return True


class MetricsMiddleware:
    """Outermost: counts every request (probes included) by method, route and status, with the
    time to answer it (core/metrics.py)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        metrics.observe_request(request, response.status_code, time.perf_counter() - started)
        return response


class ProbeMiddleware:
    """First in the chain after the metrics: /healthz, /readyz and /metrics answer before
    sessions, host checks and HTTPS redirects. A kubelet probes (and Prometheus scrapes) the pod's
    IP over plain HTTP without cookies, and liveness must not depend on the database a session
    lives in."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        from . import views

        self.get_response = get_response
        self.probes = {
            "/healthz": views.healthz,
            "/readyz": views.readyz,
            "/metrics": views.metrics_view,
        }

    def __call__(self, request: HttpRequest) -> HttpResponse:
        probe = self.probes.get(request.path_info)
        return probe(request) if probe is not None else self.get_response(request)


class UnavailableMiddleware:
    """A view that fails because the database is down answers 503 with Retry-After (failures in
    middleware reach `core.views.server_error`, which answers the same)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        from . import health

        if health.is_unavailable(exception):
            return health.unavailable_response(request, exception)
        return None

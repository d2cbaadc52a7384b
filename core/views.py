"""The kernel's pages: home, health check, and the audit trail rendering the apps reuse."""

from __future__ import annotations

import csv
import itertools
import sys
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.views import defaults
from django.views.decorators.http import require_GET

from . import dbconn, health, metrics
from .middleware import client_ip
from .models import AuditEvent
from .text import spreadsheet_safe


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("orgs:list")
    return render(request, "core/home.html")


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. It touches no dependency (see /readyz)."""
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: the database, Valkey and Git answer; 503 with Retry-After when one does not."""
    checks = health.readiness()
    ready = all(check["ok"] for check in checks.values())
    response = JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503
    )
    response["Cache-Control"] = "no-store"
    if not ready:
        response["Retry-After"] = str(settings.RETRY_AFTER_SECONDS)
    return response


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics, for the bearer token or an internal address (core/metrics.py)."""
    if not metrics.allowed(request.headers.get("Authorization", ""), client_ip(request)):
        response = HttpResponse(status=metrics.refusal_status())
        if response.status_code == 401:
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    response = HttpResponse(metrics.exposition(), content_type=metrics.CONTENT_TYPE)
    response["Cache-Control"] = "no-store"
    return response


API_PREFIX = "/api/"


def _api_error(status: int, message: str) -> JsonResponse:
    """The API's error body (`core.api_errors`) for answers Django gives before DRF is reached."""
    return JsonResponse({"errors": {"detail": [message]}}, status=status)


# The error handlers release this thread's connection: under ASGI, Django renders the page for an
# exception in a thread of the event loop's executor that no end-of-request cleanup visits (the
# shell's context reads the database), so each error page would keep a pooled connection.
@dbconn.releasing
def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler404: under /api/ a JSON error (the schema's `Errors`), a page elsewhere."""
    if request.path.startswith(API_PREFIX):
        return _api_error(404, "Not found.")
    return defaults.page_not_found(request, exception)


@dbconn.releasing
def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler403: Django's 403 page (the shell reads the database)."""
    return defaults.permission_denied(request, exception)


@dbconn.releasing
def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: a dependency that is down answers 503 with Retry-After, anything else 500."""
    exc = sys.exc_info()[1]
    if health.is_unavailable(exc):
        assert exc is not None
        return health.unavailable_response(request, exc)
    return defaults.server_error(request)


def _filtered(
    request: HttpRequest, qs: QuerySet[AuditEvent]
) -> tuple[QuerySet[AuditEvent], dict[str, str]]:
    filters = {name: request.GET.get(name, "").strip() for name in ("action", "actor", "org")}
    if filters["action"]:
        qs = qs.filter(action__startswith=filters["action"])
    if filters["actor"]:
        qs = qs.filter(actor_repr__icontains=filters["actor"])
    if filters["org"]:
        qs = qs.filter(org_slug=filters["org"])
    return qs, filters


class _Echo:
    def write(self, value: str) -> str:
        return value


CSV_COLUMNS = AuditEvent.EXPORT_FIELDS


def audit_response(
    request: HttpRequest,
    qs: QuerySet[AuditEvent],
    template: str,
    extra: dict[str, Any] | None = None,
) -> HttpResponseBase:
    """The audit trail page (filters: action prefix, actor, org), or its CSV export with ?format=csv."""
    qs, filters = _filtered(request, qs)
    if request.GET.get("format") == "csv":
        writer = csv.writer(_Echo())
        rows = (
            writer.writerow([spreadsheet_safe(getattr(e, c)) for c in CSV_COLUMNS])
            for e in qs.iterator(chunk_size=2000)
        )
        response = StreamingHttpResponse(
            itertools.chain([writer.writerow(CSV_COLUMNS)], rows), content_type="text/csv"
        )
        response["Content-Disposition"] = 'attachment; filename="audit.csv"'
        return response
    page = Paginator(qs.select_related("actor"), 50).get_page(request.GET.get("page"))
    query = urlencode({k: v for k, v in filters.items() if v})
    return render(
        request, template, {"page": page, "filters": filters, "query": query, **(extra or {})}
    )

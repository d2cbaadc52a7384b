"""The kernel's pages: home, health check, and the audit trail rendering the apps reuse."""

from __future__ import annotations

import csv
import itertools
from typing import Any
from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.db import connection
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from .models import AuditEvent
from .text import spreadsheet_safe


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("orgs:list")
    return render(request, "core/home.html")


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


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

from __future__ import annotations

import csv
import itertools
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from rbac import access

from . import audit
from .forms import ApiTokenForm
from .models import ApiToken, AuditEvent


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("orgs:list")
    return render(request, "core/home.html")


class LoginView(auth_views.LoginView):
    template_name = "core/login.html"
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {**super().get_context_data(**kwargs), "oidc_enabled": bool(settings.OIDC_ISSUER)}


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


@login_required
@require_http_methods(["GET", "POST"])
def token_list(request: HttpRequest) -> HttpResponse:
    form = ApiTokenForm(request.POST or None)
    new_secret = None
    if request.method == "POST" and form.is_valid():
        token, new_secret = ApiToken.mint(
            user=request.user, name=form.cleaned_data["name"], days=form.cleaned_data["days"]
        )
        audit.record("account.token.create", actor=request.user, target=token)
        form = ApiTokenForm()
    tokens = ApiToken.objects.filter(user=request.user)  # type: ignore[misc]  # login_required: never anonymous
    return render(
        request,
        "core/token_list.html",
        {"form": form, "tokens": tokens, "new_secret": new_secret},
        status=400 if form.errors else 200,
    )


@login_required
@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    if token.revoked_at is None:
        ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())
        audit.record("account.token.revoke", actor=request.user, target=token)
        messages.success(request, f"Token “{token.name}” revoked.")
    return redirect("token-list")


@login_required
@require_GET
def audit_list(request: HttpRequest) -> HttpResponseBase:
    if not access.is_global(request.user, "audit.read"):
        return render(request, "403.html", status=403)
    return audit_response(request, AuditEvent.objects.all(), "core/audit_list.html")


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


CSV_COLUMNS = [
    "id",
    "created_at",
    "actor_repr",
    "action",
    "target_type",
    "target_id",
    "target_repr",
    "org_slug",
    "before",
    "after",
    "request_id",
    "ip",
]


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
            writer.writerow([getattr(e, c) for c in CSV_COLUMNS])
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

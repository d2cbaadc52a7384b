from __future__ import annotations

import csv
import itertools
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import auth, messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from rbac import access

from . import oidc, services
from .forms import ApiTokenForm, apply_errors
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


@require_POST
def logout(request: HttpRequest) -> HttpResponse:
    """Sign out here, then at the issuer too when the session came from single sign-on."""
    id_token = request.session.get(oidc.ID_TOKEN_SESSION_KEY, "")
    auth.logout(request)
    issuer_logout = oidc.end_session_url(request, id_token) if id_token else ""
    return redirect(issuer_logout or settings.LOGOUT_REDIRECT_URL)


@login_required
@require_http_methods(["GET", "POST"])
def token_list(request: HttpRequest) -> HttpResponse:
    form = ApiTokenForm(request.POST or None)
    new_secret = None
    if request.method == "POST" and form.is_valid():
        try:
            _, new_secret = services.create_api_token(
                user=request.user, name=form.cleaned_data["name"], days=form.cleaned_data["days"]
            )
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            form = ApiTokenForm()
    tokens = ApiToken.objects.filter(user_id=request.user.pk)  # type: ignore[misc]
    response = render(
        request,
        "core/token_list.html",
        {"form": form, "tokens": tokens, "new_secret": new_secret},
        status=400 if form.errors else 200,
    )
    response["Cache-Control"] = "no-store"  # the page may hold a fresh secret
    return response


@login_required
@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        token = services.revoke_api_token(user=request.user, token_id=pk)
    except ApiToken.DoesNotExist:
        raise Http404 from None
    messages.success(request, f"Token “{token.name}” revoked.")
    return redirect("token-list")


@login_required
@require_GET
def audit_list(request: HttpRequest) -> HttpResponseBase:
    access.require_global(request.user, "audit.read")
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

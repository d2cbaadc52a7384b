from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from core.forms import apply_errors
from core.models import AuditEvent
from core.views import audit_response
from rbac import access

from . import services
from .forms import (
    EnvironmentCreateForm,
    OrganizationCreateForm,
    OrganizationEditForm,
    SlugCheckForm,
)
from .models import Environment, HostCluster, Organization
from .status import org_status

ORGS_PER_PAGE = 50


@login_required
@require_GET
def organization_list(request: HttpRequest) -> HttpResponse:
    show_archived = request.GET.get("archived") == "1"
    base = Organization.objects.all() if show_archived else Organization.objects.active()
    orgs = access.visible(request.user, base, "organization.read")
    page = Paginator(orgs.prefetch_related("environments"), ORGS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "orgs/organization_list.html",
        {"orgs": page, "page": page, "show_archived": show_archived},
    )


@login_required
@require_http_methods(["GET", "POST"])
def organization_create(request: HttpRequest) -> HttpResponse:
    form = OrganizationCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            org = services.create_organization(
                by=request.user,
                slug=data["slug"],
                display_name=data["display_name"],
                default_env_type=data["default_env_type"],
                environments=form.environments(),
            )
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            return redirect("orgs:detail", slug=org.slug)
    status = 400 if form.errors else 200
    return render(
        request,
        "orgs/organization_create.html",
        {"form": form, "clusters": HostCluster.objects.all()},
        status=status,
    )


@login_required
@require_GET
@vary_on_headers("HX-Request")
def slug_check(request: HttpRequest) -> HttpResponse:
    form = SlugCheckForm(request.GET)
    slug = (request.GET.get("slug") or "").strip()
    return render(
        request,
        "orgs/organization_create.html#slug-status",
        {"slug": slug, "problem": form.problem() if slug else None},
    )


@login_required
@require_GET
def organization_detail(request: HttpRequest, slug: str) -> HttpResponse:
    org = access.get_object_for(
        request.user,
        Organization.objects.select_related("parent"),
        action="organization.read",
        slug=slug,
    )
    envs = access.visible(
        request.user, org.environments.prefetch_related("regions"), "environments.read"
    )
    flux = org_status(org)
    return render(
        request,
        "orgs/organization_detail.html",
        {"org": org, "environments": envs, "flux": flux, "cluster_connected": flux.watched},
    )


@login_required
@require_http_methods(["GET", "POST"])
def organization_edit(request: HttpRequest, slug: str) -> HttpResponse:
    org = access.get_object_for(request.user, Organization, action="organization.update", slug=slug)
    form = OrganizationEditForm(request.POST or None, instance=org)
    if request.method == "POST" and form.is_valid():
        try:
            services.rename_organization(
                by=request.user,
                org=Organization.objects.get(pk=org.pk),
                display_name=form.cleaned_data["display_name"],
            )
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            return redirect("orgs:detail", slug=org.slug)
    return render(
        request,
        "orgs/organization_edit.html",
        {"org": org, "form": form},
        status=400 if form.errors else 200,
    )


def _lifecycle(
    action: str, service: Callable[..., Organization]
) -> Callable[[HttpRequest, str], HttpResponse]:
    @login_required
    @require_POST
    def view(request: HttpRequest, slug: str) -> HttpResponse:
        org = access.get_object_for(request.user, Organization, action=action, slug=slug)
        try:
            service(by=request.user, org=org)
        except ValidationError as exc:
            return render(
                request,
                "orgs/organization_detail.html",
                {
                    "org": org,
                    "environments": org.environments.all(),
                    "error": " ".join(exc.messages),
                },
                status=409,
            )
        return redirect("orgs:detail", slug=org.slug)

    return view


organization_suspend = _lifecycle("organization.suspend", services.suspend_organization)
organization_resume = _lifecycle("organization.suspend", services.resume_organization)
organization_archive = _lifecycle("organization.archive", services.archive_organization)


@login_required
@require_http_methods(["GET", "POST"])
def environment_create(request: HttpRequest, slug: str) -> HttpResponse:
    org = access.get_object_for(request.user, Organization, action="environments.create", slug=slug)
    form = EnvironmentCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            env = services.create_environment(
                by=request.user,
                org=org,
                env_type=form.cleaned_data["env_type"],
                regions=form.region_names(),
            )
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            return redirect("orgs:environment", slug=org.slug, env=env.name)
    return render(
        request,
        "orgs/environment_create.html",
        {"org": org, "form": form},
        status=400 if form.errors else 200,
    )


@login_required
@require_GET
def environment_detail(request: HttpRequest, slug: str, env: str) -> HttpResponse:
    environment = access.get_object_for(
        request.user,
        Environment.objects.select_related("organization").prefetch_related("regions"),
        action="environments.read",
        organization__slug=slug,
        name=env,
    )
    return render(
        request,
        "orgs/environment_detail.html",
        {"org": environment.organization, "env": environment},
    )


@login_required
@require_GET
def organization_audit(request: HttpRequest, slug: str) -> HttpResponseBase:
    org = access.get_object_for(request.user, Organization, action="audit.read", slug=slug)
    return audit_response(
        request, AuditEvent.objects.for_org(org.slug), "orgs/audit_list.html", {"org": org}
    )


@login_required
@require_GET
def global_audit(request: HttpRequest) -> HttpResponseBase:
    """The whole Sovereign's audit trail: Sovereign operators only (404 to everyone else)."""
    access.require_global(request.user, "audit.read")
    return audit_response(request, AuditEvent.objects.all(), "core/audit_list.html")

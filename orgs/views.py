from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import format_html
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from core import confirm
from core.forms import apply_errors
from core.models import AuditEvent
from core.views import audit_response
from gitops import delivery
from rbac import access

from . import services
from .forms import (
    EnvironmentCreateForm,
    OrganizationCreateForm,
    OrganizationEditForm,
    SlugCheckForm,
    TypedNameForm,
)
from .models import Environment, HostCluster, Organization
from .status import org_status

ORGS_PER_PAGE = 50


def _done(request: HttpRequest, obj: Organization | Environment, text: str, *, before: str) -> None:
    """The success message of an action: what happened, then the commit it made linked to the
    Organization's audit trail (or that it is being committed)."""
    org = obj if isinstance(obj, Organization) else obj.organization
    timeline = reverse("orgs:audit", args=[org.slug])
    note = delivery.progress_note(obj, before=before, timeline=timeline)
    messages.success(request, format_html("{} — {}", text, note))


@login_required
@require_GET
def organization_list(request: HttpRequest) -> HttpResponse:
    show_archived = request.GET.get("archived") == "1"
    base = Organization.objects.all() if show_archived else Organization.objects.active()
    orgs = access.visible(request.user, base, "organization.read")
    envs = access.visible(request.user, Environment.objects.all(), "environments.read")
    page = Paginator(
        orgs.prefetch_related(Prefetch("environments", queryset=envs)), ORGS_PER_PAGE
    ).get_page(request.GET.get("page"))
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
            _done(request, org, f"{org.display_name} created", before="")
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
        {
            "org": org,
            "environments": envs,
            "flux": flux,
            "cluster_connected": flux.watched,
            "restore_until": services.restore_deadline(org),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def organization_edit(request: HttpRequest, slug: str) -> HttpResponse:
    org = access.get_object_for(request.user, Organization, action="organization.update", slug=slug)
    form = OrganizationEditForm(request.POST or None, instance=org)
    if request.method == "POST" and form.is_valid():
        before = org.last_commit_sha
        try:
            services.rename_organization(
                by=request.user,
                org=Organization.objects.get(pk=org.pk),
                display_name=form.cleaned_data["display_name"],
            )
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            name = form.cleaned_data["display_name"]
            _done(request, org, f"{name}: name changed", before=before)
            return redirect("orgs:detail", slug=org.slug)
    return render(
        request,
        "orgs/organization_edit.html",
        {"org": org, "form": form},
        status=400 if form.errors else 200,
    )


@login_required
@require_POST
def organization_resume(request: HttpRequest, slug: str) -> HttpResponse:
    org = access.get_object_for(
        request.user, Organization, action="organization.suspend", slug=slug
    )
    before = org.last_commit_sha
    try:
        services.resume_organization(by=request.user, org=org)
    except ValidationError as exc:
        return render(
            request,
            "orgs/organization_detail.html",
            {"org": org, "environments": org.environments.all(), "error": " ".join(exc.messages)},
            status=409,
        )
    _done(request, org, f"{org.display_name} is resumed", before=before)
    return redirect("orgs:detail", slug=org.slug)


@dataclass(frozen=True)
class Confirmed:
    """A destructive lifecycle action behind a typed-name confirmation page."""

    action: str
    verb: str
    consequence: str
    service: Callable[..., Organization]
    done: str
    danger: bool = True


SUSPEND = Confirmed(
    "organization.suspend",
    "Suspend",
    "Its Applications are scaled to zero through Git and nothing new can be installed; data "
    "stays. Resume brings everything back the same way.",
    services.suspend_organization,
    "{name} is suspended",
)
ARCHIVE = Confirmed(
    "organization.archive",
    "Archive",
    "It leaves the Organization list and stops running. It can be restored for "
    "{days} days; after that it is gone for good.",
    services.archive_organization,
    "{name} is archived; it can be restored for {days} days",
)
RESTORE = Confirmed(
    "organization.archive",
    "Restore",
    "It comes back as it was when it was archived and is delivered through Git again.",
    services.restore_organization,
    "{name} is restored",
    danger=False,
)


def _confirmed(spec: Confirmed) -> Callable[[HttpRequest, str], HttpResponse]:
    @login_required
    @require_http_methods(["GET", "POST"])
    def view(request: HttpRequest, slug: str) -> HttpResponse:
        org = access.get_object_for(request.user, Organization, action=spec.action, slug=slug)
        form = TypedNameForm(request.POST if request.method == "POST" else None, expected=org.slug)
        status, error = 200, ""
        if request.method == "POST":
            status = 400
            if form.is_valid():
                before = org.last_commit_sha
                try:
                    spec.service(by=request.user, org=org)
                except ValidationError as exc:
                    status, error = 409, " ".join(exc.messages)
                else:
                    done = spec.done.format(name=org.display_name, days=settings.ORG_RESTORE_DAYS)
                    _done(request, org, done, before=before)
                    return redirect("orgs:detail", slug=org.slug)
        return confirm.page(
            request,
            title=f"{spec.verb} {org.display_name}",
            consequence=spec.consequence.format(days=settings.ORG_RESTORE_DAYS),
            button=f"{spec.verb} {org.slug}",
            cancel_url=reverse("orgs:detail", args=[org.slug]),
            crumbs=[(org.display_name, reverse("orgs:detail", args=[org.slug]))],
            form=form,
            expected=org.slug,
            danger=spec.danger,
            error=error,
            status=status,
        )

    return view


organization_suspend = _confirmed(SUSPEND)
organization_archive = _confirmed(ARCHIVE)
organization_restore = _confirmed(RESTORE)


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
            _done(request, env, f"Environment {env.name} created", before="")
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
    events = access.visible(
        request.user, AuditEvent.objects.for_org(org.slug), "audit.read", strict=True
    )
    return audit_response(request, events, "orgs/audit_list.html", {"org": org})


@login_required
@require_GET
def global_audit(request: HttpRequest) -> HttpResponseBase:
    """The whole Sovereign's audit trail: Sovereign operators only (404 to everyone else)."""
    access.require_global(request.user, "audit.read")
    return audit_response(request, AuditEvent.objects.all(), "core/audit_list.html")

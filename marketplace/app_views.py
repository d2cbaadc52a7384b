"""Application pages: the page itself (live status, runtime per region), and the changes after
install — values, size, placement, switchover, rollback, upgrade or downgrade, uninstall.

A change page is one URL: GET shows the form; POST shows the preview (the exact diff, the wiring
and the monthly price) with a Confirm button carrying the same fields; POST with `confirm`
commits it and returns to the Application with a message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods
from django.views.decorators.vary import vary_on_headers

from core import pagination
from rbac import access

from . import changes, previews, promotion, services
from . import status as app_status
from .forms import (
    PlacementForm,
    RollbackForm,
    SizeForm,
    SwitchoverForm,
    UninstallForm,
    UpgradeForm,
)
from .models import Application
from .schema_form import SchemaForm
from .views import APP_RELATED, _app, _app_choices, _done


@login_required
@require_GET
def app_list(request: HttpRequest) -> HttpResponse:
    apps = access.visible(
        request.user, Application.objects.select_related(*APP_RELATED), "applications.read"
    )
    page = pagination.paginate_request(request, apps, order=("environment__name", "name", "pk"))
    return render(request, "marketplace/app_list.html", {"apps": page, "page": page})


@login_required
@require_GET
@vary_on_headers("HX-Request")
def app_detail(request: HttpRequest, env: str, app: str) -> HttpResponse:
    application = _app(request, env, app, "applications.read")
    htmx = getattr(request, "htmx", False)
    template = "marketplace/app_detail.html#status" if htmx else "marketplace/app_detail.html"
    return render(
        request,
        template,
        {
            **app_status.fragment_context(application),
            "targets": changes.upgrade_targets(application),
            "downgrades": changes.downgrade_targets(application),
            "dependents": services.dependents(application),
            "promote_to": promotion.target_of(application),
            "promotions": application.promotions.select_related("source__environment")[:10],
        },
    )


def _back(app: Application) -> HttpResponse:
    return redirect("marketplace:app", env=app.environment.name, app=app.name)


def _errors(form: forms.Form, exc: ValidationError) -> None:
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc.messages)
        return
    for path, found in exc.message_dict.items():
        name = path if path in form.fields else None
        form.add_error(name, found if name else [f"{path}: {m}" for m in found])


def _change_page(
    request: HttpRequest,
    application: Application,
    form: forms.Form,
    *,
    title: str,
    preview: Callable[[dict[str, Any]], Application],
    commit: Callable[[dict[str, Any]], Any],
    done: Callable[[dict[str, Any]], str],
    extra: dict[str, Any] | None = None,
) -> HttpResponse:
    shown = None
    if request.method == "POST" and form.is_valid():
        try:
            changed = preview(form.cleaned_data)
            if request.POST.get("confirm"):
                before = application.last_commit_sha
                commit(form.cleaned_data)
                _done(
                    request,
                    application,
                    f"{application.name}: {done(form.cleaned_data)}",
                    before=before,
                )
                return _back(application)
            shown = previews.change_preview(changed)
        except ValidationError as exc:
            _errors(form, exc)
    resubmit = [
        (name, values)
        for name, values in request.POST.lists()
        if name not in ("csrfmiddlewaretoken", "confirm")
    ]
    context = {
        "app": application,
        "form": form,
        "title": title,
        "preview": shown,
        "resubmit": resubmit,
        **(extra or {}),
    }
    return render(
        request, "marketplace/app_change.html", context, status=400 if form.errors else 200
    )


@login_required
@require_http_methods(["GET", "POST"])
def app_size(request: HttpRequest, env: str, app: str) -> HttpResponse:
    application = _app(request, env, app, "applications.update")
    form = SizeForm(request.POST or None, initial={"size": application.size})
    return _change_page(
        request,
        application,
        form,
        title=f"Change the size of {application.name} (now {application.size})",
        preview=lambda d: changes.with_size(application, d["size"]),
        commit=lambda d: changes.resize(by=request.user, app=application, size=d["size"]),
        done=lambda d: f"size {d['size']}",
    )


@login_required
@require_http_methods(["GET", "POST"])
def app_placement(request: HttpRequest, env: str, app: str) -> HttpResponse:
    application = _app(request, env, app, "applications.update")
    schema = application.blueprint_version.placement_schema
    form = PlacementForm(
        request.POST or None,
        modes=schema.get("modes") or ["single-region"],
        regions=[c.name for c in application.environment.regions.all()],
        initial={
            "placement": application.placement,
            "active": application.regions[0] if application.regions else None,
            "regions": application.regions[1:],
        },
    )
    return _change_page(
        request,
        application,
        form,
        title=f"Change the placement of {application.name}",
        preview=lambda d: changes.with_placement(
            application, d["placement"], form.ordered_regions()
        ),
        commit=lambda d: changes.change_placement(
            by=request.user,
            app=application,
            placement=d["placement"],
            regions=form.ordered_regions(),
        ),
        done=lambda d: f"{d['placement']} in {', '.join(form.ordered_regions())}",
    )


@login_required
@require_http_methods(["GET", "POST"])
def app_switchover(request: HttpRequest, env: str, app: str) -> HttpResponse:
    application = _app(request, env, app, "applications.update")
    form = SwitchoverForm(request.POST or None, standby=application.regions[1:])
    return _change_page(
        request,
        application,
        form,
        title=f"Switch {application.name} over to another region (active: {application.regions[0] if application.regions else '—'})",
        preview=lambda d: changes.with_switchover(application, d["region"]),
        commit=lambda d: changes.switchover(by=request.user, app=application, region=d["region"]),
        done=lambda d: f"{d['region']} is now the active region",
    )


@login_required
@require_GET
def app_revisions(request: HttpRequest, env: str, app: str) -> HttpResponse:
    application = _app(request, env, app, "applications.read")
    found = list(reversed(changes.revisions(application)))
    return render(
        request,
        "marketplace/app_revisions.html",
        {"app": application, "revisions": found, "current": found[0].number if found else 0},
    )


@login_required
@require_http_methods(["GET", "POST"])
def app_rollback(request: HttpRequest, env: str, app: str) -> HttpResponse:
    application = _app(request, env, app, "applications.update")
    numbers = [r.number for r in changes.revisions(application)][:-1]
    form = RollbackForm(request.POST or request.GET or None, numbers=numbers)
    return _change_page(
        request,
        application,
        form,
        title=f"Roll {application.name} back to an earlier revision",
        preview=lambda d: changes.with_rollback(application, d["revision"])[0],
        commit=lambda d: changes.rollback(by=request.user, app=application, revision=d["revision"]),
        done=lambda d: f"rolled back to revision {d['revision']}",
    )


@login_required
@require_http_methods(["GET", "POST"])
def app_upgrade(request: HttpRequest, env: str, app: str) -> HttpResponse:
    application = _app(request, env, app, "applications.upgrade")
    up, down = changes.upgrade_targets(application), changes.downgrade_targets(application)
    choices = [(v.version, f"{v.version} (upgrade)") for v in up] + [
        (v.version, f"{v.version} (downgrade)") for v in down
    ]
    allowed = {v.version for v in up + down} | {application.version}
    refused = [
        (v.version, changes.version_problem(application, v))
        for v in changes.all_versions(application)
        if v.version not in allowed
    ]
    notes = {v.version: changes.changelog(application, v) for v in up + down}
    form = UpgradeForm(request.POST or None, targets=choices)
    return _change_page(
        request,
        application,
        form,
        title=f"Upgrade or downgrade {application.name} (now {application.version})",
        preview=lambda d: changes.with_version(application, d["version"]),
        commit=lambda d: changes.upgrade(by=request.user, app=application, version=d["version"]),
        done=lambda d: f"{application.blueprint.name} {d['version']}",
        extra={
            "refused": refused,
            "changelogs": notes,
            "chosen_notes": notes.get(str(form.data.get("version", "")), []),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def app_edit(request: HttpRequest, env: str, app: str) -> HttpResponse:
    application = _app(request, env, app, "applications.update")
    form = SchemaForm(
        request.POST or None,
        schema=application.blueprint_version.config_schema,
        app_choices=_app_choices(application.environment),
        initial_values=application.values,
    )
    if request.method == "POST" and form.is_valid():
        try:
            before = application.last_commit_sha
            changes.update_values(by=request.user, app=application, values=form.values)
        except ValidationError as exc:
            form.apply(exc)
        else:
            _done(request, application, f"{application.name}: values changed", before=before)
            return _back(application)
    return render(
        request,
        "marketplace/app_edit.html",
        {"app": application, "schema_form": form},
        status=400 if form.errors else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def app_uninstall(request: HttpRequest, env: str, app: str) -> HttpResponse:
    application = _app(request, env, app, "applications.uninstall")
    unused = [a.name for a in changes.unused_dependencies(application)]
    form = UninstallForm(request.POST or None, app_name=application.name, unused=unused)
    if request.method == "POST" and form.is_valid():
        try:
            gone = changes.uninstall(
                by=request.user,
                app=application,
                remove_dependencies=form.cleaned_data.get("remove_dependencies") or [],
            )
        except ValidationError as exc:
            form.add_error(None, exc.messages)
        else:
            messages.success(request, f"Uninstalling {', '.join(a.name for a in gone)}.")
            if Application.objects.filter(pk=application.pk).exists():
                return _back(application)
            return redirect("marketplace:apps")
    return render(
        request,
        "marketplace/app_uninstall.html",
        {
            "app": application,
            "form": form,
            "dependents": services.dependents(application),
            "unused": unused,
        },
        status=400 if form.errors else 200,
    )

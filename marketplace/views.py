from __future__ import annotations

from collections import Counter
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_http_methods
from django.views.decorators.vary import vary_on_headers

from core import pagination
from gitops import delivery
from orgs.models import READ_ONLY_STATES, Environment
from rbac import access

from . import (
    catalog_cache,
    curation,
    plans,
    previews,
    prices,
    schema_form,
    services,
    versions,
    when,
    wiring,
)
from .forms import CatalogFilterForm, InstallForm, PriceForm
from .models import (
    Application,
    Blueprint,
    BlueprintQuerySet,
    BlueprintVersion,
    CatalogProposal,
    CatalogSyncError,
    InstallPlan,
)
from .schema_form import SchemaForm

PAGE_SIZE = 60
MAX_PAGE = 100_000  # a page past every catalog (an OFFSET beyond 64 bits is a database error)
CARD_FIELDS = [
    "name",
    "title",
    "summary",
    "icon",
    "category",
    "tags",
    "latest_version",
    "visibility",
    "license",
    "docs",
]
APP_RELATED = ("blueprint_version__blueprint", "environment__organization")


def org_scope(user: Any) -> tuple[list[str], bool]:
    """The Org slugs a user holds grants in (from the cached grants: no query), and whether global."""
    grants = access.grants_for(user)
    everything = any(g.is_global for g in grants)
    slugs = sorted({v for g in grants for k, v in g.scopes if k == "openova.io/organization"})
    return slugs, everything


def visible_blueprints(user: Any) -> BlueprintQuerySet:
    slugs, everything = org_scope(user)
    return Blueprint.objects.visible_to(slugs, everything=everything)


def catalog_filters(params: Any) -> tuple[CatalogFilterForm, dict[str, str], int]:
    """The search form, its cleaned filters (q, category, tag) and the page number."""
    form = CatalogFilterForm(params)
    form.is_valid()
    data = {k: (form.cleaned_data.get(k) or "").strip() for k in ("q", "category", "tag")}
    try:
        page = min(max(int(params.get("page") or 1), 1), MAX_PAGE)
    except ValueError:
        page = 1
    return form, data, page


def catalog_cards(user: Any, filters: dict[str, str], page: int) -> tuple[list[Blueprint], bool]:
    """One page of the cards the filters select among what the user may see; whether more."""
    slugs, everything = org_scope(user)
    listed = Blueprint.objects.listed_for(slugs, everything=everything)
    qs = visible_blueprints(user).search(filters["q"]) if filters["q"] else listed
    if filters["category"]:
        qs = qs.filter(category=filters["category"])
    if filters["tag"]:
        qs = qs.filter(tags_text__contains=f"|{filters['tag']}|")
    offset = (page - 1) * PAGE_SIZE
    rows = list(qs.only(*CARD_FIELDS)[offset : offset + PAGE_SIZE + 1])
    return rows[:PAGE_SIZE], len(rows) > PAGE_SIZE


def catalog_facets(user: Any) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """Categories and the 30 most used tags of the cards the user sees, with their counts."""
    slugs, everything = org_scope(user)
    categories: Counter[str] = Counter()
    tags: Counter[str] = Counter()
    for category, card_tags in Blueprint.objects.listed_for(
        slugs, everything=everything
    ).values_list("category", "tags"):
        categories[category] += 1
        tags.update(card_tags)
    return sorted(categories.items()), sorted(tags.items(), key=lambda kv: (-kv[1], kv[0]))[:30]


def catalog_context(user: Any, params: Any) -> dict[str, Any]:
    form, data, page = catalog_filters(params)
    rows, has_next = catalog_cards(user, data, page)
    categories, tags = catalog_facets(user)
    return {
        "form": form,
        "filters": data,
        "blueprints": rows,
        "page": page,
        "has_next": has_next,
        "categories": categories,
        "tags": tags,
    }


@login_required
@require_GET
@vary_on_headers("HX-Request")
def catalog(request: HttpRequest) -> HttpResponse:
    """The catalog page. Its cards (as HTML) and facets come from the cache when the catalog
    has not changed since (marketplace/catalog_cache.py), for viewers of the same scope."""
    form, filters, page = catalog_filters(request.GET)
    scope = catalog_cache.scope_key(*org_scope(request.user))
    selected = (filters["category"], filters["tag"])
    environment = request.GET.get("environment", "")
    results_key = catalog_cache.entry(
        "results", scope, *selected, filters["q"], str(page), environment
    )

    def results() -> str:
        rows, has_next = catalog_cards(request.user, filters, page)
        context = {"filters": filters, "blueprints": rows, "page": page, "has_next": has_next}
        return str(render_to_string("marketplace/catalog.html#results", context, request))

    if getattr(request, "htmx", False):
        (html,) = catalog_cache.CATALOG.fetch({results_key: results})
        return HttpResponse(html)

    def facets() -> str:
        categories, tags = catalog_facets(request.user)
        context = {"filters": filters, "categories": categories, "tags": tags}
        return str(render_to_string("marketplace/catalog.html#facets", context, request))

    html, facets_html = catalog_cache.CATALOG.fetch(
        {results_key: results, catalog_cache.entry("facets", scope, *selected): facets}
    )
    context = {
        "form": form,
        "filters": filters,
        # rendered by the template's partials, escaped there
        "results": mark_safe(html),  # noqa: S308
        "facets": mark_safe(facets_html),  # noqa: S308
    }
    return render(request, "marketplace/catalog.html", context)


def _blueprint(user: Any, name: str) -> Blueprint:
    return get_object_or_404(visible_blueprints(user), name=name)


def _sorted_versions(bp: Blueprint) -> list[BlueprintVersion]:
    return sorted(bp.versions.all(), key=lambda v: versions.SortKey(v.version), reverse=True)


def _pick(versions_list: list[BlueprintVersion], wanted: str | None) -> BlueprintVersion:
    if wanted:
        for v in versions_list:
            if v.version == wanted:
                return v
        raise Http404
    deployable = [v for v in versions_list if v.deployable]
    return (deployable or versions_list)[0]


@login_required
@require_GET
def blueprint_detail(request: HttpRequest, name: str) -> HttpResponse:
    bp = _blueprint(request.user, name)
    all_versions = _sorted_versions(bp)
    version = _pick(all_versions, request.GET.get("version"))
    installed = access.visible(
        request.user,
        Application.objects.filter(blueprint_version__blueprint=bp).select_related(*APP_RELATED),
        "applications.read",
    )
    # one query, and only Blueprints this user may see: a private one's title is not disclosed
    names = [dep["blueprint"] for dep in version.depends]
    titles = dict(
        visible_blueprints(request.user).filter(name__in=names).values_list("name", "title")
    )
    deps = [
        {**dep, "title": titles.get(dep["blueprint"], dep["blueprint"])} for dep in version.depends
    ]
    placement = version.placement_schema
    price_form = PriceForm(
        request.GET if "size" in request.GET else None,
        modes=placement.get("modes") or ["single-region"],
        max_regions=int(placement.get("maxRegions", 5)),
    )
    return render(
        request,
        "marketplace/blueprint_detail.html",
        {
            "bp": bp,
            "versions": all_versions,
            "version": version,
            "dependencies": deps,
            "installed": installed,
            "can_install": _can_install(request.user),
            "price_form": price_form,
            "price": _blueprint_price(version, *price_form.chosen()),
            "proposals": access.visible(
                request.user,
                CatalogProposal.objects.filter(name=bp.name).select_related("organization"),
                "organization.read",
            ),
            "proposers": [
                o for o in curation.proposers(bp) if access.can(request.user, "catalog.propose", o)
            ],
        },
    )


def _blueprint_price(
    version: BlueprintVersion, size: str, placement: str, regions: int
) -> prices.MonthlyPrice:
    """The Application at this size and topology, plus the dependencies a default install
    creates (following its placement where their Blueprint allows it)."""
    units = [(version.blueprint.short_name, size, placement, regions)]
    defaults = schema_form.with_defaults(version.config_schema, {})
    for dep in version.depends:
        if not when.evaluate(dep.get("when"), defaults):
            continue
        served = plans.deployable_versions(dep["blueprint"], "")
        best = versions.best_match([v.version for v in served], dep["range"])
        found = next((v for v in served if v.version == best), None)
        modes = (found.placement_schema.get("modes") if found else None) or ["single-region"]
        limit = int((found.placement_schema if found else {}).get("maxRegions", 5))
        follows = placement in modes and regions <= limit
        alias = wiring.alias_of(dep)
        units.append(
            (alias, size, placement if follows else "single-region", regions if follows else 1)
        )
    return prices.monthly(units)


def _can_install(user: Any) -> bool:
    """Whether the user may install into any Environment (of a writable Organization)."""
    qs = Environment.objects.exclude(organization__state__in=READ_ONLY_STATES)
    return access.visible(user, qs, "applications.install").exists()


def _install_envs(user: Any) -> list[Environment]:
    qs = Environment.objects.select_related("organization").prefetch_related("regions")
    return [
        e for e in access.visible(user, qs, "applications.install") if e.organization.is_writable
    ]


def _app_choices(env: Environment | None) -> dict[str, list[tuple[str, str]]]:
    choices: dict[str, list[tuple[str, str]]] = {"": []}
    if env is None:
        return choices
    for name, bp in Application.objects.filter(environment=env).values_list(
        "name", "blueprint_version__blueprint__name"
    ):
        choices.setdefault(bp, []).append((name, name))
        choices[""].append((name, name))
    return choices


def _apply(exc: ValidationError, install_form: InstallForm, schema_form: SchemaForm) -> None:
    if not hasattr(exc, "error_dict"):
        install_form.add_error(None, exc)
        return
    for path, found in exc.message_dict.items():
        if path.startswith("values"):
            schema_form.apply(ValidationError({path: found}))
        elif path in install_form.fields:
            install_form.add_error(path, found)
        elif (
            path.startswith("dependencies.") and f"dep__{path.split('.')[1]}" in install_form.fields
        ):
            install_form.add_error(f"dep__{path.split('.')[1]}", found)
        else:
            install_form.add_error(None, [f"{path}: {m}" for m in found])


@login_required
@require_http_methods(["GET", "POST"])
def install(request: HttpRequest, name: str) -> HttpResponse:
    bp = _blueprint(request.user, name)
    version = _pick(_sorted_versions(bp), request.GET.get("version"))
    envs = _install_envs(request.user)
    if not envs:
        raise PermissionDenied
    data = request.POST if request.method == "POST" else None
    env_name = (data or request.GET).get("environment") or envs[0].name
    env = next((e for e in envs if e.name == env_name), envs[0])
    install_form = InstallForm(
        data,
        environments=envs,
        placement_modes=version.placement_schema.get("modes") or ["single-region"],
        dependencies=plans.dependency_options(env, version),
        initial={"environment": env.name, "name": bp.short_name},
    )
    install_form.fields["environment"].widget.attrs.update(
        {  # choosing another Environment reloads its regions and reusable dependencies
            "hx-get": request.get_full_path(),
            "hx-trigger": "change",
            "hx-target": "#install-form",
            "hx-select": "#install-form",
            "hx-swap": "outerHTML",
            "hx-include": "this",
        }
    )
    schema_form = SchemaForm(data, schema=version.config_schema, app_choices=_app_choices(env))
    # both forms are checked in the same pass: every problem is reported in the first round
    valid = all([install_form.is_valid(), schema_form.is_valid()]) if data is not None else False
    if valid:
        try:
            plan = services.make_plan(
                by=request.user,
                env=install_form.env(),
                version=version,
                name=install_form.cleaned_data["name"],
                values=schema_form.values,
                placement=install_form.cleaned_data["placement"],
                regions=install_form.cleaned_data["regions"],
                size=install_form.cleaned_data["size"],
                choices=install_form.choices(),
            )
        except ValidationError as exc:
            _apply(exc, install_form, schema_form)
        else:
            return redirect("marketplace:plan", pk=plan.pk)
    has_errors = bool(install_form.errors or schema_form.errors)
    return render(
        request,
        "marketplace/install.html",
        {
            "bp": bp,
            "version": version,
            "form": install_form,
            "schema_form": schema_form,
            "env": env,
        },
        status=400 if has_errors else 200,
    )


def _plan_for(user: Any, pk: int) -> InstallPlan:
    plan = get_object_or_404(
        InstallPlan.objects.select_related(
            "environment__organization", "blueprint_version__blueprint"
        ),
        pk=pk,
    )
    if plan.requested_by_id != user.pk or not access.can(
        user, "applications.install", plan.environment
    ):
        raise Http404
    return plan


@login_required
@require_http_methods(["GET", "POST"])
def plan_detail(request: HttpRequest, pk: int) -> HttpResponse:
    plan = _plan_for(request.user, pk)
    error = ""
    if request.method == "POST":
        try:
            app = services.apply_plan(by=request.user, plan=plan)
        except ValidationError as exc:
            error = (
                " ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
                if hasattr(exc, "error_dict")
                else " ".join(exc.messages)
            )
        else:
            bp = plan.blueprint_version
            what = f"{app.name} ({bp.blueprint.title} {bp.version}) installed in {app.environment.name}"
            _done(request, app, what, before="")
            return redirect("marketplace:app", env=app.environment.name, app=app.name)
    shown = previews.plan_preview(plan) if plan.applied_at is None else None
    return render(
        request,
        "marketplace/plan_detail.html",
        {
            "plan": plan,
            "changes": shown.files if shown else [],
            "wiring": shown.wiring if shown else [],
            "price": shown.price if shown else None,
            "error": error,
        },
        status=409 if error else 200,
    )


def _done(request: HttpRequest, app: Application, what: str, *, before: str) -> None:
    """The success message of an action on `app`: what happened, then the commit it made linked
    to the Application's timeline (or that it is being committed)."""
    timeline = reverse("marketplace:app", args=[app.environment.name, app.name]) + "#timeline"
    note = delivery.progress_note(app, before=before, timeline=timeline)
    messages.success(request, format_html("{} — {}", what, note))


def _app(request: HttpRequest, env: str, app: str, action: str) -> Application:
    return access.get_object_for(
        request.user,
        Application.objects.select_related(*APP_RELATED),
        action=action,
        environment__name=env,
        name=app,
    )


@login_required
@require_GET
def sync_errors(request: HttpRequest) -> HttpResponse:
    access.require_global(request.user, "audit.read")  # operator page: 404 for everyone else
    errors = pagination.paginate_request(
        request,
        CatalogSyncError.objects.select_related("source"),
        order=("source__name", "path", "id"),
    )
    return render(
        request,
        "marketplace/sync_errors.html",
        {"errors": errors, "repositories": settings.CHART_REPOSITORIES},
    )

"""Promotion pages: open one from an Application, see its diff and the target's policy rule by
rule, approve it, merge it; and the Environment's policy, edited as YAML and committed."""

from __future__ import annotations

from typing import Any

import yaml
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from orgs.models import Environment
from rbac import access

from . import manifests, promotion
from .models import Promotion
from .views import _app

RELATED = (
    "source__environment__organization",
    "target__environment__organization",
    "target__blueprint_version__blueprint",
    "source__blueprint_version__blueprint",
)


def _promotion(request: HttpRequest, pk: int, action: str) -> Promotion:
    return access.get_object_for(
        request.user, Promotion.objects.select_related(*RELATED), action=action, pk=pk
    )


@login_required
@require_POST
def promote(request: HttpRequest, env: str, app: str) -> HttpResponse:
    source = _app(request, env, app, "applications.update")
    target = promotion.target_of(source)
    if target is not None:  # the person must see where it goes
        _app(request, target.environment.name, target.name, "applications.read")
    try:
        opened = promotion.open_promotion(by=request.user, app=source)
    except ValidationError as exc:
        for text in exc.messages:
            messages.error(request, text)
        return redirect("marketplace:app", env=env, app=app)
    messages.success(request, f"Promotion to {opened.target.environment.name} opened.")
    return redirect("marketplace:promotion", pk=opened.pk)


@login_required
@require_http_methods(["GET"])
def promotion_detail(request: HttpRequest, pk: int) -> HttpResponse:
    found = _promotion(request, pk, "applications.read")
    return _page(request, found)


def _page(request: HttpRequest, found: Promotion, errors: list[str] | None = None) -> HttpResponse:
    results = promotion.evaluate(found)
    return render(
        request,
        "marketplace/promotion.html",
        {
            "promotion": found,
            "origin": promotion.origin(found),
            "results": results,
            "blocked": promotion.blocking_failures(results),
            "can_approve": promotion.can_approve(found, request.user)
            and request.user.pk not in set(found.approvals.values_list("user_id", flat=True)),
            "can_merge": access.can(request.user, "applications.update", found.target),
            "approvals": promotion.approvals(found),
            "errors": errors or [],
        },
        status=409 if errors else 200,
    )


def _act(request: HttpRequest, pk: int, action: str, run: Any, done: str) -> HttpResponse:
    found = _promotion(request, pk, action)
    try:
        run(by=request.user, promotion=found)
    except ValidationError as exc:
        return _page(request, found, exc.messages)
    messages.success(request, done.format(env=found.target.environment.name))
    if found.state == "merged":
        return redirect("marketplace:app", env=found.target.environment.name, app=found.target.name)
    return redirect("marketplace:promotion", pk=pk)


@login_required
@require_POST
def promotion_approve(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, "applications.read", promotion.approve, "Approved.")


@login_required
@require_POST
def promotion_merge(request: HttpRequest, pk: int) -> HttpResponse:
    done = "Merged: {env} takes the configuration."
    return _act(request, pk, "applications.update", promotion.merge, done)


@login_required
@require_http_methods(["GET", "POST"])
def environment_policy(request: HttpRequest, env: str) -> HttpResponse:
    environment = access.get_object_for(
        request.user,
        Environment.objects.select_related("organization"),
        action="environments.update" if request.method == "POST" else "environments.read",
        name=env,
    )
    rules: list[dict[str, Any]] = promotion.policy_rules(environment)
    text = manifests.dump(rules) if rules else EXAMPLE
    errors: list[tuple[str, str]] = []
    if request.method == "POST":
        text = request.POST.get("rules", "").replace("\r\n", "\n")
        try:
            loaded = yaml.safe_load(text) if text.strip() else []
            promotion.set_policy(by=request.user, env=environment, rules=loaded or [])
        except yaml.YAMLError as exc:
            errors = [("rules", f"Not valid YAML: {getattr(exc, 'problem', exc)}")]
        except ValidationError as exc:
            errors = [(path, m) for path, found in exc.message_dict.items() for m in found]
        else:
            messages.success(request, f"Policy of {environment.name} saved — committing.")
            return redirect("marketplace:environment-policy", env=env)
    return render(
        request,
        "marketplace/environment_policy.html",
        {
            "env": environment,
            "text": text,
            "errors": errors,
            "path": promotion.policy_path(environment),
            "can_edit": access.can(request.user, "environments.update", environment),
        },
        status=400 if errors else 200,
    )


EXAMPLE = """# No rules yet: promotions into this Environment merge at once. For example:
# - name: review
#   type: pr-required
#   minApprovals: 1
#   approvers: {users: [alice], groups: [release-managers]}
# - name: soak
#   type: soak
#   duration: 1h
# - name: office-hours
#   type: change-window
#   cron: "0 9 * * 1-5"
#   duration: 8h
"""

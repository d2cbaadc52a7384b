"""REST API over the same services: blueprints (read) and Applications (install, change, upgrade,
uninstall). POSTs honour an `Idempotency-Key` header: the same key and body replay the first
response; the same key with another body answers 422."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.db import IntegrityError, transaction
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from core.api_errors import call_service as call
from orgs.models import Environment
from rbac import access

from . import previews, services, versions
from .models import SIZES, Application, Blueprint, BlueprintVersion, IdempotencyKey, Placement
from .views import APP_RELATED, catalog_context, visible_blueprints


def idempotent(view: Callable[..., Response]) -> Callable[..., Response]:
    @wraps(view)
    def wrapper(request: Request, *args: Any, **kwargs: Any) -> Response:
        key = request.headers.get("Idempotency-Key", "").strip()
        if request.method != "POST" or not key:
            return view(request, *args, **kwargs)
        if len(key) > 128:
            return Response(
                {"errors": {"Idempotency-Key": ["At most 128 characters."]}}, status=400
            )
        scope = f"POST {request.path}"
        body = hashlib.sha256(
            json.dumps(request.data, sort_keys=True, default=str).encode()
        ).hexdigest()
        user: Any = request.user
        seen = IdempotencyKey.objects.filter(user=user, key=key, scope=scope).first()
        if seen is not None:
            if seen.body_hash != body:
                return Response(
                    {
                        "errors": {
                            "Idempotency-Key": ["This key was used with a different request body."]
                        }
                    },
                    status=status.HTTP_422_UNPROCESSABLE_ENTITY,
                )
            return Response(
                seen.response, status=seen.status, headers={"Idempotent-Replayed": "true"}
            )
        response = view(request, *args, **kwargs)
        if 200 <= response.status_code < 300:
            try:
                with transaction.atomic():
                    IdempotencyKey.objects.create(
                        user=user,
                        key=key,
                        scope=scope,
                        body_hash=body,
                        status=response.status_code,
                        response=response.data,
                    )
            except IntegrityError:
                pass  # a concurrent request with the same key stored its response first
        return response

    return wrapper


class BlueprintSerializer(serializers.ModelSerializer):
    class Meta:
        model = Blueprint
        fields = [
            "name",
            "title",
            "summary",
            "icon",
            "category",
            "tags",
            "license",
            "docs",
            "visibility",
            "latest_version",
        ]


class VersionSerializer(serializers.ModelSerializer):
    config_schema = serializers.JSONField(read_only=True)
    placement_schema = serializers.JSONField(read_only=True)
    depends = serializers.JSONField(read_only=True)
    upgrades = serializers.JSONField(read_only=True)
    chart = serializers.JSONField(read_only=True)

    class Meta:
        model = BlueprintVersion
        fields = [
            "version",
            "deployable",
            "config_schema",
            "placement_schema",
            "depends",
            "upgrades",
            "chart",
        ]


class ApplicationSerializer(serializers.ModelSerializer):
    environment = serializers.CharField(source="environment.name", read_only=True)
    blueprint = serializers.CharField(source="blueprint_version.blueprint.name", read_only=True)
    version = serializers.CharField(source="blueprint_version.version", read_only=True)

    class Meta:
        model = Application
        fields = [
            "name",
            "environment",
            "blueprint",
            "version",
            "values",
            "size",
            "placement",
            "regions",
            "dependencies",
            "state",
            "status_reason",
            "status_message",
            "conditions",
            "observed_revision",
            "delivery_state",
            "delivery_error",
            "last_commit_sha",
            "created_at",
        ]


class InstallInput(serializers.Serializer):
    name = serializers.CharField(max_length=40)
    blueprint = serializers.CharField(max_length=64)
    version = serializers.CharField(max_length=64, required=False)
    values = serializers.JSONField(required=False, default=dict)
    size = serializers.ChoiceField(choices=SIZES, default="small")
    placement = serializers.ChoiceField(choices=Placement.values, default=Placement.SINGLE.value)
    regions = serializers.ListField(
        child=serializers.CharField(), required=False, default=list, max_length=5
    )
    dependencies = serializers.DictField(
        child=serializers.CharField(),
        required=False,
        default=dict,
        help_text='alias → "new" or the name of an existing Application in this Environment',
    )


class UpdateInput(serializers.Serializer):
    values = serializers.JSONField()
    size = serializers.ChoiceField(choices=SIZES, required=False)


class UpgradeInput(serializers.Serializer):
    version = serializers.CharField(max_length=64)


@extend_schema(responses=BlueprintSerializer(many=True))
@api_view(["GET"])
def blueprints(request: Request) -> Response:
    context = catalog_context(request.user, request.query_params)
    return Response(BlueprintSerializer(context["blueprints"], many=True).data)


def _blueprint(request: Request, name: str) -> Blueprint:
    bp = visible_blueprints(request.user).filter(name=name).first()
    if bp is None:
        from django.http import Http404

        raise Http404
    return bp


@extend_schema(responses=BlueprintSerializer)
@api_view(["GET"])
def blueprint(request: Request, name: str) -> Response:
    bp = _blueprint(request, name)
    rows = sorted(bp.versions.all(), key=lambda v: versions.SortKey(v.version), reverse=True)
    return Response(
        {**BlueprintSerializer(bp).data, "versions": VersionSerializer(rows, many=True).data}
    )


def _resolve_version(request: Request, name: str, version: str | None) -> BlueprintVersion:
    bp = visible_blueprints(request.user).filter(name=name).first()
    if bp is None:
        raise serializers.ValidationError({"blueprint": [f"Unknown Blueprint “{name}”."]})
    rows = list(bp.versions.all())
    if version:
        found = next((v for v in rows if v.version == version), None)
        if found is None:
            raise serializers.ValidationError({"version": [f"{name} has no version “{version}”."]})
        return found
    deployable = [v for v in rows if v.deployable] or rows
    return max(deployable, key=lambda v: versions.SortKey(v.version))


def _environment(request: Request, org: str, env: str, action: str) -> Environment:
    return access.get_object_for(
        request.user,
        Environment.objects.select_related("organization").prefetch_related("regions"),
        action=action,
        organization__slug=org,
        name=env,
    )


def _install_kwargs(request: Request) -> dict[str, Any]:
    data = InstallInput(data=request.data)
    data.is_valid(raise_exception=True)
    d = data.validated_data
    return {
        "version": _resolve_version(request, d["blueprint"], d.get("version")),
        "name": d["name"],
        "values": d["values"],
        "size": d["size"],
        "placement": d["placement"],
        "regions": d["regions"],
        "choices": d["dependencies"],
    }


@extend_schema(
    request=InstallInput,
    responses={200: ApplicationSerializer(many=True), 201: ApplicationSerializer},
)
@api_view(["GET", "POST"])
@idempotent
def applications(request: Request, org: str, env: str) -> Response:
    action = "applications.read" if request.method == "GET" else "applications.install"
    environment = _environment(request, org, env, action)
    if request.method == "GET":
        apps = access.visible(
            request.user,
            Application.objects.filter(environment=environment).select_related(*APP_RELATED),
            "applications.read",
        )
        return Response(ApplicationSerializer(apps, many=True).data)
    app = call(services.install, by=request.user, env=environment, **_install_kwargs(request))
    app = Application.objects.select_related(*APP_RELATED).get(pk=app.pk)
    return Response(ApplicationSerializer(app).data, status=status.HTTP_201_CREATED)


@extend_schema(request=InstallInput, responses={200: dict})
@api_view(["POST"])
def application_plan(request: Request, org: str, env: str) -> Response:
    """Resolve an install and show the files it would commit, without installing."""
    environment = _environment(request, org, env, "applications.install")
    plan = call(services.make_plan, by=request.user, env=environment, **_install_kwargs(request))
    shown = previews.plan_preview(plan)
    return Response(
        {
            "plan": plan.pk,
            "apps": plan.data["apps"],
            "uses": plan.data["uses"],
            "skipped": plan.data["skipped"],
            **preview_body(shown),
        }
    )


def preview_body(shown: previews.Preview) -> dict[str, Any]:
    """Files with diffs, the wiring (Secret references, never values) and the monthly price."""
    return {
        "files": [
            {"repo": c.repo, "branch": c.branch, "path": c.path, "status": c.status, "diff": c.diff}
            for c in shown.files
        ],
        "wiring": [
            {
                "application": w.application,
                "dependencies": w.dependencies,
                "values": [
                    {
                        "path": wire.path,
                        "from": wire.alias,
                        "expression": wire.expression,
                        "value": None if wire.is_secret else wire.value,
                        "secret": (
                            {"name": wire.value.name, "key": wire.value.key}
                            if wire.is_secret
                            else None
                        ),
                    }
                    for wire in w.wires
                ],
            }
            for w in shown.wiring
        ],
        "price": shown.price.as_dict() if shown.price else None,
    }


def _application(request: Request, org: str, env: str, app: str, action: str) -> Application:
    return access.get_object_for(
        request.user,
        Application.objects.select_related(*APP_RELATED),
        action=action,
        environment__organization__slug=org,
        environment__name=env,
        name=app,
    )


@extend_schema(request=UpdateInput, responses=ApplicationSerializer)
@api_view(["GET", "PATCH", "DELETE"])
def application(request: Request, org: str, env: str, app: str) -> Response:
    action = {
        "GET": "applications.read",
        "PATCH": "applications.update",
        "DELETE": "applications.uninstall",
    }[request.method or "GET"]
    obj = _application(request, org, env, app, action)
    if request.method == "PATCH":
        data = UpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        obj = call(
            services.update_values,
            by=request.user,
            app=obj,
            values=data.validated_data["values"],
            size=data.validated_data.get("size"),
        )
    elif request.method == "DELETE":
        call(services.uninstall, by=request.user, app=obj)
        remaining = Application.objects.select_related(*APP_RELATED).filter(pk=obj.pk).first()
        if remaining is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(ApplicationSerializer(remaining).data, status=status.HTTP_202_ACCEPTED)
    obj = Application.objects.select_related(*APP_RELATED).get(pk=obj.pk)
    return Response(ApplicationSerializer(obj).data)


@extend_schema(request=UpgradeInput, responses=ApplicationSerializer)
@api_view(["POST"])
@idempotent
def application_upgrade(request: Request, org: str, env: str, app: str) -> Response:
    obj = _application(request, org, env, app, "applications.upgrade")
    data = UpgradeInput(data=request.data)
    data.is_valid(raise_exception=True)
    obj = call(services.upgrade, by=request.user, app=obj, version=data.validated_data["version"])
    return Response(ApplicationSerializer(obj).data)

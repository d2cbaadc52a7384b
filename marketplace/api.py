"""REST API over the same services: blueprints (read) and Applications (install, change, upgrade,
uninstall). POSTs honour an `Idempotency-Key` header: the same key and body replay the first
response; the same key with another body answers 422."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from core import pagination
from core.api_errors import call_service as call
from core.api_schema import PAGE_PARAMETERS
from orgs.models import Environment
from rbac import access

from . import changes, previews, services, versions
from .models import (
    SIZES,
    Application,
    Blueprint,
    BlueprintVersion,
    GitSync,
    GitSyncState,
    IdempotencyKey,
    Placement,
)
from .views import APP_RELATED, MAX_PAGE, catalog_context, visible_blueprints

SERIALIZED = (*APP_RELATED, "git_sync")  # what ApplicationSerializer reads, in one query
IDEMPOTENCY_WAIT_SECONDS = 30  # how long a repeat waits for the first request to finish
IDEMPOTENCY_ABANDONED_SECONDS = 120  # a claim older than this, still running, was abandoned
_IN_PROGRESS = 0


def _key_conflict() -> Response:
    return Response(
        {"errors": {"Idempotency-Key": ["This key was used with a different request body."]}},
        status=status.HTTP_422_UNPROCESSABLE_ENTITY,
    )


def _claim_key(user: Any, key: str, scope: str, body: str) -> IdempotencyKey | None:
    """Claim the key for this request (a row marked in progress, committed at once), or None
    when another request holds it: the unique constraint decides who runs the view."""
    try:
        with transaction.atomic():
            return IdempotencyKey.objects.create(
                user=user, key=key, scope=scope, body_hash=body, status=_IN_PROGRESS, response={}
            )
    except IntegrityError:
        return None


def _await_first(user: Any, key: str, scope: str) -> IdempotencyKey | None:
    """The first request's finished row (None: it failed or was abandoned, and the key is free)."""
    deadline = time.monotonic() + IDEMPOTENCY_WAIT_SECONDS
    delay = 0.02
    while True:
        row = IdempotencyKey.objects.filter(user=user, key=key, scope=scope).first()
        if row is None or row.status != _IN_PROGRESS:
            return row
        abandoned = timezone.now() - row.created_at > timedelta(
            seconds=IDEMPOTENCY_ABANDONED_SECONDS
        )
        if abandoned or time.monotonic() > deadline:
            IdempotencyKey.objects.filter(pk=row.pk, status=_IN_PROGRESS).delete()
            return None
        time.sleep(delay)  # the first request is running: poll its row, backing off
        delay = min(delay * 2, 0.5)


def idempotent(view: Callable[..., Response]) -> Callable[..., Response]:
    """Same key and body: one execution, the others replay its response (`Idempotent-Replayed`),
    concurrent repeats included — the first claims the key with a row the unique constraint
    guards, the others wait for that row's response. A response that is not 2xx is not kept (the
    claim is dropped), so a repeat runs again."""

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
        while True:
            claim = _claim_key(user, key, scope, body)
            if claim is not None:
                break
            seen = _await_first(user, key, scope)
            if seen is None:
                continue  # the first request did not succeed: this one runs
            if seen.body_hash != body:
                return _key_conflict()
            return Response(
                seen.response, status=seen.status, headers={"Idempotent-Replayed": "true"}
            )
        try:
            response = view(request, *args, **kwargs)
        except BaseException:
            claim.delete()
            raise
        if 200 <= response.status_code < 300:
            claim.status, claim.response = response.status_code, response.data
            claim.save(update_fields=["status", "response"])
        else:
            claim.delete()
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
    git = serializers.SerializerMethodField()

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
            "git",
        ]

    def get_git(self, obj: Application) -> dict[str, Any]:
        """The branch as the portal last read it: in-sync, or the Git change it could not take in
        (invalid: errors by field path; conflict: Git's values beside the portal's)."""
        found: GitSync | None
        if Application.git_sync.is_cached(obj):  # a list loads it with the rows
            found = getattr(obj, "git_sync", None)
        else:
            found = GitSync.objects.filter(application_id=obj.pk).first()
        if found is None:
            return {"state": GitSyncState.IN_SYNC.value, "head": ""}
        out: dict[str, Any] = {"state": found.state, "head": found.head}
        if found.blocked:
            out.update(commit=found.commit, pusher=found.pusher, errors=found.errors)
            if found.git_values is not None:
                out["git_values"] = found.git_values
        return out


class InstallInput(serializers.Serializer):
    name = serializers.CharField(max_length=40)
    blueprint = serializers.CharField(max_length=64)
    version = serializers.CharField(max_length=64, required=False)
    values = serializers.JSONField(required=False, default=dict)
    size = serializers.ChoiceField(choices=SIZES, default="small")
    placement = serializers.ChoiceField(choices=Placement.choices, default=Placement.SINGLE.value)
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


class ChangeInput(serializers.Serializer):
    preview = serializers.BooleanField(
        default=False, help_text="true: answer the files, diff, wiring and price; write nothing"
    )


class UpgradeInput(ChangeInput):
    version = serializers.CharField(max_length=64, help_text="newer, or older where allowed")


class ResizeInput(ChangeInput):
    size = serializers.ChoiceField(choices=SIZES)


class PlacementInput(ChangeInput):
    placement = serializers.ChoiceField(choices=Placement.choices)
    regions = serializers.ListField(
        child=serializers.CharField(), max_length=5, help_text="the active region first"
    )


class SwitchoverInput(ChangeInput):
    region = serializers.CharField(max_length=63, help_text="the standby region to make active")


class RollbackInput(ChangeInput):
    revision = serializers.IntegerField(min_value=1)


class UninstallInput(serializers.Serializer):
    remove_dependencies = serializers.ListField(
        child=serializers.CharField(), required=False, default=list, max_length=20
    )


@extend_schema(
    responses=BlueprintSerializer(many=True),
    parameters=[
        OpenApiParameter(
            "page",
            {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
            description="Page number (60 cards a page); anything else is a 400.",
        ),
        *(p for p in PAGE_PARAMETERS if p.name == "Link"),
    ],
)
@api_view(["GET"])
def blueprints(request: Request) -> Response:
    """The catalog's cards, a page of them (as the catalog page shows), the next in `Link`."""
    raw = request.query_params.get("page")
    if raw is not None and not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_PAGE):
        raise exceptions.ValidationError({"page": [f"A whole number from 1 to {MAX_PAGE}."]})
    context = catalog_context(request.user, request.query_params)
    response = Response(BlueprintSerializer(context["blueprints"], many=True).data)
    if context["has_next"]:
        query = request.query_params.copy()
        query["page"] = str(context["page"] + 1)
        url = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
        response["Link"] = f'<{url}>; rel="next"'
    return response


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
    visible = visible_blueprints(request.user).filter(name=name)
    rows = list(  # the versions with their Blueprint, in one query
        BlueprintVersion.objects.filter(blueprint__in=visible).select_related("blueprint")
    )
    if not rows and not visible.exists():
        raise serializers.ValidationError({"blueprint": [f"Unknown Blueprint “{name}”."]})
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
@extend_schema(methods=["GET"], parameters=PAGE_PARAMETERS)
@api_view(["GET", "POST"])
@idempotent
def applications(request: Request, org: str, env: str) -> Response:
    action = "applications.read" if request.method == "GET" else "applications.install"
    environment = _environment(request, org, env, action)
    if request.method == "GET":
        apps = access.visible(
            request.user,
            Application.objects.filter(environment=environment).select_related(*SERIALIZED),
            "applications.read",
        )
        page = pagination.paginate_request(
            request, apps, order=("name", "id"), size=pagination.API_PAGE_SIZE
        )
        return pagination.api_response(
            request, page, ApplicationSerializer(page.items, many=True).data
        )
    app = call(services.install, by=request.user, env=environment, **_install_kwargs(request))
    app = Application.objects.select_related(*SERIALIZED).get(pk=app.pk)
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
        Application.objects.select_related(*SERIALIZED),  # the branch state too (checked)
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
            changes.update_values,
            by=request.user,
            app=obj,
            values=data.validated_data["values"],
            size=data.validated_data.get("size"),
        )
    elif request.method == "DELETE":
        gone = UninstallInput(data=request.data or {})
        gone.is_valid(raise_exception=True)
        wanted = gone.validated_data["remove_dependencies"] or [
            n for n in request.query_params.get("remove_dependencies", "").split(",") if n
        ]
        call(changes.uninstall, by=request.user, app=obj, remove_dependencies=wanted)
        remaining = Application.objects.select_related(*SERIALIZED).filter(pk=obj.pk).first()
        if remaining is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(ApplicationSerializer(remaining).data, status=status.HTTP_202_ACCEPTED)
    if request.method == "PATCH":
        obj = _changed(obj)
    body = ApplicationSerializer(obj).data
    if request.method == "GET":
        body["unused_dependencies"] = [a.name for a in changes.unused_dependencies(obj)]
    return Response(body)


def _change(
    request: Request,
    obj: Application,
    form: type[ChangeInput],
    preview: Callable[[dict[str, Any]], Application],
    commit: Callable[[dict[str, Any]], Application],
    extra: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> Response:
    """A day-2 change: `preview: true` answers what it would commit; else it is committed."""
    data = form(data=request.data)
    data.is_valid(raise_exception=True)
    values = data.validated_data
    if values["preview"]:
        changed = call(preview, d=values)
        body = {"preview": True, **preview_body(previews.change_preview(changed))}
        return Response({**body, **(extra(values) if extra else {})})
    return Response(ApplicationSerializer(_changed(call(commit, d=values))).data)


def _changed(done: Application) -> Application:
    """The row a change returned, read again (with in-process tasks it was delivered too): the
    row and its branch state; the Environment and Blueprint version come from `done`."""
    fresh = Application.objects.select_related("git_sync").get(pk=done.pk)
    return fresh.with_relations_of(done)


@extend_schema(request=UpgradeInput, responses=ApplicationSerializer)
@api_view(["GET", "POST"])
@idempotent
def application_upgrade(request: Request, org: str, env: str, app: str) -> Response:
    """GET: the versions this Application may move to, with their changelogs; POST: move."""
    obj = _application(request, org, env, app, "applications.upgrade")
    if request.method == "GET":
        return Response(
            {
                "current": obj.version,
                "upgrades": [_target(obj, v) for v in changes.upgrade_targets(obj)],
                "downgrades": [_target(obj, v) for v in changes.downgrade_targets(obj)],
            }
        )
    return _change(
        request,
        obj,
        UpgradeInput,
        lambda d: changes.with_version(obj, d["version"]),
        lambda d: changes.upgrade(by=request.user, app=obj, version=d["version"]),
        extra=lambda d: {
            "changelog": [
                {"version": v, "notes": text}
                for v, text in changes.changelog(obj, changes.version_named(obj, d["version"]))
            ]
        },
    )


def _target(obj: Application, version: BlueprintVersion) -> dict[str, Any]:
    notes = changes.changelog(obj, version)
    return {"version": version.version, "changelog": [{"version": v, "notes": t} for v, t in notes]}


@extend_schema(request=ResizeInput, responses=ApplicationSerializer)
@api_view(["POST"])
def application_resize(request: Request, org: str, env: str, app: str) -> Response:
    obj = _application(request, org, env, app, "applications.update")
    return _change(
        request,
        obj,
        ResizeInput,
        lambda d: changes.with_size(obj, d["size"]),
        lambda d: changes.resize(by=request.user, app=obj, size=d["size"]),
    )


@extend_schema(request=PlacementInput, responses=ApplicationSerializer)
@api_view(["POST"])
def application_placement(request: Request, org: str, env: str, app: str) -> Response:
    obj = _application(request, org, env, app, "applications.update")
    return _change(
        request,
        obj,
        PlacementInput,
        lambda d: changes.with_placement(obj, d["placement"], d["regions"]),
        lambda d: changes.change_placement(
            by=request.user, app=obj, placement=d["placement"], regions=d["regions"]
        ),
    )


@extend_schema(request=SwitchoverInput, responses=ApplicationSerializer)
@api_view(["POST"])
def application_switchover(request: Request, org: str, env: str, app: str) -> Response:
    obj = _application(request, org, env, app, "applications.update")
    return _change(
        request,
        obj,
        SwitchoverInput,
        lambda d: changes.with_switchover(obj, d["region"]),
        lambda d: changes.switchover(by=request.user, app=obj, region=d["region"]),
    )


@extend_schema(responses=dict)
@api_view(["GET"])
def application_revisions(request: Request, org: str, env: str, app: str) -> Response:
    obj = _application(request, org, env, app, "applications.read")
    return Response(
        [
            {
                "revision": r.number,
                "commit": r.commit,
                "action": r.action,
                "at": r.at.isoformat(),
                "actor": r.actor,
                "version": r.state.get("version"),
                "size": r.state.get("size"),
                "placement": r.state.get("placement"),
                "regions": r.state.get("regions"),
            }
            for r in reversed(changes.revisions(obj))
        ]
    )


@extend_schema(request=RollbackInput, responses=ApplicationSerializer)
@api_view(["POST"])
@idempotent
def application_rollback(request: Request, org: str, env: str, app: str) -> Response:
    obj = _application(request, org, env, app, "applications.update")
    return _change(
        request,
        obj,
        RollbackInput,
        lambda d: changes.with_rollback(obj, d["revision"])[0],
        lambda d: changes.rollback(by=request.user, app=obj, revision=d["revision"]),
    )

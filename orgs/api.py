from __future__ import annotations

from typing import Any

from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view, parser_classes
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response

from core import pagination
from core.api_errors import call_service as call
from core.api_schema import PAGE_PARAMETERS
from core.models import AuditEvent
from core.text import DISPLAY_NAME_PATTERN
from rbac import access

from . import services
from .models import Environment, HostCluster, Organization
from .naming import ENV_TYPES


class EnvironmentSerializer(serializers.ModelSerializer):
    regions: serializers.RelatedField[HostCluster, Any, Any] = serializers.SlugRelatedField(
        slug_field="name", many=True, read_only=True
    )

    class Meta:
        model = Environment
        fields = [
            "name",
            "env_type",
            "placement",
            "regions",
            "policy",
            "delivery_state",
            "delivery_error",
            "last_commit_sha",
            "created_at",
        ]


class OrganizationSerializer(serializers.ModelSerializer):
    environments = EnvironmentSerializer(many=True, read_only=True)
    parent = serializers.CharField(
        source="parent.slug", default=None, read_only=True, allow_null=True
    )  # type: ignore[assignment]  # a field named like Field.parent

    class Meta:
        model = Organization
        fields = [
            "slug",
            "display_name",
            "kind",
            "tier",
            "billing_mode",
            "plan_code",
            "parent",
            "default_env_type",
            "state",
            "delivery_state",
            "delivery_error",
            "last_commit_sha",
            "created_at",
            "environments",
        ]


class EnvironmentInput(serializers.Serializer):
    env_type = serializers.ChoiceField(choices=ENV_TYPES)
    regions = serializers.ListField(child=serializers.CharField(), min_length=1, max_length=5)


# what the service accepts, as the schema publishes it (reserved words and taken slugs aside)
SLUG_PATTERN = r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$"


class OrganizationInput(serializers.Serializer):
    slug = serializers.RegexField(
        SLUG_PATTERN,
        min_length=3,
        max_length=32,
        help_text="3–32 lower-case letters, digits and dashes, starting with a letter; not a reserved word.",
    )
    display_name = serializers.RegexField(DISPLAY_NAME_PATTERN, max_length=128)
    default_env_type = serializers.ChoiceField(choices=ENV_TYPES, default="prod")
    environments = EnvironmentInput(many=True, required=False)


class OrganizationUpdate(serializers.Serializer):
    display_name = serializers.RegexField(DISPLAY_NAME_PATTERN, max_length=128)


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = AuditEvent.EXPORT_FIELDS


def _orgs_for(request: Request) -> Any:
    envs = access.visible(
        request.user, Environment.objects.prefetch_related("regions"), "environments.read"
    )
    qs = Organization.objects.select_related("parent").prefetch_related(
        Prefetch("environments", queryset=envs)
    )
    return access.visible(request.user, qs, "organization.read")


@extend_schema(
    request=OrganizationInput,
    responses={200: OrganizationSerializer(many=True), 201: OrganizationSerializer},
)
@extend_schema(methods=["GET"], parameters=PAGE_PARAMETERS)
@api_view(["GET", "POST"])
@parser_classes([JSONParser])  # nested objects: JSON only (a form cannot carry them)
def organizations(request: Request) -> Response:
    if request.method == "GET":
        page = pagination.paginate_request(
            request, _orgs_for(request), order=("slug",), size=pagination.API_PAGE_SIZE
        )
        return pagination.api_response(
            request, page, OrganizationSerializer(page.items, many=True).data
        )
    data = OrganizationInput(data=request.data)
    data.is_valid(raise_exception=True)
    org = call(services.create_organization, by=request.user, **data.validated_data)
    return Response(
        OrganizationSerializer(_orgs_for(request).get(pk=org.pk)).data,
        status=status.HTTP_201_CREATED,
    )


@extend_schema(request=OrganizationUpdate, responses=OrganizationSerializer)
@api_view(["GET", "PATCH"])
def organization(request: Request, slug: str) -> Response:
    action = "organization.read" if request.method == "GET" else "organization.update"
    org = access.get_object_for(request.user, Organization, action=action, slug=slug)
    if request.method == "PATCH":  # a partial update: an empty body changes nothing
        data = OrganizationUpdate(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        if "display_name" in data.validated_data:
            org = call(
                services.rename_organization,
                by=request.user,
                org=org,
                display_name=data.validated_data["display_name"],
            )
    return Response(OrganizationSerializer(_orgs_for(request).get(pk=org.pk)).data)


def _lifecycle(action: str, service: Any) -> Any:
    @extend_schema(request=None, responses=OrganizationSerializer)
    @api_view(["POST"])
    def view(request: Request, slug: str) -> Response:
        org = access.get_object_for(request.user, Organization, action=action, slug=slug)
        org = call(service, by=request.user, org=org)
        return Response(OrganizationSerializer(_orgs_for(request).get(pk=org.pk)).data)

    view.cls.__name__ = f"{service.__name__}_view"
    return view


organization_suspend = _lifecycle("organization.suspend", services.suspend_organization)
organization_resume = _lifecycle("organization.suspend", services.resume_organization)
organization_archive = _lifecycle("organization.archive", services.archive_organization)
organization_restore = _lifecycle("organization.archive", services.restore_organization)


@extend_schema(
    request=EnvironmentInput,
    responses={200: EnvironmentSerializer(many=True), 201: EnvironmentSerializer},
)
@api_view(["GET", "POST"])
def environments(request: Request, slug: str) -> Response:
    action = "environments.read" if request.method == "GET" else "environments.create"
    org = access.get_object_for(request.user, Organization, action=action, slug=slug)
    if request.method == "GET":
        envs = access.visible(
            request.user, org.environments.prefetch_related("regions"), "environments.read"
        )
        return Response(EnvironmentSerializer(envs, many=True).data)
    data = EnvironmentInput(data=request.data)
    data.is_valid(raise_exception=True)
    env = call(services.create_environment, by=request.user, org=org, **data.validated_data)
    return Response(EnvironmentSerializer(env).data, status=status.HTTP_201_CREATED)


@extend_schema(responses=EnvironmentSerializer)
@api_view(["GET"])
def environment(request: Request, slug: str, env: str) -> Response:
    obj = access.get_object_for(
        request.user,
        Environment.objects.select_related("organization").prefetch_related("regions"),
        action="environments.read",
        organization__slug=slug,
        name=env,
    )
    return Response(EnvironmentSerializer(obj).data)


@extend_schema(responses=AuditEventSerializer(many=True), parameters=PAGE_PARAMETERS)
@api_view(["GET"])
def organization_audit(request: Request, slug: str) -> Response:
    """The Organization's audit events, newest first."""
    org = access.get_object_for(request.user, Organization, action="audit.read", slug=slug)
    events = access.visible(
        request.user, AuditEvent.objects.for_org(org.slug), "audit.read", strict=True
    )
    page = pagination.paginate_request(
        request, events, order=("-created_at", "-id"), size=pagination.API_PAGE_SIZE
    )
    return pagination.api_response(request, page, AuditEventSerializer(page.items, many=True).data)


@extend_schema(responses={200: dict})
@api_view(["GET"])
def slug_check(request: Request) -> Response:
    slug = (request.query_params.get("slug") or "").strip()
    problem = services.slug_available(slug)
    return Response({"slug": slug, "available": problem is None, "problem": problem})

"""REST endpoints for grants: assign (find-or-create), list, revoke. Same services as the UI."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Q
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view, parser_classes
from rest_framework.exceptions import NotFound
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response

from core import pagination
from core.api_errors import call_service as _call
from core.api_schema import PAGE_PARAMETERS

from . import access, services, tiers
from .models import GLOBAL, UserAccess


class ScopeTerm(serializers.Serializer):
    key = serializers.CharField(max_length=64)
    value = serializers.CharField(max_length=128)


class AssignInput(serializers.Serializer):
    user = serializers.CharField(max_length=254, required=False, help_text="username or e-mail")
    group = serializers.CharField(max_length=128, required=False, help_text="an OIDC group")
    tier = serializers.ChoiceField(choices=tiers.names())
    scope = ScopeTerm(many=True)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if bool(attrs.get("user")) == bool(attrs.get("group")):
            raise serializers.ValidationError({"user": ["Give a user or a group (exactly one)."]})
        return attrs


class GrantSerializer(serializers.ModelSerializer):
    user = serializers.SerializerMethodField()
    scope = serializers.JSONField(source="scopes")

    class Meta:
        model = UserAccess
        fields = [
            "id",
            "user",
            "group",
            "tier",
            "scope",
            "org_slug",
            "expires_at",
            "created_at",
            "updated_at",
            "delivery_state",
            "last_commit_sha",
        ]

    def get_user(self, grant: UserAccess) -> str | None:
        return grant.user.get_username() if grant.user else None


def find_user(identifier: str) -> Any:
    """A user by username or e-mail (case-insensitive e-mail), or a 404 naming the `user` field."""
    users = get_user_model().objects.filter(
        Q(username=identifier) | Q(email__iexact=identifier), is_active=True
    )
    found = list(users[:2])
    if len(found) != 1:  # the request names a user who is not there: 404, like any lookup
        raise NotFound({"user": [f"No single active user {identifier!r}."]})
    return found[0]


@extend_schema(
    request=AssignInput,
    responses={200: GrantSerializer, 201: GrantSerializer},
    operation_id="rbac_assign",
)
@api_view(["POST"])
@parser_classes([JSONParser])  # nested objects: JSON only (a form cannot carry them)
def assign(request: Request) -> Response:
    data = AssignInput(data=request.data)
    data.is_valid(raise_exception=True)
    values = data.validated_data
    scopes = _call(services.normalize_scopes, tier=values["tier"], scopes=values["scope"])
    org = services.org_of(scopes)
    if org and not access.can(request.user, "organization.read", {services.ORG_LABEL: org}):
        raise Http404
    # Whether the caller may grant here at all, before any user is looked up: a refused caller
    # must not learn which usernames or addresses have an account.
    _call(services.authorize_grant_change, by=request.user, scopes=scopes, tier=values["tier"])
    user = find_user(values["user"]) if values.get("user") else None
    result = _call(
        services.grant_access,
        by=request.user,
        user=user,
        group=values.get("group", ""),
        tier=values["tier"],
        scopes=scopes,
        expires_at=values.get("expires_at"),
    )
    body = {**GrantSerializer(result.grant).data, "outcome": result.outcome}
    code = status.HTTP_201_CREATED if result.outcome == "created" else status.HTTP_200_OK
    return Response(body, status=code)


@extend_schema(responses=GrantSerializer(many=True), parameters=PAGE_PARAMETERS)
@api_view(["GET"])
def grants(request: Request) -> Response:
    """Grants the caller may read: those of Organizations where they hold rbac.read, and every
    grant for global readers. `?org=<slug>` narrows to one Organization."""
    qs = UserAccess.objects.select_related("user")
    if not access.is_global(request.user, "rbac.read"):
        # only Organizations a grant covers whole: a grant scoped below one reads none of them
        slugs = [
            value
            for g in access.grants_for(request.user)
            if "rbac.read" in g.tier.actions
            for key, value in g.scopes
            if key == services.ORG_LABEL and value != GLOBAL
        ]
        qs = qs.filter(
            org_slug__in=[
                slug
                for slug in slugs
                if access.can(request.user, "rbac.read", {services.ORG_LABEL: slug}, strict=True)
            ]
        )
    org = request.query_params.get("org")
    if org:
        qs = qs.filter(org_slug=org)
    page = pagination.paginate_request(
        request, qs, order=("org_slug", "id"), size=pagination.API_PAGE_SIZE
    )
    return pagination.api_response(request, page, GrantSerializer(page.items, many=True).data)


@extend_schema(request=None, responses={204: None})
@api_view(["DELETE"])
def grant(request: Request, pk: int) -> Response:
    obj = UserAccess.objects.select_related("user").filter(pk=pk).first()
    if obj is None:
        raise Http404
    org = obj.org_slug
    readable = (
        access.can(request.user, "rbac.read", {services.ORG_LABEL: org})
        if org
        else access.is_global(request.user, "rbac.read")
    )
    if not readable:
        raise Http404
    _call(services.revoke, by=request.user, grant=obj)
    return Response(status=status.HTTP_204_NO_CONTENT)

"""/api/v1/tokens/: a user's own personal API tokens."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from core import pagination
from core.api_errors import call_service
from core.api_fields import StrictRegexField
from core.api_schema import PAGE_PARAMETERS
from core.text import DISPLAY_NAME_PATTERN

from . import services
from .models import ApiToken
from .types import account_of


class ApiTokenSerializer(serializers.ModelSerializer):
    token_prefix = serializers.CharField(source="display", read_only=True)
    state = serializers.CharField(read_only=True)
    minted_by: serializers.PrimaryKeyRelatedField[ApiToken] = serializers.PrimaryKeyRelatedField(
        source="parent",
        read_only=True,
        allow_null=True,
        help_text="The token this one was minted with: revoking it revokes this one.",
    )

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "token_prefix",
            "state",
            "minted_by",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
        ]


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    token = serializers.CharField(read_only=True, help_text="The secret: shown only in this reply.")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]


class ApiTokenInput(serializers.Serializer):
    name = StrictRegexField(DISPLAY_NAME_PATTERN, max_length=64)

    def get_fields(self) -> dict[str, serializers.Field]:
        """`days` is bounded by the setting as it is now (a bound read when the module was first
        imported would keep whatever value the settings had then)."""
        fields = super().get_fields()
        top = settings.API_TOKEN_MAX_DAYS
        fields["days"] = serializers.IntegerField(
            required=False,
            min_value=1,
            max_value=top,
            error_messages={
                "min_value": f"Choose between 1 and {top} days.",
                "max_value": f"Choose between 1 and {top} days.",
            },
            help_text="Days until expiry (default API_TOKEN_DEFAULT_DAYS, at most API_TOKEN_MAX_DAYS).",
        )
        return fields


def _no_store(response: Response) -> Response:
    response["Cache-Control"] = "no-store"
    return response


@extend_schema(
    request=ApiTokenInput,
    responses={200: ApiTokenSerializer(many=True), 201: ApiTokenCreatedSerializer},
)
@extend_schema(methods=["GET"], parameters=PAGE_PARAMETERS)
@api_view(["GET", "POST"])
def tokens(request: Request) -> Response:
    user = account_of(request)
    if request.method == "GET":
        page = pagination.paginate_request(
            request,
            ApiToken.objects.filter(user=user),
            order=("-created_at", "-id"),
            size=pagination.API_PAGE_SIZE,
        )
        return pagination.api_response(
            request, page, ApiTokenSerializer(page.items, many=True).data
        )
    data = ApiTokenInput(data=request.data)
    data.is_valid(raise_exception=True)
    # A token minted with a token is its child: it never outlives it and dies with it.
    minted_by = request.auth if isinstance(request.auth, ApiToken) else None
    token, secret = call_service(
        services.create_api_token,
        user=user,
        name=data.validated_data["name"],
        days=data.validated_data.get("days", settings.API_TOKEN_DEFAULT_DAYS),
        minted_by=minted_by,
    )
    body = {**ApiTokenSerializer(token).data, "token": secret}
    return _no_store(Response(body, status=status.HTTP_201_CREATED))


@extend_schema(request=None, responses={200: ApiTokenSerializer})
@api_view(["POST"])
def token_revoke(request: Request, pk: int) -> Response:
    try:
        token = services.revoke_api_token(user=account_of(request), token_id=pk)
    except ApiToken.DoesNotExist:
        raise Http404 from None
    return Response(ApiTokenSerializer(token).data)

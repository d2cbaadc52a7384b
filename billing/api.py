"""Public BSS API: quotes and voucher previews (anonymous), redemption (signed in)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from core.api_fields import StrictRegexField
from core.errors import ConflictError
from core.text import NO_CONTROL_PATTERN as CODE_PATTERN
from orgs.api import call
from orgs.models import Organization
from rbac import access
from rbac.permissions import global_permission

from . import ledger, limits, pricing, usage, vouchers
from .money import format_money


class QuoteInput(serializers.Serializer):
    plan = serializers.CharField(max_length=32)
    addons = serializers.DictField(child=serializers.IntegerField(), required=False, default=dict)


class CodeInput(serializers.Serializer):
    # as typed (spaces, any dash, any case: vouchers.normalize), never a control character
    code = StrictRegexField(CODE_PATTERN, max_length=64)


class RedeemInput(CodeInput):
    organization = serializers.SlugField(max_length=32)


def _errors(field: str, message: str, code: int, **extra: object) -> Response:
    return Response({"errors": {field: [message]}, **extra}, status=code)


@extend_schema(request=QuoteInput, responses={200: dict})
@api_view(["POST"])
@permission_classes([AllowAny])
def quote(request: Request) -> Response:
    data = QuoteInput(data=request.data)
    data.is_valid(raise_exception=True)
    result = call(
        pricing.quote, plan_code=data.validated_data["plan"], addons=data.validated_data["addons"]
    )
    return Response(result.as_dict())


@extend_schema(request=CodeInput, responses={200: dict, 404: dict, 410: dict, 429: dict})
@api_view(["POST"])
@permission_classes([AllowAny])
def voucher_preview(request: Request) -> Response:
    data = CodeInput(data=request.data)
    if not data.is_valid():
        return _errors("code", vouchers.NOT_VALID_MESSAGE, status.HTTP_404_NOT_FOUND)
    if not limits.allow(request._request, "preview"):
        return _errors("detail", limits.TOO_MANY, status.HTTP_429_TOO_MANY_REQUESTS)
    found = vouchers.preview(data.validated_data["code"])
    if found.status == "not_valid":
        return _errors("code", vouchers.NOT_VALID_MESSAGE, status.HTTP_404_NOT_FOUND)
    body = {
        "status": found.status,
        "code": found.code,
        "credit_minor": found.credit_minor,
        "currency": found.currency,
        "credit": format_money(found.credit_minor, found.currency),
        "description": found.description,
        "plan": found.plan_code or None,
    }
    if found.status == "ended":
        return Response(
            {"errors": {"code": [vouchers.ENDED_MESSAGE]}, **body}, status=status.HTTP_410_GONE
        )
    return Response(body)


@extend_schema(request=RedeemInput, responses={201: dict})
@api_view(["POST"])
def voucher_redeem(request: Request) -> Response:
    data = RedeemInput(data=request.data)
    data.is_valid(raise_exception=True)
    if not limits.allow(request._request, "redeem"):
        return _errors("detail", limits.TOO_MANY, status.HTTP_429_TOO_MANY_REQUESTS)
    org = access.get_object_for(
        request.user,
        Organization,
        action="billing.manage",
        slug=data.validated_data["organization"],
    )
    try:
        redemption = vouchers.redeem_voucher(
            code=data.validated_data["code"], org=org, by=request.user
        )
    except vouchers.VoucherNotValid:
        return _errors("code", vouchers.NOT_VALID_MESSAGE, status.HTTP_404_NOT_FOUND)
    except vouchers.VoucherEnded:
        return _errors("code", vouchers.ENDED_MESSAGE, status.HTTP_410_GONE)
    except ValidationError as exc:
        conflict = isinstance(exc, ConflictError)
        return Response({"errors": exc.message_dict}, status=409 if conflict else 400)
    return Response(
        {
            "organization": org.slug,
            "credit_minor": redemption.credit_minor,
            "balance_minor": ledger.balance(org),
            "currency": ledger.currency(),
        },
        status=status.HTTP_201_CREATED,
    )


class UsageInput(serializers.Serializer):
    records = serializers.ListField(child=serializers.DictField())


@extend_schema(request=UsageInput, responses={200: dict, 400: dict, 401: dict, 404: dict})
@api_view(["POST"])
@permission_classes([global_permission("usage.record")])
def usage_ingest(request: Request) -> Response:
    """Record a batch of usage (platform components, with an API token of an account holding a
    global grant that includes `usage.record`). Duplicates are counted and ignored."""
    body = request.data
    records = body.get("records") if isinstance(body, dict) else body
    return Response(call(usage.ingest, records=records).as_dict())

"""The REST side of promotions and EnvironmentPolicies: the same services as the pages."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from core.api_errors import call_service as call
from orgs.models import Environment
from rbac import access

from . import promotion
from .api import _application
from .models import Promotion
from .promotion_views import RELATED


class RuleResultSerializer(serializers.Serializer):
    name = serializers.CharField()
    type = serializers.CharField()
    blocking = serializers.BooleanField()
    passed = serializers.BooleanField()
    detail = serializers.CharField()


class PromotionSerializer(serializers.ModelSerializer):
    target = serializers.SerializerMethodField()
    origin = serializers.SerializerMethodField()
    rules = serializers.SerializerMethodField()

    class Meta:
        model = Promotion
        fields = [
            "id",
            "origin",
            "target",
            "source_revision",
            "state",
            "diff",
            "branch",
            "pr_number",
            "pr_url",
            "merge_sha",
            "created_at",
            "merged_at",
            "rules",
        ]

    def get_target(self, obj: Promotion) -> str:
        return f"{obj.target.environment.name}/{obj.target.name}"

    def get_origin(self, obj: Promotion) -> str:
        return promotion.origin(obj)

    @extend_schema(responses=RuleResultSerializer(many=True))
    def get_rules(self, obj: Promotion) -> list[dict[str, Any]]:
        return [vars(r) for r in promotion.evaluate(obj)]


class PolicySerializer(serializers.Serializer):
    rules = serializers.ListField(child=serializers.DictField(), max_length=20)


def _promotion(request: Request, pk: int, action: str) -> Promotion:
    return access.get_object_for(
        request.user, Promotion.objects.select_related(*RELATED), action=action, pk=pk
    )


@extend_schema(request=None, responses={201: PromotionSerializer})
@api_view(["POST"])
def application_promote(request: Request, org: str, env: str, app: str) -> Response:
    source = _application(request, org, env, app, "applications.update")
    opened = call(promotion.open_promotion, by=request.user, app=source)
    return Response(PromotionSerializer(opened).data, status=status.HTTP_201_CREATED)


@extend_schema(responses=PromotionSerializer)
@api_view(["GET"])
def promotion_detail(request: Request, pk: int) -> Response:
    return Response(PromotionSerializer(_promotion(request, pk, "applications.read")).data)


@extend_schema(request=None, responses=PromotionSerializer)
@api_view(["POST"])
def promotion_approve(request: Request, pk: int) -> Response:
    found = _promotion(request, pk, "applications.read")
    call(promotion.approve, by=request.user, promotion=found)
    return Response(PromotionSerializer(found).data)


@extend_schema(request=None, responses=PromotionSerializer)
@api_view(["POST"])
def promotion_merge(request: Request, pk: int) -> Response:
    found = _promotion(request, pk, "applications.update")
    merged = call(promotion.merge, by=request.user, promotion=found)
    return Response(PromotionSerializer(merged).data)


@extend_schema(request=PolicySerializer, responses=PolicySerializer)
@api_view(["GET", "PUT"])
def environment_policy(request: Request, org: str, env: str) -> Response:
    action = "environments.update" if request.method == "PUT" else "environments.read"
    environment = access.get_object_for(
        request.user,
        Environment.objects.select_related("organization"),
        action=action,
        organization__slug=org,
        name=env,
    )
    if request.method == "PUT":
        data = PolicySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        call(
            promotion.set_policy,
            by=request.user,
            env=environment,
            rules=data.validated_data["rules"],
        )
    return Response({"rules": promotion.policy_rules(environment)})

"""Catalog curation over the API: propose (an Organization's admins), and the operators' queue,
review (validation and diff), publish and reject."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from core import pagination
from core.api_errors import call_service as call
from core.api_schema import PAGE_PARAMETERS
from rbac import access

from . import curation
from .api import _blueprint
from .curation_views import _proposer
from .models import CatalogProposal

CURATE = "catalog.curate"


class ProposalSerializer(serializers.ModelSerializer):
    organization = serializers.CharField(source="organization.slug", read_only=True)

    class Meta:
        model = CatalogProposal
        fields = [
            "id",
            "name",
            "organization",
            "versions",
            "state",
            "reason",
            "created_at",
            "reviewed_at",
            "delivery_state",
            "last_commit_sha",
        ]


class RejectInput(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)


@extend_schema(request=None, responses={201: ProposalSerializer})
@api_view(["POST"])
def propose(request: Request, name: str) -> Response:
    bp = _blueprint(request, name)
    org = _proposer(request.user, bp, str(request.data.get("organization") or ""))
    proposal = call(curation.propose, by=request.user, org=org, blueprint=bp)
    return Response(ProposalSerializer(proposal).data, status=status.HTTP_201_CREATED)


@extend_schema(responses=ProposalSerializer(many=True), parameters=PAGE_PARAMETERS)
@api_view(["GET"])
def proposals(request: Request) -> Response:
    access.require_global(request.user, CURATE)
    page = pagination.paginate_request(
        request,
        CatalogProposal.objects.select_related("organization"),
        order=("-created_at", "-id"),
        size=pagination.API_PAGE_SIZE,
    )
    return pagination.api_response(request, page, ProposalSerializer(page.items, many=True).data)


def _proposal(request: Request, pk: int) -> CatalogProposal:
    access.require_global(request.user, CURATE)
    found = CatalogProposal.objects.select_related("organization").filter(pk=pk).first()
    if found is None:
        from django.http import Http404

        raise Http404
    return found


def _with_review(proposal: CatalogProposal) -> dict[str, Any]:
    found = curation.review(proposal)
    return {
        **ProposalSerializer(proposal).data,
        "problems": found.problems,
        "warnings": found.warnings,
        "new": found.is_new,
        "diff": found.diff,
        "document": proposal.document,
    }


@extend_schema(responses=dict)
@api_view(["GET"])
def proposal(request: Request, pk: int) -> Response:
    return Response(_with_review(_proposal(request, pk)))


@extend_schema(request=None, responses={202: ProposalSerializer})
@api_view(["POST"])
def publish(request: Request, pk: int) -> Response:
    found = call(curation.publish, by=request.user, proposal=_proposal(request, pk))
    found.refresh_from_db()
    return Response(ProposalSerializer(found).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(request=RejectInput, responses=ProposalSerializer)
@api_view(["POST"])
def reject(request: Request, pk: int) -> Response:
    found = _proposal(request, pk)
    data = RejectInput(data=request.data)
    data.is_valid(raise_exception=True)
    found = call(
        curation.reject, by=request.user, proposal=found, reason=data.validated_data["reason"]
    )
    return Response(ProposalSerializer(found).data)

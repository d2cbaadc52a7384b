"""The live status stream of one Organization (its page's provisioning status), over the generic
SSE helper `gitops.streams`: readable Organizations only (404 otherwise), re-rendered when its
Flux objects change or a cluster's connection flips."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse

from gitops import streams
from gitops.flux import CLUSTERS_TOPIC
from rbac import access

from . import status
from .models import Organization


async def org_events(request: HttpRequest, slug: str) -> HttpResponse | StreamingHttpResponse:
    def find(user: Any) -> streams.Followed:
        pk = access.get_object_for(user, Organization, action="organization.read", slug=slug).pk

        def render() -> tuple[str, str]:
            return status.EVENT, status.render_fragment(Organization.objects.get(pk=pk))

        return streams.Followed(f"org:{pk}", (status.topic(slug), CLUSTERS_TOPIC), render)

    return await streams.follow(request, find)

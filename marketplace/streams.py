"""The live status stream of one Application (its detail page's status section), over the
generic SSE helper `gitops.streams`: readable Applications only (404 otherwise, and the org in
the URL must be the app's), re-rendered when its Flux objects or its delivery change, or a
cluster's connection flips; an Application that is gone shows as uninstalled."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse

from gitops import streams
from gitops.flux import CLUSTERS_TOPIC
from rbac import access

from . import status
from .models import Application

RELATED = ("blueprint_version__blueprint", "environment__organization")


async def app_events(
    request: HttpRequest, org: str, env: str, app: str
) -> HttpResponse | StreamingHttpResponse:
    def find(user: Any) -> streams.Followed:
        found = access.get_object_for(
            user,
            Application.objects.select_related(*RELATED),
            action="applications.read",
            environment__organization__slug=org,
            environment__name=env,
            name=app,
        )

        def render() -> tuple[str, str]:
            fresh = Application.objects.select_related(*RELATED).filter(pk=found.pk).first()
            if fresh is None:
                return status.EVENT, status.GONE_HTML
            return status.EVENT, status.render_fragment(fresh)

        return streams.Followed(f"app:{found.pk}", (status.topic(found), CLUSTERS_TOPIC), render)

    return await streams.follow(request, find)

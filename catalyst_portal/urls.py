from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from core import views as core_views
from gitops import hooks as git_hooks
from marketplace import streams as app_streams
from orgs import member_views
from orgs import streams as org_streams
from orgs import views as org_views

urlpatterns = [
    path("", core_views.home, name="home"),
    path("healthz", core_views.healthz, name="healthz"),
    path("readyz", core_views.readyz, name="readyz"),
    path("metrics", core_views.metrics_view, name="metrics"),
    path("hooks/gitea/", git_hooks.gitea_webhook, name="gitea-webhook"),
    path("", include("accounts.urls")),
    path("audit/", org_views.global_audit, name="audit"),
    path("orgs/", include("orgs.urls")),
    path("invitations/<str:token>/", member_views.invitation_accept, name="invitation-accept"),
    path("marketplace/", include("marketplace.urls")),
    path("events/orgs/<slug:slug>/", org_streams.org_events, name="org-events"),
    path(
        "events/apps/<slug:org>/<slug:env>/<slug:app>/", app_streams.app_events, name="app-events"
    ),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/v1/", include("orgs.api_urls")),
    path("api/v1/", include("accounts.api_urls")),
    path("api/v1/", include("rbac.api_urls")),
    path("api/v1/", include("marketplace.api_urls")),
    path("", include("billing.urls")),
    path("api/v1/", include("billing.api_urls")),
]

handler403 = "core.views.permission_denied"
handler404 = "core.views.page_not_found"
handler500 = "core.views.server_error"

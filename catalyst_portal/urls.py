from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from catalyst_portal import sse
from core import views as core_views
from core.signup import signup_view
from orgs import member_views

urlpatterns = [
    path("", core_views.home, name="home"),
    path("healthz", core_views.healthz, name="healthz"),
    path("login/", core_views.LoginView.as_view(), name="login"),
    path("logout/", core_views.logout, name="logout"),
    path("oidc/", include("mozilla_django_oidc.urls")),
    path("account/tokens/", core_views.token_list, name="token-list"),
    path("account/tokens/<int:pk>/revoke/", core_views.token_revoke, name="token-revoke"),
    path("audit/", core_views.audit_list, name="audit"),
    path("orgs/", include("orgs.urls")),
    path("invitations/<str:token>/", member_views.invitation_accept, name="invitation-accept"),
    path("marketplace/", include("marketplace.urls")),
    path("events/orgs/<slug:slug>/", sse.org_events, name="org-events"),
    path("events/apps/<slug:org>/<slug:env>/<slug:app>/", sse.app_events, name="app-events"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/v1/", include("orgs.api_urls")),
    path("api/v1/", include("core.api_urls")),
    path("api/v1/", include("rbac.api_urls")),
    path("api/v1/", include("marketplace.api_urls")),
    path("signup/", signup_view, name="signup"),
    path("", include("billing.urls")),
    path("api/v1/", include("billing.api_urls")),
]

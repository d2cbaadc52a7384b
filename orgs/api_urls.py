from django.urls import path

from . import api

urlpatterns = [
    path("orgs/", api.organizations, name="api-orgs"),
    path("orgs/check-slug", api.slug_check, name="api-slug-check"),
    path("orgs/<slug:slug>/", api.organization, name="api-org"),
    path("orgs/<slug:slug>/suspend", api.organization_suspend, name="api-org-suspend"),
    path("orgs/<slug:slug>/resume", api.organization_resume, name="api-org-resume"),
    path("orgs/<slug:slug>/archive", api.organization_archive, name="api-org-archive"),
    path("orgs/<slug:slug>/restore", api.organization_restore, name="api-org-restore"),
    path("orgs/<slug:slug>/audit", api.organization_audit, name="api-org-audit"),
    path("orgs/<slug:slug>/environments/", api.environments, name="api-environments"),
    path("orgs/<slug:slug>/environments/<slug:env>/", api.environment, name="api-environment"),
]

from django.urls import path

from . import api

APPS = "orgs/<slug:org>/environments/<slug:env>/applications/"

urlpatterns = [
    path("blueprints/", api.blueprints, name="api-blueprints"),
    path("blueprints/<slug:name>/", api.blueprint, name="api-blueprint"),
    path(APPS, api.applications, name="api-applications"),
    path(APPS + "plan", api.application_plan, name="api-application-plan"),
    path(APPS + "<slug:app>/", api.application, name="api-application"),
    path(APPS + "<slug:app>/upgrade", api.application_upgrade, name="api-application-upgrade"),
]

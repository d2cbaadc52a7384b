from django.urls import path

from . import api, curation_api, promotion_api

APPS = "orgs/<slug:org>/environments/<slug:env>/applications/"
APP = APPS + "<slug:app>/"

urlpatterns = [
    path("blueprints/", api.blueprints, name="api-blueprints"),
    path("blueprints/<slug:name>/", api.blueprint, name="api-blueprint"),
    path("blueprints/<slug:name>/propose", curation_api.propose, name="api-blueprint-propose"),
    path("catalog/proposals/", curation_api.proposals, name="api-proposals"),
    path("catalog/proposals/<int:pk>/", curation_api.proposal, name="api-proposal"),
    path("catalog/proposals/<int:pk>/publish", curation_api.publish, name="api-proposal-publish"),
    path("catalog/proposals/<int:pk>/reject", curation_api.reject, name="api-proposal-reject"),
    path(APPS, api.applications, name="api-applications"),
    path(APPS + "plan", api.application_plan, name="api-application-plan"),
    path(APP, api.application, name="api-application"),
    path(APP + "upgrade", api.application_upgrade, name="api-application-upgrade"),
    path(APP + "resize", api.application_resize, name="api-application-resize"),
    path(APP + "placement", api.application_placement, name="api-application-placement"),
    path(APP + "switchover", api.application_switchover, name="api-application-switchover"),
    path(APP + "revisions", api.application_revisions, name="api-application-revisions"),
    path(APP + "rollback", api.application_rollback, name="api-application-rollback"),
    path(APP + "promote", promotion_api.application_promote, name="api-application-promote"),
    path("promotions/<int:pk>/", promotion_api.promotion_detail, name="api-promotion"),
    path(
        "promotions/<int:pk>/approve", promotion_api.promotion_approve, name="api-promotion-approve"
    ),
    path("promotions/<int:pk>/merge", promotion_api.promotion_merge, name="api-promotion-merge"),
    path(
        "orgs/<slug:org>/environments/<slug:env>/policy",
        promotion_api.environment_policy,
        name="api-environment-policy",
    ),
]

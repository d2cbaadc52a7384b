from django.urls import path

from . import app_views, curation_views, git_views, promotion_views, views

app_name = "marketplace"
APP = "apps/<slug:env>/<slug:app>/"

urlpatterns = [
    path("", views.catalog, name="catalog"),
    path("sync-errors/", views.sync_errors, name="sync-errors"),
    path("curation/", curation_views.queue, name="curation"),
    path("curation/<int:pk>/", curation_views.review, name="curation-review"),
    path("plans/<int:pk>/", views.plan_detail, name="plan"),
    path("apps/", app_views.app_list, name="apps"),
    path(APP, app_views.app_detail, name="app"),
    path(APP + "edit/", app_views.app_edit, name="app-edit"),
    path(APP + "size/", app_views.app_size, name="app-size"),
    path(APP + "placement/", app_views.app_placement, name="app-placement"),
    path(APP + "switchover/", app_views.app_switchover, name="app-switchover"),
    path(APP + "revisions/", app_views.app_revisions, name="app-revisions"),
    path(APP + "rollback/", app_views.app_rollback, name="app-rollback"),
    path(APP + "upgrade/", app_views.app_upgrade, name="app-upgrade"),
    path(APP + "uninstall/", app_views.app_uninstall, name="app-uninstall"),
    path(APP + "git/", git_views.app_git, name="app-git"),
    path(APP + "editor/", git_views.app_editor, name="app-editor"),
    path(APP + "promote/", promotion_views.promote, name="app-promote"),
    path("promotions/<int:pk>/", promotion_views.promotion_detail, name="promotion"),
    path(
        "promotions/<int:pk>/approve/", promotion_views.promotion_approve, name="promotion-approve"
    ),
    path("promotions/<int:pk>/merge/", promotion_views.promotion_merge, name="promotion-merge"),
    path(
        "environments/<slug:env>/policy/",
        promotion_views.environment_policy,
        name="environment-policy",
    ),
    path("<slug:name>/", views.blueprint_detail, name="blueprint"),
    path("<slug:name>/install/", views.install, name="install"),
    path("<slug:name>/propose/", curation_views.propose, name="propose"),
]

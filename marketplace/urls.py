from django.urls import path

from . import views

app_name = "marketplace"

urlpatterns = [
    path("", views.catalog, name="catalog"),
    path("sync-errors/", views.sync_errors, name="sync-errors"),
    path("plans/<int:pk>/", views.plan_detail, name="plan"),
    path("apps/", views.app_list, name="apps"),
    path("apps/<slug:env>/<slug:app>/", views.app_detail, name="app"),
    path("apps/<slug:env>/<slug:app>/edit/", views.app_edit, name="app-edit"),
    path("apps/<slug:env>/<slug:app>/upgrade/", views.app_upgrade, name="app-upgrade"),
    path("apps/<slug:env>/<slug:app>/uninstall/", views.app_uninstall, name="app-uninstall"),
    path("<slug:name>/", views.blueprint_detail, name="blueprint"),
    path("<slug:name>/install/", views.install, name="install"),
]

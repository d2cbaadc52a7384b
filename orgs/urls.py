from django.urls import include, path

from . import views

app_name = "orgs"

urlpatterns = [
    path("", views.organization_list, name="list"),
    path("new/", views.organization_create, name="create"),
    path("check-slug/", views.slug_check, name="slug-check"),
    path("<slug:slug>/", views.organization_detail, name="detail"),
    path("<slug:slug>/edit/", views.organization_edit, name="edit"),
    path("<slug:slug>/suspend/", views.organization_suspend, name="suspend"),
    path("<slug:slug>/resume/", views.organization_resume, name="resume"),
    path("<slug:slug>/archive/", views.organization_archive, name="archive"),
    path("<slug:slug>/restore/", views.organization_restore, name="restore"),
    path("<slug:slug>/members/", include("orgs.member_urls")),
    path("<slug:slug>/audit/", views.organization_audit, name="audit"),
    path("<slug:slug>/environments/new/", views.environment_create, name="environment-create"),
    path("<slug:slug>/environments/<slug:env>/", views.environment_detail, name="environment"),
]

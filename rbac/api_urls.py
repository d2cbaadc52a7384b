from django.urls import path

from . import api

urlpatterns = [
    path("rbac/assign", api.assign, name="api-rbac-assign"),
    path("rbac/grants/", api.grants, name="api-rbac-grants"),
    path("rbac/grants/<int:pk>", api.grant, name="api-rbac-grant"),
]

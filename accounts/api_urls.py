from django.urls import path

from . import api

urlpatterns = [
    path("tokens/", api.tokens, name="api-tokens"),
    path("tokens/<int:pk>/revoke", api.token_revoke, name="api-token-revoke"),
]

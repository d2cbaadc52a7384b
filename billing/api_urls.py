from django.urls import path

from . import api

urlpatterns = [
    path("quote", api.quote, name="api-quote"),
    path("vouchers/preview", api.voucher_preview, name="api-voucher-preview"),
    path("vouchers/redeem", api.voucher_redeem, name="api-voucher-redeem"),
    path("usage", api.usage_ingest, name="api-usage"),
]

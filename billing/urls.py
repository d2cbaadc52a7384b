from django.urls import path

from . import views
from .console import customers, overview, pricebook
from .console import invoices as invoice_pages
from .console import revenue as revenue_pages
from .console import vouchers as voucher_pages

app_name = "billing"

urlpatterns = [
    path("redeem/", views.redeem, name="redeem"),
    path("checkout/", views.checkout_view, name="checkout"),
    path("billing/<slug:slug>/", views.account, name="account"),
    path("quotes/<str:token>/", views.quote_view, name="quote"),
    path("billing/webhooks/stripe/", views.stripe_webhook, name="stripe-webhook"),
    path("billing/<slug:slug>/plan/", views.change_plan, name="change-plan"),
    path("billing/<slug:slug>/invoices/<int:pk>/", views.invoice_view, name="invoice"),
    path(
        "billing/<slug:slug>/invoices/<int:pk>/pdf/",
        views.invoice_view,
        {"fmt": "pdf"},
        name="invoice-pdf",
    ),
    path(
        "billing/<slug:slug>/subscription/<str:action>/",
        views.subscription_action,
        name="subscription",
    ),
    path(
        "billing/<slug:slug>/orders/<int:pk>/<str:action>/",
        views.order_action,
        name="order",
    ),
    path("bss/", overview.index, name="index"),
    path("bss/vouchers/", voucher_pages.voucher_list, name="vouchers"),
    path("bss/vouchers/new/", voucher_pages.voucher_issue, name="voucher-issue"),
    path("bss/vouchers/export.csv", voucher_pages.voucher_export, name="voucher-export"),
    path("bss/vouchers/<int:pk>/", voucher_pages.voucher_detail, name="voucher"),
    path("bss/vouchers/<int:pk>/revoke/", voucher_pages.voucher_revoke, name="voucher-revoke"),
    path("bss/vouchers/<int:pk>/active/", voucher_pages.voucher_set_active, name="voucher-active"),
    path("bss/plans/", pricebook.plan_list, name="plans"),
    path("bss/tax/", pricebook.tax_set, name="tax"),
    path("bss/plans/<slug:code>/", pricebook.plan_edit, name="plan-edit"),
    path("bss/addons/new/", pricebook.addon_create, name="addon-create"),
    path("bss/orders/", customers.order_list, name="orders"),
    path("bss/orders/<int:pk>/pay/", customers.order_pay, name="order-pay"),
    path("bss/orders/<int:pk>/refund/", customers.order_refund, name="order-refund"),
    path("bss/invoices/", invoice_pages.invoice_list, name="invoices"),
    path("bss/invoices/export.csv", invoice_pages.invoice_export, name="invoice-export"),
    path("bss/invoices/run/", invoice_pages.billing_run, name="billing-run"),
    path("bss/invoices/<int:pk>/", invoice_pages.invoice_document, name="console-invoice"),
    path(
        "bss/invoices/<int:pk>/pdf/",
        invoice_pages.invoice_document,
        {"fmt": "pdf"},
        name="console-invoice-pdf",
    ),
    path(
        "bss/invoices/<int:pk>/<str:action>/",
        invoice_pages.invoice_action,
        name="invoice-action",
    ),
    path("bss/revenue/", revenue_pages.revenue_page, name="revenue"),
    path("bss/revenue/export.csv", revenue_pages.revenue_export, name="revenue-export"),
    path("bss/customers/", customers.customer_list, name="customers"),
    path("bss/customers/<slug:slug>/", customers.customer_detail, name="customer"),
]

from django.urls import path

from . import console, views

app_name = "billing"

urlpatterns = [
    path("redeem/", views.redeem, name="redeem"),
    path("checkout/", views.checkout_view, name="checkout"),
    path("billing/<slug:slug>/", views.account, name="account"),
    path("billing/<slug:slug>/plan/", views.change_plan, name="change-plan"),
    path("bss/", console.index, name="index"),
    path("bss/vouchers/", console.voucher_list, name="vouchers"),
    path("bss/vouchers/new/", console.voucher_issue, name="voucher-issue"),
    path("bss/vouchers/export.csv", console.voucher_export, name="voucher-export"),
    path("bss/vouchers/<int:pk>/", console.voucher_detail, name="voucher"),
    path("bss/vouchers/<int:pk>/revoke/", console.voucher_revoke, name="voucher-revoke"),
    path("bss/vouchers/<int:pk>/active/", console.voucher_set_active, name="voucher-active"),
    path("bss/plans/", console.plan_list, name="plans"),
    path("bss/plans/<slug:code>/", console.plan_edit, name="plan-edit"),
    path("bss/addons/new/", console.addon_create, name="addon-create"),
    path("bss/orders/", console.order_list, name="orders"),
    path("bss/orders/<int:pk>/pay/", console.order_pay, name="order-pay"),
    path("bss/customers/", console.customer_list, name="customers"),
    path("bss/customers/<slug:slug>/", console.customer_detail, name="customer"),
]

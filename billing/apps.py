from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "BSS: plans, vouchers, ledger, orders, invoices"

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.core.validators import MaxValueValidator

from orgs.models import HostCluster

from . import ledger
from .models import AddOn, AddOnKind, Plan, VoucherReason
from .money import MAX_COUNT, exponent, format_money, parse_money
from .pricing import MAX_ADDON_QUANTITY, current_price


class MoneyField(forms.CharField):
    """An amount typed in the Sovereign's currency (`12.345`) → int minor units."""

    def __init__(self, *, allow_zero: bool = False, **kwargs: Any) -> None:
        self.allow_zero = allow_zero
        kwargs.setdefault(
            "widget", forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"})
        )
        super().__init__(**kwargs)

    def clean(self, value: Any) -> int | None:
        text = super().clean(value)
        if text in (None, ""):
            return None
        currency = ledger.currency()
        minor = parse_money(text, currency)
        if minor == 0 and not self.allow_zero:
            raise forms.ValidationError("Enter an amount above zero.")
        return minor


def money_help() -> str:
    currency = ledger.currency()
    return f"In {currency}, up to {exponent(currency)} decimals."


def plan_choices(blank: str | None = None) -> list[tuple[str, str]]:
    plans = [(p.code, p.name) for p in Plan.objects.filter(is_active=True)]
    return [("", blank), *plans] if blank is not None else plans


def _choice(form: forms.Form, name: str) -> forms.ChoiceField:
    field = form.fields[name]
    assert isinstance(field, forms.ChoiceField)
    return field


class DateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"


class VoucherIssueForm(forms.Form):
    count = forms.IntegerField(  # at most VOUCHER_BATCH_MAX, set per form (see __init__)
        min_value=1,
        initial=1,
        help_text="More than 1 issues a batch of generated codes.",
    )
    code = forms.CharField(
        required=False,
        max_length=64,
        help_text="Leave empty to generate VCH-… A typed code needs ≥ 12 characters (dashes not counted), ≥ 6 different.",
    )
    credit = MoneyField()
    description = forms.CharField(required=False, max_length=200)
    reason = forms.ChoiceField(choices=VoucherReason.choices)
    max_redemptions = forms.IntegerField(
        min_value=0, max_value=MAX_COUNT, initial=1, help_text="0 = unlimited."
    )
    valid_from = forms.DateTimeField(required=False, widget=DateTimeInput, help_text="Empty = now.")
    valid_until = forms.DateTimeField(
        required=False, widget=DateTimeInput, help_text="Empty = no end."
    )
    plan_code = forms.ChoiceField(
        required=False,
        label="Only for plan",
        error_messages={"invalid_choice": "Unknown plan “%(value)s”."},
    )
    recipient_email = forms.EmailField(
        required=False, help_text="The redeem link is e-mailed to this address."
    )
    is_active = forms.BooleanField(required=False, initial=True, label="Active")
    confirm_ended = forms.BooleanField(
        required=False,
        label="Issue it anyway",
        help_text="Its validity has already ended: nobody will be able to redeem it.",
    )

    def __init__(self, *args: Any, confirming: bool = False, **kwargs: Any) -> None:
        """`confirming`: the operator is asked to confirm a validity that has already ended (the
        checkbox is offered only then)."""
        super().__init__(*args, **kwargs)
        # the batch bound is the setting now, not as it was when the module was imported
        count = self.fields["count"]
        assert isinstance(count, forms.IntegerField)
        count.max_value = settings.VOUCHER_BATCH_MAX
        count.validators.append(MaxValueValidator(settings.VOUCHER_BATCH_MAX))
        count.widget.attrs["max"] = settings.VOUCHER_BATCH_MAX
        _choice(self, "plan_code").choices = plan_choices("— any plan —")
        self.fields["credit"].help_text = money_help()
        if not confirming:
            del self.fields["confirm_ended"]


class CreditAdjustForm(forms.Form):
    direction = forms.ChoiceField(choices=[("grant", "Grant credit"), ("deduct", "Deduct credit")])
    amount = MoneyField()
    reason = forms.ChoiceField(choices=[(r, r.title()) for r in ledger.ADJUST_REASONS])
    note = forms.CharField(max_length=200)


class PriceForm(forms.Form):
    amount = MoneyField(allow_zero=True, label="Monthly price")
    effective_from = forms.DateTimeField(
        required=False, widget=DateTimeInput, help_text="Empty = now."
    )


class TaxForm(forms.Form):
    rate = forms.DecimalField(
        min_value=0,
        max_value=100,
        max_digits=5,
        decimal_places=2,
        label="Tax rate (%)",
        help_text="Up to two decimals (5.25 %). Applies to quotes and invoices made from now on.",
    )


class PlanForm(forms.Form):
    name = forms.CharField(max_length=64)
    cpu_millicores = forms.IntegerField(min_value=0, max_value=MAX_COUNT, label="CPU (millicores)")
    memory_mib = forms.IntegerField(min_value=0, max_value=MAX_COUNT, label="Memory (MiB)")
    disk_gib = forms.IntegerField(min_value=0, max_value=MAX_COUNT, label="Disk (GiB)")
    is_flexi = forms.BooleanField(required=False, label="Flexi (pay as you go)")
    is_active = forms.BooleanField(required=False, label="Offered")


class AddOnForm(forms.Form):
    code = forms.SlugField(max_length=32)
    name = forms.CharField(max_length=64)
    unit = forms.CharField(max_length=32, initial="unit")
    amount = MoneyField(allow_zero=True, label="Monthly price per unit")


class RedeemEntryForm(forms.Form):
    code = forms.CharField(max_length=64, label="Voucher code")


class CheckoutForm(forms.Form):
    slug = forms.CharField(
        max_length=32,
        help_text="3–32 lower-case letters, digits and dashes, starting with a letter; cannot be changed.",
    )
    display_name = forms.CharField(max_length=128)
    plan = forms.ChoiceField(error_messages={"invalid_choice": "Unknown plan “%(value)s”."})
    region = forms.ChoiceField(error_messages={"invalid_choice": "Unknown region “%(value)s”."})
    code = forms.CharField(required=False, max_length=64, label="Voucher code")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _choice(self, "plan").choices = plan_choices()
        _choice(self, "region").choices = [
            (c.name, f"{c.name} ({c.region})") for c in HostCluster.objects.filter(env_type="prod")
        ]
        for addon in AddOn.objects.filter(is_active=True, kind=AddOnKind.ADDON):
            price = current_price(addon=addon)
            each = f" — {format_money(price.amount_minor, price.currency)} a month" if price else ""
            self.fields[f"addon_{addon.code}"] = forms.IntegerField(
                required=False,
                min_value=0,
                max_value=MAX_ADDON_QUANTITY,
                label=f"{addon.name} ({addon.unit}{each})",
            )

    def addon_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.fields if name.startswith("addon_")]

    def addons(self) -> dict[str, int]:
        return {
            name.removeprefix("addon_"): value
            for name, value in self.cleaned_data.items()
            if name.startswith("addon_") and value
        }


class RedeemIntoOrgForm(forms.Form):
    code = forms.CharField(max_length=64, widget=forms.HiddenInput)
    organization = forms.ChoiceField(
        error_messages={"invalid_choice": "Choose one of your Organizations."}
    )

    def __init__(self, *args: Any, orgs: Any = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _choice(self, "organization").choices = [(o.slug, o.display_name) for o in orgs]


class RefundForm(forms.Form):
    amount = MoneyField(label="Amount to refund")
    reason = forms.CharField(max_length=200)


class PaymentForm(forms.Form):
    reference = forms.CharField(max_length=128, help_text="Bank transfer id, receipt number …")


class PlanChangeForm(forms.Form):
    plan = forms.ChoiceField(error_messages={"invalid_choice": "Unknown plan “%(value)s”."})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _choice(self, "plan").choices = plan_choices()

"""Price book and quotes: the server computes every total; clients never send prices."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core import audit
from orgs.models import Sovereign

from .models import AddOn, AddOnKind, Plan, Price
from .money import format_money, tax_of

MAX_ADDON_QUANTITY = 1000


@dataclass
class QuoteLine:
    code: str
    name: str
    quantity: int
    unit_minor: int
    amount_minor: int


@dataclass
class Quote:
    plan_code: str
    currency: str
    tax_rate_bp: int
    lines: list[QuoteLine] = field(default_factory=list)
    subtotal_minor: int = 0
    tax_minor: int = 0
    total_minor: int = 0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["total"] = format_money(self.total_minor, self.currency)
        return data


def _sovereign_terms() -> tuple[str, int]:
    sovereign = Sovereign.objects.order_by("pk").only("currency", "tax_rate_bp").first()
    return (sovereign.currency, sovereign.tax_rate_bp) if sovereign else ("OMR", 0)


def current_price(
    *, plan: Plan | None = None, addon: AddOn | None = None, at: datetime | None = None
) -> Price | None:
    qs = Price.objects.filter(plan=plan) if plan is not None else Price.objects.filter(addon=addon)
    return qs.effective(at or timezone.now()).first()


def quote(
    *, plan_code: str, addons: dict[str, int] | None = None, at: datetime | None = None
) -> Quote:
    """Price `plan_code` plus add-on quantities at `at`; a ValidationError names the bad field."""
    at = at or timezone.now()
    currency, rate = _sovereign_terms()
    plan = Plan.objects.filter(code=plan_code, is_active=True).first()
    if plan is None:
        raise ValidationError({"plan": f"Unknown plan “{plan_code}”."})
    result = Quote(plan_code=plan.code, currency=currency, tax_rate_bp=rate)
    price = current_price(plan=plan, at=at)
    if price is None or price.currency != currency:
        raise ValidationError({"plan": f"Plan {plan.name} has no price in {currency} yet."})
    result.lines.append(QuoteLine(plan.code, plan.name, 1, price.amount_minor, price.amount_minor))
    for code, quantity in sorted((addons or {}).items()):
        result.lines.append(_addon_line(code, quantity, currency, at))
    result.subtotal_minor = sum(line.amount_minor for line in result.lines)
    result.tax_minor = tax_of(result.subtotal_minor, rate)
    result.total_minor = result.subtotal_minor + result.tax_minor
    return result


def _addon_line(code: str, quantity: int, currency: str, at: datetime) -> QuoteLine:
    field_name = f"addons.{code}"
    if not isinstance(quantity, int) or not 1 <= quantity <= MAX_ADDON_QUANTITY:
        raise ValidationError({field_name: f"Enter a quantity from 1 to {MAX_ADDON_QUANTITY}."})
    addon = AddOn.objects.filter(code=code, is_active=True, kind=AddOnKind.ADDON).first()
    if addon is None:
        raise ValidationError({field_name: f"Unknown add-on “{code}”."})
    price = current_price(addon=addon, at=at)
    if price is None or price.currency != currency:
        raise ValidationError({field_name: f"Add-on {addon.name} has no price in {currency} yet."})
    return QuoteLine(
        addon.code, addon.name, quantity, price.amount_minor, price.amount_minor * quantity
    )


def set_price(
    *,
    by: Any,
    plan: Plan | None = None,
    addon: AddOn | None = None,
    amount_minor: int,
    effective_from: datetime,
) -> Price:
    """A new effective-dated price (old prices stay for history and past quotes)."""
    if amount_minor < 0:
        raise ValidationError({"amount": "Enter a price of zero or more."})
    currency, _ = _sovereign_terms()
    with transaction.atomic():
        price = Price.objects.create(
            plan=plan,
            addon=addon,
            amount_minor=amount_minor,
            currency=currency,
            effective_from=effective_from,
            created_by=by,
        )
        target = plan or addon
        assert target is not None
        audit.record(
            "billing.price.set",
            actor=by,
            target=target,
            after={
                "amount_minor": amount_minor,
                "currency": currency,
                "effective_from": effective_from.isoformat(),
            },
        )
    return price


PLAN_FIELDS = ["name", "cpu_millicores", "memory_mib", "disk_gib", "is_flexi", "is_active"]


def update_plan(*, by: Any, plan: Plan, **values: Any) -> Plan:
    with transaction.atomic():
        before = audit.snapshot(plan, PLAN_FIELDS)
        for name, value in values.items():
            if name not in PLAN_FIELDS:
                raise ValueError(name)
            setattr(plan, name, value)
        plan.full_clean()
        plan.save()
        audit.record(
            "billing.plan.update",
            actor=by,
            target=plan,
            before=before,
            after=audit.snapshot(plan, PLAN_FIELDS),
        )
    return plan


def create_addon(*, by: Any, code: str, name: str, unit: str, amount_minor: int) -> AddOn:
    if AddOn.objects.filter(code=code).exists():
        raise ValidationError({"code": f"An add-on “{code}” already exists."})
    addon = AddOn(code=code, name=name, unit=unit)
    addon.full_clean()
    with transaction.atomic():
        addon.save()
        audit.record(
            "billing.addon.create", actor=by, target=addon, after={"code": code, "name": name}
        )
        set_price(by=by, addon=addon, amount_minor=amount_minor, effective_from=timezone.now())
    return addon


# --- Application prices (read by the marketplace: install preview, Blueprint page) -------------

APP_SIZE_CODE = "app-{size}"  # monthly price of one Application of that size, per active region
APP_STANDBY_CODE = "app-standby"  # monthly price of each hot-standby region of an Application
TOPOLOGIES = ("single-region", "active-active", "active-hotstandby")


@dataclass(frozen=True)
class AppUnit:
    """What an Application is priced by: its size and topology (name only labels the line)."""

    name: str
    size: str
    placement: str
    regions: int


def _application_rate(code: str, currency: str, at: datetime) -> tuple[AddOn, int]:
    addon = AddOn.objects.filter(code=code, is_active=True, kind=AddOnKind.APPLICATION).first()
    price = current_price(addon=addon, at=at) if addon else None
    if addon is None or price is None or price.currency != currency:
        raise ValidationError({"price": f"The price book has no price for “{code}” in {currency}."})
    return addon, price.amount_minor


def application_quote(units: list[AppUnit], *, at: datetime | None = None) -> Quote:
    """The monthly price of Applications by size and topology: each active region at the size's
    price (active-active runs every region), each hot-standby region at the standby price.
    A ValidationError (`price`) when the price book lacks a rate."""
    at = at or timezone.now()
    currency, rate = _sovereign_terms()
    result = Quote(plan_code="", currency=currency, tax_rate_bp=rate)
    rates: dict[str, tuple[AddOn, int]] = {}

    def rate_of(code: str) -> tuple[AddOn, int]:
        if code not in rates:
            rates[code] = _application_rate(code, currency, at)
        return rates[code]

    for unit in units:
        if unit.placement not in TOPOLOGIES or unit.regions < 1:
            raise ValidationError(
                {"placement": f"Cannot price {unit.placement} on {unit.regions}."}
            )
        active = unit.regions if unit.placement == "active-active" else 1
        standby = unit.regions - 1 if unit.placement == "active-hotstandby" else 0
        addon, amount = rate_of(APP_SIZE_CODE.format(size=unit.size))
        result.lines.append(
            QuoteLine(addon.code, f"{unit.name}: {addon.name}", active, amount, amount * active)
        )
        if standby:
            addon, amount = rate_of(APP_STANDBY_CODE)
            result.lines.append(
                QuoteLine(
                    addon.code, f"{unit.name}: {addon.name}", standby, amount, amount * standby
                )
            )
    result.subtotal_minor = sum(line.amount_minor for line in result.lines)
    result.tax_minor = tax_of(result.subtotal_minor, rate)
    result.total_minor = result.subtotal_minor + result.tax_minor
    return result

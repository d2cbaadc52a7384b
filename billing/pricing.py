"""Price book and quotes: the server computes every total; clients never send prices."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core import audit
from core.actors import Actor, person
from orgs.models import Sovereign

from .models import AddOn, Plan, Price
from .money import format_money, lines_tax

MAX_ADDON_QUANTITY = 1000


@dataclass
class QuoteLine:
    code: str
    name: str
    quantity: int
    unit_minor: int
    amount_minor: int
    kind: str = "plan"  # plan | addon | app_extra | proration


class PriceBook:
    """Every price in force at `at` in the Sovereign's currency, read in one query.

    A quote asks it for many lines (a plan, add-ons, one extra per Application); reading the
    whole effective price list once keeps a quote's cost flat in the number of lines.
    """

    def __init__(self, at: datetime | None = None) -> None:
        self.at = at or timezone.now()
        self.currency, self.tax_rate_bp = _sovereign_terms()
        self.plans: dict[str, tuple[Plan, Price | None]] = {}
        self.addons: dict[str, tuple[AddOn, Price | None]] = {}
        newest: dict[tuple[str, int], Price] = {}
        rows = (
            Price.objects.filter(effective_from__lte=self.at)
            .select_related("plan", "addon")
            .order_by("effective_from", "pk")
        )
        for price in rows:  # later rows win: the newest effective price of each item
            key = ("plan", price.plan_id) if price.plan_id else ("addon", price.addon_id)
            newest[key] = price  # type: ignore[index]
        for price in newest.values():
            if price.plan is not None:
                self.plans[price.plan.code] = (price.plan, price)
            elif price.addon is not None:
                self.addons[price.addon.code] = (price.addon, price)

    def _amount(self, price: Price | None) -> int | None:
        return price.amount_minor if price is not None and price.currency == self.currency else None

    def plan_line(self, code: str, field_name: str = "plan") -> QuoteLine:
        plan, price = self.plans.get(code, (None, None))
        if plan is None:
            plan = Plan.objects.filter(code=code).first()
        if plan is None or not plan.is_active:
            raise ValidationError({field_name: f"Unknown plan “{code}”."})
        amount = self._amount(price)
        if amount is None:
            raise ValidationError(
                {field_name: f"Plan {plan.name} has no price in {self.currency} yet."}
            )
        return QuoteLine(plan.code, plan.name, 1, amount, amount, "plan")

    def addon_line(self, code: str, quantity: int, *, kind: str = "addon") -> QuoteLine:
        field_name = f"addons.{code}"
        if not isinstance(quantity, int) or not 1 <= quantity <= MAX_ADDON_QUANTITY:
            raise ValidationError({field_name: f"Enter a quantity from 1 to {MAX_ADDON_QUANTITY}."})
        addon, price = self.addons.get(code, (None, None))
        if addon is None or not addon.is_active or addon.kind != kind:
            raise ValidationError({field_name: f"Unknown add-on “{code}”."})
        amount = self._amount(price)
        if amount is None:
            raise ValidationError(
                {field_name: f"Add-on {addon.name} has no price in {self.currency} yet."}
            )
        return QuoteLine(addon.code, addon.name, quantity, amount, amount * quantity, kind)

    def plan_price(self, code: str) -> int:
        return self.plan_line(code).amount_minor


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
    book = PriceBook(at)
    result = Quote(plan_code=plan_code, currency=book.currency, tax_rate_bp=book.tax_rate_bp)
    result.lines.append(book.plan_line(plan_code))
    for code, quantity in sorted((addons or {}).items()):
        result.lines.append(book.addon_line(code, quantity))
    result.subtotal_minor = sum(line.amount_minor for line in result.lines)
    result.tax_minor = lines_tax([line.amount_minor for line in result.lines], book.tax_rate_bp)
    result.total_minor = result.subtotal_minor + result.tax_minor
    return result


def set_price(
    *,
    by: Actor,
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
            created_by=person(by),
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


def set_tax_rate(*, by: Actor, rate_bp: int) -> Sovereign:
    """The Sovereign's tax rate in basis points (500 = 5 %); audited. Issued invoices and shown
    quotes keep the rate they were made with."""
    if not 0 <= rate_bp <= 10_000:
        raise ValidationError({"rate": "Enter a rate from 0 to 100 %."})
    with transaction.atomic():
        sovereign = Sovereign.objects.select_for_update().order_by("pk").first()
        if sovereign is None:
            raise ValidationError({"rate": "No Sovereign is set up yet."})
        before = {"tax_rate_bp": sovereign.tax_rate_bp}
        sovereign.tax_rate_bp = rate_bp
        sovereign.save(update_fields=["tax_rate_bp"])
        audit.record(
            "billing.tax.set",
            actor=by,
            target=sovereign,
            before=before,
            after={"tax_rate_bp": rate_bp},
        )
    return sovereign


PLAN_FIELDS = ["name", "cpu_millicores", "memory_mib", "disk_gib", "is_flexi", "is_active"]


def update_plan(*, by: Actor, plan: Plan, **values: Any) -> Plan:
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


def create_addon(*, by: Actor, code: str, name: str, unit: str, amount_minor: int) -> AddOn:
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

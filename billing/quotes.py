"""Quotes: what a customer sees before money moves — lines, proration, tax, credit, due now, due each
period — kept as a Quote row whose id travels signed and expires (`QUOTE_TTL_SECONDS`).

`for_new_organization` and `for_plan_change` compute an unsaved Quote; `save` stores it;
`refresh` computes it again from the same inputs with today's prices, tax rate, balance and
subscription, so that confirming (billing.checkout) can refuse when anything the customer was
shown has changed.
"""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from core.actors import Actor, person
from core.errors import ConflictError
from orgs.models import Organization

from . import extras, vouchers
from .models import (
    LedgerEntry,
    Order,
    OrderStatus,
    Quote,
    QuoteKind,
    Subscription,
    SubscriptionStatus,
)
from .money import format_money, lines_tax
from .pricing import PriceBook, QuoteLine

SALT = "billing.quote"


class NoChange(ValidationError):
    """The Organization already has what was asked for: nothing to quote, nothing to charge."""


def add_month(moment: datetime) -> datetime:
    """The same day and time a calendar month later (the 31st becomes the month's last day)."""
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def live_subscription(org: Organization) -> Subscription | None:
    return Subscription.objects.filter(organization=org, status=SubscriptionStatus.ACTIVE).first()


def recurring_lines(
    book: PriceBook, plan_code: str, addons: dict[str, int], org: Organization | None
) -> list[QuoteLine]:
    """A period's lines: the plan, the add-ons and the Organization's Application extras."""
    lines = [book.plan_line(plan_code)]
    lines += [book.addon_line(code, qty) for code, qty in sorted((addons or {}).items())]
    return lines + extras.extra_lines(org, book)


def _as_json(lines: list[QuoteLine]) -> list[dict[str, Any]]:
    return [dict(line.__dict__) for line in lines]


def build(
    *,
    kind: str,
    book: PriceBook,
    plan_code: str,
    lines: list[QuoteLine],
    recurring: list[QuoteLine],
    credit_minor: int,
    period: tuple[datetime | None, datetime | None],
    org: Organization | None,
    inputs: dict[str, Any],
    by: Actor,
) -> Quote:
    subtotal = sum(line.amount_minor for line in lines)
    tax = lines_tax([line.amount_minor for line in lines], book.tax_rate_bp)
    total = subtotal + tax
    applied = min(max(credit_minor, 0), total)
    recurring_subtotal = sum(line.amount_minor for line in recurring)
    return Quote(
        kind=kind,
        organization=org,
        requested_by=person(by),
        inputs=inputs,
        plan_code=plan_code,
        lines=_as_json(lines),
        recurring_lines=_as_json(recurring),
        currency=book.currency,
        tax_rate_bp=book.tax_rate_bp,
        subtotal_minor=subtotal,
        tax_minor=tax,
        total_minor=total,
        credit_applied_minor=applied,
        due_now_minor=total - applied,
        recurring_minor=recurring_subtotal
        + lines_tax([line.amount_minor for line in recurring], book.tax_rate_bp),
        period_start=period[0],
        period_end=period[1],
    )


def for_new_organization(
    *,
    by: Actor,
    slug: str,
    display_name: str,
    region: str,
    plan_code: str,
    addons: dict[str, int] | None = None,
    voucher_code: str = "",
    at: datetime | None = None,
) -> Quote:
    """The sign-up wizard's quote: the first month of `plan_code`, less the voucher's credit."""
    book = PriceBook(at)
    lines = recurring_lines(book, plan_code, addons or {}, None)
    credit = 0
    code = vouchers.normalize(voucher_code)
    if code:
        found = vouchers.preview(code)
        if found.status == "not_valid":
            raise vouchers.VoucherNotValid()
        if found.status == "ended":
            raise vouchers.VoucherEnded()
        if found.plan_code and found.plan_code != plan_code:
            raise ValidationError({"code": f"This voucher is for the {found.plan_code} plan only."})
        credit = found.credit_minor
    inputs = {
        "slug": slug,
        "display_name": display_name,
        "region": region,
        "plan": plan_code,
        "addons": dict(sorted((addons or {}).items())),
        "voucher_code": code,
    }
    return build(
        kind=QuoteKind.NEW,
        book=book,
        plan_code=plan_code,
        lines=lines,
        recurring=lines,
        credit_minor=credit,
        period=(None, None),
        org=None,
        inputs=inputs,
        by=by,
    )


def _balance_and_awaiting(org: Organization) -> tuple[int, bool]:
    """The credit balance and whether a plan order awaits payment, in one query (a month's
    usage invoice awaiting payment does not hold a plan change up)."""
    entries = (
        LedgerEntry.objects.filter(organization=OuterRef("pk"))
        .order_by()
        .values("organization")
        .annotate(total=Sum("amount_minor"))
        .values("total")
    )
    awaiting = Order.objects.filter(
        organization=OuterRef("pk"), status=OrderStatus.AWAITING_PAYMENT
    ).exclude(kind=QuoteKind.USAGE)
    balance, waiting = (
        Organization.objects.filter(pk=org.pk)
        .annotate(balance=Coalesce(Subquery(entries), 0), waiting=Exists(awaiting))
        .values_list("balance", "waiting")
        .get()
    )
    return int(balance), bool(waiting)


_UNSET: Any = object()


def for_plan_change(
    *,
    by: Actor,
    org: Organization,
    plan_code: str,
    at: datetime | None = None,
    priced_at: Any = None,
    sub: Any = _UNSET,
) -> Quote:
    """Moving `org` to `plan_code`: a first purchase, an upgrade now (prorated) or a downgrade at
    the end of the period. Asking for the current plan raises NoChange.

    `priced_at` (confirmation) prices with today's price book but keeps the proration of the
    moment the quote was shown (`at`), so seconds passing never count as a price change. A caller
    that has read the live subscription already passes it as `sub`."""
    now = at or timezone.now()
    book = priced_at or PriceBook(now)
    if sub is _UNSET:
        sub = live_subscription(org)
    current = sub.plan_code if sub else org.plan_code
    if plan_code == current:
        raise NoChange({"plan": f"{org.display_name} is already on plan {plan_code.upper()}."})
    balance, awaiting = _balance_and_awaiting(org)
    if awaiting:
        raise ConflictError(
            {"plan": "An order is already awaiting payment; pay or cancel it first."}
        )
    inputs = {"plan": plan_code}
    if sub is None:
        lines = recurring_lines(book, plan_code, {}, org)
        return build(
            kind=QuoteKind.PURCHASE,
            book=book,
            plan_code=plan_code,
            lines=lines,
            recurring=lines,
            credit_minor=balance,
            period=(None, None),
            org=org,
            inputs=inputs,
            by=by,
        )
    recurring = recurring_lines(book, plan_code, sub.addons, org)
    new_price = recurring[0].amount_minor
    if new_price <= sub.plan_unit_minor:
        return build(
            kind=QuoteKind.DOWNGRADE,
            book=book,
            plan_code=plan_code,
            lines=[],
            recurring=recurring,
            credit_minor=0,
            period=(sub.period_end, add_month(sub.period_end)),
            org=org,
            inputs=inputs,
            by=by,
        )
    lines = _proration(sub, book, plan_code, new_price, now)
    return build(
        kind=QuoteKind.UPGRADE,
        book=book,
        plan_code=plan_code,
        lines=lines,
        recurring=recurring,
        credit_minor=balance,
        period=(sub.period_start, sub.period_end),
        org=org,
        inputs=inputs,
        by=by,
    )


def _proration(
    sub: Subscription, book: PriceBook, plan_code: str, new_price: int, now: datetime
) -> list[QuoteLine]:
    """Credit for the unused time of the current plan, charge for the rest of the period."""
    whole = max(int((sub.period_end - sub.period_start).total_seconds()), 1)
    left = min(max(int((sub.period_end - now).total_seconds()), 0), whole)
    unused = _share(sub.plan_unit_minor, left, whole)
    remaining = _share(new_price, left, whole)
    days = (left + 43200) // 86400
    old_name = book.plans.get(sub.plan_code, (None, None))[0]
    new_name = book.plan_line(plan_code).name
    return [
        QuoteLine(
            sub.plan_code,
            f"Unused time on {old_name or sub.plan_code.upper()} ({days} days left)",
            1,
            -unused,
            -unused,
            "proration",
        ),
        QuoteLine(
            plan_code,
            f"{new_name} for the rest of the period",
            1,
            remaining,
            remaining,
            "proration",
        ),
    ]


def _share(amount: int, part: int, whole: int) -> int:
    """amount × part / whole, rounded half up, in integers."""
    return (2 * amount * part + whole) // (2 * whole)


def refresh(quote: Quote, *, at: datetime | None = None, sub: Any = _UNSET) -> Quote:
    """The same request priced again now (prices, tax, credit, subscription of this moment)."""
    inputs = quote.inputs
    book = PriceBook(at)
    if quote.kind == QuoteKind.NEW:
        fresh = for_new_organization(
            by=None,
            slug=inputs["slug"],
            display_name=inputs["display_name"],
            region=inputs["region"],
            plan_code=inputs["plan"],
            addons=inputs.get("addons") or {},
            voucher_code=inputs.get("voucher_code", ""),
            at=book.at,
        )
    else:
        assert quote.organization is not None
        fresh = for_plan_change(
            by=None,
            org=quote.organization,
            plan_code=inputs["plan"],
            at=quote.created_at,
            priced_at=book,
            sub=sub,
        )
    fresh.requested_by_id = quote.requested_by_id
    return fresh


def save(quote: Quote) -> Quote:
    now = timezone.now()
    quote.created_at = now
    quote.expires_at = now + timedelta(seconds=settings.QUOTE_TTL_SECONDS)
    quote.save()
    return quote


def token(quote: Quote) -> str:
    return signing.dumps(quote.pk, salt=SALT)


def unsign(value: str) -> int | None:
    """The quote id in a token, or None when it was tampered with (expiry is the row's)."""
    try:
        pk = signing.loads(value, salt=SALT)
    except signing.BadSignature:
        return None
    return pk if isinstance(pk, int) else None


def summary(quote: Quote) -> str:
    return f"{format_money(quote.due_now_minor, quote.currency)} due now"

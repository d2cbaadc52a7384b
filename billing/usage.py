"""Usage: what platform components measured, recorded once, and rated into invoice lines.

A record is (organization, source, resource, kind, sku, quantity, unit, window, region, labels).
(source, resource, window_start, window_end) is unique: a record sent again — a retried batch, a
NATS redelivery — is accepted and ignored (`INSERT … ON CONFLICT DO NOTHING`). Records come from
`POST /api/v1/usage` (batches of up to `USAGE_BATCH_MAX`) and from the JetStream subject
`catalyst.usage.recorded` (`manage.py consume_usage`); a batch is validated whole and written
whole, or refused with field paths (`records[3].quantity`) and nothing written.

Rating: a month's quantities per Organization and SKU (summed in SQL over the records whose window
starts in the month) are priced by the usage price in force at the start of the month — tiers in
minor units per unit, `graduated` (each tier prices the part of the quantity in it) or `volume`
(the tier the whole quantity reaches prices all of it) — and each line is rounded half up to a
minor unit. `flexi_only` SKUs (CPU, memory, storage) are charged to Flexi Organizations only:
fixed plans include their quota.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from core import events
from orgs.models import Organization

from .models import TierMode, UsagePrice, UsageRecord
from .money import exponent

MAX_QUANTITY = Decimal("1e15")
MAX_WINDOW = timedelta(days=31)
MAX_LABELS = 32
_TEXT = {"source": 64, "resource": 255, "kind": 32, "sku": 64, "unit": 32, "region": 64}
_REQUIRED = ("organization", "source", "resource", "kind", "sku", "quantity", "unit")
_COLUMNS = (
    "organization_id",
    "source",
    "resource",
    "kind",
    "sku",
    "quantity",
    "unit",
    "window_start",
    "window_end",
    "region",
    "labels",
    "recorded_at",
)


@dataclass(frozen=True)
class Ingested:
    received: int
    recorded: int

    @property
    def duplicates(self) -> int:
        return self.received - self.recorded

    def as_dict(self) -> dict[str, int]:
        return {"received": self.received, "recorded": self.recorded, "duplicates": self.duplicates}


def batch_max() -> int:
    return int(getattr(settings, "USAGE_BATCH_MAX", 1000))


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        parsed = datetime.fromisoformat(value)  # ISO 8601, `Z` included (Python ≥ 3.11)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None and parsed.utcoffset() is not None else None


def _quantity(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (int, str, float)):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    if not number.is_finite() or number < 0 or number >= MAX_QUANTITY:
        return None
    if number != number.quantize(Decimal("0.000001")):
        return None
    return number


def _check(index: int, item: Any, errors: dict[str, list[str]]) -> dict[str, Any] | None:
    """One record, cleaned; or its problems added to `errors` under `records[<index>].<field>`."""
    at = f"records[{index}]"
    if not isinstance(item, dict):
        errors[at] = ["Each record is an object."]
        return None
    found: dict[str, list[str]] = {}
    for name in _REQUIRED:
        if item.get(name) in (None, ""):
            found[name] = ["This field is required."]
    for name, limit in _TEXT.items():
        value = item.get(name, "")
        if not isinstance(value, str):
            found.setdefault(name, []).append("Must be a string.")
        elif len(value) > limit:
            found.setdefault(name, []).append(f"At most {limit} characters.")
    quantity = _quantity(item.get("quantity"))
    if quantity is None and "quantity" not in found:
        found["quantity"] = [
            "A number from 0 to 10^15 with at most 6 decimals (a string keeps it exact)."
        ]
    start, end = _moment(item.get("window_start")), _moment(item.get("window_end"))
    for name, value in (("window_start", start), ("window_end", end)):
        if value is None:
            found[name] = ["An ISO 8601 date and time with its UTC offset."]
    if start and end and not timedelta(0) < end - start <= MAX_WINDOW:
        found["window_end"] = ["After window_start, and at most 31 days after it."]
    labels = item.get("labels") or {}
    if not isinstance(labels, dict) or len(labels) > MAX_LABELS:
        found["labels"] = [f"An object of at most {MAX_LABELS} string values."]
    elif not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        found["labels"] = ["Label keys and values are strings."]
    for name, messages in found.items():
        errors[f"{at}.{name}"] = messages
    if found:
        return None
    return {
        "organization": item["organization"],
        "source": item["source"],
        "resource": item["resource"],
        "kind": item["kind"],
        "sku": item["sku"],
        "quantity": quantity,
        "unit": item["unit"],
        "window_start": start,
        "window_end": end,
        "region": item.get("region") or "",
        "labels": labels,
    }


def clean(records: Any) -> list[dict[str, Any]]:
    """The batch, validated whole (ValidationError with field paths; nothing is written)."""
    if not isinstance(records, list) or not records:
        raise ValidationError({"records": [f"Send a list of 1 to {batch_max()} records."]})
    if len(records) > batch_max():
        raise ValidationError(
            {"records": [f"At most {batch_max()} records per batch ({len(records)} sent)."]}
        )
    errors: dict[str, list[str]] = {}
    cleaned = [_check(i, item, errors) for i, item in enumerate(records)]
    good = [row for row in cleaned if row is not None]
    slugs = {row["organization"] for row in good}
    orgs = dict(Organization.objects.filter(slug__in=slugs).values_list("slug", "pk"))
    skus = set(UsagePrice.objects.filter(sku__in={row["sku"] for row in good}).values_list("sku"))
    known_skus = {sku for (sku,) in skus}
    for index, row in enumerate(cleaned):
        if row is None:
            continue
        if row["organization"] not in orgs:
            errors[f"records[{index}].organization"] = ["No such Organization."]
        if row["sku"] not in known_skus:
            errors[f"records[{index}].sku"] = ["No usage price has this SKU."]
        row["organization_id"] = orgs.get(row["organization"])
    if errors:
        raise ValidationError(errors)
    return [row for row in cleaned if row is not None]


def _insert(rows: list[dict[str, Any]], now: datetime) -> list[int]:
    """`INSERT … ON CONFLICT DO NOTHING RETURNING id`: the ids of the rows that were new.

    PostgreSQL gets one array per column (`INSERT … SELECT … FROM unnest(…)`): a short statement
    whatever the batch size (a VALUES list of 12,000 placeholders costs the driver more to parse
    than the server to insert). SQLite gets a VALUES list with values adapted once per kind."""
    if connection.vendor == "postgresql":
        return _insert_unnest(rows, now)
    ops = connection.ops
    labels = UsageRecord._meta.get_field("labels")
    stamp = ops.adapt_datetimefield_value(now)
    table = ops.quote_name(UsageRecord._meta.db_table)
    columns = ", ".join(ops.quote_name(c) for c in _COLUMNS)
    row_sql = "(" + ", ".join(["%s"] * len(_COLUMNS)) + ")"
    params: list[Any] = []
    for row in rows:
        params += [
            row["organization_id"],
            row["source"],
            row["resource"],
            row["kind"],
            row["sku"],
            ops.adapt_decimalfield_value(row["quantity"], 24, 6),
            row["unit"],
            ops.adapt_datetimefield_value(row["window_start"]),
            ops.adapt_datetimefield_value(row["window_end"]),
            row["region"],
            labels.get_db_prep_save(row["labels"], connection),
            stamp,
        ]
    # Only quoted model column names and placeholders are formatted in: values are parameters.
    sql = (
        f"INSERT INTO {table} ({columns}) VALUES {', '.join([row_sql] * len(rows))} "  # noqa: S608
        "ON CONFLICT DO NOTHING RETURNING id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [pk for (pk,) in cursor.fetchall()]


# PostgreSQL array type of each column but the last (`recorded_at`, one value for the batch).
_ARRAY_TYPES = (
    "bigint[]",
    "text[]",
    "text[]",
    "text[]",
    "text[]",
    "numeric[]",
    "text[]",
    "timestamptz[]",
    "timestamptz[]",
    "text[]",
    "text[]",  # labels as JSON text, cast per row to jsonb
)


def _insert_unnest(rows: list[dict[str, Any]], now: datetime) -> list[int]:
    ops = connection.ops
    table = ops.quote_name(UsageRecord._meta.db_table)
    columns = ", ".join(ops.quote_name(c) for c in _COLUMNS)
    names = [f"c{i}" for i in range(len(_ARRAY_TYPES))]
    arrays = ", ".join(f"%s::{kind}" for kind in _ARRAY_TYPES)
    selected = ", ".join(names[:-1]) + f", {names[-1]}::jsonb, %s"
    params: list[Any] = [
        now,  # the SELECT list's placeholder comes before unnest's
        [row["organization_id"] for row in rows],
        [row["source"] for row in rows],
        [row["resource"] for row in rows],
        [row["kind"] for row in rows],
        [row["sku"] for row in rows],
        [row["quantity"] for row in rows],
        [row["unit"] for row in rows],
        [row["window_start"] for row in rows],
        [row["window_end"] for row in rows],
        [row["region"] for row in rows],
        [json.dumps(row["labels"], sort_keys=True) for row in rows],
    ]
    # Only quoted model column names, fixed type names and placeholders are formatted in.
    sql = (
        f"INSERT INTO {table} ({columns}) SELECT {selected} "  # noqa: S608
        f"FROM unnest({arrays}) AS t({', '.join(names)}) "
        "ON CONFLICT DO NOTHING RETURNING id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [pk for (pk,) in cursor.fetchall()]


def ingest(records: Any, *, publish: bool = True) -> Ingested:
    """Record a batch; duplicates (already recorded, or twice in the batch) are ignored.
    `publish`: announce the new records as `catalyst.usage.recorded` (not for records that came
    from that subject)."""
    rows = clean(records)
    now = timezone.now()
    with transaction.atomic():
        ids = _insert(rows, now)
        if publish and ids:
            recorded = set(ids)
            new = UsageRecord.objects.filter(pk__in=recorded).select_related("organization")
            events.emit(
                "usage.recorded",
                {
                    "count": len(ids),
                    "records": [
                        {
                            "organization": r.organization.slug,
                            "source": r.source,
                            "resource": r.resource,
                            "kind": r.kind,
                            "sku": r.sku,
                            "quantity": str(r.quantity.normalize()),
                            "unit": r.unit,
                            "window_start": r.window_start,
                            "window_end": r.window_end,
                            "region": r.region,
                            "labels": r.labels,
                        }
                        for r in new
                    ]
                    if events.enabled()
                    else [],
                },
            )
    return Ingested(received=len(rows), recorded=len(ids))


# --- rating -----------------------------------------------------------------------------------


def month_bounds(period: str) -> tuple[datetime, datetime]:
    """`2026-11` → the first instant of that month and of the next (in TIME_ZONE)."""
    try:
        start = datetime.strptime(period, "%Y-%m")
    except (TypeError, ValueError):
        raise ValidationError({"period": "A month as YYYY-MM, e.g. 2026-11."}) from None
    if not 2000 <= start.year <= 2999:
        raise ValidationError({"period": "A month as YYYY-MM, e.g. 2026-11."})
    end = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    tz = timezone.get_default_timezone()
    return timezone.make_aware(start, tz), timezone.make_aware(end, tz)


def _tiers(price: UsagePrice) -> list[tuple[Decimal | None, Decimal]]:
    return [
        (
            None if tier.get("up_to") in (None, "") else Decimal(str(tier["up_to"])),
            Decimal(str(tier["unit_minor"])),
        )
        for tier in price.tiers
    ]


def rated_minor(price: UsagePrice, quantity: Decimal) -> int:
    """The amount of `quantity` at `price`, rounded half up to a minor unit."""
    tiers = _tiers(price)
    amount = Decimal(0)
    if price.mode == TierMode.VOLUME:
        for up_to, unit in tiers:
            if up_to is None or quantity <= up_to:
                amount = quantity * unit
                break
    else:
        floor = Decimal(0)
        for up_to, unit in tiers:
            top = quantity if up_to is None else min(quantity, up_to)
            if top > floor:
                amount += (top - floor) * unit
            if up_to is None or quantity <= up_to:
                break
            floor = up_to
    return int(amount.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _per_unit(value: Decimal, currency: str) -> str:
    major = value / (Decimal(10) ** exponent(currency))
    return f"{currency} {major.normalize():f}"


def describe(price: UsagePrice) -> str:
    """The tiers as shown on the invoice: `0–1000 at OMR 0.012, over 1000 at OMR 0.01 per …`."""
    parts = []
    floor = Decimal(0)
    for up_to, unit in _tiers(price):
        rate = _per_unit(unit, price.currency)
        parts.append(
            f"over {floor.normalize():f} at {rate}"
            if up_to is None
            else f"{floor.normalize():f}–{up_to.normalize():f} at {rate}"
        )
        floor = up_to or floor
    mode = "" if price.mode == TierMode.GRADUATED else " (volume)"
    return f"{', '.join(parts)} per {price.unit}{mode}"


class UsageBook:
    """The usage prices in force at `at`, newest per SKU, in the Sovereign's currency."""

    def __init__(self, at: datetime, currency: str) -> None:
        self.prices: dict[str, UsagePrice] = {}
        rows = UsagePrice.objects.filter(effective_from__lte=at, currency=currency).order_by(
            "effective_from", "pk"
        )
        for price in rows:
            self.prices[price.sku] = price


@dataclass(frozen=True)
class RatedLine:
    sku: str
    description: str
    quantity: Decimal
    unit: str
    unit_price: str
    amount_minor: int


def quantities(
    start: datetime, end: datetime, org_ids: Iterable[int] | None = None
) -> dict[int, dict[str, Decimal]]:
    """{organization id: {sku: quantity}} of the records whose window starts in [start, end)."""
    qs = UsageRecord.objects.filter(window_start__gte=start, window_start__lt=end)
    if org_ids is not None:
        qs = qs.filter(organization_id__in=list(org_ids))
    out: dict[int, dict[str, Decimal]] = {}
    for org_id, sku, total in (
        qs.values_list("organization_id", "sku")
        .annotate(total=Sum("quantity"))
        .values_list("organization_id", "sku", "total")
    ):
        out.setdefault(org_id, {})[sku] = Decimal(total)
    return out


def rate(book: UsageBook, used: dict[str, Decimal], *, flexi: bool) -> list[RatedLine]:
    """One line per SKU used (a SKU without a price at that date is an error: never free by
    accident; a flexi-only SKU on a fixed plan is included in the plan and not listed)."""
    lines = []
    for sku, quantity in sorted(used.items()):
        price = book.prices.get(sku)
        if price is None:
            raise ValidationError({"sku": f"No usage price for “{sku}” at the start of the month."})
        if price.flexi_only and not flexi:
            continue
        lines.append(
            RatedLine(
                sku=sku,
                description=f"{price.name} ({sku})",
                quantity=quantity,
                unit=price.unit,
                unit_price=describe(price),
                amount_minor=rated_minor(price, quantity),
            )
        )
    return lines

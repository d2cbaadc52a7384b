"""The credit ledger: append-only signed entries; the balance is their sum."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from core import audit
from core.actors import Actor
from orgs.models import Organization, Sovereign

from .models import LedgerEntry
from .money import amount_problem

ADJUST_REASONS = ("goodwill", "correction", "compensation", "refund", "other")


def currency() -> str:
    sovereign = Sovereign.objects.order_by("pk").only("currency").first()
    return sovereign.currency if sovereign else "OMR"


def balance(org: Organization) -> int:
    return LedgerEntry.objects.filter(organization=org).balance()


def append(
    *,
    org: Organization,
    amount_minor: int,
    reason: str,
    reference: str = "",
    note: str = "",
    actor: Any = None,
    in_currency: str = "",
) -> LedgerEntry:
    """One entry, inside the caller's transaction (callers audit the business event).
    `in_currency` saves a read when the caller knows it (an order's currency)."""
    if amount_minor == 0:
        raise ValidationError({"amount": "A ledger entry needs a non-zero amount."})
    return LedgerEntry.objects.create(
        organization=org,
        amount_minor=amount_minor,
        currency=in_currency or currency(),
        reason=reason,
        reference=reference,
        note=note,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
    )


def append_pair(
    *,
    org: Organization,
    amount_minor: int,
    received: tuple[str, str, str],
    spent: tuple[str, str],
    actor: Any = None,
    in_currency: str = "",
) -> list[LedgerEntry]:
    """Money received (+) and spent at once (−) as two entries written together: the balance is
    unchanged and the movement stays visible. `received` is (reason, reference, note), `spent`
    (reason, reference)."""
    if amount_minor <= 0:
        raise ValidationError({"amount": "A payment needs a positive amount."})
    common = {
        "organization": org,
        "currency": in_currency or currency(),
        "actor": actor if getattr(actor, "is_authenticated", False) else None,
    }
    return LedgerEntry.objects.bulk_create(
        [
            LedgerEntry(
                amount_minor=amount_minor,
                reason=received[0],
                reference=received[1],
                note=received[2][:200],
                **common,
            ),
            LedgerEntry(amount_minor=-amount_minor, reason=spent[0], reference=spent[1], **common),
        ]
    )


def adjust_credit(
    *, by: Actor, org: Organization, amount_minor: int, direction: str, reason: str, note: str
) -> LedgerEntry:
    """An operator grants (+) or deducts (-) credit with a reason; audited."""
    errors: dict[str, str] = {}
    if amount_minor <= 0:
        errors["amount"] = "Enter a positive amount; choose grant or deduct for the direction."
    elif problem := amount_problem(amount_minor, currency()):
        errors["amount"] = problem
    if direction not in ("grant", "deduct"):
        errors["direction"] = "Choose grant or deduct."
    if reason not in ADJUST_REASONS:
        errors["reason"] = f"Choose one of {', '.join(ADJUST_REASONS)}."
    if not (note or "").strip():
        errors["note"] = "Say why (it goes into the ledger and the audit trail)."
    if errors:
        raise ValidationError(errors)
    signed = amount_minor if direction == "grant" else -amount_minor
    with transaction.atomic():
        Organization.objects.select_for_update().filter(pk=org.pk).first()
        entry = append(
            org=org,
            amount_minor=signed,
            reason=f"operator:{reason}",
            reference=f"adjust:{direction}",
            note=note.strip(),
            actor=by,
        )
        audit.record(
            f"billing.credit.{direction}",
            actor=by,
            target=org,
            org_slug=org.slug,
            after={
                "amount_minor": signed,
                "reason": reason,
                "note": note.strip(),
                "entry": entry.pk,
            },
        )
    return entry

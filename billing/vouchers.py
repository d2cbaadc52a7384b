"""Vouchers: issue (one or a batch), preview, redeem (row-locked, once per Organization), revoke."""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import F, Value
from django.db.models.functions import Replace
from django.utils import timezone

from core import audit, links, outbox
from core.actors import Actor, person
from core.errors import ConflictError
from orgs.models import Organization, Sovereign

from . import ledger, money
from .models import ENDED_STATES, Plan, Redemption, Voucher, VoucherReason, VoucherState

ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
PREFIX = "VCH-"
RANDOM_LENGTH = 12
MIN_TYPED_LENGTH = 12
MIN_DISTINCT = 6
MAX_CODE_LENGTH = 64
EMAIL_TASK = "billing.tasks.send_voucher_email_task"

NOT_VALID_MESSAGE = "This code is not valid."
ENDED_MESSAGE = "This voucher can no longer be redeemed."
WEAK_CODE_MESSAGE = (
    f"A code needs at least {MIN_TYPED_LENGTH} characters (dashes not counted) and at least "
    f"{MIN_DISTINCT} different ones; leave it empty to generate one."
)


class VoucherNotValid(ValidationError):
    """Unknown or revoked: the same answer for both, so codes cannot be probed."""

    def __init__(self) -> None:
        super().__init__({"code": NOT_VALID_MESSAGE}, code="not_valid")


class VoucherEnded(ValidationError):
    """Inactive, expired or exhausted (never says which, nor the cap or the counter)."""

    def __init__(self) -> None:
        super().__init__({"code": ENDED_MESSAGE}, code="ended")


DASHES = re.compile(r"[\s\-\u2010-\u2015\u2212_]+")


def normalize(code: str) -> str:
    """A code as typed → its canonical form: upper case, spaces and any dash (en dash, minus, a
    run of them) become one `-`, none at the ends. `spring 2026–xyz` → `SPRING-2026-XYZ`."""
    return DASHES.sub("-", (code or "").strip().upper()).strip("-")


def find(qs: Any, code: str) -> Voucher | None:
    """The voucher for a normalised code; a code grouped differently from the stored one
    (`VCH-ABCD-EFGH-JKMN` for `VCH-ABCDEFGHJKMN`) is found by comparing without dashes."""
    found = qs.filter(code=code).first()
    if found is None and code:
        compact = Replace("code", Value("-"), Value(""))
        found = (
            qs.annotate(compact=compact)
            .filter(compact=code.replace("-", ""))
            .order_by("pk")
            .first()
        )
    return found


def generate_code() -> str:
    return PREFIX + "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_LENGTH))


def code_problem(code: str) -> str | None:
    """Why a typed code is unacceptable, or None."""
    core = code.replace("-", "")
    if len(code) > MAX_CODE_LENGTH or not all(
        c.isascii() and (c.isalnum() or c == "-") for c in code
    ):
        return f"Use letters, digits and dashes only, at most {MAX_CODE_LENGTH} characters."
    if len(core) < MIN_TYPED_LENGTH or len(set(core)) < MIN_DISTINCT:
        return WEAK_CODE_MESSAGE
    return None


def redeem_link(code: str) -> str:
    sovereign = Sovereign.current()
    return links.marketplace_url(
        f"/redeem/?code={code}", fallback=f"https://marketplace.{sovereign.fqdn}"
    )


@dataclass(frozen=True)
class VoucherTerms:
    credit_minor: int
    description: str = ""
    reason: str = VoucherReason.CAMPAIGN
    max_redemptions: int = 1
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    plan_code: str = ""
    is_active: bool = True

    def has_ended(self, at: datetime | None = None) -> bool:
        """Whether the validity is over already: nobody could redeem such a voucher (the console
        asks the operator to confirm before issuing it)."""
        return self.valid_until is not None and self.valid_until <= (at or timezone.now())


def _check_terms(
    terms: VoucherTerms, count: int, code: str, recipient_email: str
) -> dict[str, str]:
    errors: dict[str, str] = {}
    batch_max = settings.VOUCHER_BATCH_MAX
    if not 1 <= count <= batch_max:
        errors["count"] = f"Issue from 1 to {batch_max} vouchers at a time."
    if code and count > 1:
        errors["code"] = "Leave the code empty for a batch: each voucher gets a generated code."
    elif code and (problem := code_problem(code)):
        errors["code"] = problem
    if terms.credit_minor <= 0:
        errors["credit"] = "Enter a credit above zero."
    elif problem := money.amount_problem(terms.credit_minor, ledger.currency()):
        errors["credit"] = problem
    if not 0 <= terms.max_redemptions <= money.MAX_COUNT:
        errors["max_redemptions"] = f"Enter 0 (unlimited) to {money.MAX_COUNT}."
    if terms.reason not in VoucherReason.values:
        errors["reason"] = f"Choose one of {', '.join(VoucherReason.values)}."
    if terms.valid_until and terms.valid_from and terms.valid_until < terms.valid_from:
        errors["valid_until"] = "“Valid until” must not be before “valid from”."
    if terms.plan_code and not Plan.objects.filter(code=terms.plan_code).exists():
        errors["plan_code"] = f"Unknown plan “{terms.plan_code}”."
    if recipient_email and count > 1:
        errors["recipient_email"] = "A recipient e-mail goes with a single voucher, not a batch."
    return errors


def check_issue(
    terms: VoucherTerms, *, count: int = 1, code: str = "", recipient_email: str = ""
) -> None:
    """Raise the ValidationError `issue_vouchers` would raise for these terms (a page asks its
    questions, such as confirming an ended validity, only about terms that can be issued)."""
    errors = _check_terms(terms, count, normalize(code), (recipient_email or "").strip())
    if errors:
        raise ValidationError(errors)


def issue_vouchers(
    *, by: Actor, terms: VoucherTerms, count: int = 1, code: str = "", recipient_email: str = ""
) -> list[Voucher]:
    """Issue one voucher (typed or generated code) or a batch of `count` generated codes."""
    check_issue(terms, count=count, code=code, recipient_email=recipient_email)
    code = normalize(code)
    recipient_email = (recipient_email or "").strip()
    currency = ledger.currency()
    now = timezone.now()
    batch = f"B-{uuid.uuid4().hex[:8].upper()}" if count > 1 else ""
    codes = [code] if code else _fresh_codes(count)
    valid_from = terms.valid_from or now
    if terms.valid_from is None and terms.valid_until is not None:
        valid_from = min(now, terms.valid_until)  # validity over already: it opens as it closes
    rows = [
        Voucher(
            code=c,
            credit_minor=terms.credit_minor,
            currency=currency,
            description=terms.description,
            reason=terms.reason,
            max_redemptions=terms.max_redemptions,
            valid_from=valid_from,
            valid_until=terms.valid_until,
            plan_code=terms.plan_code,
            recipient_email=recipient_email,
            batch=batch,
            is_active=terms.is_active,
            created_by=person(by),
            created_at=now,
        )
        for c in codes
    ]
    try:
        with transaction.atomic():
            vouchers = Voucher.objects.bulk_create(rows, batch_size=2000)
            first = vouchers[0] if vouchers[0].pk else Voucher.objects.get(code=codes[0])
            event = audit.record(
                "voucher.issue_batch" if batch else "voucher.issue",
                actor=by,
                target=first,
                after={
                    "count": count,
                    "batch": batch,
                    "credit_minor": terms.credit_minor,
                    "currency": currency,
                    "reason": terms.reason,
                    "max_redemptions": terms.max_redemptions,
                    "plan_code": terms.plan_code,
                    "recipient_email": recipient_email,
                },
            )
            if recipient_email:  # sent after commit, retried by the outbox if the mail server fails
                outbox.enqueue(EMAIL_TASK, first.pk, actor=by, audit_event=event)
    except IntegrityError:
        raise ConflictError({"code": "That code is already in use; choose another."}) from None
    return vouchers


def _fresh_codes(count: int) -> list[str]:
    codes: set[str] = set()
    while len(codes) < count:
        wanted = {generate_code() for _ in range(count - len(codes))}
        taken = set()
        for chunk in _chunks(sorted(wanted), 2000):
            taken |= set(Voucher.objects.filter(code__in=chunk).values_list("code", flat=True))
        codes |= wanted - taken
    return sorted(codes)


def _chunks(items: list[str], size: int) -> Any:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def send_voucher_email(*, voucher_id: int) -> None:
    """E-mail a voucher's redeem link to its recipient (the outbox task calls this)."""
    from .money import format_money

    voucher = Voucher.objects.get(pk=voucher_id)
    if not voucher.recipient_email or voucher.revoked_at is not None:
        return
    sovereign = Sovereign.current()
    credit = format_money(voucher.credit_minor, voucher.currency)
    send_mail(
        subject=f"Your {credit} voucher for {sovereign.display_name or sovereign.fqdn}",
        message=(
            f"You have a voucher worth {credit}.\n\n"
            f"Redeem it here: {redeem_link(voucher.code)}\n\n"
            f"Code: {voucher.code}\n"
            + (f"\n{voucher.description}\n" if voucher.description else "")
        ),
        from_email=None,
        recipient_list=[voucher.recipient_email],
    )


@dataclass(frozen=True)
class Preview:
    status: str  # "valid" | "ended" | "not_valid"
    code: str = ""
    credit_minor: int = 0
    currency: str = ""
    description: str = ""
    plan_code: str = ""


def preview(code: str) -> Preview:
    """What a customer may see about `code`; unknown and revoked look the same."""
    code = normalize(code)
    voucher = find(Voucher.objects, code) if 0 < len(code) <= MAX_CODE_LENGTH else None
    if voucher is None or voucher.state() == VoucherState.REVOKED:
        return Preview(status="not_valid")
    status = "ended" if voucher.state() in ENDED_STATES else "valid"
    if voucher.previewed_at is None:  # the funnel's "previewed": once, the first time
        Voucher.objects.filter(pk=voucher.pk, previewed_at__isnull=True).update(
            previewed_at=timezone.now()
        )
    return Preview(
        status=status,
        code=voucher.code,
        credit_minor=voucher.credit_minor,
        currency=voucher.currency,
        description=voucher.description,
        plan_code=voucher.plan_code,
    )


def redeem_voucher(*, code: str, org: Organization, by: Actor) -> Redemption:
    """Credit `org` with the voucher once: check, insert, count and credit under one row lock."""
    code = normalize(code)
    try:
        with transaction.atomic():
            voucher = find(Voucher.objects.select_for_update(), code)
            _check_redeemable(voucher, org)
            assert voucher is not None
            redemption = Redemption.objects.create(
                voucher=voucher,
                organization=org,
                credit_minor=voucher.credit_minor,
                redeemed_by=person(by),
            )
            Voucher.objects.filter(pk=voucher.pk).update(redeemed_count=F("redeemed_count") + 1)
            ledger.append(
                org=org,
                amount_minor=voucher.credit_minor,
                reason="promo",
                reference=f"promo:{voucher.code}",
                actor=by,
            )
            audit.record(
                "voucher.redeem",
                actor=by,
                target=voucher,
                org_slug=org.slug,
                after={"organization": org.slug, "credit_minor": voucher.credit_minor},
            )
    except IntegrityError:
        # the unique (voucher, organization) constraint: a concurrent twin won the race
        if Redemption.objects.filter(voucher__code=code, organization=org).exists():
            raise _already_redeemed(org) from None
        raise
    return redemption


def _check_redeemable(voucher: Voucher | None, org: Organization) -> None:
    if voucher is None or voucher.state() == VoucherState.REVOKED:
        raise VoucherNotValid()
    if voucher.state() in ENDED_STATES:
        raise VoucherEnded()
    if voucher.plan_code and org.plan_code != voucher.plan_code:
        raise ValidationError({"code": f"This voucher is for the {voucher.plan_code} plan only."})
    if Redemption.objects.filter(voucher=voucher, organization=org).exists():
        raise _already_redeemed(org)


def _already_redeemed(org: Organization) -> ConflictError:
    return ConflictError({"code": f"This voucher was already redeemed for {org.slug}."})


def revoke_voucher(*, by: Actor, voucher: Voucher) -> Voucher:
    """Soft delete: the code stops working; past redemptions and credit stay."""
    with transaction.atomic():
        locked = Voucher.objects.select_for_update().get(pk=voucher.pk)
        if locked.revoked_at is not None:
            return locked
        locked.revoked_at = timezone.now()
        locked.revoked_by = person(by)
        locked.save(update_fields=["revoked_at", "revoked_by"])
        audit.record(
            "voucher.revoke",
            actor=by,
            target=locked,
            after={"revoked_at": locked.revoked_at.isoformat()},
        )
    return locked


def set_voucher_active(*, by: Actor, voucher: Voucher, active: bool) -> Voucher:
    with transaction.atomic():
        locked = Voucher.objects.select_for_update().get(pk=voucher.pk)
        if locked.revoked_at is not None:
            raise ConflictError({"code": "A revoked voucher cannot be changed."})
        if locked.is_active != active:
            locked.is_active = active
            locked.save(update_fields=["is_active"])
            audit.record(
                "voucher.activate" if active else "voucher.deactivate",
                actor=by,
                target=locked,
                before={"is_active": not active},
                after={"is_active": active},
            )
    return locked

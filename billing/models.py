"""BSS data: price book (plans, add-ons, effective-dated prices), vouchers and their redemptions,
the append-only credit ledger, orders, subscriptions and invoices. Money is integer minor units."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from orgs.models import Organization


class Plan(models.Model):
    code = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=64)
    cpu_millicores = models.PositiveIntegerField(default=0, help_text="0 = metered (Flexi)")
    memory_mib = models.PositiveIntegerField(default=0)
    disk_gib = models.PositiveIntegerField(default=0)
    is_flexi = models.BooleanField(default=False, help_text="pay as you go: no fixed quota")
    is_active = models.BooleanField(default=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "code"]

    def __str__(self) -> str:
        return self.name


class AddOnKind(models.TextChoices):
    ADDON = "addon", "Add-on (ordered at checkout)"
    APPLICATION = "application", "Application price (by size and topology)"


class AddOn(models.Model):
    code = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=64)
    unit = models.CharField(max_length=32, default="unit")
    is_active = models.BooleanField(default=True)
    kind = models.CharField(
        max_length=16,
        choices=AddOnKind.choices,
        default=AddOnKind.ADDON,
        help_text="application prices are not ordered at checkout; installs are priced by them",
    )

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class PriceQuerySet(models.QuerySet["Price"]):
    def effective(self, at: datetime) -> PriceQuerySet:
        return self.filter(effective_from__lte=at).order_by("-effective_from", "-pk")


class Price(models.Model):
    """A monthly price of a plan or an add-on from `effective_from` on (the newest one applies)."""

    plan = models.ForeignKey(
        Plan, null=True, blank=True, on_delete=models.CASCADE, related_name="prices"
    )
    addon = models.ForeignKey(
        AddOn, null=True, blank=True, on_delete=models.CASCADE, related_name="prices"
    )
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3, default="OMR")
    effective_from = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = PriceQuerySet.as_manager()

    class Meta:
        ordering = ["-effective_from"]
        constraints = [
            models.CheckConstraint(
                condition=Q(plan__isnull=False, addon__isnull=True)
                | Q(plan__isnull=True, addon__isnull=False),
                name="price_for_plan_xor_addon",
            ),
            models.CheckConstraint(condition=Q(amount_minor__gte=0), name="price_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.plan or self.addon} {self.amount_minor} {self.currency} from {self.effective_from:%Y-%m-%d}"


class VoucherReason(models.TextChoices):
    CAMPAIGN = "campaign", "Campaign"
    COMPENSATION = "compensation", "Compensation"
    TEST = "test", "Test"
    PARTNER = "partner", "Partner"


class VoucherState(models.TextChoices):
    ACTIVE = "active", "Active"
    INACTIVE = "inactive", "Inactive"
    EXHAUSTED = "exhausted", "Exhausted"
    EXPIRED = "expired", "Expired"
    REVOKED = "revoked", "Revoked"


ENDED_STATES = {VoucherState.INACTIVE, VoucherState.EXHAUSTED, VoucherState.EXPIRED}


class VoucherQuerySet(models.QuerySet["Voucher"]):
    def _live(self) -> VoucherQuerySet:
        return self.filter(revoked_at__isnull=True)

    def revoked(self) -> VoucherQuerySet:
        return self.filter(revoked_at__isnull=False)

    def expired(self, now: datetime) -> VoucherQuerySet:
        return self._live().filter(valid_until__lt=now)

    def exhausted(self) -> VoucherQuerySet:
        return self._live().filter(max_redemptions__gt=0, redeemed_count__gte=F("max_redemptions"))

    def inactive(self, now: datetime) -> VoucherQuerySet:
        return self._live().filter(Q(is_active=False) | Q(valid_from__gt=now))

    def redeemable(self, now: datetime) -> VoucherQuerySet:
        return (
            self._live()
            .filter(is_active=True, valid_from__lte=now)
            .filter(Q(valid_until__isnull=True) | Q(valid_until__gte=now))
            .filter(Q(max_redemptions=0) | Q(redeemed_count__lt=F("max_redemptions")))
        )

    def in_state(self, state: str, now: datetime) -> VoucherQuerySet:
        return {
            VoucherState.ACTIVE: lambda: self.redeemable(now),
            VoucherState.INACTIVE: lambda: self.inactive(now),
            VoucherState.EXHAUSTED: self.exhausted,
            VoucherState.EXPIRED: lambda: self.expired(now),
            VoucherState.REVOKED: self.revoked,
        }[VoucherState(state)]()


class Voucher(models.Model):
    code = models.CharField(max_length=64, unique=True)  # stored upper-case
    credit_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3, default="OMR")
    description = models.CharField(max_length=200, blank=True)
    reason = models.CharField(
        max_length=16, choices=VoucherReason.choices, default=VoucherReason.CAMPAIGN
    )
    max_redemptions = models.PositiveIntegerField(default=1, help_text="0 = unlimited")
    redeemed_count = models.PositiveIntegerField(default=0)
    valid_from = models.DateTimeField(default=timezone.now)
    valid_until = models.DateTimeField(null=True, blank=True)
    plan_code = models.CharField(max_length=32, blank=True)
    recipient_email = models.EmailField(blank=True)
    batch = models.CharField(max_length=64, blank=True, db_index=True)
    is_active = models.BooleanField(default=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = VoucherQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(condition=Q(credit_minor__gt=0), name="voucher_credit_positive"),
            models.CheckConstraint(
                condition=Q(valid_until__isnull=True) | Q(valid_until__gte=F("valid_from")),
                name="voucher_window_ordered",
            ),
        ]

    def __str__(self) -> str:
        return self.code

    @property
    def is_exhausted(self) -> bool:
        return self.max_redemptions > 0 and self.redeemed_count >= self.max_redemptions

    def state(self, now: datetime | None = None) -> VoucherState:
        now = now or timezone.now()
        if self.revoked_at is not None:
            return VoucherState.REVOKED
        if self.valid_until is not None and self.valid_until < now:
            return VoucherState.EXPIRED
        if self.is_exhausted:
            return VoucherState.EXHAUSTED
        if not self.is_active or self.valid_from > now:
            return VoucherState.INACTIVE
        return VoucherState.ACTIVE

    @property
    def redeemed_label(self) -> str:
        cap = "∞" if self.max_redemptions == 0 else str(self.max_redemptions)
        return f"{self.redeemed_count}/{cap}"


class Redemption(models.Model):
    voucher = models.ForeignKey(Voucher, on_delete=models.PROTECT, related_name="redemptions")
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="redemptions"
    )
    credit_minor = models.BigIntegerField()
    redeemed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    redeemed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-redeemed_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["voucher", "organization"], name="one_redemption_per_org"
            )
        ]

    def __str__(self) -> str:
        return f"{self.voucher_id}→{self.organization_id}"


class AppendOnlyError(Exception):
    """Ledger entries are never changed or removed: write a correcting entry instead."""


class LedgerQuerySet(models.QuerySet["LedgerEntry"]):
    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyError("ledger entries cannot be updated")

    def delete(self) -> Any:
        raise AppendOnlyError("ledger entries cannot be deleted")

    def balance(self) -> int:
        return int(self.aggregate(total=models.Sum("amount_minor"))["total"] or 0)


class LedgerEntry(models.Model):
    """A signed credit movement of an Organization: grant > 0, spend < 0."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="ledger")
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3, default="OMR")
    reason = models.CharField(max_length=32)
    reference = models.CharField(max_length=128, blank=True, db_index=True)
    note = models.CharField(max_length=200, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = LedgerQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(condition=~Q(amount_minor=0), name="ledger_amount_nonzero")
        ]

    def __str__(self) -> str:
        return f"{self.amount_minor:+d} {self.currency} {self.reference}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise AppendOnlyError("ledger entries cannot be updated")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise AppendOnlyError("ledger entries cannot be deleted")


class OrderStatus(models.TextChoices):
    AWAITING_PAYMENT = "awaiting_payment", "Awaiting payment"
    PAID = "paid", "Paid"
    CANCELLED = "cancelled", "Cancelled"


class Order(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="orders")
    plan_code = models.CharField(max_length=32)
    lines = models.JSONField(
        default=list
    )  # [{"code", "name", "quantity", "unit_minor", "amount_minor"}]
    currency = models.CharField(max_length=3, default="OMR")
    subtotal_minor = models.BigIntegerField()
    tax_minor = models.BigIntegerField()
    total_minor = models.BigIntegerField()
    status = models.CharField(max_length=20, choices=OrderStatus.choices)
    voucher_code = models.CharField(max_length=64, blank=True)
    placed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    placed_at = models.DateTimeField(default=timezone.now)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-placed_at", "-pk"]

    def __str__(self) -> str:
        return f"order-{self.pk}"


class Subscription(models.Model):
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="subscriptions"
    )
    plan_code = models.CharField(max_length=32)
    order = models.OneToOneField(Order, on_delete=models.PROTECT, related_name="subscription")
    status = models.CharField(max_length=16, default="active")
    period_start = models.DateTimeField(default=timezone.now)
    period_end = models.DateTimeField()

    class Meta:
        ordering = ["-period_start"]

    def __str__(self) -> str:
        return f"{self.plan_code} {self.status}"


class Invoice(models.Model):
    """The bill for an order that credit did not cover (full invoicing is a later step)."""

    number = models.CharField(max_length=32, unique=True)
    order = models.OneToOneField(Order, on_delete=models.PROTECT, related_name="invoice")
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="invoices"
    )
    currency = models.CharField(max_length=3, default="OMR")
    total_minor = models.BigIntegerField()
    status = models.CharField(max_length=16, default="issued")  # issued | paid | void
    issued_at = models.DateTimeField(default=timezone.now)
    paid_at = models.DateTimeField(null=True, blank=True)
    payment_reference = models.CharField(max_length=128, blank=True)

    class Meta:
        ordering = ["-issued_at"]

    def __str__(self) -> str:
        return self.number

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
    ADDON = "addon", "Add-on (ordered by quantity)"
    APP_EXTRA = "app_extra", "Application extra (priced from what is installed)"


class AddOn(models.Model):
    code = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=64)
    unit = models.CharField(max_length=32, default="unit")
    kind = models.CharField(max_length=16, choices=AddOnKind.choices, default=AddOnKind.ADDON)
    is_active = models.BooleanField(default=True)

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
    previewed_at = models.DateTimeField(
        null=True, blank=True, help_text="first shown on the public pages (the voucher funnel)"
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


class AppendOnlyQuerySet(models.QuerySet[Any]):
    noun = "rows"

    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyError(f"{self.noun} cannot be updated")

    def delete(self) -> Any:
        raise AppendOnlyError(f"{self.noun} cannot be deleted")


class AppendOnlyModel(models.Model):
    """Rows written once: never saved again, never deleted (PostgreSQL triggers enforce it too)."""

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise AppendOnlyError(f"{self._meta.verbose_name_plural} cannot be updated")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise AppendOnlyError(f"{self._meta.verbose_name_plural} cannot be deleted")


class LedgerQuerySet(AppendOnlyQuerySet):
    noun = "ledger entries"

    def balance(self) -> int:
        return int(self.aggregate(total=models.Sum("amount_minor"))["total"] or 0)


class LedgerEntry(AppendOnlyModel):
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


class LedgerBalance(models.Model):
    """An Organization's balance, kept by the database: a trigger adds every ledger entry as it
    is inserted (migration 0006, PostgreSQL and SQLite). Read by the revenue page's credit
    liability so it does not sum the whole ledger; the ledger stays the record."""

    organization = models.OneToOneField(
        Organization, primary_key=True, on_delete=models.CASCADE, related_name="+"
    )
    balance_minor = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.organization_id}: {self.balance_minor}"


class QuoteKind(models.TextChoices):
    NEW = "new", "New Organization"
    PURCHASE = "purchase", "First plan of an existing Organization"
    UPGRADE = "upgrade", "Upgrade now (prorated)"
    DOWNGRADE = "downgrade", "Change at the end of the period"
    RENEWAL = "renewal", "Renewal for the next period"
    USAGE = "usage", "Usage of the month (billing run)"


class QuoteStatus(models.TextChoices):
    OPEN = "open", "Open"
    CONFIRMED = "confirmed", "Confirmed"
    SUPERSEDED = "superseded", "Superseded by a newer quote"


class Quote(models.Model):
    """What the customer is shown before any money moves; confirming charges exactly this.

    `inputs` are what was asked (plan, add-ons, and for a new Organization its slug, name, region
    and voucher code); the money fields are what was shown. Its id travels signed
    (`billing.quotes.token`), and it stops being confirmable at `expires_at`.
    """

    kind = models.CharField(max_length=16, choices=QuoteKind.choices)
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="quotes"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    inputs = models.JSONField(default=dict)
    plan_code = models.CharField(max_length=32)
    lines = models.JSONField(
        default=list
    )  # [{code, name, kind, quantity, unit_minor, amount_minor}]
    recurring_lines = models.JSONField(default=list)
    currency = models.CharField(max_length=3)
    tax_rate_bp = models.PositiveIntegerField(default=0)
    subtotal_minor = models.BigIntegerField()
    tax_minor = models.BigIntegerField()
    total_minor = models.BigIntegerField()
    credit_applied_minor = models.BigIntegerField(default=0)
    due_now_minor = models.BigIntegerField()
    recurring_minor = models.BigIntegerField(help_text="due each period from then on, tax included")
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=QuoteStatus.choices, default=QuoteStatus.OPEN)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(credit_applied_minor__gte=0, due_now_minor__gte=0),
                name="quote_amounts_not_negative",
            )
        ]

    def __str__(self) -> str:
        return f"quote-{self.pk}"

    @property
    def money(self) -> tuple[Any, ...]:
        """Everything the customer was shown: two quotes with equal `money` charge the same."""
        return (
            self.plan_code,
            self.currency,
            self.tax_rate_bp,
            self.lines,
            self.recurring_lines,
            self.subtotal_minor,
            self.tax_minor,
            self.total_minor,
            self.credit_applied_minor,
            self.due_now_minor,
            self.recurring_minor,
        )


class OrderStatus(models.TextChoices):
    AWAITING_PAYMENT = "awaiting_payment", "Awaiting payment"
    PAID = "paid", "Paid"
    CANCELLED = "cancelled", "Cancelled"


class SubscriptionStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    ENDED = "ended", "Ended"


class Subscription(models.Model):
    """An Organization's plan, add-ons and Application extras, billed in monthly periods.

    One live (`active`) subscription per Organization. Its periods and their lines are the orders
    that paid them (`orders`, each with `period_start`/`period_end` and `lines`); a plan change
    within a period is a prorated `upgrade` order, a downgrade waits in `pending_plan_code`.
    """

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="subscriptions"
    )
    plan_code = models.CharField(max_length=32)
    plan_unit_minor = models.BigIntegerField(
        default=0, help_text="the plan's monthly price billed for the current period"
    )
    addons = models.JSONField(default=dict, blank=True)  # {code: quantity}
    recurring_minor = models.BigIntegerField(
        default=0, help_text="the monthly price before tax: plan, add-ons and Application extras"
    )
    currency = models.CharField(max_length=3, default="OMR")
    status = models.CharField(
        max_length=16, choices=SubscriptionStatus.choices, default=SubscriptionStatus.ACTIVE
    )
    period_start = models.DateTimeField(default=timezone.now)
    period_end = models.DateTimeField()
    pending_plan_code = models.CharField(
        max_length=32, blank=True, help_text="a downgrade that starts with the next period"
    )
    cancel_at_period_end = models.BooleanField(default=False)
    started_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-period_start", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization"],
                condition=Q(status="active"),
                name="one_live_subscription_per_org",
            )
        ]

    def __str__(self) -> str:
        return f"{self.plan_code} {self.status}"


class Order(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="orders")
    kind = models.CharField(max_length=16, choices=QuoteKind.choices, default=QuoteKind.NEW)
    quote = models.OneToOneField(
        Quote, null=True, blank=True, on_delete=models.PROTECT, related_name="order"
    )
    subscription = models.ForeignKey(
        Subscription, null=True, blank=True, on_delete=models.PROTECT, related_name="orders"
    )
    plan_code = models.CharField(max_length=32)
    addons = models.JSONField(default=dict, blank=True)
    lines = models.JSONField(
        default=list
    )  # [{"code", "name", "kind", "quantity", "unit_minor", "amount_minor"}]
    currency = models.CharField(max_length=3, default="OMR")
    subtotal_minor = models.BigIntegerField()
    tax_minor = models.BigIntegerField()
    total_minor = models.BigIntegerField()
    credit_applied_minor = models.BigIntegerField(default=0)
    due_minor = models.BigIntegerField(default=0, help_text="total less credit: what is paid")
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=OrderStatus.choices)
    voucher_code = models.CharField(max_length=64, blank=True)
    placed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    placed_at = models.DateTimeField(default=timezone.now)
    paid_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-placed_at", "-pk"]

    def __str__(self) -> str:
        return f"order-{self.pk}"

    @property
    def placed_by_billing(self) -> bool:
        """A renewal or a month's usage: the billing cycle placed it, so it stays due until paid
        (dunning chases it) instead of lapsing with an expired card checkout."""
        return self.kind in (QuoteKind.RENEWAL, QuoteKind.USAGE)

    @property
    def customer_may_cancel(self) -> bool:
        """Awaiting payment and not a month's usage (what was used cannot be declined; an
        operator may void the invoice). Cancelling a renewal ends the subscription."""
        return self.status == OrderStatus.AWAITING_PAYMENT and self.kind != QuoteKind.USAGE


class InvoiceStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ISSUED = "issued", "Issued"
    PAID = "paid", "Paid"
    VOID = "void", "Void"


class Invoice(models.Model):
    """A bill: for an order (plan, add-ons, Application extras, proration; issued when the order
    is placed) or for a month's rated usage (`period`, made by the billing run as a draft).

    Money: `subtotal_minor` (sum of the lines) + `tax_minor` (sum of the lines' tax) is the gross
    amount; `credit_applied_minor` came from the ledger; `total_minor` is what is left to pay.
    `number` is assigned at issue, gap-free per year (`billing.checkout.next_number`). Once issued
    its `order` is what is paid (manual, card, dunning: the same machinery as any order).
    """

    number = models.CharField(max_length=32, unique=True, null=True, blank=True)
    order = models.OneToOneField(
        Order, null=True, blank=True, on_delete=models.PROTECT, related_name="invoice"
    )
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="invoices"
    )
    period = models.CharField(
        max_length=7, blank=True, default="", help_text="YYYY-MM of a monthly usage invoice"
    )
    currency = models.CharField(max_length=3, default="OMR")
    tax_rate_bp = models.PositiveIntegerField(default=0)
    subtotal_minor = models.BigIntegerField(default=0)
    tax_minor = models.BigIntegerField(default=0)
    credit_applied_minor = models.BigIntegerField(default=0)
    total_minor = models.BigIntegerField(help_text="left to pay: subtotal + tax - credit applied")
    status = models.CharField(
        max_length=16, choices=InvoiceStatus.choices, default=InvoiceStatus.ISSUED
    )
    created_at = models.DateTimeField(default=timezone.now)
    issued_at = models.DateTimeField(null=True, blank=True, default=timezone.now)
    paid_at = models.DateTimeField(null=True, blank=True)
    payment_reference = models.CharField(max_length=128, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    void_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-issued_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "period"],
                condition=~Q(period=""),
                name="one_invoice_per_org_and_period",
            ),
            models.CheckConstraint(
                condition=Q(status="draft") | Q(number__isnull=False),
                name="invoice_numbered_once_issued",
            ),
            models.CheckConstraint(
                condition=Q(credit_applied_minor__gte=0, total_minor__gte=0),
                name="invoice_amounts_not_negative",
            ),
        ]
        indexes = [models.Index(fields=["status", "issued_at"], name="invoice_status_issued")]

    def __str__(self) -> str:
        return self.number or f"draft-{self.pk}"

    @property
    def gross_minor(self) -> int:
        return self.subtotal_minor + self.tax_minor


class InvoiceLine(models.Model):
    """One line of an invoice; its tax is computed on the line, rounded half up."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveIntegerField()
    kind = models.CharField(max_length=16)  # plan | addon | app_extra | proration | usage
    code = models.CharField(max_length=64)
    description = models.CharField(max_length=300)
    quantity = models.DecimalField(max_digits=24, decimal_places=6)
    unit = models.CharField(max_length=32, blank=True)
    unit_price = models.CharField(max_length=200, blank=True, help_text="as shown: tiers, rate")
    amount_minor = models.BigIntegerField()
    tax_minor = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["invoice", "position"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "position"], name="one_line_per_position")
        ]

    def __str__(self) -> str:
        return f"{self.invoice_id}#{self.position} {self.code}"


class PaymentStatus(models.TextChoices):
    OPEN = "open", "Open"
    SUCCEEDED = "succeeded", "Succeeded"
    EXPIRED = "expired", "Expired"
    UNAPPLIED = "unapplied", "Received but not applicable: being refunded"
    REFUNDED = "refunded", "Refunded (could not be applied)"


class Payment(models.Model):
    """One attempt to collect an order's `due_minor` through a payment provider."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="payments")
    provider = models.CharField(max_length=16)
    external_id = models.CharField(max_length=255, unique=True)  # Checkout Session id
    payment_intent = models.CharField(max_length=255, blank=True, db_index=True)
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(
        max_length=16, choices=PaymentStatus.choices, default=PaymentStatus.OPEN
    )
    url = models.URLField(max_length=2000, blank=True)
    problem = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return self.external_id


class PaymentCustomer(models.Model):
    """An Organization's customer record and saved card at a provider (card on file)."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="payment_customers"
    )
    provider = models.CharField(max_length=16)
    external_id = models.CharField(max_length=255)
    payment_method = models.CharField(max_length=255, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "provider"], name="one_customer_per_provider"
            )
        ]

    def __str__(self) -> str:
        return self.external_id


class ProviderEvent(models.Model):
    """A webhook event received once and applied once: the unique (provider, event id) is the
    idempotency key. It is recorded (verified) when it arrives and applied by a worker after the
    response (`applied_at`, `outcome`)."""

    provider = models.CharField(max_length=16)
    event_id = models.CharField(max_length=255)
    type = models.CharField(max_length=64)
    created = models.DateTimeField(help_text="when the provider created the event")
    payload = models.JSONField(
        default=dict, blank=True, help_text="the event's object, as verified on arrival"
    )
    outcome = models.CharField(max_length=200, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "event_id"], name="one_event_applied_once")
        ]

    def __str__(self) -> str:
        return f"{self.provider}:{self.event_id}"


class CreditNote(models.Model):
    """Money given back against an invoice: a card refund, or the whole invoice when it is void."""

    number = models.CharField(max_length=32, unique=True)
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="credit_notes")
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="credit_notes"
    )
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    reason = models.CharField(max_length=200, blank=True)
    kind = models.CharField(max_length=8, default="refund")  # refund | void
    external_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="credit_note_positive")
        ]

    def __str__(self) -> str:
        return self.number


class DunningNotice(models.Model):
    """One step of chasing an unpaid invoice (a reminder, then suspension), taken once."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="dunning")
    step = models.CharField(max_length=16)  # "reminder-<days>" | "final"
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["sent_at"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "step"], name="one_notice_per_step")
        ]

    def __str__(self) -> str:
        return f"{self.invoice_id} {self.step}"


class UsageQuerySet(AppendOnlyQuerySet):
    noun = "usage records"


class UsageRecord(AppendOnlyModel):
    """What a platform component measured for one resource over one window (append-only).

    (source, resource, window_start, window_end) is unique: a record sent twice is recorded once.
    """

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="usage")
    source = models.CharField(max_length=64)
    resource = models.CharField(max_length=255)
    kind = models.CharField(max_length=32)
    sku = models.SlugField(max_length=64)
    quantity = models.DecimalField(max_digits=24, decimal_places=6)
    unit = models.CharField(max_length=32)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    region = models.CharField(max_length=64, blank=True)
    labels = models.JSONField(default=dict, blank=True)
    recorded_at = models.DateTimeField(default=timezone.now)

    objects = UsageQuerySet.as_manager()

    class Meta:
        ordering = ["window_start", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "resource", "window_start", "window_end"],
                name="one_usage_record_per_window",
            ),
            models.CheckConstraint(condition=Q(quantity__gte=0), name="usage_not_negative"),
            models.CheckConstraint(
                condition=Q(window_end__gt=F("window_start")), name="usage_window_ordered"
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "window_start"], name="usage_org_window"),
        ]

    def __str__(self) -> str:
        return f"{self.source}:{self.resource}@{self.window_start:%Y-%m-%dT%H:%M}"


class TierMode(models.TextChoices):
    GRADUATED = "graduated", "Graduated (each tier prices the part of the quantity in it)"
    VOLUME = "volume", "Volume (the tier the whole quantity reaches prices all of it)"


class UsagePrice(models.Model):
    """The price of a usage SKU from `effective_from` on: tiers `[{"up_to": "1000" | null,
    "unit_minor": "12.5"}]` (minor units per unit, decimals allowed; the last tier open-ended).

    `flexi_only`: charged to Flexi (pay-as-you-go) Organizations only — fixed plans include
    their quota of that resource."""

    sku = models.SlugField(max_length=64)
    name = models.CharField(max_length=64)
    unit = models.CharField(max_length=32)
    mode = models.CharField(max_length=10, choices=TierMode.choices, default=TierMode.GRADUATED)
    tiers = models.JSONField()
    flexi_only = models.BooleanField(default=False)
    currency = models.CharField(max_length=3, default="OMR")
    effective_from = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["sku", "-effective_from", "-pk"]

    def __str__(self) -> str:
        return f"{self.sku} from {self.effective_from:%Y-%m-%d}"


class BillingRun(models.Model):
    """One month's invoice run: where it got to, so a run that stopped half-way resumes."""

    period = models.CharField(max_length=7, unique=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    invoices_made = models.PositiveIntegerField(default=0)
    invoices_issued = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-period"]

    def __str__(self) -> str:
        return self.period

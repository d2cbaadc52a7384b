"""Dunning: chasing an unpaid invoice. Reminders by e-mail `BILLING_REMINDER_DAYS` after it was
issued; `BILLING_GRACE_DAYS` after, the final step: the Organization is suspended through Git
(for a first purchase or a renewal; it resumes on payment, see billing.checkout.fulfil) or, for an
unpaid upgrade, the upgrade order is cancelled (the Organization keeps its plan).

Each step is a DunningNotice row, unique per (invoice, step): the sweep is safe to run twice and
e-mails go through the outbox. A sweep that finds several steps due takes only the latest.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from core import audit, links, outbox
from orgs import members
from orgs import services as org_services
from orgs.models import Organization, OrgState, Sovereign

from . import checkout
from .models import DunningNotice, Invoice, InvoiceStatus, QuoteKind
from .money import format_money

EMAIL_TASK = "billing.tasks.send_dunning_email_task"
FINAL = checkout.FINAL_STEP


def due_step(invoice: Invoice, now: datetime) -> str | None:
    """The most advanced step due for `invoice` at `now` (None before the first reminder)."""
    if invoice.issued_at is None:  # a draft is not due
        return None
    age = now - invoice.issued_at
    if age >= timedelta(days=settings.BILLING_GRACE_DAYS):
        return FINAL
    reached = [d for d in settings.BILLING_REMINDER_DAYS if age >= timedelta(days=d)]
    return f"reminder-{max(reached)}" if reached else None


def run(now: datetime | None = None) -> int:
    """Take every due step of every unpaid invoice; returns how many steps were taken."""
    now = now or timezone.now()
    taken = 0
    for invoice_id in Invoice.objects.filter(status=InvoiceStatus.ISSUED).values_list(
        "pk", flat=True
    ):
        taken += take_step(invoice_id=invoice_id, now=now)
    return taken


def _order_of_steps(step: str) -> int:
    return 10**6 if step == FINAL else int(step.split("-")[1])


def take_step(*, invoice_id: int, now: datetime) -> int:
    with transaction.atomic():
        invoice = (
            Invoice.objects.select_for_update(of=("self",))
            .select_related("order", "organization")
            .get(pk=invoice_id)
        )
        step = due_step(invoice, now)
        if invoice.status != InvoiceStatus.ISSUED or step is None:
            return 0
        done = invoice.dunning.values_list("step", flat=True)
        if any(_order_of_steps(s) >= _order_of_steps(step) for s in done):
            return 0
        try:
            with transaction.atomic():
                notice = DunningNotice.objects.create(invoice=invoice, step=step, sent_at=now)
        except IntegrityError:
            return 0
        if step == FINAL:
            _final(invoice)
        event = audit.record(
            f"billing.dunning.{'final' if step == FINAL else 'reminder'}",
            actor=None,
            target=invoice,
            org_slug=invoice.organization.slug,
            after={"step": step, "total_minor": invoice.total_minor},
        )
        outbox.enqueue(EMAIL_TASK, notice.pk, audit_event=event)
    return 1


def _final(invoice: Invoice) -> None:
    order = invoice.order
    if order is not None and order.kind == QuoteKind.UPGRADE:
        checkout.cancel_order(by=None, order=order, reason="unpaid past the grace period")
        return
    org = Organization.objects.select_for_update().get(pk=invoice.organization_id)
    if org.state not in (OrgState.SUSPENDED, OrgState.ARCHIVED):
        org_services.suspend_organization(by=None, org=org, reason="unpaid")


def _recipients(org: Organization) -> list[str]:
    users = get_user_model().objects.filter(pk__in=members.owner_ids(org.slug))
    return sorted({u.email for u in users if u.email})


def _body(notice: DunningNotice) -> tuple[str, str]:
    invoice = notice.invoice
    org = invoice.organization
    amount = format_money(invoice.total_minor, invoice.currency)
    deadline = (invoice.issued_at or notice.sent_at) + timedelta(days=settings.BILLING_GRACE_DAYS)
    if notice.step != FINAL:
        return (
            f"Reminder: invoice {invoice.number} ({amount}) is unpaid",
            f"Invoice {invoice.number} for {org.display_name} ({amount}) is still unpaid.\n"
            f"Please pay it by {deadline:%Y-%m-%d}; after that {org.slug} is suspended until "
            "it is paid.\n",
        )
    if invoice.order is not None and invoice.order.kind == QuoteKind.UPGRADE:
        return (
            f"Upgrade cancelled: invoice {invoice.number} was not paid",
            f"The upgrade of {org.display_name} to plan {invoice.order.plan_code.upper()} was "
            f"cancelled because invoice {invoice.number} ({amount}) was not paid in time. "
            "Your current plan continues.\n",
        )
    return (
        f"{org.slug} is suspended: invoice {invoice.number} is unpaid",
        f"{org.display_name} has been suspended because invoice {invoice.number} ({amount}) "
        "is unpaid. Its Applications are scaled to zero; nothing is deleted. It resumes as soon "
        "as the invoice is paid.\n",
    )


def send_notice(*, notice_id: int) -> None:
    """E-mail one dunning step to the Organization's owners (the outbox task calls this)."""
    notice = DunningNotice.objects.select_related("invoice__organization", "invoice__order").get(
        pk=notice_id
    )
    recipients = _recipients(notice.invoice.organization)
    if not recipients:
        return
    subject, body = _body(notice)
    sovereign = Sovereign.objects.order_by("pk").first()
    link = (
        links.portal_url(
            f"/billing/{notice.invoice.organization.slug}/",
            fallback=f"https://console.{sovereign.fqdn}",
        )
        if sovereign
        else ""
    )
    send_mail(
        subject=subject,
        message=body + (f"\n{link}\n" if link else ""),
        from_email=None,
        recipient_list=recipients,
    )

"""`manage.py run_billing --period 2026-11 [--no-issue]`: the monthly invoice run (safe to re-run)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing import runs


class Command(BaseCommand):
    help = "Bill a month: renewals due by its end, then one usage invoice per Organization."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--period", help="YYYY-MM (default: the previous month)")
        parser.add_argument(
            "--no-issue",
            action="store_true",
            help="leave the invoices as drafts for review (default: BILLING_RUN_ISSUE)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        period = options["period"] or runs.previous_period()
        try:
            result = runs.run(period, issue=False if options["no_issue"] else None)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        self.stdout.write(
            f"{result.period}: {result.renewed} subscriptions renewed or ended, "
            f"{result.drafted} invoices drafted, {result.issued} issued, "
            f"{result.skipped} already billed, {result.failed} failed"
        )

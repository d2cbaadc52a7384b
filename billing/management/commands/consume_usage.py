"""`manage.py consume_usage [--once]`: record usage published on `catalyst.usage.recorded`."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing import consumer


class Command(BaseCommand):
    help = "Consume usage records from NATS JetStream (catalyst.usage.recorded)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--once", action="store_true", help="stop when no message is waiting (tests, cron)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.NATS_URL:
            raise CommandError("Set NATS_URL to consume usage from JetStream.")
        handled = consumer.run(once=options["once"])
        self.stdout.write(f"{handled} usage messages handled")

from typing import Any

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Read back every Application's branch whose head moved since the portal last saw it "
        "(the periodic reconcile that catches pushes whose webhook was lost)."
    )

    def handle(self, *args: Any, **opts: Any) -> None:
        from marketplace import gitsync

        counts = gitsync.reconcile_all()
        self.stdout.write(", ".join(f"{k}: {v}" for k, v in counts.items()))

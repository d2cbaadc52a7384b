from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from marketplace import loader
from marketplace.models import CatalogSource, CatalogSyncError


class Command(BaseCommand):
    help = "Load Blueprints from every catalog source; broken files are reported and skipped."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--directory", help="sync only this directory (as the public source)")
        parser.add_argument(
            "--full",
            action="store_true",
            help="read every source, even those unchanged since their last sync",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts.get("directory"):
            source, _ = CatalogSource.objects.update_or_create(
                name=loader.PUBLIC_SOURCE,
                defaults={"kind": "directory", "location": str(Path(opts["directory"]).resolve())},
            )
            results = {source.name: loader.sync_source(source, force=opts["full"])}
        else:
            results = loader.sync_all(force=opts["full"])
        for name, result in results.items():
            line = ", ".join(f"{k} {v}" for k, v in result.items())
            self.stdout.write(f"{name}: {line}")
        for error in CatalogSyncError.objects.select_related("source"):
            self.stderr.write(
                self.style.WARNING(f"skipped {error.source.name}:{error.path}: {error.error}")
            )

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from orgs import services
from orgs.models import HostCluster, Organization, Sovereign

DEMO_CLUSTERS = [
    ("hetzner", "fsn", "rtz", "prod"),
    ("hetzner", "hel", "rtz", "prod"),
    ("hetzner", "fsn", "rtz", "dev"),
]


class Command(BaseCommand):
    help = "Load the demo Sovereign (demo.local), its host clusters, an operator and a demo customer. Idempotent."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--fqdn", default="demo.local")
        parser.add_argument(
            "--password", default="catalyst-demo", help="password of the demo accounts"
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        with transaction.atomic():
            sovereign, _ = Sovereign.objects.get_or_create(
                fqdn=opts["fqdn"],
                defaults={"display_name": "Demo Sovereign", "currency": "OMR", "tax_rate_bp": 500},
            )
            for provider, region, block, env_type in DEMO_CLUSTERS:
                if not HostCluster.objects.filter(
                    provider=provider, region=region, building_block=block, env_type=env_type
                ).exists():
                    HostCluster.objects.create(
                        sovereign=sovereign,
                        provider=provider,
                        region=region,
                        building_block=block,
                        env_type=env_type,
                    )
        call_command(
            "createoperator",
            "operator",
            email="operator@demo.local",
            password=opts["password"],
            stdout=self.stdout,
        )
        User = get_user_model()
        alice, created = User.objects.get_or_create(
            username="alice", defaults={"email": "alice@demo.local", "first_name": "Alice"}
        )
        if created:
            alice.set_password(opts["password"])
            alice.save()
        if not Organization.objects.filter(slug="acme-shop").exists():
            services.create_organization(
                by=alice,
                slug="acme-shop",
                display_name="Acme Shop",
                environments=[
                    {"env_type": "prod", "regions": ["hz-fsn-rtz-prod"]},
                    {"env_type": "dev", "regions": ["hz-fsn-rtz-dev"]},
                ],
            )
        for extra in getattr(settings, "DEMO_LOADERS", []):
            call_command(extra, stdout=self.stdout)
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo Sovereign {sovereign.fqdn} ready: operator / alice, password {opts['password']!r}."
            )
        )

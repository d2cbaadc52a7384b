from __future__ import annotations

import getpass
import os
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from accounts.models import Account, VerifiedEmail
from rbac import services as rbac_services


class Command(BaseCommand):
    help = "Create (or update) a local Sovereign operator account with a global owner grant."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--email", default="")
        parser.add_argument(
            "--password", help="omit to be prompted (or set CATALYST_OPERATOR_PASSWORD)"
        )
        parser.add_argument("--tier", default="owner", choices=["admin", "owner"])

    def handle(self, *args: Any, **opts: Any) -> None:
        password = opts["password"] or os.environ.get("CATALYST_OPERATOR_PASSWORD") or ""
        if not password and sys.stdin.isatty():
            password = getpass.getpass("Password: ")
        if len(password) < 8:
            raise CommandError("The password must be at least 8 characters long.")
        email = opts["email"].strip().lower()
        taken = Account.objects.filter(email__iexact=email).exclude(username=opts["username"])
        if email and taken.exists():
            raise CommandError(f"Another account already uses {email}.")
        with transaction.atomic():
            user, created = Account.objects.get_or_create(
                username=opts["username"], defaults={"email": email}
            )
            if email:
                user.email = email
                # The operator who runs this command vouches for the address.
                VerifiedEmail.objects.update_or_create(
                    user=user, defaults={"email": email, "method": VerifiedEmail.Method.OPERATOR}
                )
            user.set_password(password)
            user.is_staff = True
            user.save()
            result = rbac_services.assign(
                by=None, user=user, tier=opts["tier"], scopes=rbac_services.GLOBAL_SCOPE
            )
        verb = "Created" if created else "Updated"
        self.stdout.write(
            self.style.SUCCESS(
                f"{verb} operator {user.username} (global {opts['tier']}: {result.outcome})."
            )
        )

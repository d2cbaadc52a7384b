"""Issue 16: the app repo's layout became a base (`values.yaml`, the root `kustomization.yaml`,
`secrets/`) with per-Environment `overlays/<env>/<host-cluster>/` (manifests.py). Every
Application is re-rendered through the outbox: the level-triggered sync writes the new files,
deletes the files the old layout rendered (`clusters/<host-cluster>/applications/<app>/`, which
it owns), and points the Flux Kustomizations in catalyst-config at the root with the overlay as a
component — one commit per repo; a second sync finds nothing to do (README: Repository layout)."""

from __future__ import annotations

from typing import Any

from django.db import migrations

SYNC_TASK = "marketplace.tasks.sync_application_task"


def rerender(apps: Any, schema_editor: Any) -> None:
    Application = apps.get_model("marketplace", "Application")
    OutboxItem = apps.get_model("core", "OutboxItem")
    OutboxItem.objects.bulk_create(  # sent by the outbox sweeper (beat)
        OutboxItem(task_name=SYNC_TASK, key=str(pk))
        for pk in Application.objects.exclude(state="uninstalling")
        .values_list("pk", flat=True)
        .iterator()
    )


class Migration(migrations.Migration):
    dependencies = [
        ("marketplace", "0006_merge_20261130_1646"),
        ("core", "0004_move_tokens_and_identities_to_accounts"),
    ]

    operations = [migrations.RunPython(rerender, migrations.RunPython.noop)]

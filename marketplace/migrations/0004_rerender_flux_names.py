"""Issue 10: Flux object names became collision-proof (gitops.naming.flux_object_name). Every
Application is re-rendered through the outbox: its files keep their paths in catalyst-config, so
the level-triggered sync rewrites them with the new names and Flux's `prune` on the config
Kustomization removes the objects under the old names (README: Flux object names)."""

from __future__ import annotations

from typing import Any

from django.db import migrations

SYNC_TASK = "marketplace.tasks.sync_application_task"


def rerender(apps: Any, schema_editor: Any) -> None:
    Application = apps.get_model("marketplace", "Application")
    OutboxItem = apps.get_model("core", "OutboxItem")
    OutboxItem.objects.bulk_create(
        OutboxItem(task_name=SYNC_TASK, key=str(pk))
        for pk in Application.objects.values_list("pk", flat=True).iterator()
    )


class Migration(migrations.Migration):
    dependencies = [
        ("marketplace", "0003_catalog_proposals"),
        ("core", "0004_move_tokens_and_identities_to_accounts"),
    ]

    operations = [migrations.RunPython(rerender, migrations.RunPython.noop)]

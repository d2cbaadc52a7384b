"""Seed the standard plans with OMR prices, and make the ledger append-only in PostgreSQL."""

from django.db import migrations

PLANS = [
    # code, name, cpu millicores, memory MiB, disk GiB, flexi, monthly price (baisa)
    ("s", "S", 2000, 4096, 50, False, 15_000),
    ("m", "M", 4000, 8192, 100, False, 29_000),
    ("l", "L", 8000, 16384, 200, False, 55_000),
    ("xl", "XL", 16000, 32768, 400, False, 99_000),
    ("flexi", "Flexi", 0, 0, 0, True, 0),
]

APPEND_ONLY_SQL = """
CREATE OR REPLACE FUNCTION billing_ledger_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'billing_ledgerentry is append-only: % refused', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER billing_ledger_append_only
    BEFORE UPDATE OR DELETE ON billing_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION billing_ledger_append_only();
"""
DROP_SQL = """
DROP TRIGGER IF EXISTS billing_ledger_append_only ON billing_ledgerentry;
DROP FUNCTION IF EXISTS billing_ledger_append_only();
"""


def seed_plans(apps, schema_editor):
    Plan = apps.get_model("billing", "Plan")
    Price = apps.get_model("billing", "Price")
    Sovereign = apps.get_model("orgs", "Sovereign")
    sovereign = Sovereign.objects.order_by("pk").first()
    currency = sovereign.currency if sovereign else "OMR"
    for position, (code, name, cpu, mem, disk, flexi, price) in enumerate(PLANS):
        plan, created = Plan.objects.get_or_create(
            code=code,
            defaults={
                "name": name,
                "cpu_millicores": cpu,
                "memory_mib": mem,
                "disk_gib": disk,
                "is_flexi": flexi,
                "position": position,
            },
        )
        if created:
            Price.objects.create(plan=plan, amount_minor=price, currency=currency)


def append_only(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(APPEND_ONLY_SQL, params=None)


def drop_append_only(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_SQL, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0001_initial"),
        ("orgs", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(seed_plans, migrations.RunPython.noop),
        migrations.RunPython(append_only, drop_append_only),
    ]

"""Application prices in the price book: add-ons of kind "application" (not ordered at checkout)."""

from django.db import migrations, models

# code, name, unit, monthly price in OMR baisa (the Sovereign's currency at migration time)
APPLICATION_RATES = [
    ("app-small", "Application, small", "region", 3000),
    ("app-medium", "Application, medium", "region", 7000),
    ("app-large", "Application, large", "region", 15000),
    ("app-standby", "Hot-standby region", "region", 2000),
]


def seed_rates(apps, schema_editor):
    AddOn = apps.get_model("billing", "AddOn")
    Price = apps.get_model("billing", "Price")
    Sovereign = apps.get_model("orgs", "Sovereign")
    sovereign = Sovereign.objects.order_by("pk").first()
    currency = sovereign.currency if sovereign else "OMR"
    for code, name, unit, amount in APPLICATION_RATES:
        addon, created = AddOn.objects.get_or_create(
            code=code, defaults={"name": name, "unit": unit, "kind": "application"}
        )
        if created:
            Price.objects.create(addon=addon, amount_minor=amount, currency=currency)


class Migration(migrations.Migration):
    dependencies = [("billing", "0002_plans_and_append_only_ledger"), ("orgs", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="addon",
            name="kind",
            field=models.CharField(
                choices=[
                    ("addon", "Add-on (ordered at checkout)"),
                    ("application", "Application price (by size and topology)"),
                ],
                default="addon",
                help_text="application prices are not ordered at checkout; installs are priced by them",
                max_length=16,
            ),
        ),
        migrations.RunPython(seed_rates, migrations.RunPython.noop),
    ]

# ApiToken and OIDCIdentity now belong to the `accounts` app, which adopted their tables as they
# are: this only removes them from core's state (no table is touched).

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0003_oidc_identity"),
        ("accounts", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="ApiToken"),
                migrations.DeleteModel(name="OIDCIdentity"),
            ],
            database_operations=[],
        )
    ]

"""billing prices Applications through the usage source marketplace registers (billing does not
import marketplace)."""

from __future__ import annotations

import pytest

from billing import extras

pytestmark = pytest.mark.django_db


def test_marketplace_applications_are_the_usage_source(catalog, cast, on_commit):
    from marketplace import services
    from marketplace.models import BlueprintVersion

    version = BlueprintVersion.objects.get(blueprint__name="bp-valkey", version="2.0.0")
    env = cast["acme"].environments.get(env_type="prod")
    with on_commit():
        services.install(
            by=cast["admin"], env=env, version=version, name="cache", values={}, size="large"
        )
    usage = extras.usage(cast["acme"])
    assert [(u.name, u.size) for u in usage] == [("acme-prod/cache", "large")]

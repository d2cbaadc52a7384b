from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from marketplace import plans, services
from marketplace.models import Application, BlueprintVersion
from orgs.models import Environment, HostCluster
from tests.marketplace.conftest import blueprint_doc

pytestmark = pytest.mark.django_db


def v(name, version):
    return BlueprintVersion.objects.get(blueprint__name=name, version=version)


def test_when_decides_which_dependencies_are_planned(catalog, acme_prod):
    plan = plans.resolve(
        env=acme_prod,
        version=v("bp-wordpress", "2.0.0"),
        name="site",
        values={"domain": "a.example.com", "admin": {"email": "a@b"}},
    )
    assert [a["name"] for a in plan["apps"]] == ["site-db", "site"]
    assert (
        plan["apps"][0]["blueprint"] == "bp-mariadb"
        and plan["apps"][0]["values"]["database"] == "wordpress"
    )
    assert [s["alias"] for s in plan["skipped"]] == ["cache"]
    plan = plans.resolve(
        env=acme_prod,
        version=v("bp-wordpress", "2.0.0"),
        name="site",
        values={
            "domain": "a.example.com",
            "admin": {"email": "a@b"},
            "cache": {"enabled": True},
            "database": {"external": True, "host": "db.example.com", "existingSecret": "site-db"},
        },
    )
    assert [a["name"] for a in plan["apps"]] == ["site-cache", "site"] and plan["skipped"][0][
        "alias"
    ] == "db"


def test_an_external_database_needs_its_host_and_secret(catalog, acme_prod):
    with pytest.raises(ValidationError) as err:
        plans.resolve(
            env=acme_prod,
            version=v("bp-wordpress", "2.0.0"),
            name="site",
            values={
                "domain": "a.example.com",
                "admin": {"email": "a@b"},
                "database": {"external": True},
            },
        )
    assert err.value.message_dict == {
        "values.database.host": ["This field is required."],
        "values.database.existingSecret": ["This field is required."],
    }


def test_nested_dependencies_pick_the_highest_version_in_range(catalog, acme_prod):
    plan = plans.resolve(
        env=acme_prod,
        version=v("bp-gitea", "1.22.0"),
        name="git",
        values={"domain": "git.example.com", "admin": {"email": "a@b"}},
    )
    db = plan["apps"][0]
    assert db["name"] == "git-db" and db["blueprint"] == "bp-cnpg" and db["version"] == "1.5.0"
    assert plan["apps"][-1]["dependencies"] == {"db": "git-db"}


def test_use_existing_application(catalog, cast, acme_prod, on_commit):
    with on_commit():
        services.install(
            by=cast["admin"],
            env=acme_prod,
            version=v("bp-cnpg", "1.4.0"),
            name="shared-pg",
            values={},
        )
    options = plans.dependency_options(acme_prod, v("bp-keycloak", "24.0.0"))
    assert options[0]["existing"] == ["shared-pg"]
    plan = plans.resolve(
        env=acme_prod,
        version=v("bp-keycloak", "24.0.0"),
        name="sso",
        values={"domain": "sso.example.com"},
        choices={"db": "shared-pg"},
    )
    assert [a["name"] for a in plan["apps"]] == ["sso"] and plan["uses"][0][
        "application"
    ] == "shared-pg"
    # keycloak 25 needs ^1.5: shared-pg (1.4.0) is out of range
    with pytest.raises(ValidationError) as err:
        plans.resolve(
            env=acme_prod,
            version=v("bp-keycloak", "25.0.0"),
            name="sso",
            values={"domain": "sso.example.com"},
            choices={"db": "shared-pg"},
        )
    assert "outside ^1.5" in err.value.message_dict["dependencies.db"][0]


def test_another_orgs_application_is_refused(catalog, cast, on_commit):
    globex_prod = Environment.objects.get(name="globex-prod")
    with on_commit():
        services.install(
            by=cast["member_b"],
            env=globex_prod,
            version=v("bp-cnpg", "1.4.0"),
            name="pgsql",
            values={},
        )
    acme_prod = Environment.objects.get(name="acme-prod")
    with pytest.raises(ValidationError) as err:
        services.install(
            by=cast["admin"],
            env=acme_prod,
            version=v("bp-keycloak", "24.0.0"),
            name="sso",
            values={"domain": "s.example.com"},
            choices={"db": "globex-prod/pgsql"},
        )
    assert "another Organization" in err.value.message_dict["dependencies.db"][0]
    with pytest.raises(ValidationError) as err:
        services.install(
            by=cast["admin"],
            env=acme_prod,
            version=v("bp-keycloak", "24.0.0"),
            name="sso",
            values={"domain": "s.example.com"},
            choices={"db": "pgsql"},
        )
    assert "no Application “pgsql”" in err.value.message_dict["dependencies.db"][0]
    assert not Application.objects.filter(environment=acme_prod).exists()


def test_cycles_and_unsatisfiable_ranges_are_clear_errors(publish, acme_prod):
    publish(
        blueprint_doc("bp-a", "1.0.0", depends=[{"blueprint": "bp-b", "range": "^1"}]),
        blueprint_doc("bp-b", "1.0.0", depends=[{"blueprint": "bp-c", "range": "^1"}]),
        blueprint_doc("bp-c", "1.0.0", depends=[{"blueprint": "bp-a", "range": "^1"}]),
        blueprint_doc("bp-d", "1.0.0", depends=[{"blueprint": "bp-b", "range": "^2.0"}]),
    )
    with pytest.raises(ValidationError) as err:
        plans.resolve(env=acme_prod, version=v("bp-a", "1.0.0"), name="app", values={})
    assert err.value.message_dict["dependencies"] == [
        "Dependency cycle: bp-a → bp-b → bp-c → bp-a."
    ]
    with pytest.raises(ValidationError) as err:
        plans.resolve(env=acme_prod, version=v("bp-d", "1.0.0"), name="app", values={})
    assert err.value.message_dict["dependencies.b"] == [
        "bp-d needs bp-b ^2.0, which no catalog version satisfies (available: 1.0.0)."
    ]


def test_placement_rules(catalog, acme_prod):
    acme_prod.regions.add(HostCluster.objects.get(name="hz-hel-rtz-prod"))
    values = {"database": "app", "owner": "app"}
    cnpg = v("bp-cnpg", "1.5.0")
    with pytest.raises(ValidationError) as err:
        plans.resolve(
            env=acme_prod,
            version=cnpg,
            name="pgsql",
            values=values,
            placement="active-active",
            regions=["hz-fsn-rtz-prod", "hz-hel-rtz-prod"],
        )
    assert "allows only single-region, active-hotstandby" in err.value.message_dict["placement"][0]
    with pytest.raises(ValidationError) as err:
        plans.resolve(
            env=acme_prod,
            version=cnpg,
            name="pgsql",
            values=values,
            placement="active-hotstandby",
            regions=["hz-fsn-rtz-prod", "hz-fsn-rtz-dev"],
        )
    assert "Not a region of acme-prod: hz-fsn-rtz-dev" in err.value.message_dict["regions"][0]
    with pytest.raises(ValidationError) as err:
        plans.resolve(
            env=acme_prod,
            version=cnpg,
            name="pgsql",
            values=values,
            placement="active-hotstandby",
            regions=["hz-fsn-rtz-prod"],
        )
    assert "needs exactly 2 regions; 1 chosen" in err.value.message_dict["regions"][0]
    plan = plans.resolve(
        env=acme_prod,
        version=cnpg,
        name="pgsql",
        values=values,
        placement="active-hotstandby",
        regions=["hz-hel-rtz-prod", "hz-fsn-rtz-prod"],
    )
    assert plan["apps"][0]["regions"] == ["hz-hel-rtz-prod", "hz-fsn-rtz-prod"]


def test_bad_values_and_names_are_refused(catalog, acme_prod):
    with pytest.raises(ValidationError) as err:
        plans.resolve(env=acme_prod, version=v("bp-gitea", "1.22.0"), name="Bad_Name", values={})
    assert "name" in err.value.message_dict
    with pytest.raises(ValidationError) as err:
        plans.resolve(
            env=acme_prod,
            version=v("bp-gitea", "1.22.0"),
            name="git",
            values={"domain": "nope", "registration": "maybe"},
        )
    assert set(err.value.message_dict) == {
        "values.domain",
        "values.registration",
        "values.admin.email",
    }


def test_application_ref_must_name_an_app_of_this_environment(catalog, cast, acme_prod, on_commit):
    globex_prod = Environment.objects.get(name="globex-prod")
    with on_commit():
        services.install(
            by=cast["member_b"],
            env=globex_prod,
            version=v("bp-loki", "3.0.0"),
            name="logs",
            values={},
        )
        services.install(
            by=cast["admin"],
            env=acme_prod,
            version=v("bp-valkey", "2.0.0"),
            name="cache",
            values={},
        )
    grafana = v("bp-grafana", "11.0.0")
    with pytest.raises(ValidationError) as err:
        plans.resolve(
            env=acme_prod,
            version=grafana,
            name="dash",
            values={"domain": "d.acme.test", "logs": "logs"},
        )
    assert err.value.message_dict == {
        "values.logs": ["There is no Application “logs” in acme-prod."]
    }
    with pytest.raises(ValidationError) as err:
        plans.resolve(
            env=acme_prod,
            version=grafana,
            name="dash",
            values={"domain": "d.acme.test", "logs": "cache"},
        )
    assert err.value.message_dict == {"values.logs": ["“cache” is bp-valkey, not bp-loki."]}
    with on_commit():
        services.install(
            by=cast["admin"], env=acme_prod, version=v("bp-loki", "3.0.0"), name="logs", values={}
        )
    plan = plans.resolve(
        env=acme_prod,
        version=grafana,
        name="dash",
        values={"domain": "d.acme.test", "logs": "logs"},
    )
    assert plan["apps"][-1]["values"]["logs"] == "logs"

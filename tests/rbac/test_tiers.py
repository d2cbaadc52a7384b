from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import yaml
from django.core.exceptions import ImproperlyConfigured

from rbac import tiers

BASE = yaml.safe_load(tiers.TIERS_FILE.read_text())


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "tiers.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_shipped_file_loads_with_inclusion_and_developer_scope():
    loaded = tiers.load()
    assert list(loaded) == ["viewer", "developer", "operator", "admin", "owner"]
    assert [t.level for t in loaded.values()] == [10, 20, 30, 40, 50]
    names = list(loaded)
    for lower, higher in itertools.pairwise(names):
        assert loaded[lower].actions < loaded[higher].actions
    assert "compute.delete" not in loaded["admin"].actions
    assert "compute.update" in loaded["admin"].actions
    assert "rbac.assign" in loaded["owner"].actions and "rbac.assign" not in loaded["admin"].actions
    assert loaded["developer"].forced_scope == (("openova.io/env-type", "dev"),)
    assert {a for a in loaded["viewer"].actions} == {
        a for a in BASE["actions"] if a.endswith(".read")
    }


def test_unknown_action_stops_start_up_naming_it(tmp_path):
    data = yaml.safe_load(tiers.TIERS_FILE.read_text())
    data["tiers"]["operator"]["adds"].append("aplications.update")
    with pytest.raises(
        ImproperlyConfigured, match=r"'operator'.*'aplications.update'.*no known action"
    ):
        tiers.load(write(tmp_path, data))


def test_tier_order_and_names_are_checked(tmp_path):
    data = yaml.safe_load(tiers.TIERS_FILE.read_text())
    data["tiers"] = {
        k: data["tiers"][k] for k in ["developer", "viewer", "operator", "admin", "owner"]
    }
    with pytest.raises(ImproperlyConfigured, match="exactly"):
        tiers.load(write(tmp_path, data))
    data = yaml.safe_load(tiers.TIERS_FILE.read_text())
    data["tiers"]["superuser"] = {"level": 60, "adds": []}
    with pytest.raises(ImproperlyConfigured, match="exactly"):
        (tmp_path / "b").mkdir()
        tiers.load(write(tmp_path / "b", data))


def test_levels_must_rise(tmp_path):
    data = yaml.safe_load(tiers.TIERS_FILE.read_text())
    data["tiers"]["admin"]["level"] = 30
    with pytest.raises(ImproperlyConfigured, match="'admin' must have a higher level"):
        tiers.load(write(tmp_path, data))


def test_duplicate_action_is_refused(tmp_path):
    data = yaml.safe_load(tiers.TIERS_FILE.read_text())
    data["actions"].append("organization.read")
    with pytest.raises(ImproperlyConfigured, match="listed twice"):
        tiers.load(write(tmp_path, data))


def test_unknown_action_in_a_check_is_a_programming_error(db):
    from rbac import access

    with pytest.raises(ValueError, match=r"add it to rbac/tiers\.yaml"):
        access.can(None, "organisation.read", {})
    with pytest.raises(ValueError, match="unknown tier"):
        tiers.get("superuser")

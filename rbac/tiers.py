"""The five tiers, loaded once from rbac/tiers.yaml and checked at start-up."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml
from django.core.exceptions import ImproperlyConfigured

TIERS_FILE = Path(__file__).with_name("tiers.yaml")


@dataclass(frozen=True)
class Tier:
    name: str
    level: int
    actions: frozenset[str]
    forced_scope: tuple[tuple[str, str], ...]


def _expand(patterns: list[str], known: list[str], tier: str) -> set[str]:
    chosen: set[str] = set()
    for pattern in patterns:
        negate = pattern.startswith("-")
        body = pattern[1:] if negate else pattern
        matched = set(fnmatch.filter(known, body))
        if not matched:
            raise ImproperlyConfigured(
                f"rbac/tiers.yaml: tier {tier!r} names {pattern!r}, which matches no known action"
            )
        chosen = chosen - matched if negate else chosen | matched
    return chosen


@cache
def load(path: Path = TIERS_FILE) -> dict[str, Tier]:
    data = yaml.safe_load(path.read_text())
    known = list(data.get("actions") or [])
    if len(set(known)) != len(known):
        raise ImproperlyConfigured("rbac/tiers.yaml: an action is listed twice")
    tiers: dict[str, Tier] = {}
    inherited: set[str] = set()
    expected = ["viewer", "developer", "operator", "admin", "owner"]
    if list(data.get("tiers", {})) != expected:
        raise ImproperlyConfigured(
            f"rbac/tiers.yaml: tiers must be exactly {expected}, in that order"
        )
    last_level = 0
    for name, spec in data["tiers"].items():
        level = int(spec["level"])
        if level <= last_level:
            raise ImproperlyConfigured(
                f"rbac/tiers.yaml: tier {name!r} must have a higher level than the one before"
            )
        last_level = level
        inherited |= _expand(list(spec.get("adds") or []), known, name)
        scope = tuple(sorted((spec.get("scope") or {}).items()))
        tiers[name] = Tier(name=name, level=level, actions=frozenset(inherited), forced_scope=scope)
    return tiers


def get(name: str) -> Tier:
    try:
        return load()[name]
    except KeyError:
        raise ValueError(f"unknown tier {name!r}") from None


def names() -> list[str]:
    return list(load())


def choices() -> list[tuple[str, str]]:
    return [(name, name.capitalize()) for name in load()]


@cache
def known_actions(path: Path = TIERS_FILE) -> frozenset[str]:
    return frozenset(yaml.safe_load(path.read_text()).get("actions") or [])

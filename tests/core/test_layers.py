"""Dependencies point down: the kernel imports no app, and no app imports one above it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = {"core", "gitops", "rbac", "accounts", "orgs", "marketplace", "billing"}
# What each app may import (itself aside). Between marketplace and billing one direction only.
ALLOWED = {
    "core": set(),
    "gitops": {"core"},
    "rbac": {"core", "gitops"},
    "accounts": {"core", "gitops", "rbac"},
    "orgs": {"core", "gitops", "rbac"},
    "billing": {"core", "gitops", "rbac", "orgs"},
    "marketplace": {"core", "gitops", "rbac", "orgs", "billing"},
}


def imported_apps(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found |= {name.split(".")[0] for name in names} & APPS
    return found


@pytest.mark.parametrize("app", sorted(APPS))
def test_an_app_imports_only_the_layers_below_it(app: str) -> None:
    wrong = {
        str(path.relative_to(ROOT)): sorted(imported_apps(path) - ALLOWED[app] - {app})
        for path in (ROOT / app).rglob("*.py")
        if "migrations" not in path.parts
    }
    assert {path: apps for path, apps in wrong.items() if apps} == {}

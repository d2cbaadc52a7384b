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


def _relative_imports(path: Path) -> set[str]:
    """The modules of its own app that a module imports (`from . import x`, `from .x import …`)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found |= {node.module} if node.module else {a.name for a in node.names}
    return found


@pytest.mark.parametrize("app", ["orgs", "marketplace"])
def test_status_modules_only_read_and_render(app: str) -> None:
    """What Flux reports is recorded by the app's services and read by its status module: the
    status module imports no services (no cycle between them, lazy or not)."""
    status = ROOT / app / "status.py"
    assert "services" not in _relative_imports(status)
    assert "def connect" not in status.read_text()  # the Flux hook lives with the writes


def test_live_status_streams_live_in_the_apps_that_own_them() -> None:
    """One generic stream helper (gitops.streams); each app serves its own objects' streams."""
    assert not (ROOT / "catalyst_portal" / "sse.py").exists()
    for app in ("orgs", "marketplace"):
        source = (ROOT / app / "streams.py").read_text()
        assert "streams.follow(" in source and "EventStream(" not in source

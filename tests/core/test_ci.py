"""CI runs what the README says it runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _commands(script: str) -> list[str]:
    return [line.strip() for line in script.splitlines() if not line.lstrip().startswith("#")]


def test_ci_runs_make_check_not_only_the_tests():
    commands = _commands((ROOT / ".ci" / "run").read_text())
    assert any(re.search(r"\bmake check\b", line) for line in commands)
    readme = (ROOT / "README.md").read_text()
    assert "the same as CI" in readme


def test_no_assertion_is_short_circuited_with_or_true():
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in (ROOT / "tests").rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\bassert\b.*\bor True\b", line) and path.name != "test_ci.py"
    ]
    assert offenders == []


def test_ci_keeps_the_page_walk_screenshots_as_an_artifact():
    script = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^trap collect_screenshots EXIT$", script, re.M)  # pass or fail
    assert "tar czf var/ci-artifacts/screenshots.tar.gz -C var screenshots" in script
    walk = (ROOT / "tests" / "browser" / "test_page_walk.py").read_text()
    assert '"var" / "screenshots" / "walk"' in walk


def test_ci_runs_the_valkey_cluster_tests_and_a_subset_through_pgbouncer():
    script = (ROOT / ".ci" / "run").read_text()
    commands = "\n".join(_commands(script))
    assert "tests/core/test_valkey_cluster.py -q" in commands
    assert "pool_mode = transaction" in script and "start_pgbouncer" in commands
    assert "PORTAL_DB_PGBOUNCER=true" in commands and "tests/pgbouncer" in commands
    assert "127.0.0.1:6432/" in commands  # the tests' database URL is PgBouncer's port

"""A malformed environment stops start-up with a message naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]
PORTAL_VARIABLES = (
    "DATABASE_URL",
    "VALKEY_URL",
    "VALKEY_CLUSTER_URL",
    "NATS_URL",
    "DEBUG",
    "SECRET_KEY",
    "GITEA_URL",
    "GITEA_TOKEN",
    "OIDC_ISSUER",
    "OIDC_CLIENT_ID",
    "OIDC_CLIENT_SECRET",
    "OIDC_SIGN_ALGO",
    "OIDC_SCOPES",
    "API_TOKEN_DEFAULT_DAYS",
    "API_TOKEN_MAX_DAYS",
    "PORTAL_WEB_WORKERS",
    "PORTAL_DB_POOL",
    "PORTAL_DB_POOL_MIN",
    "PORTAL_DB_POOL_MAX",
    "LOG_FORMAT",
)


def check(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`manage.py check` in a clean environment plus `env`."""
    clean = {k: v for k, v in os.environ.items() if k not in PORTAL_VARIABLES}
    clean.pop("DJANGO_SETTINGS_MODULE", None)
    clean["PORTAL_VAR_DIR"] = str(tmp_path / "var")
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=BASE_DIR,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_clean_environment_starts(tmp_path: Path) -> None:
    result = check(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DATABASE_URL": "nonsense"}, "DATABASE_URL='nonsense' is not a database URL"),
        ({"DATABASE_URL": "postgres://host-only"}, "DATABASE_URL is not a valid PostgreSQL URL"),
        ({"VALKEY_URL": "ftp://x"}, "VALKEY_URL='ftp://x' is not a valid URL"),
        (
            {"VALKEY_CLUSTER_URL": "unix:///run/valkey.sock"},
            "VALKEY_CLUSTER_URL='unix:///run/valkey.sock' is not a valid URL",
        ),
        ({"PORTAL_METRICS_NETWORKS": "10.0.0.0/33"}, "PORTAL_METRICS_NETWORKS: '10.0.0.0/33'"),
        ({"PORTAL_METRICS_TOKEN": "short"}, "PORTAL_METRICS_TOKEN must be at least 16"),
        (
            {"FLUX_LEASE_SECONDS": "4", "FLUX_LEASE_RENEW_SECONDS": "4"},
            "FLUX_LEASE_RENEW_SECONDS=4 must be shorter than FLUX_LEASE_SECONDS=4",
        ),
        ({"DEBUG": "maybe"}, "DEBUG='maybe' is not a boolean"),
        (
            {"OIDC_ISSUER": "https://idp.example"},
            "OIDC_ISSUER is set but OIDC_CLIENT_ID is empty",
        ),
        ({"OIDC_ISSUER": "idp.example"}, "OIDC_ISSUER='idp.example' is not a valid URL"),
        ({"OIDC_SIGN_ALGO": "none"}, "OIDC_SIGN_ALGO='none' is not one of"),
        ({"OIDC_SCOPES": "openid profile"}, "OIDC_SCOPES='openid profile' must include"),
        (
            {"GITEA_URL": "http://gitea.local:3000"},
            "GITEA_URL is set but GITEA_TOKEN is empty",
        ),
        ({"API_TOKEN_MAX_DAYS": "lots"}, "API_TOKEN_MAX_DAYS='lots' is not an integer"),
        (
            {"API_TOKEN_DEFAULT_DAYS": "90", "API_TOKEN_MAX_DAYS": "30"},
            "API_TOKEN_DEFAULT_DAYS=90 exceeds API_TOKEN_MAX_DAYS=30",
        ),
        ({"PORTAL_WEB_WORKERS": "4"}, "PORTAL_WEB_WORKERS=4 needs VALKEY_URL"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT='xml' is not plain or json"),
        ({"PORTAL_WEB_WORKERS": "0"}, "PORTAL_WEB_WORKERS"),
        (
            {"DATABASE_URL": "postgres://u@db/portal?conn_max_age=60"},
            "DATABASE_URL sets conn_max_age but PORTAL_DB_POOL is on",
        ),
        (
            {
                "DATABASE_URL": "postgres://u@db/portal",
                "PORTAL_DB_POOL_MIN": "9",
                "PORTAL_DB_POOL_MAX": "2",
            },
            "PORTAL_DB_POOL_MIN=9 exceeds PORTAL_DB_POOL_MAX=2",
        ),
    ],
    ids=lambda value: next(iter(value)) if isinstance(value, dict) else "",
)
def test_a_bad_variable_stops_start_up_naming_it(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    result = check(tmp_path, **env)

    assert result.returncode == 1
    assert result.stderr.strip().startswith("Configuration error: ")
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert "System check" not in result.stdout

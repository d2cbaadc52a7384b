"""Typed readers of environment variables. A bad value stops start-up naming the variable."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use true/false, 1/0, yes/no).")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer.") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={raw!r} must be at least {minimum}.")
    return value


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return list(default or [])
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_int_list(name: str, default: list[int], *, minimum: int = 0) -> list[int]:
    """Comma-separated integers (`3,7`), each at least `minimum`, sorted."""
    values = []
    for item in env_list(name, [str(d) for d in default]):
        try:
            value = int(item)
        except ValueError:
            raise ImproperlyConfigured(f"{name}: {item!r} is not a whole number.") from None
        if value < minimum:
            raise ImproperlyConfigured(f"{name}: {value} is below {minimum}.")
        values.append(value)
    return sorted(values)


def env_url(name: str, *, schemes: tuple[str, ...], default: str = "") -> str:
    """An optional URL; when set it must have one of `schemes` and a host."""
    raw = env_str(name, default)
    if not raw:
        return ""
    parts = urlsplit(raw)
    if parts.scheme not in schemes or not parts.hostname:
        allowed = ", ".join(f"{s}://" for s in schemes)
        raise ImproperlyConfigured(f"{name}={raw!r} is not a valid URL (expected {allowed}host…).")
    return raw


def database_from_url(name: str, *, sqlite_default: Path) -> dict[str, Any]:
    """Django DATABASES['default'] from a URL: postgres://user:pass@host:port/db or sqlite:///path."""
    raw = env_str(name)
    if not raw:
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": str(sqlite_default)}
    parts = urlsplit(raw)
    if parts.scheme == "sqlite":
        path = unquote(parts.path)
        if not path or path == "/":
            raise ImproperlyConfigured(
                f"{name}={raw!r}: a sqlite URL needs a file path (sqlite:///var/db.sqlite3)."
            )
        # sqlite:///relative/path → "relative/path"; sqlite:////absolute/path → "/absolute/path"
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": path[1:]}
    if parts.scheme in ("postgres", "postgresql", "pgsql"):
        db = unquote(parts.path.lstrip("/"))
        if not parts.hostname or not db:
            raise ImproperlyConfigured(
                f"{name} is not a valid PostgreSQL URL (expected postgres://user:password@host:5432/dbname)."
            )
        try:
            port = parts.port
        except ValueError:
            raise ImproperlyConfigured(f"{name} has an invalid port.") from None
        options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        # 0: a connection per request, returned at its end. Persistent connections are per
        # thread, and under ASGI every request runs in a thread of its own: they would pile up.
        conn_max_age = int(options.pop("conn_max_age", "0"))
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": db,
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname,
            "PORT": str(port or 5432),
            "CONN_MAX_AGE": conn_max_age,
            "CONN_HEALTH_CHECKS": True,
            "OPTIONS": options,
        }
    raise ImproperlyConfigured(
        f"{name} has an unsupported scheme {parts.scheme!r} (use postgres:// or sqlite:///)."
        if parts.scheme
        else f"{name}={raw!r} is not a database URL (use postgres://… or sqlite:///…)."
    )

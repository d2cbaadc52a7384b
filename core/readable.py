"""Plain renderings of data for people: relative times, YAML, field-level diffs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import yaml

_Base: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class Dumper(_Base):
    """Safe YAML, never aliases (`&id001`), lists indented under their key."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


UNITS = [(86400 * 365, "year"), (86400 * 30, "month"), (86400, "day"), (3600, "h"), (60, "min")]


def relative(when: datetime, now: datetime) -> str:
    """`just now`, `12 s ago`, `3 min ago`, `2 h ago`, `4 days ago`; `in 5 min` for the future."""
    seconds = int((now - when).total_seconds())
    future, seconds = seconds < 0, abs(seconds)
    if seconds < 5:
        return "just now"
    text = f"{seconds} s"
    for size, unit in UNITS:
        if seconds >= size:
            count = seconds // size
            plural = "s" if count > 1 and unit in ("year", "month", "day") else ""
            text = f"{count} {unit}{plural}"
            break
    return f"in {text}" if future else f"{text} ago"


@dataclass(frozen=True)
class Change:
    """One field: `kind` is "added", "removed" or "changed"; values shown as short YAML."""

    path: str
    kind: str
    before: str = ""
    after: str = ""


MISSING = object()


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flat(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix or "value": value}


def short(value: Any) -> str:
    """A scalar as YAML writes it inline (`null`, `true`, `'3'`), a list or map in flow style."""
    text = yaml.dump(
        value, Dumper=Dumper, default_flow_style=True, width=10_000, allow_unicode=True
    )
    return text.removesuffix("\n...\n").strip()


def diff(before: Any, after: Any) -> list[Change]:
    """Field-level changes from `before` to `after` (nested keys dotted, unchanged ones left out)."""
    old = _flat(before) if before not in (None, {}) else {}
    new = _flat(after) if after not in (None, {}) else {}
    changes = []
    for path in [*old, *(k for k in new if k not in old)]:
        a, b = old.get(path, MISSING), new.get(path, MISSING)
        if a is MISSING:
            changes.append(Change(path, "added", after=short(b)))
        elif b is MISSING:
            changes.append(Change(path, "removed", before=short(a)))
        elif a != b:
            changes.append(Change(path, "changed", short(a), short(b)))
    return changes

"""Readable data on every page: relative times, YAML, field diffs (UX.md "Objects and state")."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import yaml
from django import template
from django.utils import timezone
from django.utils.html import format_html

from core import readable
from core.models import AuditEvent

register = template.Library()


@register.filter
def ago(value: datetime | None) -> str:
    """`<time datetime=… title="2026-11-30 16:02:33 UTC">3 min ago</time>`; "—" for None."""
    if not value:
        return "—"
    exact = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        value.isoformat(),
        exact,
        readable.relative(value, timezone.now()),
    )


@register.filter(name="yaml")
def as_yaml(value: Any) -> str:
    """A value as block YAML (keys in their own order); `{}` for nothing."""
    if value in (None, {}, []):
        return "{}\n"
    return yaml.dump(value, Dumper=readable.Dumper, sort_keys=False, allow_unicode=True, width=100)


@register.filter
def diff(event: Any) -> list[readable.Change]:
    """An audit event's before/after as field-level changes."""
    return readable.diff(getattr(event, "before", None), getattr(event, "after", None))


@register.simple_tag
def recent_events(org_slug: str, count: int = 5) -> list[Any]:
    """{% recent_events org.slug 5 as events %}: the latest audit events of an Organization
    (check `audit.read` before showing them)."""
    return list(AuditEvent.objects.for_org(org_slug).select_related("actor")[:count])


@register.simple_tag
def form_problems(*forms: Any) -> list[dict[str, str]]:
    """Every error of these forms once, in page order: [{"id": field id or "", "message"}] for
    the GOV.UK error summary (non-field errors first, they link nowhere)."""
    problems: list[dict[str, str]] = []
    seen: set[tuple[str, str]] = set()

    def add(field_id: str, message: str) -> None:
        if (field_id, message) not in seen:
            seen.add((field_id, message))
            problems.append({"id": field_id, "message": message})

    bound = [f for f in forms if f and getattr(f, "errors", None)]
    for form in bound:
        for message in form.non_field_errors():
            add("", str(message))
    for form in bound:
        for field in form:
            for message in field.errors:
                add(field.id_for_label or field.auto_id, str(message))
    return problems

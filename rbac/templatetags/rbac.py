from typing import Any

from django import template

from rbac import access

register = template.Library()


@register.simple_tag(takes_context=True)
def can(context: dict[str, Any], action: str, target: Any) -> bool:
    """{% can "environments.create" org as may_create %}: hide controls the user may not use."""
    return access.can(context["request"].user, action, target)

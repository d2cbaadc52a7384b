"""DRF permission classes over the same checks as the pages (`rbac.access`)."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from rest_framework.permissions import BasePermission

from . import access


def global_permission(action: str) -> type[BasePermission]:
    """`permission_classes=[global_permission("billing.manage")]` for Sovereign-operator endpoints:
    401 for anonymous callers, 404 for everyone without a global grant (as `require_global`)."""

    class GlobalAction(BasePermission):
        def has_permission(self, request: Any, view: Any) -> bool:
            if not getattr(request.user, "is_authenticated", False):
                return False
            if not access.is_global(request.user, action):
                raise Http404
            return True

    GlobalAction.__name__ = f"Global_{action.replace('.', '_')}"
    return GlobalAction


class ObjectAction(BasePermission):
    """For generic views: `rbac_action = {"GET": "applications.read", "POST": ...}` on the view;
    objects are then checked with `can()` (read refused → 404, action refused → 403)."""

    def has_object_permission(self, request: Any, view: Any, obj: Any) -> bool:
        action = view.rbac_action[request.method]
        if not access.can(request.user, access.read_action(action), obj):
            raise Http404
        return access.can(request.user, action, obj)

"""API errors as `{"errors": {field.path: [messages]}}` with the right status code."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "Conflict."
    default_code = "conflict"


def flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """Flatten DRF's nested error detail into dotted field paths."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            if isinstance(key, int):
                path = f"{prefix}[{key}]"
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
            for k, v in flatten(value, path).items():
                out.setdefault(k, []).extend(v)
    elif isinstance(detail, list) and detail and all(isinstance(x, (dict, list)) for x in detail):
        for index, value in enumerate(detail):
            for k, v in flatten(value, f"{prefix}[{index}]" if prefix else str(index)).items():
                out.setdefault(k, []).extend(v)
    elif isinstance(detail, list):
        out[prefix or "non_field_errors"] = [str(x) for x in detail]
    else:
        out[prefix or "detail"] = [str(detail)]
    return out


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    if isinstance(exc, Http404):
        return Response({"errors": {"detail": ["Not found."]}}, status=status.HTTP_404_NOT_FOUND)
    if isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    # a NotFound may name the field whose reference was not found (its detail a dict)
    field_errors = (exceptions.ValidationError, exceptions.NotFound, Conflict)
    if isinstance(exc, field_errors) and isinstance(data, (dict, list)):
        response.data = {"errors": flatten(data)}
    else:
        message = data.get("detail", data) if isinstance(data, dict) else data
        response.data = {"errors": {"detail": [str(message)]}}
    return response


def call_service(service: Any, **kwargs: Any) -> Any:
    """Run a service from an API view: its ValidationError becomes 400 (ConflictError 409) with
    field paths, its PermissionDenied a 403 carrying the service's reason."""
    from core.errors import ConflictError

    try:
        return service(**kwargs)
    except ConflictError as exc:
        raise Conflict(detail=_detail(exc)) from None
    except PermissionDenied as exc:
        raise exceptions.PermissionDenied(str(exc) or None) from None
    except DjangoValidationError as exc:
        raise exceptions.ValidationError(_detail(exc)) from None


def _detail(exc: DjangoValidationError) -> Any:
    return exc.message_dict if hasattr(exc, "error_dict") else exc.messages

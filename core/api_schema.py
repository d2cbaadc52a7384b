"""The published OpenAPI schema says what the API answers: a postprocessing hook of
drf-spectacular documents the error statuses every operation can give, with the one error body
the API uses (`core.api_errors`): `{"errors": {"<field path>": ["message", …]}}`."""

from __future__ import annotations

from typing import Any

ERRORS_SCHEMA = {
    "type": "object",
    "description": "An error: messages per field path (`detail` for the request as a whole).",
    "properties": {
        "errors": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        }
    },
    "required": ["errors"],
}
ERROR_STATUSES = {
    "400": "Invalid input: messages per field path.",
    "401": "Not signed in (no session, no valid API token).",
    "403": "Signed in, but this action is not allowed here.",
    "404": "Not found, or not visible to the caller.",
    "405": "Method not allowed.",
    "409": "Conflicts with the current state.",
    "410": "Gone: no longer available.",
    "415": "Unsupported media type.",
    "422": "Idempotency-Key reused with another body.",
    "429": "Too many attempts.",
}
METHODS = ("get", "put", "post", "patch", "delete")


def document_errors(result: dict[str, Any], generator: Any, request: Any, public: bool) -> Any:
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components["Errors"] = ERRORS_SCHEMA
    ref = {"$ref": "#/components/schemas/Errors"}
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in METHODS:
                continue
            responses = operation.setdefault("responses", {})
            for code, description in ERROR_STATUSES.items():
                responses.setdefault(
                    code,
                    {"description": description, "content": {"application/json": {"schema": ref}}},
                )
    return result


def _page_parameters() -> list[Any]:
    from drf_spectacular.types import OpenApiTypes
    from drf_spectacular.utils import OpenApiParameter

    return [
        OpenApiParameter(
            "after",
            OpenApiTypes.STR,
            description="Where the page starts: the cursor of the `Link` header's next page.",
        ),
        OpenApiParameter(
            "size",
            {"type": "integer", "minimum": 1, "maximum": 500},
            description="Rows per page, 1 to 500 (default 100); anything else is a 400.",
        ),
        OpenApiParameter(
            "Link",
            OpenApiTypes.STR,
            location=OpenApiParameter.HEADER,
            response=[200],
            description='`<url>; rel="next"`: the next page; absent on the last page.',
        ),
    ]


# The query parameters and response header of a keyset-paginated list (core/pagination.py).
PAGE_PARAMETERS = _page_parameters()


def reads_database(hook: Any) -> Any:
    """A postprocessing hook that lists choices read from the database (host clusters, priced
    plans) leaves the schema as the code declares it when there is no database to read: a
    `manage.py check --deploy` before `migrate` (an image build) generates the schema too."""
    import functools

    from django.db import DatabaseError

    @functools.wraps(hook)
    def wrapper(result: dict[str, Any], generator: Any, request: Any, public: bool) -> Any:
        try:
            return hook(result, generator, request, public)
        except DatabaseError:
            return result

    return wrapper

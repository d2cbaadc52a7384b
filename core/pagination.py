"""Keyset pagination: a page costs the same on row 10 as on row 100,000.

A page is `size` rows in a fixed order whose last field is unique (the primary key breaks ties;
a field written `-name` runs newest/highest first); the next page starts strictly after the last
row's key, carried in an opaque `after` cursor (the key's values, signed: a hand-made cursor is
refused and the first page shown). No OFFSET, no COUNT: the database walks an index from the
cursor.

Pages link the next one (`core/keyset_nav.html`); API lists answer a JSON list of at most
`?size=` rows (default API_PAGE_SIZE) and name the next page in a `Link: <…>; rel="next"` header
(RFC 8288), absent on the last page (`api_response`).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import urlencode

from django.core import signing
from django.db.models import Model, Q, QuerySet
from django.http import HttpRequest

M = TypeVar("M", bound=Model)
_SALT = "core.pagination"
MAX_PAGE_SIZE = 500
API_PAGE_SIZE = 100


@dataclass
class KeysetPage(Generic[M]):
    items: list[M]
    next_cursor: str
    is_first: bool
    next_query: str = ""  # the query string of the next page ("" on the last)
    first_query: str = ""  # the query string of the first page (the same filters)

    def __iter__(self) -> Any:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


def _value(row: Any, field: str) -> Any:
    for part in field.lstrip("-").split("__"):
        row = getattr(row, part)
    return row.pk if isinstance(row, Model) else row


def _encode(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return {"dt": value.isoformat()}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"dt"}:
        return datetime.datetime.fromisoformat(value["dt"])
    return value


def encode_cursor(values: list[Any]) -> str:
    return signing.dumps([_encode(v) for v in values], salt=_SALT, compress=True)


def decode_cursor(cursor: str, width: int) -> list[Any] | None:
    """The key values in `cursor`, or None when it is missing, forged or of another shape."""
    if not cursor:
        return None
    try:
        values = signing.loads(cursor, salt=_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(values, list) or len(values) != width:
        return None
    try:
        return [_decode(v) for v in values]
    except (TypeError, ValueError):
        return None


def after(order: tuple[str, ...], values: list[Any]) -> Q:
    """Rows strictly after `values` in `order` (a row-value comparison, spelled out; a `-field`
    compares downwards)."""
    condition = Q()
    for i in range(len(order) - 1, -1, -1):
        field = order[i].lstrip("-")
        beyond = "lt" if order[i].startswith("-") else "gt"
        strictly = Q(**{f"{field}__{beyond}": values[i]})
        condition = (
            strictly if i == len(order) - 1 else strictly | (Q(**{field: values[i]}) & condition)
        )
    return condition


def paginate(
    qs: QuerySet[M], *, order: tuple[str, ...], cursor: str = "", size: int = 50
) -> KeysetPage[M]:
    """One page of `qs` in `order` (its last field unique) after `cursor`."""
    size = max(1, min(size, MAX_PAGE_SIZE))
    values = decode_cursor(cursor, len(order))
    if values is not None:
        qs = qs.filter(after(order, values))
    rows = list(qs.order_by(*order)[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    next_cursor = encode_cursor([_value(rows[-1], f) for f in order]) if more else ""
    return KeysetPage(items=rows, next_cursor=next_cursor, is_first=values is None)


def paginate_request(
    request: HttpRequest,
    qs: QuerySet[M],
    *,
    order: tuple[str, ...],
    size: int = 50,
    param: str = "after",
) -> KeysetPage[M]:
    """`paginate` with the cursor (`?after=`, or `param` where a page holds several lists, each
    paged on its own) and `?size=` of the request (default `size`); the page's links keep the
    request's other parameters (filters, the other lists' cursors)."""
    size = api_page_size(request, size) if _is_api(request) else page_size(request, size)
    page = paginate(qs, order=order, cursor=request.GET.get(param, ""), size=size)
    params = {k: v for k, v in request.GET.items() if k != param}
    page.first_query = urlencode(params)
    if page.next_cursor:
        page.next_query = urlencode({**params, param: page.next_cursor})
    return page


def page_size(request: HttpRequest, default: int = 50) -> int:
    """`?size=` bounded to 1..MAX_PAGE_SIZE (anything else: `default`)."""
    try:
        return max(1, min(int(request.GET.get("size", default)), MAX_PAGE_SIZE))
    except ValueError:
        return default


def _is_api(request: Any) -> bool:
    from rest_framework.request import Request

    return isinstance(request, Request)


def api_page_size(request: Any, default: int = API_PAGE_SIZE) -> int:
    """The API's `?size=`: absent is `default`; anything but a whole number from 1 to
    MAX_PAGE_SIZE is a 400 naming the parameter (a page quietly falls back; an API client
    asked for something else and should know)."""
    from rest_framework.exceptions import ValidationError

    raw = request.GET.get("size")
    if raw is None:
        return default
    if raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_PAGE_SIZE:
        return int(raw)
    raise ValidationError({"size": [f"A whole number from 1 to {MAX_PAGE_SIZE}."]})


def api_response(request: Any, page: KeysetPage[Any], data: Any) -> Any:
    """A DRF response of one page (`data`, the serialized rows) with the next page's `Link`."""
    from rest_framework.response import Response

    response = Response(data)
    if page.next_query:
        url = request.build_absolute_uri(f"{request.path}?{page.next_query}")
        response["Link"] = f'<{url}>; rel="next"'
    return response

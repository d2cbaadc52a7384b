"""Per-request metadata (request id, client IP) for audit events and log lines.

A contextvar works for both WSGI threads and ASGI tasks; Celery tasks set it from the outbox row.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestMeta:
    request_id: str = ""
    ip: str | None = None


_meta: contextvars.ContextVar[RequestMeta] = contextvars.ContextVar(
    "request_meta",
    default=RequestMeta(),  # noqa: B039 (frozen dataclass)
)


def current() -> RequestMeta:
    return _meta.get()


def bind(meta: RequestMeta) -> contextvars.Token[RequestMeta]:
    return _meta.set(meta)


def reset(token: contextvars.Token[RequestMeta]) -> None:
    _meta.reset(token)

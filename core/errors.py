import logging

from django.core.exceptions import ValidationError


class ConflictError(ValidationError):
    """The input is well-formed but clashes with existing state (duplicate slug, …): HTTP 409."""


class DeliveryError(Exception):
    """A delivery failed in a way worth retrying (Git server down, conflict, timeout): the
    outbox logs it as one line at `log_level`, without a traceback (it is not a bug)."""

    log_level = logging.WARNING

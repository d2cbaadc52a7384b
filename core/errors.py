from django.core.exceptions import ValidationError


class ConflictError(ValidationError):
    """The input is well-formed but clashes with existing state (duplicate slug, …): HTTP 409."""

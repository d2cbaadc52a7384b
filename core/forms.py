from __future__ import annotations

import re

from django import forms
from django.core.exceptions import ValidationError

_INDEXED = re.compile(r"^\w+\[\d+\]\.")


def apply_errors(form: forms.BaseForm, exc: ValidationError) -> None:
    """Attach a service's ValidationError to the form: per field where the form has that field
    (an indexed path such as `environments[0].regions` maps to `regions`), else to the form."""
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc)
        return
    for field, errors in exc.message_dict.items():
        name = _INDEXED.sub("", field)
        form.add_error(name if name in form.fields else None, errors)

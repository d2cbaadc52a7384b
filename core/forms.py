from __future__ import annotations

import re
from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator

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


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=64, help_text="What the token is for, e.g. “CI pipeline”.")
    days = forms.IntegerField(min_value=1, label="Expires in (days)")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        days = self.fields["days"]
        days.initial = settings.API_TOKEN_DEFAULT_DAYS
        days.validators.append(MaxValueValidator(settings.API_TOKEN_MAX_DAYS))
        days.widget.attrs["max"] = settings.API_TOKEN_MAX_DAYS

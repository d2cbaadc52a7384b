"""One confirmation pattern for destructive actions (UX.md "Actions and feedback").

A GET shows what will happen; the POST acts. Where data or money is at stake the object's name is
typed to confirm (`TypedConfirmForm`). Every such page renders `templates/confirm.html`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


class TypedConfirmForm(forms.Form):
    """The object's name, typed; compared after `normalize` (exact by default)."""

    confirm = forms.CharField(max_length=128)

    def __init__(
        self,
        *args: Any,
        expected: str,
        label: str = "Name",
        normalize: Callable[[str], str] = str.strip,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.expected, self.normalize = expected, normalize
        field = self.fields["confirm"]
        field.label = label
        field.help_text = f"Type {expected} to confirm."
        field.error_messages["required"] = f"Type {expected} to confirm."

    def clean_confirm(self) -> str:
        typed = self.cleaned_data["confirm"]
        if self.normalize(typed) != self.normalize(self.expected):
            raise forms.ValidationError(
                f"Type {self.expected} exactly as shown to confirm (you typed “{typed.strip()}”)."
            )
        return typed


def page(
    request: HttpRequest,
    *,
    title: str,
    consequence: str | Sequence[str],
    button: str,
    cancel_url: str,
    crumbs: Sequence[tuple[str, str]] = (),
    form: forms.Form | None = None,
    expected: str = "",
    danger: bool = True,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    lines = [consequence] if isinstance(consequence, str) else list(consequence)
    context = {
        "title": title,
        "consequence": lines,
        "button": button,
        "cancel_url": cancel_url,
        "crumbs": crumbs,
        "form": form,
        "expected": expected,
        "danger": danger,
        "error": error,
    }
    return render(request, "confirm.html", context, status=status)

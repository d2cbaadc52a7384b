from __future__ import annotations

from typing import Any

from django import forms

from rbac import tiers
from rbac.services import SCOPE_KEYS


def invitable_tiers() -> list[tuple[str, str]]:
    return [(name, label) for name, label in tiers.choices() if name != "owner"]


class InviteForm(forms.Form):
    email = forms.EmailField(label="E-mail")
    tier = forms.ChoiceField(choices=invitable_tiers, initial="viewer")
    scope_key = forms.ChoiceField(
        choices=[
            ("", "— whole Organization —"),
            *[(k, k) for k in SCOPE_KEYS if k != "openova.io/organization"],
        ],
        required=False,
        label="Narrow to label",
        help_text="Optional: limit the grant to one Environment, env type, application, …",
    )
    scope_value = forms.CharField(required=False, max_length=128, label="Label value")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if bool(data.get("scope_key")) != bool((data.get("scope_value") or "").strip()):
            self.add_error("scope_value", "Give both a label and its value, or neither.")
        return data

    def scopes(self) -> list[dict[str, str]]:
        key = self.cleaned_data.get("scope_key")
        value = (self.cleaned_data.get("scope_value") or "").strip()
        return [{"key": key, "value": value}] if key and value else []


class TierForm(forms.Form):
    tier = forms.ChoiceField(choices=tiers.choices)


class TransferForm(forms.Form):
    to = forms.TypedChoiceField(coerce=int, label="New owner", choices=[])

    def __init__(self, *args: Any, members: list[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["to"].choices = [(m.user.pk, m.user.get_username()) for m in members]  # type: ignore[attr-defined]

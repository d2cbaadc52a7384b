from __future__ import annotations

from typing import Any

from django import forms

from rbac import tiers

from . import members
from .models import Organization


def invitable_tiers() -> list[tuple[str, str]]:
    return [(name, label) for name, label in tiers.choices() if name != "owner"]


class InviteForm(forms.Form):
    email = forms.EmailField(label="E-mail")
    tier = forms.ChoiceField(choices=invitable_tiers, initial="viewer")
    scope = forms.ChoiceField(
        required=False,
        label="Access to",
        help_text="The whole Organization, or only one Environment, Environment type or Application.",
        error_messages={"invalid_choice": "Choose one of the Environments or Applications listed."},
    )

    def __init__(self, *args: Any, org: Organization, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.options = {o.value: o for o in members.scope_options(org)}
        groups: dict[str, list[tuple[str, str]]] = {}
        for option in self.options.values():
            groups.setdefault(option.group, []).append((option.value, option.label))
        field = self.fields["scope"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", "The whole Organization"), *groups.items()]

    def scopes(self) -> list[dict[str, str]]:
        option = self.options.get(self.cleaned_data.get("scope") or "")
        return [{"key": k, "value": v} for k, v in option.terms] if option else []


class TierForm(forms.Form):
    tier = forms.ChoiceField(choices=tiers.choices)


class TransferForm(forms.Form):
    to = forms.TypedChoiceField(coerce=int, label="New owner", choices=[])

    def __init__(self, *args: Any, members: list[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["to"].choices = [(m.user.pk, m.user.get_username()) for m in members]  # type: ignore[attr-defined]

from __future__ import annotations

from typing import Any

from django import forms

from .models import HostCluster, Organization
from .naming import ENV_TYPES, slug_problem
from .services import slug_available


class OrganizationCreateForm(forms.Form):
    slug = forms.CharField(
        help_text="3–32 lower-case letters, digits and dashes, starting with a letter. It names your Git organization and cluster resources and cannot be changed.",
    )
    display_name = forms.CharField(max_length=128)
    default_env_type = forms.ChoiceField(choices=[(t, t) for t in ENV_TYPES], initial="prod")
    env_type = forms.ChoiceField(
        choices=[("", "— none yet —"), *[(t, t) for t in ENV_TYPES]],
        required=False,
        label="First Environment",
    )
    regions = forms.ModelMultipleChoiceField(
        queryset=HostCluster.objects.all(),
        to_field_name="name",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="1 to 5 host clusters for the first Environment.",
    )

    def clean_slug(self) -> str:
        slug = self.cleaned_data["slug"].strip()
        problem = slug_available(slug)
        if problem:
            raise forms.ValidationError(problem)
        return slug

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("env_type") and not data.get("regions"):
            self.add_error("regions", "Choose at least one region for the first Environment.")
        return data

    def environments(self) -> list[dict[str, Any]]:
        if not self.cleaned_data.get("env_type"):
            return []
        return [
            {
                "env_type": self.cleaned_data["env_type"],
                "regions": [c.name for c in self.cleaned_data["regions"]],
            }
        ]


class SlugCheckForm(forms.Form):
    slug = forms.CharField(required=False)

    def problem(self) -> str | None:
        slug = (self.data.get("slug") or "").strip()
        return slug_problem(slug) if not slug else slug_available(slug)


class OrganizationEditForm(forms.ModelForm):
    class Meta:
        model = Organization
        fields = ["display_name"]


class EnvironmentCreateForm(forms.Form):
    env_type = forms.ChoiceField(choices=[(t, t) for t in ENV_TYPES])
    regions = forms.ModelMultipleChoiceField(
        queryset=HostCluster.objects.all(),
        to_field_name="name",
        widget=forms.CheckboxSelectMultiple,
        help_text="1 to 5 host clusters. More than one makes a multi-region Environment.",
    )

    def region_names(self) -> list[str]:
        return [c.name for c in self.cleaned_data["regions"]]


class TypedNameForm(forms.Form):
    """A destructive action's confirmation: the Organization's slug typed exactly."""

    confirm = forms.CharField(
        label="Organization name",
        max_length=64,
        error_messages={"required": "Type the Organization's name to confirm."},
    )

    def __init__(self, *args: Any, expected: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.expected = expected
        self.fields["confirm"].help_text = f"Type {expected} to confirm."
        self.fields["confirm"].widget.attrs.update(autocomplete="off", spellcheck="false")

    def clean_confirm(self) -> str:
        typed = self.cleaned_data["confirm"].strip()
        if typed != self.expected:
            raise forms.ValidationError(
                f"Type {self.expected} exactly as shown to confirm (you typed “{typed}”)."
            )
        return typed

from __future__ import annotations

from typing import Any, cast

from django import forms

from orgs.models import Environment

from .models import SIZES, Placement
from .plans import NEW, name_problem


class CatalogFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=100, label="Search")
    category = forms.CharField(required=False, max_length=64)
    tag = forms.CharField(required=False, max_length=64)


class InstallForm(forms.Form):
    """Where and how to install (the Blueprint's own settings come from its SchemaForm)."""

    environment = forms.ChoiceField(label="Environment")
    name = forms.CharField(
        max_length=40,
        help_text="Lower-case letters, digits and dashes; unique in the Environment.",
    )
    size = forms.ChoiceField(choices=[(s, s.capitalize()) for s in SIZES], initial="small")
    placement = forms.ChoiceField(choices=Placement.choices, initial=Placement.SINGLE)
    regions = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Host clusters of the Environment; the first chosen is the active one.",
    )

    def __init__(
        self,
        *args: Any,
        environments: list[Environment],
        placement_modes: list[str],
        dependencies: list[dict[str, Any]],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.environments = {e.name: e for e in environments}
        self._choice("environment").choices = [(e.name, e.name) for e in environments]
        self._choice("placement").choices = [
            (value, label) for value, label in Placement.choices if value in placement_modes
        ]
        chosen = self.environments.get(
            str(self.data.get("environment") or self.initial.get("environment") or "")
        )
        scope = [chosen] if chosen else environments
        regions = sorted({c.name for e in scope for c in e.regions.all()})
        self._choice("regions").choices = [(r, r) for r in regions]
        self.dependencies = dependencies
        for dep in dependencies:
            choices = [(NEW, f"Create a new {dep['title']}")] + [
                (name, f"Use existing “{name}”") for name in dep["existing"]
            ]
            self.fields[f"dep__{dep['alias']}"] = forms.ChoiceField(
                label=f"{dep['title']} ({dep['blueprint']} {dep['range']}) as “{dep['alias']}”",
                choices=choices,
                required=False,
                initial=dep["existing"][0] if dep["existing"] else NEW,
                help_text=f"Only when {dep['when']}." if dep["when"] else "",
            )

    def _choice(self, name: str) -> forms.ChoiceField:
        return cast(forms.ChoiceField, self.fields[name])

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if problem := name_problem(name):
            raise forms.ValidationError(problem)
        return name

    def env(self) -> Environment:
        return self.environments[self.cleaned_data["environment"]]

    def choices(self) -> dict[str, str]:
        return {
            d["alias"]: self.cleaned_data.get(f"dep__{d['alias']}") or NEW
            for d in self.dependencies
        }

    def dependency_fields(self) -> list[forms.BoundField]:
        return [self[f"dep__{d['alias']}"] for d in self.dependencies]

    def place_fields(self) -> list[forms.BoundField]:
        return [self[n] for n in ("environment", "name", "size", "placement", "regions")]


class PriceForm(forms.Form):
    """The size and topology the Blueprint page prices (GET, shareable)."""

    size = forms.ChoiceField(choices=[(s, s.capitalize()) for s in SIZES], initial="small")
    placement = forms.ChoiceField(choices=Placement.choices, initial=Placement.SINGLE)
    regions = forms.IntegerField(min_value=1, max_value=5, initial=1, label="Regions")

    def __init__(self, *args: Any, modes: list[str], max_regions: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._modes = modes
        cast(forms.ChoiceField, self.fields["placement"]).choices = [
            (value, label) for value, label in Placement.choices if value in modes
        ]
        cast(forms.IntegerField, self.fields["regions"]).max_value = max_regions
        self.fields["regions"].widget.attrs["max"] = max_regions

    def chosen(self) -> tuple[str, str, int]:
        """(size, placement, regions): the valid choice, else the defaults."""
        if self.is_bound and self.is_valid():
            data = self.cleaned_data
            regions = 1 if data["placement"] == Placement.SINGLE else max(data["regions"], 2)
            return data["size"], data["placement"], regions
        return "small", self._modes[0], 1 if self._modes[0] == Placement.SINGLE else 2


class UpgradeForm(forms.Form):
    version = forms.ChoiceField(label="Move to version")

    def __init__(self, *args: Any, targets: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["version"]).choices = targets


class SizeForm(forms.Form):
    size = forms.ChoiceField(choices=[(s, s.capitalize()) for s in SIZES], label="New size")


class PlacementForm(forms.Form):
    """Regions of the Environment: the active one, and the others (standby or active-active)."""

    placement = forms.ChoiceField(choices=Placement.choices)
    active = forms.ChoiceField(label="Active region")
    regions = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Other regions",
        help_text="Standby regions (active-hotstandby) or further active ones (active-active).",
    )

    def __init__(self, *args: Any, modes: list[str], regions: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["placement"]).choices = [
            (value, label) for value, label in Placement.choices if value in modes
        ]
        cast(forms.ChoiceField, self.fields["active"]).choices = [(r, r) for r in regions]
        cast(forms.ChoiceField, self.fields["regions"]).choices = [(r, r) for r in regions]

    def ordered_regions(self) -> list[str]:
        active = self.cleaned_data["active"]
        return [active, *[r for r in self.cleaned_data["regions"] if r != active]]


class SwitchoverForm(forms.Form):
    region = forms.ChoiceField(label="New active region")

    def __init__(self, *args: Any, standby: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["region"]).choices = [(r, r) for r in standby]


class RollbackForm(forms.Form):
    revision = forms.TypedChoiceField(coerce=int, label="Roll back to revision")

    def __init__(self, *args: Any, numbers: list[int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["revision"]).choices = [(n, n) for n in numbers]


class UninstallForm(forms.Form):
    confirm = forms.CharField(
        label="Type the Application's name to confirm",
        max_length=40,
    )
    remove_dependencies = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Also uninstall these dependencies (nothing else uses them)",
    )

    def __init__(self, *args: Any, app_name: str, unused: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.app_name = app_name
        cast(forms.ChoiceField, self.fields["remove_dependencies"]).choices = [
            (name, name) for name in unused
        ]
        if not unused:
            del self.fields["remove_dependencies"]

    def clean_confirm(self) -> str:
        value = self.cleaned_data["confirm"].strip()
        if value != self.app_name:
            raise forms.ValidationError(f"Type “{self.app_name}” to confirm.")
        return value

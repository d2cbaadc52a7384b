from __future__ import annotations

import pytest
from django import forms
from django.core.exceptions import ValidationError

from marketplace import schema_form
from marketplace.schema_form import SchemaForm

SCHEMA = {
    "type": "object",
    "required": ["domain", "admin", "replicas"],
    "properties": {
        "domain": {
            "type": "string",
            "title": "Domain",
            "x-catalyst-ui-hint": "domain",
            "pattern": "^[a-z0-9.-]+\\.[a-z]{2,}$",
            "description": "Public host",
        },
        "replicas": {"type": "integer", "minimum": 1, "maximum": 5, "default": 2},
        "ratio": {"type": "number", "minimum": 0, "maximum": 1},
        "tls": {"type": "boolean", "default": True},
        "tier": {"type": "string", "enum": ["basic", "pro"], "default": "basic"},
        "admin": {
            "type": "object",
            "required": ["email"],
            "properties": {
                "email": {"type": "string", "pattern": "^[^@]+@[^@]+$"},
                "password": {"type": "string", "x-catalyst-ui-hint": "password", "minLength": 12},
            },
        },
        "plugins": {
            "type": "array",
            "items": {"type": "string", "pattern": "^[a-z-]+$"},
            "maxItems": 3,
        },
        "features": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}},
        "logs": {
            "type": "string",
            "x-catalyst-ui-hint": "application-ref",
            "x-catalyst-blueprint": "bp-loki",
        },
        "tuning": {
            "type": "object",
            "x-catalyst-advanced": True,
            "properties": {"cache": {"type": "integer", "default": 64}},
        },
    },
}


def test_form_fields_follow_the_schema():
    form = SchemaForm(schema=SCHEMA, app_choices={"bp-loki": [("logs", "logs")]})
    f = form.fields
    assert (
        isinstance(f["domain"], forms.CharField)
        and f["domain"].required
        and f["domain"].help_text == "Public host"
    )
    assert f["domain"].widget.attrs["pattern"] == SCHEMA["properties"]["domain"]["pattern"]
    assert isinstance(f["replicas"], forms.IntegerField) and f["replicas"].initial == 2
    assert f["replicas"].min_value == 1 and f["replicas"].max_value == 5
    assert isinstance(f["ratio"], forms.DecimalField)
    assert isinstance(f["tls"], forms.BooleanField) and not f["tls"].required
    assert isinstance(f["tier"], forms.ChoiceField) and [c[0] for c in f["tier"].choices] == [
        "basic",
        "pro",
    ]
    assert (
        f["admin__email"].required and "admin__password" not in f
    )  # secrets are generated, never typed
    assert [p.dotted for p in form.secret_fields] == ["admin.password"]
    assert isinstance(f["plugins"].widget, forms.Textarea)
    assert isinstance(f["features"], forms.MultipleChoiceField)
    assert ("logs", "logs") in f["logs"].choices
    assert [b.name for b in form.advanced_fields()] == ["tuning__cache"]
    assert "tuning__cache" not in [b.name for b in form.basic_fields()]


def test_valid_form_gives_nested_values_with_defaults():
    form = SchemaForm(
        {
            "domain": "shop.example.com",
            "replicas": "3",
            "tier": "pro",
            "admin__email": "a@b.c",
            "plugins": "seo\nforms\n",
            "features": ["a"],
            "ratio": "0.5",
            "tuning__cache": "64",
        },
        schema=SCHEMA,
    )
    assert form.is_valid(), form.errors
    assert form.values == {
        "domain": "shop.example.com",
        "replicas": 3,
        "ratio": 0.5,
        "tls": False,
        "tier": "pro",
        "admin": {"email": "a@b.c"},
        "plugins": ["seo", "forms"],
        "features": ["a"],
        "tuning": {"cache": 64},
    }


def test_errors_are_shown_per_field():
    form = SchemaForm(
        {"domain": "NOT A DOMAIN", "replicas": "9", "admin__email": "x", "plugins": "a\nb\nc\nd"},
        schema=SCHEMA,
    )
    assert not form.is_valid()
    assert "replicas" in form.errors  # Django's own min/max check
    # ... reported in the same round as the schema's checks of the other fields, once each
    assert {"domain", "admin__email", "plugins"} <= set(form.errors)
    assert all(len(set(errors)) == len(errors) for errors in form.errors.values())
    form = SchemaForm(
        {"domain": "NOT A DOMAIN", "replicas": "2", "admin__email": "x", "plugins": "Bad Plugin"},
        schema=SCHEMA,
    )
    assert not form.is_valid()
    assert form.errors["domain"] == ["Enter a domain like app.example.com."]
    assert form.errors["admin__email"] == ["Enter an e-mail address like name@example.com."]
    assert "admin__email" in form.errors and "plugins" in form.errors


def test_validate_reports_json_paths_and_refuses_secrets():
    with pytest.raises(ValidationError) as err:
        schema_form.validate(SCHEMA, {"domain": "x", "replicas": 0, "admin": {}})
    paths = err.value.message_dict
    assert set(paths) == {"values.domain", "values.replicas", "values.admin.email"}
    assert paths["values.admin.email"] == ["This field is required."]
    with pytest.raises(ValidationError) as err:
        schema_form.validate(
            SCHEMA,
            {"domain": "a.example.com", "admin": {"email": "a@b", "password": "hunter2hunter2"}},
        )
    assert list(err.value.message_dict) == ["values.admin.password"]
    assert (
        schema_form.validate(SCHEMA, {"domain": "a.example.com", "admin": {"email": "a@b"}})[
            "replicas"
        ]
        == 2
    )

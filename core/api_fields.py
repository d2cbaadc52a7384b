"""Serializer fields whose behaviour matches the schema they publish (issue 10 §9): DRF's text
fields turn a JSON number into a string, so a request the schema calls invalid (`"name": 12`)
would be accepted; these refuse anything but a string."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers


class StrictRegexField(serializers.RegexField):
    default_error_messages = {"not_a_string": "Not a valid string."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("not_a_string")
        return str(super().to_internal_value(data))

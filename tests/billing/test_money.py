from __future__ import annotations

import re

import pytest
from django.core.exceptions import ValidationError

from billing.money import format_money, parse_money, tax_of


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (12_345, "OMR", "OMR 12.345"),
        (5, "OMR", "OMR 0.005"),
        (-1_500, "OMR", "OMR -1.500"),
        (1_234_567_890, "OMR", "OMR 1,234,567.890"),
        (1999, "EUR", "EUR 19.99"),
        (120, "JPY", "JPY 120"),
    ],
)
def test_format(minor, currency, text):
    assert format_money(minor, currency) == text


@pytest.mark.parametrize(
    ("text", "minor"),
    [("12.345", 12_345), ("12", 12_000), ("0.5", 500), ("1,000.25", 1_000_250), ("OMR 3.1", 3_100)],
)
def test_parse(text, minor):
    assert parse_money(text, "OMR") == minor
    assert isinstance(parse_money(text, "OMR"), int)


def test_parse_errors_are_clear():
    with pytest.raises(
        ValidationError, match=re.escape("OMR has 3 decimal places; “1.2345” has 4")
    ):
        parse_money("1.2345", "OMR")
    with pytest.raises(ValidationError, match="EUR has 2 decimal places"):
        parse_money("1.234", "EUR")
    with pytest.raises(ValidationError, match="positive amount"):
        parse_money("-1", "OMR")
    assert parse_money("-1", "OMR", allow_negative=True) == -1000
    for bad in ["", "abc", "1.2.3", "1e3", "NaN"]:
        with pytest.raises(ValidationError, match=re.escape("Enter an amount in OMR like 12.345")):
            parse_money(bad, "OMR")


def test_tax_rounds_half_up_in_integers():
    assert tax_of(29_000, 500) == 1_450
    assert tax_of(1, 5000) == 1  # 0.5 → 1
    assert tax_of(1, 4999) == 0

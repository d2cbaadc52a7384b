from __future__ import annotations

import pytest

from marketplace import versions, when


@pytest.mark.parametrize(
    ("version", "range_text", "expected"),
    [
        ("1.4.0", "^1.4", True),
        ("1.9.3", "^1.4", True),
        ("2.0.0", "^1.4", False),
        ("1.3.9", "^1.4", False),
        ("0.2.5", "^0.2", True),
        ("0.3.0", "^0.2", False),
        ("2.0.7", "~2.0", True),
        ("2.1.0", "~2.0", False),
        ("1.2.0", ">=1.0.0 <1.3", True),
        ("1.3.0", ">=1.0.0 <1.3", False),
        ("3.1.0", "^1 || ^3", True),
        ("5.0.0", "*", True),
        ("1.5.0-rc.1", "^1.4", False),
    ],
)
def test_semver_ranges(version, range_text, expected):
    assert versions.satisfies(version, range_text) is expected


def test_best_match_and_bad_range():
    assert versions.best_match(["1.4.0", "1.5.2", "2.0.0", "1.10.0"], "^1.4") == "1.10.0"
    assert versions.best_match(["1.2.0"], "^1.4") is None
    with pytest.raises(versions.RangeError):
        versions.parse_range("~>banana")


@pytest.mark.parametrize(
    ("expression", "values", "expected"),
    [
        ("database.external == false", {"database": {"external": False}}, True),
        ("database.external == false", {"database": {"external": True}}, False),
        ("missing.path == null", {}, True),
        ("replicas >= 2 and not ha", {"replicas": 3, "ha": False}, True),
        ("size in ['medium', 'large'] or force", {"size": "small", "force": False}, False),
        ("(a or b) and c", {"a": False, "b": True, "c": True}, True),
        ("name == 'x' or name == \"y\"", {"name": "y"}, True),
        ("count < 'ten'", {"count": 3}, False),
        ("", {}, True),
    ],
)
def test_when_evaluates_whitelisted_grammar(expression, values, expected):
    assert when.evaluate(expression, values) is expected


@pytest.mark.parametrize(
    "expression",
    [
        "__import__('os')",
        "a.__class__()",
        "open('x')",
        "a +",
        "a ==",
        "[1, 2",
        "a ; b",
        "lambda: 1",
        "a[0]",
    ],
)
def test_when_refuses_anything_else(expression):
    with pytest.raises(when.WhenError):
        when.evaluate(expression, {"a": 1})

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


def test_value_expressions_for_outputs_and_wiring():
    from marketplace.when import SecretRef, WhenError, check, value

    ctx = {
        "values": {"n": 3, "apps": ["calendar", "deck"], "logs": None},
        "app": {"name": "blog"},
        "db": {"password": SecretRef("blog-db-credentials", "password"), "port": 3306},
    }
    assert value("app.name + '-rw'", ctx) == "blog-rw"
    assert value("'host:' + db.port", ctx) == "host:3306"
    assert value("values.n * 24 + 'h'", ctx) == "72h"
    assert value("join(values.apps, ' ')", ctx) == "calendar deck"
    assert value("db.password", ctx) == SecretRef("blog-db-credentials", "password")
    assert value("db.password.name", ctx) == "blog-db-credentials"
    # only the chosen branch is evaluated: the other may read what is missing
    assert value("if values.logs == null then null else values.logs + '-gateway'", ctx) is None
    for bad, message in [
        ("db.password + 'x'", "passed on whole"),
        ("db.password == 'x'", "cannot be compared"),
        ("values.logs + 'x'", "cannot add"),
        ("true * 2", "cannot multiply"),
    ]:
        with pytest.raises(WhenError, match=message):
            value(bad, ctx)
    assert check("if a then b else c + 1") is None and check("join(a b)") is not None
    assert check("__import__('os')") is not None

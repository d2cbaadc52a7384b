"""The browser tests themselves hold to the portal's Content-Security-Policy (script-src 'self'):
Playwright turns a bare expression given to ``wait_for_function`` into an ``eval`` on the page
each time it polls, which the policy refuses ("EvalError ... 'unsafe-eval'"), so such a wait
passes only when the condition already holds at the first check and fails when it must poll. A
function (``"() => ..."``) is compiled once by the DevTools protocol, outside the policy."""

from __future__ import annotations

import ast
from pathlib import Path

HERE = Path(__file__).parent


def _waits_on_bare_expressions(source: str) -> list[int]:
    lines = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr != "wait_for_function" or not node.args:
            continue
        first = node.args[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            body = first.value.lstrip()
            if not (body.startswith("(") or body.startswith("function") or "=>" in body[:40]):
                lines.append(node.lineno)
    return lines


def test_the_check_finds_a_bare_expression():
    bare = "page.wait_for_function(\"document.title === 'x'\")\n"
    assert _waits_on_bare_expressions(bare) == [1]
    assert _waits_on_bare_expressions(bare.replace('("', '("() => ')) == []


def test_no_browser_test_waits_on_a_bare_expression():
    found = {
        path.name: lines
        for path in sorted(HERE.glob("*.py"))
        if (lines := _waits_on_bare_expressions(path.read_text()))
    }
    assert found == {}

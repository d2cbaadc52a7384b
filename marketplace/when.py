"""A tiny, safe evaluator for Blueprint `when` predicates. Never `eval`.

Grammar (whitelist):
    expr   := or
    or     := and ("or" and)*
    and    := not ("and" not)*
    not    := "not" not | cmp
    cmp    := atom (("==" | "!=" | "<" | "<=" | ">" | ">=" | "in") atom)?
    atom   := NUMBER | STRING | true | false | null | PATH | "(" expr ")" | "[" atoms "]"
    PATH   := name ("." name)*     -- looked up in the install values (missing → null)

Anything else is a syntax error reported with its position.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<num>-?\d+(?:\.\d+)?)
      | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<op>==|!=|<=|>=|<|>|\(|\)|\[|\]|,)
      | (?P<name>[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_][A-Za-z0-9_-]*)*)
    )""",
    re.VERBOSE,
)
KEYWORDS = {"and", "or", "not", "in", "true", "false", "null"}
MAX_LENGTH = 500


class WhenError(ValueError):
    pass


@dataclass(frozen=True)
class Token:
    kind: str
    value: Any
    pos: int


def tokenize(text: str) -> list[Token]:
    if len(text) > MAX_LENGTH:
        raise WhenError(f"expression longer than {MAX_LENGTH} characters")
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise WhenError(f"unexpected character at {pos}: {text[pos : pos + 10]!r}")
        kind = m.lastgroup or ""
        raw = m.group(kind)
        start = m.start(kind)
        if kind == "num":
            tokens.append(Token("lit", float(raw) if "." in raw else int(raw), start))
        elif kind == "str":
            tokens.append(Token("lit", re.sub(r"\\(.)", r"\1", raw[1:-1]), start))
        elif kind == "name" and raw in KEYWORDS:
            literal = {"true": True, "false": False, "null": None}
            tokens.append(
                Token("lit", literal[raw], start) if raw in literal else Token("kw", raw, start)
            )
        else:
            tokens.append(Token(kind, raw, start))
        pos = m.end()
    return tokens


class _Parser:
    def __init__(self, text: str, values: dict[str, Any]) -> None:
        self.tokens = tokenize(text)
        self.i = 0
        self.values = values

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, kind: str, value: Any = None) -> Token | None:
        tok = self.peek()
        if tok and tok.kind == kind and (value is None or tok.value == value):
            self.i += 1
            return tok
        return None

    def expect(self, kind: str, value: Any) -> None:
        if not self.take(kind, value):
            tok = self.peek()
            where = f"at {tok.pos}" if tok else "at end"
            raise WhenError(f"expected {value!r} {where}")

    def parse(self) -> Any:
        result = self.or_()
        tok = self.peek()
        if tok is not None:
            raise WhenError(f"unexpected {tok.value!r} at {tok.pos}")
        return result

    def or_(self) -> Any:
        left = self.and_()
        while self.take("kw", "or"):
            right = self.and_()
            left = bool(left) or bool(right)
        return left

    def and_(self) -> Any:
        left = self.not_()
        while self.take("kw", "and"):
            right = self.not_()
            left = bool(left) and bool(right)
        return left

    def not_(self) -> Any:
        if self.take("kw", "not"):
            return not self.not_()
        return self.cmp()

    def cmp(self) -> Any:
        left = self.atom()
        tok = self.peek()
        if tok and (tok.kind == "op" and tok.value in ("==", "!=", "<", "<=", ">", ">=")):
            self.i += 1
            return _compare(tok.value, left, self.atom())
        if self.take("kw", "in"):
            right = self.atom()
            if not isinstance(right, (list, str)):
                raise WhenError("the right side of 'in' must be a list or a string")
            return left in right
        return left

    def atom(self) -> Any:
        tok = self.peek()
        if tok is None:
            raise WhenError("unexpected end of expression")
        self.i += 1
        if tok.kind == "lit":
            return tok.value
        if tok.kind == "name":
            return lookup(self.values, tok.value)
        if tok.kind == "op" and tok.value == "(":
            value = self.or_()
            self.expect("op", ")")
            return value
        if tok.kind == "op" and tok.value == "[":
            items = []
            if not self.take("op", "]"):
                items.append(self.atom())
                while self.take("op", ","):
                    items.append(self.atom())
                self.expect("op", "]")
            return items
        raise WhenError(f"unexpected {tok.value!r} at {tok.pos}")


def _compare(op: str, left: Any, right: Any) -> bool:
    if op == "==":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    if left is None or right is None or isinstance(left, bool) != isinstance(right, bool):
        return False
    if isinstance(left, str) != isinstance(right, str):
        return False
    try:
        return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]
    except TypeError:
        return False


def lookup(values: dict[str, Any], path: str) -> Any:
    current: Any = values
    for part in path.split("."):
        if not isinstance(current, dict) or part not in current:
            return None
        current = current[part]
    return current


def evaluate(expression: str | None, values: dict[str, Any]) -> bool:
    """True when the predicate holds for `values`; an empty predicate is always true."""
    if expression is None or str(expression).strip() == "":
        return True
    return bool(_Parser(str(expression), values).parse())


def check(expression: str) -> str | None:
    """A syntax problem with `expression`, or None."""
    try:
        evaluate(expression, {})
    except WhenError as exc:
        return str(exc)
    return None

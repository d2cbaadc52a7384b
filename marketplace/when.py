"""A tiny, safe expression language for Blueprints. Never `eval`.

`when` predicates (is a dependency needed?) and value expressions (a dependency's `outputs`, a
dependant's `wiring` into its chart values, `computed` chart values) share it.

Grammar (whitelist):
    expr   := "if" expr "then" expr "else" expr | or     -- only the chosen branch is evaluated
    or     := and ("or" and)*
    and    := not ("and" not)*
    not    := "not" not | cmp
    cmp    := sum (("==" | "!=" | "<" | "<=" | ">" | ">=" | "in") sum)?
    sum    := prod ("+" prod)*     -- numbers add; a string joined with a string or number
    prod   := atom ("*" atom)*     -- numbers multiply
    atom   := NUMBER | STRING | true | false | null | PATH | "(" expr ")" | "[" atoms "]"
            | "join" "(" expr "," expr ")"   -- a list's items joined by a string
    PATH   := name ("." name)*     -- looked up in the context (missing → null)

A context value may be a `SecretRef` (a key of a Secret in the cluster): it can be passed on
whole, or its `.name` and `.key` read, never joined or compared, so a secret's value never
exists outside the cluster.
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
      | (?P<op>==|!=|<=|>=|<|>|\(|\)|\[|\]|,|\+|\*)
      | (?P<name>[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_][A-Za-z0-9_-]*)*)
    )""",
    re.VERBOSE,
)
KEYWORDS = {"and", "or", "not", "in", "true", "false", "null", "if", "then", "else", "join"}
MAX_LENGTH = 500


class WhenError(ValueError):
    pass


@dataclass(frozen=True)
class SecretRef:
    """A key of a Secret in the Application's namespace (the value stays in the cluster)."""

    name: str
    key: str

    def __str__(self) -> str:
        return f"Secret {self.name}, key {self.key}"


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
        self.syntax_only = False

    def parse_syntax(self) -> None:
        """Parse without evaluating (every path may be null at load time)."""
        self.syntax_only = True
        self.parse()

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
        result = self.expr()
        tok = self.peek()
        if tok is not None:
            raise WhenError(f"unexpected {tok.value!r} at {tok.pos}")
        return result

    def expr(self) -> Any:
        if not self.take("kw", "if"):
            return self.or_()
        condition = self.expr()
        self.expect("kw", "then")
        chosen = self.branch(bool(condition))
        self.expect("kw", "else")
        other = self.branch(not condition)
        return chosen if condition else other

    def branch(self, taken: bool) -> Any:
        """Parse a branch; one not taken is only parsed (its paths may well be null)."""
        saved = self.syntax_only
        self.syntax_only = saved or not taken
        try:
            return self.expr()
        finally:
            self.syntax_only = saved

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
        left = self.sum()
        tok = self.peek()
        if tok and (tok.kind == "op" and tok.value in ("==", "!=", "<", "<=", ">", ">=")):
            self.i += 1
            right = self.sum()
            return None if self.syntax_only else _compare(tok.value, left, right)
        if self.take("kw", "in"):
            right = self.sum()
            if self.syntax_only:
                return None
            if not isinstance(right, (list, str)):
                raise WhenError("the right side of 'in' must be a list or a string")
            return left in right
        return left

    def sum(self) -> Any:
        left = self.prod()
        while self.take("op", "+"):
            right = self.prod()
            left = None if self.syntax_only else _add(left, right)
        return left

    def prod(self) -> Any:
        left = self.atom()
        while self.take("op", "*"):
            right = self.atom()
            left = None if self.syntax_only else _multiply(left, right)
        return left

    def join(self) -> Any:
        self.expect("op", "(")
        items = self.expr()
        self.expect("op", ",")
        separator = self.expr()
        self.expect("op", ")")
        if self.syntax_only:
            return None
        if not isinstance(items, list) or not isinstance(separator, str):
            raise WhenError("join takes a list and a string")
        if not all(isinstance(i, (str, int, float)) and not isinstance(i, bool) for i in items):
            raise WhenError("join takes a list of strings or numbers")
        return separator.join(str(i) for i in items)

    def atom(self) -> Any:
        tok = self.peek()
        if tok is None:
            raise WhenError("unexpected end of expression")
        self.i += 1
        if tok.kind == "lit":
            return tok.value
        if tok.kind == "name":
            return lookup(self.values, tok.value)
        if tok.kind == "kw" and tok.value == "join":
            return self.join()
        if tok.kind == "op" and tok.value == "(":
            value = self.expr()
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


def _add(left: Any, right: Any) -> Any:
    if isinstance(left, SecretRef) or isinstance(right, SecretRef):
        raise WhenError("a Secret reference can only be passed on whole, not joined")
    number = (int, float)
    if isinstance(left, bool) or isinstance(right, bool) or left is None or right is None:
        raise WhenError(f"cannot add {_name(left)} and {_name(right)}")
    if isinstance(left, number) and isinstance(right, number):
        return left + right
    if isinstance(left, (str, *number)) and isinstance(right, (str, *number)):
        return f"{left}{right}"
    raise WhenError(f"cannot add {_name(left)} and {_name(right)}")


def _multiply(left: Any, right: Any) -> Any:
    def number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    if not (number(left) and number(right)):
        raise WhenError(f"cannot multiply {_name(left)} and {_name(right)}")
    return left * right


def _name(value: Any) -> str:
    if value is None:
        return "null (a missing value)"
    return {bool: "a boolean", str: "a string", list: "a list", dict: "a map"}.get(
        type(value), "a number"
    )


def _compare(op: str, left: Any, right: Any) -> bool:
    if isinstance(left, SecretRef) or isinstance(right, SecretRef):
        raise WhenError("a Secret reference cannot be compared")
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
        if isinstance(current, SecretRef) and part in ("name", "key"):
            current = getattr(current, part)  # where the secret is, never what it holds
            continue
        if not isinstance(current, dict) or part not in current:
            return None
        current = current[part]
    return current


def evaluate(expression: str | None, values: dict[str, Any]) -> bool:
    """True when the predicate holds for `values`; an empty predicate is always true."""
    if expression is None or str(expression).strip() == "":
        return True
    return bool(_Parser(str(expression), values).parse())


def value(expression: str, context: dict[str, Any]) -> Any:
    """The value of an expression (outputs, wiring, computed values) in `context`."""
    text = str(expression)
    if text.strip() == "":
        raise WhenError("empty expression")
    return _Parser(text, context).parse()


def paths(expression: str) -> list[str]:
    """The value paths an expression reads (for load-time checks of what it refers to)."""
    return [t.value for t in tokenize(str(expression)) if t.kind == "name"]


def check(expression: str) -> str | None:
    """A syntax problem with `expression`, or None (paths are not resolved: any may be null)."""
    try:
        _Parser(str(expression), {}).parse_syntax()
    except WhenError as exc:
        return str(exc)
    return None

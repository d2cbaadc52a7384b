"""Semver ranges as Blueprints write them: `^1.4`, `~2.0`, `>=1.2.0 <2`, `1.x`, `*`, `a || b`.

The `semver` package compares versions; it has no npm-style ranges, so the few forms a catalog
uses are expanded here into comparator sets (AND within a set, OR across `||`).
"""

from __future__ import annotations

import re
from functools import total_ordering

import semver

_PARTIAL = re.compile(r"^v?(\d+|[xX*])(?:\.(\d+|[xX*]))?(?:\.(\d+|[xX*]))?(?:-([0-9A-Za-z.-]+))?\Z")
_OP = re.compile(r"^(\^|~|>=|<=|>|<|=)?\s*(.+)$")


class RangeError(ValueError):
    pass


def parse(version: str) -> semver.Version:
    try:
        return semver.Version.parse(version)
    except (ValueError, TypeError):
        raise RangeError(f"“{version}” is not a semantic version (e.g. 1.4.2).") from None


def is_version(text: str) -> bool:
    try:
        parse(text)
    except RangeError:
        return False
    return True


@total_ordering
class SortKey:
    """Orders version strings semantically (prereleases before their release)."""

    def __init__(self, version: str) -> None:
        self.v = parse(version)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SortKey) and self.v == other.v

    def __lt__(self, other: SortKey) -> bool:
        return self.v < other.v


def _partial(text: str) -> tuple[list[int | None], str | None]:
    m = _PARTIAL.match(text)
    if not m:
        raise RangeError(f"“{text}” is not a version or range.")
    parts: list[int | None] = [
        None if p is None or p in "xX*" else int(p) for p in (m.group(1), m.group(2), m.group(3))
    ]
    # everything after a wildcard is a wildcard
    for i in range(1, 3):
        if parts[i - 1] is None:
            parts[i] = None
    return parts, m.group(4)


def _v(major: int, minor: int = 0, patch: int = 0, pre: str | None = None) -> semver.Version:
    return semver.Version(major, minor, patch, prerelease=pre)


Comparator = tuple[str, semver.Version]


def _comparators(term: str) -> list[Comparator]:
    m = _OP.match(term)
    if not m:
        raise RangeError(f"“{term}” is not a range.")
    op, rest = m.group(1) or "=", m.group(2).strip()
    if rest in ("*", "x", "X"):
        return []
    (major, minor, patch), pre = _partial(rest)
    if major is None:
        return []
    lo = _v(major, minor or 0, patch or 0, pre)
    if op == "^":
        if major > 0 or minor is None:
            hi = _v(major + 1)
        elif minor > 0 or patch is None:
            hi = _v(0, minor + 1)
        else:
            hi = _v(0, 0, (patch or 0) + 1)
        return [(">=", lo), ("<", hi)]
    if op == "~" or (op == "=" and (minor is None or patch is None)):
        if minor is None:
            return [(">=", lo), ("<", _v(major + 1))]
        if op == "=" and patch is None:
            return [(">=", lo), ("<", _v(major, minor + 1))]
        return [(">=", lo), ("<", _v(major, minor + 1))]
    return [(op, lo)]


def _satisfies(version: semver.Version, comparators: list[Comparator]) -> bool:
    checks = {
        ">=": lambda c: version >= c,
        "<=": lambda c: version <= c,
        ">": lambda c: version > c,
        "<": lambda c: version < c,
        "=": lambda c: version == c,
    }
    if version.prerelease and not any(
        c.prerelease and c[:3] == version[:3] for _, c in comparators
    ):
        return False  # prereleases only match a range that names them
    return all(checks[op](c) for op, c in comparators)


def parse_range(text: str) -> list[list[Comparator]]:
    text = (text or "").strip()
    if not text:
        raise RangeError("Empty version range.")
    alternatives = []
    for alt in text.split("||"):
        alt = re.sub(r"(>=|<=|>|<|=|\^|~)\s+", r"\1", alt.strip())
        terms = alt.split()
        if not terms:
            raise RangeError(f"“{text}” has an empty alternative.")
        comps: list[Comparator] = []
        for term in terms:
            comps += _comparators(term)
        alternatives.append(comps)
    return alternatives


def satisfies(version: str, range_text: str) -> bool:
    v = parse(version)
    return any(_satisfies(v, comps) for comps in parse_range(range_text))


def best_match(versions: list[str], range_text: str) -> str | None:
    """The highest of `versions` within the range, or None."""
    alternatives = parse_range(range_text)
    matching = [v for v in versions if any(_satisfies(parse(v), c) for c in alternatives)]
    return max(matching, key=SortKey, default=None)

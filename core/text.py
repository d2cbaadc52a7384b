"""Text hygiene at the edges: names people type end up in e-mail headers, Git author lines, YAML
and log lines, so control characters (C0, DEL, C1, and the Unicode line and paragraph
separators) are refused rather than cleaned."""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def control_character_problem(text: str) -> str | None:
    """A message when `text` holds a control character (a newline, a tab, an escape…)."""
    found = _CONTROL.search(text or "")
    if found is None:
        return None
    return f"Control characters (such as U+{ord(found.group()):04X}) are not allowed here."


def whole_match(pattern: str) -> str:
    """A regular expression written for ECMA-262 / JSON Schema (`$` is the very end of the input)
    in Python's dialect, where `$` also matches before a trailing newline: every `$` outside a
    character class becomes `\\Z`. `abc$` then refuses `"abc\\n"` as a JSON Schema validator
    must."""
    out: list[str] = []
    in_class = escaped = False
    for char in pattern:
        if escaped:
            out.append(char)
            escaped = False
        elif char == "\\":
            out.append(char)
            escaped = True
        elif in_class:
            out.append(char)
            in_class = char != "]"
        elif char == "[":
            out.append(char)
            in_class = True
        elif char == "$":
            out.append(r"\Z")
        else:
            out.append(char)
    return "".join(out)


FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> object:
    """A CSV cell a spreadsheet will not run: text starting with `= + - @`, a tab or a carriage
    return gets a leading `'` (OWASP's CSV-injection advice); numbers and other values pass."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


# Secrets that travel in URLs: an invitation's token, a quote's signed id, a voucher code.
_SECRETS_IN_URLS = [
    (re.compile(r"(/invitations/)[^/\s\"?]+"), r"\1[redacted]"),
    (re.compile(r"(/quotes/)[^/\s\"?]+"), r"\1[redacted]"),
    (re.compile(r"([?&](?:code|token)=)[^&\s\"#]+"), r"\1[redacted]"),
]


def redact_secrets(text: str) -> str:
    for pattern, replacement in _SECRETS_IN_URLS:
        text = pattern.sub(replacement, text)
    return text


# A display name as the API publishes it: no control character, at least one visible character.
_NO_CONTROL = r"[^\u0000-\u001f\u007f-\u009f\u2028\u2029]"
DISPLAY_NAME_PATTERN = rf"^{_NO_CONTROL}*[^\s\u0000-\u001f\u007f-\u009f\u2028\u2029]{_NO_CONTROL}*$"
# any text without a control character (voucher codes as typed, …)
NO_CONTROL_PATTERN = rf"^{_NO_CONTROL}+$"

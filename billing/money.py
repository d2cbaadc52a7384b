"""Money at the edges: integer minor units inside, `OMR 12.345` on screen, strict parsing of input.

Amounts are always `int` minor units of a currency (OMR has 3 decimals: 1 OMR = 1000 baisa).
Nothing here uses floats: parsing splits the digits, formatting uses divmod.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError

# ISO 4217 exponents that differ from the usual 2.
_EXPONENTS = {"OMR": 3, "BHD": 3, "KWD": 3, "JOD": 3, "TND": 3, "LYD": 3, "IQD": 3, "JPY": 0}
_AMOUNT = re.compile(r"(?P<sign>-?)(?P<units>\d{1,30})(?:\.(?P<frac>\d{0,30}))?")
# The largest amount one entry, voucher, price or adjustment may carry: 10^12 minor units
# (OMR 1,000,000,000.000). Columns are 64-bit (9.2 × 10^18), so sums of millions of entries still
# fit — SQLite raises on an overflowing SUM, which would break every page that reads a balance.
MAX_AMOUNT_MINOR = 10**12
# Counts (redemptions per voucher, plan quotas) fit a 32-bit column with room.
MAX_COUNT = 1_000_000_000


def amount_problem(minor: int, currency: str) -> str | None:
    if abs(minor) > MAX_AMOUNT_MINOR:
        return f"Enter at most {format_money(MAX_AMOUNT_MINOR, currency)}."
    return None


def exponent(currency: str) -> int:
    return _EXPONENTS.get(currency.upper(), 2)


def format_money(minor: int, currency: str) -> str:
    """`OMR 12.345`, `OMR -1.500`, `JPY 120`, `OMR 1,000.000`."""
    return f"{currency} {decimal_text(minor, currency, grouped=True)}"


def decimal_text(minor: int, currency: str, *, grouped: bool = False) -> str:
    """The amount as a number in the currency's precision: `1000.000` (CSV: a number column
    beside a currency column), `1,000.000` grouped for people."""
    exp = exponent(currency)
    sign = "-" if minor < 0 else ""
    units, frac = divmod(abs(int(minor)), 10**exp)
    whole = f"{units:,}" if grouped else str(units)
    return f"{sign}{whole}" if not exp else f"{sign}{whole}.{frac:0{exp}d}"


def parse_money(text: str, currency: str, *, allow_negative: bool = False) -> int:
    """Operator input (`12.345`, `12`, `1,000.5`) → minor units; a clear error otherwise."""
    exp = exponent(currency)
    raw = (text or "").strip().replace(",", "").replace(" ", "")
    if raw.upper().startswith(currency.upper()):
        raw = raw[len(currency) :]
    match = _AMOUNT.fullmatch(raw)
    example = "12" if not exp else "12." + "345"[:exp].ljust(exp, "0")
    if not match:
        raise ValidationError(
            f"Enter an amount in {currency} like {example}.", code="invalid_amount"
        )
    frac = match["frac"] or ""
    if len(frac) > exp:
        raise ValidationError(
            f"{currency} has {exp} decimal places; “{text.strip()}” has {len(frac)}.",
            code="too_many_decimals",
        )
    minor = int(match["units"]) * 10**exp + int(frac.ljust(exp, "0") or 0)
    if match["sign"]:
        if not allow_negative:
            raise ValidationError("Enter a positive amount.", code="negative")
        minor = -minor
    if problem := amount_problem(minor, currency):
        raise ValidationError(problem, code="too_large")
    return minor


def tax_of(amount_minor: int, rate_bp: int) -> int:
    """Tax on an amount at `rate_bp` basis points, rounded half up, in integers."""
    return (amount_minor * rate_bp + 5000) // 10000


def line_tax(amount_minor: int, rate_bp: int) -> int:
    """The tax of one invoice or quote line: rounded half up on the magnitude, so a credit line
    (a proration refund) carries exactly the negative of the tax of the same charge."""
    tax = tax_of(abs(amount_minor), rate_bp)
    return -tax if amount_minor < 0 else tax


def lines_tax(amounts: list[int], rate_bp: int) -> int:
    """Tax of a document: the sum of its lines' taxes (each rounded on its own line)."""
    return sum(line_tax(amount, rate_bp) for amount in amounts)

"""Amounts as people write them: ``12.5`` of a unit with ``decimals`` decimals, never
raw base units unless asked (``--raw``); printed the same way, with thousands
separators in sentences."""

from __future__ import annotations

import re
from decimal import Decimal

from .errors import BadInput

# Plain digits, or thousands grouped by commas (1,250.5) or underscores (1_250.5) --
# never a comma anywhere else: "0,5" is a decimal comma in much of the world, and
# reading it as 5 would send ten times what was meant.
_AMOUNT = re.compile(r"^(?:[0-9]+|[0-9]{1,3}(?:,[0-9]{3})+|[0-9]{1,3}(?:_[0-9]{3})+)"
                     r"(?:\.[0-9]+)?$|^\.[0-9]+$")
#: The largest amount anything on chain holds (a uint256).
MAX_AMOUNT = (1 << 256) - 1


def shown(text: str, limit: int = 40) -> str:
    """What was typed, quoted for a sentence, cut short if it is long."""
    return repr(text if len(text) <= limit else text[:limit - 3] + "...")


def parse_amount(text: str, decimals: int, *, raw: bool = False, what: str = "amount",
                 symbol: str = "") -> int:
    """``text`` in base units: ``12.5`` with 18 decimals is 12_500_000_000_000_000_000.
    With ``raw`` the text is base units already (an integer)."""
    cleaned = text.strip().replace("_", "").replace(",", "")
    unit = f" {symbol}" if symbol else ""
    if len(cleaned) > 200:  # a uint256 has 78 digits; int() refuses past 4,300
        raise BadInput(f"{what} {shown(text)} is larger than any balance can be")
    if raw:
        if not (text.strip().isascii() and text.strip().isdigit()):
            raise BadInput(f"{what} {shown(text)}: with --raw give whole base units "
                           "(an integer)")
        value = int(text.strip())
    else:
        if not _AMOUNT.match(text.strip()):
            hint = (" (use a point for decimals: 0.5; a comma only between groups of "
                    "three digits: 1,250)" if "," in text else "")
            raise BadInput(f"{what} {shown(text)} is not a number: write it like 12.5{hint}")
        # Exact integer arithmetic: a Decimal rounds past 28 digits.
        whole, _, frac = cleaned.partition(".")
        if len(frac.rstrip("0")) > decimals:
            raise BadInput(f"{what} {shown(text)} has more than {decimals} decimals{unit}")
        frac = frac.rstrip("0")
        value = int(whole or "0") * 10**decimals + int(frac.ljust(decimals, "0") or "0")
    if value > MAX_AMOUNT:
        raise BadInput(f"{what} {shown(text)} is larger than any balance can be")
    return value


def format_amount(value: int, decimals: int, *, grouped: bool = True) -> str:
    """Base units as a decimal: 12_500_000_000_000_000_000 -> ``12.5`` (``grouped``:
    with thousands separators, ``1,250``)."""
    whole, frac = divmod(value, 10**decimals) if decimals else (value, 0)
    text = f"{whole:,}" if grouped else str(whole)
    if frac:
        text += "." + str(frac).rjust(decimals, "0").rstrip("0")
    return text


def parse_percent(text: str, what: str = "rate") -> int:
    """``2.5%`` or ``2.5`` as basis points (250)."""
    body = text.strip().removesuffix("%").strip()
    if not _PERCENT.match(body):  # no exponents, no other digits than 0-9, no sign
        raise BadInput(f"{what} {shown(text)} is not a percentage: write it like 2.5%")
    bps = Decimal(body) * 100
    if bps != bps.to_integral_value() or not 0 <= bps <= 10_000:
        raise BadInput(f"{what} {shown(text)}: a percentage from 0 to 100 with at most two "
                       "decimals")
    return int(bps)


_PERCENT = re.compile(r"^[0-9]{1,3}(?:\.[0-9]{1,10})?$")


def format_percent(bps: int) -> str:
    """Basis points as a percentage: 5000 -> ``50%``, 250 -> ``2.5%``, 5 -> ``0.05%``."""
    whole, frac = divmod(bps, 100)
    return f"{whole}.{frac:02d}".rstrip("0").rstrip(".") + "%" if frac else f"{whole}%"


# At most nine digits before the point (a billion weeks is already absurd; the contract
# bounds each window) and a few after: int() of a 5,000-digit number is refused anyway.
_DURATION = re.compile(r"^\s*([0-9]{1,9}(?:\.[0-9]{1,6})?)\s*(w|d|h|m|min|s)?\s*$")
_UNIT_MS = {"w": 7 * 86_400_000, "d": 86_400_000, "h": 3_600_000, "m": 60_000,
            "min": 60_000, "s": 1_000, None: 86_400_000}


def parse_duration(text: str, what: str = "window") -> int:
    """``3d``, ``36h``, ``90m``, ``2w`` (a bare number is days) in milliseconds."""
    match = _DURATION.match(text.lower())
    if not match:
        raise BadInput(f"{what} {shown(text)} is not a duration: write it like 3d, 36h or 90m")
    ms = Decimal(match.group(1)) * _UNIT_MS[match.group(2)]
    return int(ms)


def format_duration(ms: int) -> str:
    """Milliseconds the way people say them: ``3 days``, ``36 hours``, ``90 minutes``."""
    for unit, size in (("day", 86_400_000), ("hour", 3_600_000), ("minute", 60_000),
                       ("second", 1_000)):
        if ms >= size and ms % size == 0:
            n = ms // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    if ms >= 3_600_000:
        return f"{ms / 3_600_000:.1f} hours"
    return f"{ms / 1000:g} seconds"

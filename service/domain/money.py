"""Money in integer minor units.

Exponents and display come from the CLDR data shipped with `babel` rather than a hand-written table;
babel is pure data and formatting, so the domain stays free of I/O.
"""

from __future__ import annotations

import copy
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache

from babel import Locale, UnknownLocaleError
from babel.numbers import format_decimal, format_percent, get_currency_precision, is_currency, parse_pattern
from babel.units import format_compound_unit, format_unit


class UnknownCurrency(ValueError):
    """The code is not an ISO 4217 currency."""


def is_known_currency(currency: str) -> bool:
    return len(currency) == 3 and currency.islower() and bool(is_currency(currency.upper()))


@lru_cache(maxsize=512)
def exponent(currency: str) -> int:
    """Minor-unit exponent of a lower-case ISO 4217 code: usd 2, jpy 0, kwd 3."""
    if not is_known_currency(currency):
        raise UnknownCurrency(currency)
    return int(get_currency_precision(currency.upper()))


def round_half_up(value: Fraction) -> int:
    """Rounds a fraction of minor units to a whole one, halves away from zero."""
    sign = -1 if value < 0 else 1
    magnitude = abs(value)
    whole, rest = divmod(magnitude.numerator, magnitude.denominator)
    if 2 * rest >= magnitude.denominator:
        whole += 1
    return sign * whole


def allocate(total: int, weights: list[int]) -> list[int]:
    """Splits `total` over `weights` in proportion, the parts adding up to `total` exactly.

    Largest remainder: each part is floored, then the units left go to the largest remainders,
    earlier positions first on ties.
    """
    weight_sum = sum(weights)
    if weight_sum == 0:
        return [0] * len(weights)
    parts = [total * w // weight_sum for w in weights]
    remainders = [total * w % weight_sum for w in weights]
    left = total - sum(parts)
    for index in sorted(range(len(weights)), key=lambda i: (-remainders[i], i))[:left]:
        parts[index] += 1
    return parts


@lru_cache(maxsize=256)
def babel_locale(tag: str) -> Locale:
    """babel's locale for a session's tag (`en`, `de_CH`, `ja-JP`); English for a tag it does not know."""
    try:
        return Locale.parse(tag.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return Locale.parse("en")


@lru_cache(maxsize=256)
def is_known_locale(tag: str) -> bool:
    # Asked for every session registered; babel parses the tag anew each time.
    try:
        Locale.parse(tag.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return False
    return True


def to_major(amount: int, currency: str) -> Decimal:
    return Decimal(amount).scaleb(-exponent(currency))


# Formatting is pure and a catalog yields few distinct amounts, so the strings are kept: babel's
# pattern machinery is most of what a session's savings cost to compute.
@lru_cache(maxsize=8192)
def format_money(amount: int, currency: str, locale: str = "en", *, trim_zero_fraction: bool = False) -> str:
    """Formats minor units for a locale: `$1,234.50`; with `trim_zero_fraction`, `$200` for 20000."""
    loc = babel_locale(locale)
    pattern = copy.copy(parse_pattern(loc.currency_formats["standard"]))
    digits = exponent(currency)
    if trim_zero_fraction and amount % (10**digits) == 0:
        digits = 0
    pattern.frac_prec = (digits, digits)
    return str(pattern.apply(to_major(amount, currency), loc, currency=currency.upper(), currency_digits=False))


@lru_cache(maxsize=1024)
def format_whole_percent(percent: int, locale: str = "en") -> str:
    """Formats a whole percentage for a locale: `16%` in en, `16 %` in de."""
    return str(format_percent(Decimal(percent) / 100, locale=babel_locale(locale)))


@lru_cache(maxsize=256)
def _per_interval_pattern(interval: str, count: int, locale: str) -> str:
    """The locale's short `per` pattern for `count` intervals, `{0}` standing for the amount.

    `{0}/year`, `{0}/3 months`, `{0}/Monat`; for one interval the locale's own per-unit pattern where
    it is already written that way (`{0}/月` in ja, where the counted name would read `か月`). CLDR
    names one interval only in a pattern with its number (`1 year`), so the name is that pattern with
    the number taken out.
    """
    loc = babel_locale(locale)
    unit = f"duration-{interval}"
    compound = str(format_compound_unit("{0}", denominator_value="{1}", length="short", locale=loc))
    named = str(format_unit(count, unit, length="long", locale=loc))
    if count != 1:
        return compound.replace("{1}", named)
    own = str(format_compound_unit("{0}", denominator_unit=unit, length="long", locale=loc))
    if own.startswith(compound.split("{1}", 1)[0]):
        return own
    name = named.replace(str(format_decimal(1, locale=loc)), "", 1).strip(" \xa0\u202f")
    return compound.replace("{1}", name)


@lru_cache(maxsize=4096)
def format_per_interval(amount: int, currency: str, interval: str, count: int = 1, locale: str = "en") -> str:
    """An amount and how often it bills: `$1,000.00/year`, `$300.00/3 months`, `100,00 $/Monat`,
    `￥12,000/年`."""
    return _per_interval_pattern(interval, count, locale).replace("{0}", format_money(amount, currency, locale))

"""One option's price per the other option's interval, for comparing the two: `$83.33/month, billed yearly`.

The amount and its interval are babel's (`format_per_interval`); CLDR has no words for how often a price
bills, so those are written here for the component's languages (en, de, fr, ja), other locales getting
the English ones around their own amounts, as the component does with its messages.
"""

from __future__ import annotations

from functools import lru_cache

from babel.units import format_unit

from service.domain.catalog import Interval, Recurring
from service.domain.money import babel_locale, format_per_interval, round_half_up
from service.domain.savings import ratio

# How often a price bills: the words for one interval, then the pattern for several, `{0}` standing for
# the locale's counted name (`3 months`, `2 Jahre`, `2 semaines`, `3 か月`).
_BILLED: dict[str, dict[Interval, tuple[str, str]]] = {
    "en": {
        "day": ("billed daily", "billed every {0}"),
        "week": ("billed weekly", "billed every {0}"),
        "month": ("billed monthly", "billed every {0}"),
        "year": ("billed yearly", "billed every {0}"),
    },
    "de": {
        "day": ("täglich abgerechnet", "alle {0} abgerechnet"),
        "week": ("wöchentlich abgerechnet", "alle {0} abgerechnet"),
        "month": ("monatlich abgerechnet", "alle {0} abgerechnet"),
        "year": ("jährlich abgerechnet", "alle {0} abgerechnet"),
    },
    "fr": {
        "day": ("facturé chaque jour", "facturé tous les {0}"),
        "week": ("facturé chaque semaine", "facturé toutes les {0}"),
        "month": ("facturé mensuellement", "facturé tous les {0}"),
        "year": ("facturé annuellement", "facturé tous les {0}"),
    },
    "ja": {
        "day": ("日払い", "{0}ごとのお支払い"),
        "week": ("週払い", "{0}ごとのお支払い"),
        "month": ("月払い", "{0}ごとのお支払い"),
        "year": ("年払い", "{0}ごとのお支払い"),
    },
}
# The amount per interval, then how it bills; ja puts the latter in full-width parentheses.
_JOINED = {"en": "{0}, {1}", "de": "{0}, {1}", "fr": "{0}, {1}", "ja": "{0}\uff08{1}\uff09"}


def equivalent_amount(amount: int, billed: Recurring, per: Recurring) -> int | None:
    """`amount`, billed every `billed` cycle, as an amount every `per` cycle, rounded half-up once.

    100000 a year is 8333 a month (83,333.3...), 10000 a month is 120000 a year; None where the two
    intervals are the same or have no exact ratio (week and month).
    """
    if (billed.interval, billed.interval_count) == (per.interval, per.interval_count):
        return None
    cycles = ratio(billed, per)
    return None if cycles is None else round_half_up(amount / cycles)


@lru_cache(maxsize=256)
def _billed(interval: Interval, count: int, locale: str) -> str:
    loc = babel_locale(locale)
    one, several = _BILLED.get(loc.language, _BILLED["en"])[interval]
    if count == 1:
        return one
    return several.replace("{0}", str(format_unit(count, f"duration-{interval}", "long", locale=loc)))


@lru_cache(maxsize=4096)
def format_equivalent(amount: int, currency: str, billed: Recurring, per: Recurring, locale: str = "en") -> str | None:
    """`amount`, billed every `billed` cycle, per `per` cycle and how it bills, for the locale:
    `$83.33/month, billed yearly`, `83,33 $/Monat, jährlich abgerechnet`, `￥1,333/月` with `年払い` in
    full-width parentheses; None where `equivalent_amount` is."""
    spread = equivalent_amount(amount, billed, per)
    if spread is None:
        return None
    language = babel_locale(locale).language
    joined = _JOINED.get(language, _JOINED["en"])
    every = format_per_interval(spread, currency, per.interval, per.interval_count, locale)
    return joined.replace("{0}", every).replace("{1}", _billed(billed.interval, billed.interval_count, locale))

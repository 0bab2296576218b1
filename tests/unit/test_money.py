"""Money in integer minor units: exponents, half-up rounding, allocation and display."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.domain.money import (
    UnknownCurrency,
    allocate,
    exponent,
    format_money,
    format_whole_percent,
    is_known_currency,
    round_half_up,
    to_major,
)

NBSP = "\xa0"


@pytest.mark.parametrize(
    ("currency", "expected"),
    [("usd", 2), ("eur", 2), ("jpy", 0), ("krw", 0), ("kwd", 3), ("bhd", 3)],
    ids=["usd-2", "eur-2", "jpy-0", "krw-0", "kwd-3", "bhd-3"],
)
def test_exponent_of_known_currencies(currency: str, expected: int) -> None:
    assert exponent(currency) == expected


@pytest.mark.parametrize(
    "currency",
    ["xyz", "usdd", "us", "", "USD", "Usd", "JPY"],
    ids=["unknown", "four-letters", "two-letters", "empty", "upper-case", "mixed-case", "upper-jpy"],
)
def test_exponent_refuses_unknown_or_upper_case(currency: str) -> None:
    assert not is_known_currency(currency)
    with pytest.raises(UnknownCurrency):
        exponent(currency)


def test_unknown_currency_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="xyz"):
        exponent("xyz")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Fraction(0), 0),
        (Fraction(5, 2), 3),
        (Fraction(7, 2), 4),
        (Fraction(1, 2), 1),
        (Fraction(249, 100), 2),
        (Fraction(251, 100), 3),
        (Fraction(49999, 10000), 5),
        (Fraction(1, 3), 0),
        (Fraction(2, 3), 1),
        (Fraction(10), 10),
        (Fraction(-5, 2), -3),
        (Fraction(-249, 100), -2),
        (Fraction(-251, 100), -3),
        (Fraction(-1, 3), 0),
    ],
    ids=[
        "zero",
        "2.5-up",
        "3.5-up",
        "0.5-up",
        "2.49-down",
        "2.51-up",
        "4.9999-up",
        "third-down",
        "two-thirds-up",
        "whole",
        "neg-2.5-away-from-zero",
        "neg-2.49",
        "neg-2.51",
        "neg-third",
    ],
)
def test_round_half_up(value: Fraction, expected: int) -> None:
    assert round_half_up(value) == expected


@pytest.mark.parametrize(
    ("total", "weights", "expected"),
    [
        (100, [1, 1], [50, 50]),
        (100, [1, 1, 1], [34, 33, 33]),
        (7500, [10000, 5000], [5000, 2500]),
        (10, [0, 5, 5], [0, 5, 5]),
        (10, [0, 0], [0, 0]),
        (0, [3, 7], [0, 0]),
        (1, [1, 1, 1], [1, 0, 0]),
        (2, [1, 2, 2], [0, 1, 1]),
        (5, [], []),
    ],
    ids=[
        "halves",
        "thirds-earliest-gets-extra",
        "proportional",
        "zero-weight-gets-zero",
        "all-zero-weights",
        "zero-total",
        "one-unit-to-first-on-tie",
        "largest-remainder",
        "no-weights",
    ],
)
def test_allocate_table(total: int, weights: list[int], expected: list[int]) -> None:
    assert allocate(total, weights) == expected


@given(
    total=st.integers(min_value=0, max_value=10**9),
    weights=st.lists(st.integers(min_value=0, max_value=10**7), min_size=1, max_size=12),
)
def test_allocate_is_exact_and_proportional(total: int, weights: list[int]) -> None:
    parts = allocate(total, weights)
    assert len(parts) == len(weights)
    weight_sum = sum(weights)
    if weight_sum == 0:
        assert parts == [0] * len(weights)
        return
    assert sum(parts) == total
    for part, weight in zip(parts, weights, strict=True):
        exact = Fraction(total * weight, weight_sum)
        assert abs(part - exact) < 1
        if weight == 0:
            assert part == 0


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        (20050, "usd", "200.50"),
        (2000, "jpy", "2000"),
        (20500, "kwd", "20.500"),
        (-150, "usd", "-1.50"),
    ],
    ids=["usd", "jpy", "kwd", "negative"],
)
def test_to_major(amount: int, currency: str, expected: str) -> None:
    assert str(to_major(amount, currency)) == expected


@pytest.mark.parametrize(
    ("amount", "currency", "locale", "trim", "expected"),
    [
        (20000, "usd", "en", False, "$200.00"),
        (20000, "usd", "en", True, "$200"),
        (20050, "usd", "en", True, "$200.50"),
        (20050, "usd", "en", False, "$200.50"),
        (123456789, "usd", "en", False, "$1,234,567.89"),
        (5, "usd", "en", True, "$0.05"),
        (20000, "usd", "de", False, f"200,00{NBSP}$"),
        (20000, "usd", "de", True, f"200{NBSP}$"),
        (20050, "usd", "de", True, f"200,50{NBSP}$"),
        (2000, "jpy", "en", False, "¥2,000"),
        (2000, "jpy", "en", True, "¥2,000"),
        (2000, "jpy", "de", True, f"2.000{NBSP}¥"),
        (20000, "kwd", "en", False, "KWD20.000"),
        (20000, "kwd", "en", True, "KWD20"),
        (20050, "kwd", "en", True, "KWD20.050"),
        (20500, "kwd", "de", False, f"20,500{NBSP}KWD"),
        (20000, "kwd", "de", True, f"20{NBSP}KWD"),
        (20000, "eur", "en-GB", True, "€200"),
        (20000, "usd", "xx-unknown", True, "$200"),
    ],
    ids=[
        "usd-en",
        "usd-en-trim-zero-fraction",
        "usd-en-trim-keeps-nonzero-fraction",
        "usd-en-fraction",
        "usd-en-grouping",
        "usd-en-trim-cents-only",
        "usd-de",
        "usd-de-trim",
        "usd-de-trim-keeps-fraction",
        "jpy-en",
        "jpy-en-trim",
        "jpy-de",
        "kwd-en-three-decimals",
        "kwd-en-trim",
        "kwd-en-trim-keeps-fraction",
        "kwd-de",
        "kwd-de-trim",
        "hyphenated-locale-tag",
        "unknown-locale-falls-back-to-en",
    ],
)
def test_format_money(amount: int, currency: str, locale: str, trim: bool, expected: str) -> None:
    assert format_money(amount, currency, locale, trim_zero_fraction=trim) == expected


def test_format_money_default_locale_is_en() -> None:
    assert format_money(20050, "usd") == "$200.50"


def test_format_money_refuses_unknown_currency() -> None:
    with pytest.raises(UnknownCurrency):
        format_money(100, "xyz")


@pytest.mark.parametrize(
    ("percent", "locale", "expected"),
    [
        (16, "en", "16%"),
        (0, "en", "0%"),
        (5, "en", "5%"),
        (100, "en", "100%"),
        (16, "de", f"16{NBSP}%"),
        (50, "fr", f"50{NBSP}%"),
    ],
    ids=["en", "zero", "single-digit", "hundred", "de-nbsp", "fr-nbsp"],
)
def test_format_whole_percent(percent: int, locale: str, expected: str) -> None:
    assert format_whole_percent(percent, locale) == expected

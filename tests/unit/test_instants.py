"""An instant is an instant: whatever offset a caller writes it in, the service answers the same.

Instants from outside are converted to UTC where they come in (the contracts' bodies and events, the
query's `at`, `from` and `to`); the domain counts billing cycles on the UTC calendar only and refuses
any other offset, and answers are written with `Z`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts import events
from contracts import subscriptions as s
from contracts.catalog import PromotionCode, in_utc
from contracts.sessions import SessionInput
from service.app.mapping import to_contract, to_domain
from service.app.subscriptions import option
from service.domain.catalog import Interval, Price, Product, Recurring
from service.domain.proration import add_interval
from service.domain.subscriptions import Subscription

# Every offset in use is between -12:00 and +14:00; some are not whole hours (+05:45, +09:30, -03:30).
offsets = st.integers(min_value=-12 * 60, max_value=14 * 60).map(lambda minutes: timezone(timedelta(minutes=minutes)))
instants = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)).map(
    lambda value: value.replace(microsecond=0)
)
cycles = st.sampled_from([("day", 1), ("week", 2), ("month", 1), ("month", 3), ("month", 6), ("year", 1)])


def written(instant: datetime, offset: timezone) -> str:
    """The instant as a caller in `offset` writes it."""
    return instant.astimezone(offset).isoformat()


BASIC = Product("basic", "Basic", plan_group="g", plan_rank=1)
PREMIUM = Product("premium", "Premium", plan_group="g", plan_rank=2)
MONTHLY = Price("basic_monthly", "basic", "usd", unit_amount=1002, recurring=Recurring("month"))


def subscription(start: str, end: str) -> Subscription:
    body = {
        "customer": "cus_1",
        "price": MONTHLY.id,
        "status": "active",
        "current_period_start": start,
        "current_period_end": end,
        "payment_method": {"type": "card"},
        "currency": "usd",
    }
    return to_domain(msgspec.json.decode(msgspec.json.encode(body), type=s.Subscription), Subscription, id="sub_1")


def preview(sub: Subscription, target: Price, at: str) -> bytes:
    """The change option as the HTTP answer writes it, for `at` as the query carries it."""
    instant = in_utc(msgspec.convert(at, datetime))
    return msgspec.json.encode(option(sub, (BASIC, MONTHLY), (PREMIUM, target), 1, instant))


@given(
    start=instants,
    days=st.integers(min_value=1, max_value=400),
    into=st.floats(min_value=0, max_value=1),
    cycle=cycles,
    written_in=st.tuples(offsets, offsets, offsets),
)
def test_a_preview_answers_the_same_for_one_instant_in_any_offset(
    start: datetime, days: int, into: float, cycle: tuple[Interval, int], written_in: tuple[timezone, ...]
) -> None:
    end = start + timedelta(days=days)
    at = start + timedelta(seconds=int(days * 86400 * into))
    target = Price("premium_x", "premium", "usd", unit_amount=5005, recurring=Recurring(cycle[0], cycle[1]))
    in_utc_answer = preview(subscription(written(start, UTC), written(end, UTC)), target, written(at, UTC))
    start_in, end_in, at_in = written_in
    answer = preview(subscription(written(start, start_in), written(end, end_in)), target, written(at, at_in))
    assert answer == in_utc_answer
    date = msgspec.json.decode(answer)["next_billing_date"]
    assert date.endswith("Z"), date


def test_the_reported_case_counts_the_quarter_from_the_utc_day() -> None:
    """2026-05-01T10:00+14:00 is 2026-04-30T20:00Z: a quarter later is 2026-07-30T20:00Z, not 07-31."""
    sub = subscription("2026-04-15T00:00:00Z", "2026-05-15T00:00:00Z")
    quarterly = Price("premium_q", "premium", "usd", unit_amount=9000, recurring=Recurring("month", 3))
    half_yearly = Price("premium_h", "premium", "usd", unit_amount=17000, recurring=Recurring("month", 6))
    for target, expected in ((quarterly, "2026-07-30T20:00:00Z"), (half_yearly, "2026-10-30T20:00:00Z")):
        for at in ("2026-05-01T10:00:00+14:00", "2026-04-30T20:00:00Z", "2026-04-30T08:00:00-12:00"):
            assert msgspec.json.decode(preview(sub, target, at))["next_billing_date"] == expected


@pytest.mark.parametrize("offset", [timedelta(hours=14), timedelta(hours=-12), timedelta(hours=5, minutes=45)])
def test_the_domain_refuses_an_instant_with_an_offset(offset: timedelta) -> None:
    at = datetime(2026, 4, 30, 20, tzinfo=UTC).astimezone(timezone(offset))
    with pytest.raises(ValueError, match="UTC"):
        add_interval(at, Recurring("month", 3))
    with pytest.raises(ValueError, match="UTC"):
        add_interval(at.replace(tzinfo=None), Recurring("month", 3))


@given(instant=instants, offset=offsets)
def test_every_instant_a_body_or_event_carries_arrives_in_utc(instant: datetime, offset: timezone) -> None:
    text = written(instant, offset)
    session = msgspec.convert(
        {"id": "cs_1", "mode": "subscription", "currency": "usd", "line_items": [{"price": "p"}], "expires_at": text},
        SessionInput,
    )
    promo = msgspec.json.decode(msgspec.json.encode({"coupon": "c", "expires_at": text}), type=PromotionCode)
    event = msgspec.json.decode(
        msgspec.json.encode(
            {"type": "checkout.session.expired", "id": "evt_1", "created": text, "data": {"session": "cs_1"}}
        ),
        type=events.InboundEvent,
    )
    for value in (session.expires_at, promo.expires_at, event.created):
        assert value == instant
        assert value is not None
        assert value.utcoffset() == timedelta(0)
        assert msgspec.json.encode(value).decode().endswith('Z"')


def test_a_subscription_mirror_is_answered_in_utc() -> None:
    sub = subscription("2026-04-15T05:45:00+05:45", "2026-05-14T12:00:00-12:00")
    answered = msgspec.json.decode(msgspec.json.encode(to_contract(sub, s.Subscription)))
    assert (answered["current_period_start"], answered["current_period_end"]) == (
        "2026-04-15T00:00:00Z",
        "2026-05-15T00:00:00Z",
    )

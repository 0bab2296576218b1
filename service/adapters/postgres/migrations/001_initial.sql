-- Catalog: each row keeps the whole object as a JSON document; key columns are for lookups and joins.
create table products (
    id          text primary key,
    body        jsonb not null,
    updated_at  timestamptz not null default now()
);

create table prices (
    id          text primary key,
    product     text not null references products (id),
    body        jsonb not null,
    updated_at  timestamptz not null default now()
);
create index prices_product on prices (product);

create table coupons (
    id          text primary key,
    body        jsonb not null,
    updated_at  timestamptz not null default now()
);

-- `times_redeemed` is the service's own count, kept apart from the document that admins replace.
create table promotion_codes (
    id              text primary key,
    coupon          text not null references coupons (id),
    body            jsonb not null,
    times_redeemed  integer not null default 0,
    updated_at      timestamptz not null default now()
);

-- Checkout sessions: `state` is the domain session; `version` increases on every change.
create table checkout_sessions (
    id                  text primary key,
    status              text not null,
    version             integer not null,
    state               jsonb not null,
    client_secret_hash  bytea,
    created_at          timestamptz not null,
    updated_at          timestamptz not null default now()
);

-- Inbox: one row per consumed event id, written in the same transaction as the event's effects.
create table inbox (
    event_id     text primary key,
    type         text not null,
    received_at  timestamptz not null default now()
);

-- Events that arrived before the session they name; applied, in arrival order, when it is registered.
create table parked_events (
    seq          bigserial primary key,
    event_id     text not null unique,
    session_id   text not null,
    body         bytea not null,
    received_at  timestamptz not null default now()
);
create index parked_events_session on parked_events (session_id, seq);

-- Outbox: events to publish, written in the transaction of their cause; the relay publishes in id order.
-- A row with a `dead_letter_reason` goes to the dead-letter exchange instead (a parked inbound event
-- that its session refused once it arrived).
create table outbox (
    id                  bigserial primary key,
    event_id            text not null unique,
    type                text not null,
    correlation_id      text not null,
    body                bytea not null,
    dead_letter_reason  text,
    dead_letter_detail  text,
    created_at          timestamptz not null default now(),
    published_at        timestamptz
);
create index outbox_unpublished on outbox (id) where published_at is null;

create function outbox_notify() returns trigger language plpgsql as $$
begin
    perform pg_notify('upsell_outbox', '');
    return null;
end;
$$;

create trigger outbox_inserted after insert on outbox
    for each statement execute function outbox_notify();

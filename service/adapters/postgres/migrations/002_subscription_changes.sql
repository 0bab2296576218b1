-- API keys: only the SHA-256 of the secret is kept; a revoked key stays for the record.
create table api_keys (
    id           text primary key,
    name         text not null,
    roles        text[] not null,
    secret_hash  bytea not null unique,
    created_at   timestamptz not null default now(),
    revoked_at   timestamptz
);

-- The mirror of the billing system's subscriptions, one document each.
create table subscriptions (
    id          text primary key,
    body        jsonb not null,
    updated_at  timestamptz not null default now()
);

create table upgrade_paths (
    id          text primary key,
    body        jsonb not null,
    updated_at  timestamptz not null default now()
);

-- Upgrade orders placed on a customer's behalf. A retried request with the same Idempotency-Key of
-- the same caller finds its first order instead of placing a second.
create table upgrade_orders (
    id               text primary key,
    subscription     text not null,
    currency         text not null,
    amount_due_now   numeric not null,
    placed_by        text not null,
    idempotency_key  text,
    body             jsonb not null,
    created_at       timestamptz not null,
    unique (placed_by, idempotency_key)
);
create index upgrade_orders_created on upgrade_orders (created_at);

-- Upgrade links: the token carries the id and an HMAC; the row makes the link single use.
create table upgrade_links (
    id            text primary key,
    upgrade_path  text not null,
    subscription  text not null,
    expires_at    timestamptz not null,
    used_at       timestamptz,
    upgrade_order text
);

-- Reporting reads sessions by when they were created and completed, with the first invoice's total
-- and what an accepted upsell added to it, both fixed at completion. Amounts are `numeric`: a price
-- times a quantity may pass what a bigint holds, and a report must never fail a completion.
alter table checkout_sessions add column completed_at timestamptz;
alter table checkout_sessions add column amount_total numeric;
alter table checkout_sessions add column upsell_amount numeric;
create index checkout_sessions_created on checkout_sessions (created_at);
create index checkout_sessions_completed on checkout_sessions (completed_at) where completed_at is not null;

-- Answers of POST requests sent with an Idempotency-Key, kept 24 hours to replay them to a retry.
-- The body is sealed with a key derived from the caller's own bearer token, which is not stored: the
-- secrets an answer carries (a client secret, a new API key) are unreadable from this table alone.
create table idempotent_answers (
    owner text not null,
    key text not null,
    fingerprint bytea not null,
    status smallint not null,
    sealed bytea not null,
    created_at timestamptz not null,
    primary key (owner, key)
);

create index idempotent_answers_created on idempotent_answers (created_at);

-- Upgrade orders kept their own keys before; every idempotent POST now answers from the table above.
alter table upgrade_orders drop column idempotency_key;

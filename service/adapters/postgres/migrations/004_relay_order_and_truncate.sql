-- The relay reads the first unpublished event of each session; this finds a session's earlier one.
create index outbox_unpublished_session on outbox (correlation_id, id) where published_at is null;

-- Emptying the sessions table sends the empty id on `upsell_sessions`, which stands for every session.
create function checkout_sessions_truncated() returns trigger language plpgsql as $$
begin
    perform pg_notify('upsell_sessions', '');
    return null;
end;
$$;

create trigger checkout_sessions_truncated after truncate on checkout_sessions
    for each statement execute function checkout_sessions_truncated();

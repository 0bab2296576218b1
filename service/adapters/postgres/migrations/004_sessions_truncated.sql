-- Emptying the sessions table sends the empty id on `upsell_sessions`, which stands for every session.
create function checkout_sessions_truncated() returns trigger language plpgsql as $$
begin
    perform pg_notify('upsell_sessions', '');
    return null;
end;
$$;

create trigger checkout_sessions_truncated after truncate on checkout_sessions
    for each statement execute function checkout_sessions_truncated();

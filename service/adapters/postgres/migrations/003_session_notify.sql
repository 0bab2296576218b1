-- A session row that changes (or goes) sends its id on `upsell_sessions`: every process that keeps
-- sessions in memory for GET listens there and drops its copy. A new row needs no message: nothing
-- keeps a copy of a session that did not exist.
create function checkout_session_notify() returns trigger language plpgsql as $$
begin
    perform pg_notify('upsell_sessions', old.id);
    return null;
end;
$$;

create trigger checkout_session_changed after update or delete on checkout_sessions
    for each row execute function checkout_session_notify();

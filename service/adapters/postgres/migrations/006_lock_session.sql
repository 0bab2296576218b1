-- Takes a session's lock and reads the session, in one round trip. The read is a statement of its own,
-- run after the lock is granted, so it sees what the lock's previous holder committed.
create function lock_checkout_session(wanted text)
    returns table (locked_state jsonb, locked_secret_hash bytea) language plpgsql as $$
begin
    perform pg_advisory_xact_lock(1, hashtext(wanted));
    return query select s.state, s.client_secret_hash from checkout_sessions s where s.id = wanted for update;
end;
$$;

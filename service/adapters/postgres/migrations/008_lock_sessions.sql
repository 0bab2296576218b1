-- Takes the locks of several sessions and reads them, in one round trip: the writes of several requests
-- gathered into one transaction. Locks are taken in the order of their keys, as everywhere a holder
-- takes more than one, so two holders never wait for each other; the read is a statement of its own,
-- run after the locks are granted, so it sees what their previous holders committed.
create function lock_checkout_sessions(wanted text[])
    returns table (locked_id text, locked_state jsonb, locked_secret_hash bytea) language plpgsql as $$
begin
    -- With ORDER BY, PostgreSQL evaluates a volatile function of the select list after the sort.
    perform pg_advisory_xact_lock(1, key)
       from (select distinct hashtext(id) as key from unnest(wanted) as id) as keys order by key;
    return query select s.id, s.state, s.client_secret_hash from checkout_sessions s
                  where s.id = any(wanted) for update;
end;
$$;

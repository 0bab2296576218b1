-- A batch's locks and its read ahead in one round trip (the events of a consumer batch, or the sessions
-- of gathered registrations): the locks first, in key order as everywhere a holder takes several, then
-- the read as a statement of its own, run once they are granted, so that it sees what their previous
-- holders committed. The read is the one `read_ahead` sends alone when the locks are held already.
create function lock_and_read_ahead(
    wanted text[], event_ids text[], event_types text[], new_sessions text[], asked text[]
) returns table (
    fresh text[], taken text[], prices jsonb, parked_sessions text[], parked_seqs bigint[], parked_bodies bytea[]
) language plpgsql as $$
begin
    -- With ORDER BY, PostgreSQL evaluates a volatile function of the select list after the sort.
    perform pg_advisory_xact_lock(1, key)
       from (select distinct hashtext(id) as key from unnest(wanted) as id) as keys order by key;
    return query
    with recorded as (
        insert into inbox (event_id, type) select * from unnest(event_ids, event_types)
        on conflict do nothing returning event_id
    ), parked as (
        select p.session_id, p.seq, p.body from parked_events p where p.session_id = any(new_sessions)
    )
    select
        array(select r.event_id from recorded r),
        array(select s.id from checkout_sessions s where s.id = any(new_sessions)),
        (select jsonb_object_agg(pr.id, pr.body) from prices pr where pr.id = any(asked)
            or pr.id in (select up.body->>'upsell' from prices up where up.id = any(asked))),
        array(select pk.session_id from parked pk order by pk.seq),
        array(select pk.seq from parked pk order by pk.seq),
        array(select pk.body from parked pk order by pk.seq);
end;
$$;

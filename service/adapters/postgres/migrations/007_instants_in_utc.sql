-- Instants from outside are kept in UTC (written with `Z`): billing cycles are counted on the UTC
-- calendar, and answers carry no caller's offset. Documents written before the service converted them
-- on the way in keep the offset their caller wrote; this rewrites those as the same instants in UTC.
create function pg_temp.in_utc(written text) returns text language sql immutable as $$
    select to_char(written::timestamptz at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;

update subscriptions
   set body = body || jsonb_build_object(
           'current_period_start', pg_temp.in_utc(body->>'current_period_start'),
           'current_period_end', pg_temp.in_utc(body->>'current_period_end'))
 where body->>'current_period_start' not like '%Z' or body->>'current_period_end' not like '%Z';

update promotion_codes
   set body = jsonb_set(body, '{expires_at}', to_jsonb(pg_temp.in_utc(body->>'expires_at')))
 where body->>'expires_at' not like '%Z';

update checkout_sessions
   set state = jsonb_set(state, '{expires_at}', to_jsonb(pg_temp.in_utc(state->>'expires_at')))
 where state->>'expires_at' not like '%Z';

drop function pg_temp.in_utc(text);

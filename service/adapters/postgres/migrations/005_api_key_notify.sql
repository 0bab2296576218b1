-- An API key row that changes (a revocation) or goes sends its id on `upsell_api_keys`: every process
-- that keeps live keys in memory listens there and drops them. A new key needs no message: nothing keeps
-- a key it has not seen.
create function api_key_notify() returns trigger language plpgsql as $$
begin
    perform pg_notify('upsell_api_keys', old.id);
    return null;
end;
$$;

create trigger api_key_changed after update or delete on api_keys
    for each row execute function api_key_notify();

create function api_keys_truncated() returns trigger language plpgsql as $$
begin
    perform pg_notify('upsell_api_keys', '');
    return null;
end;
$$;

create trigger api_keys_truncated after truncate on api_keys
    for each statement execute function api_keys_truncated();

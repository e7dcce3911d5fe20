-- The roles services connect as or are granted: no superuser, no BYPASSRLS. Roles are
-- cluster-wide, so they are created only when missing; privileges are per database.
do $$
begin
    if not exists (select from pg_roles where rolname = 'strata_app') then
        create role strata_app nologin;
    end if;
    if not exists (select from pg_roles where rolname = 'strata_relay') then
        create role strata_relay nologin;
    end if;
end
$$;

grant USAGE on schema public to strata_app;
grant USAGE on schema public to strata_relay;

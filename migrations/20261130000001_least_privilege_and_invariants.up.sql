-- Least privilege and invariants the database keeps under concurrency.
--
-- 1. strata_enter_organization: checks a membership and sets the tenant in one statement, so
--    a request's transaction costs BEGIN plus one round trip before its work (it was two
--    transactions: resolve, then begin).
-- 2. memberships_owner_required: an organization keeps at least one owner, whoever writes and
--    however many write at once. The Rust check read the owner count and then wrote under
--    READ COMMITTED: two owners demoting each other at once left none in 35 of 40 trials.
-- 3. The outbox under row-level security: the application role writes its own tenant's events
--    and reads none; the new role strata_relay reads and settles every tenant's events, by
--    design (the relay serves them all).

-- 1. Entering an organization.
create function strata_enter_organization(p_organization_id uuid, p_user_id uuid)
returns membership_role
language plpgsql volatile security invoker as $$
declare
    previous text := coalesce(current_setting('strata.organization_id', true), '');
    member_role membership_role;
    ignored text;
begin
    if previous <> '' and previous <> p_organization_id::text then
        raise exception 'this transaction is scoped to another organization'
            using errcode = 'insufficient_privilege', constraint = 'strata_enter_organization_tenant';
    end if;
    ignored := set_config('strata.organization_id', p_organization_id::text, true);
    select m.role into member_role
      from memberships m
     where m.organization_id = p_organization_id and m.user_id = p_user_id;
    return member_role;
end
$$;
comment on function strata_enter_organization(uuid, uuid) is
    'Sets the tenant for the rest of the transaction and returns the user''s role in it (NULL: not a member). Refuses a transaction scoped to another organization.';

-- 2. At least one owner.
create function strata_keep_an_owner() returns trigger
language plpgsql volatile security invoker as $$
declare
    owners bigint;
begin
    if tg_op = 'UPDATE' and new.role = 'owner' then
        return null;
    end if;
    -- Every change that may remove an owner of this organization waits here for the others:
    -- the lock is held to the end of the transaction. FOR NO KEY UPDATE leaves foreign-key
    -- checks (FOR KEY SHARE) on the organization unblocked.
    perform 1 from organizations where id = old.organization_id for no key update;
    if not found then
        return null; -- the organization itself is being deleted
    end if;
    -- A locking read: under READ COMMITTED it sees the owners as now committed (after the lock);
    -- under REPEATABLE READ an owner changed since the snapshot raises a serialization failure
    -- (40001) instead of being counted stale.
    select count(*) into owners
      from (select 1 from memberships
             where organization_id = old.organization_id and role = 'owner'
               for key share) o;
    if owners = 0 then
        raise exception 'an organization keeps at least one owner'
            using errcode = 'check_violation', constraint = 'memberships_owner_required';
    end if;
    return null;
end
$$;
comment on function strata_keep_an_owner() is
    'Constraint trigger function of memberships_owner_required: refuses to leave an organization without an owner.';
create trigger memberships_owner_required
    after update of role or delete on memberships
    for each row when (old.role = 'owner')
    execute function strata_keep_an_owner();

-- 3. The outbox: written by the application in its tenant, read by the relay across tenants.
do $$
begin
    if not exists (select from pg_roles where rolname = 'strata_relay') then
        create role strata_relay nologin;
    end if;
end
$$;
comment on table outbox_events is
    'Events for other services, written in the transaction of the change (by strata_app, in its tenant only); read and settled by strata_relay across tenants, claimed with FOR UPDATE SKIP LOCKED.';
revoke select, update on outbox_events from strata_app;
grant insert on outbox_events to strata_app;
grant usage on schema public to strata_relay;
grant select, update on outbox_events to strata_relay;
alter table outbox_events enable row level security;
alter table outbox_events force row level security;
create policy outbox_events_tenant_insert on outbox_events for insert
    with check (organization_id = strata_current_organization());
create policy outbox_events_relay_select on outbox_events for select to strata_relay
    using (true);
create policy outbox_events_relay_update on outbox_events for update to strata_relay
    using (true) with check (true);

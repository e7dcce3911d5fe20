-- What the data layer's statements need to run on Citus as they run on PostgreSQL.
--
-- 1. strata_set_tenant: the one way the tenant of a transaction is set, by the data layer and
--    by the functions that enter or borrow a tenant.
-- 2. memberships_owner_required locks the owners' membership rows, not the organization's
--    row: on Citus the organization is in a reference table, which is locked on every node,
--    and the memberships are on the tenant's shard.
-- 3. The application may read back the ids of its own tenant's outbox events, and nothing
--    else of them: its outbox inserts end in `RETURNING id`. Citus runs an insert that
--    selects from another part of its statement apart; without RETURNING it sends the rows as
--    COPY, which row-level security refuses (see strata-db's docs, "On Citus").
--
-- 1.
-- Why: on a distributed PostgreSQL (Citus) the tenant must reach the workers, where row-level
-- security is evaluated on the shards. Citus sends `SET LOCAL` to the workers (with
-- citus.propagate_set_commands = 'local') but not set_config(). Here, on PostgreSQL, it is
-- set_config() as before, at the same cost (pgbench: 26.1k calls/s against 26.8k for a bare
-- set_config; a PL/pgSQL body with EXECUTE would be 20.3k). The migration that distributes
-- the tables on Citus replaces this body with `SET LOCAL`.
create function strata_set_tenant(p_organization_id text) returns text
language sql volatile security invoker as $$
    select set_config('strata.organization_id', p_organization_id, true)
$$;
comment on function strata_set_tenant(text) is
    'Sets the tenant (an organization id, or '''' for none) until the end of the transaction; read back by strata_current_organization().';
revoke execute on function strata_set_tenant(text) from public;
grant execute on function strata_set_tenant(text) to strata_app;

create or replace function strata_enter_organization(p_organization_id uuid, p_user_id uuid)
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
    ignored := strata_set_tenant(p_organization_id::text);
    select m.role into member_role
      from memberships m
     where m.organization_id = p_organization_id and m.user_id = p_user_id;
    return member_role;
end
$$;

create or replace function strata_task_by_id(p_organization_id uuid, p_id uuid) returns setof tasks
language plpgsql volatile security invoker as $$
declare
    previous text := coalesce(current_setting('strata.organization_id', true), '');
    ignored text;
begin
    if previous <> '' and previous <> p_organization_id::text then
        raise exception 'this transaction is scoped to another organization'
            using errcode = 'insufficient_privilege', constraint = 'strata_task_by_id_tenant';
    end if;
    ignored := strata_set_tenant(p_organization_id::text);
    return query
        select * from tasks t
         where t.organization_id = p_organization_id and t.id = p_id and t.deleted_at is null;
    ignored := strata_set_tenant(previous);
end
$$;

-- 2. The owners' rows as the lock.
create or replace function strata_keep_an_owner() returns trigger
language plpgsql volatile security invoker as $$
declare
    owners bigint;
begin
    if tg_op = 'UPDATE' and new.role = 'owner' then
        return null;
    end if;
    -- The organization itself is being deleted (its memberships go with it): nothing to keep.
    perform 1 from organizations where id = old.organization_id;
    if not found then
        return null;
    end if;
    -- Every change that may remove an owner of this organization locks the owners' rows, in
    -- user order, and waits here for the others: the lock is held to the end of the
    -- transaction. A locking read: under READ COMMITTED it counts the owners as now committed
    -- (after the lock); under REPEATABLE READ an owner changed since the snapshot raises a
    -- serialization failure (40001) instead of being counted stale. strata-db takes the same
    -- locks first, so its callers queue instead of deadlocking; two raw UPDATEs that demote
    -- each other's owner may deadlock (40P01), and one of them is then rolled back.
    select count(*) into owners
      from (select 1 from memberships
             where organization_id = old.organization_id and role = 'owner'
             order by user_id
               for no key update) o;
    if owners = 0 then
        raise exception 'an organization keeps at least one owner'
            using errcode = 'check_violation', constraint = 'memberships_owner_required';
    end if;
    return null;
end
$$;

-- 3. The ids of its own tenant's events.
grant select (id) on outbox_events to strata_app;
create policy outbox_events_tenant_select on outbox_events for select to strata_app
    using (organization_id = strata_current_organization());

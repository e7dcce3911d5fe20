drop policy outbox_events_tenant_select on outbox_events;
revoke select (id) on outbox_events from strata_app;

create or replace function strata_keep_an_owner() returns trigger
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
    ignored := set_config('strata.organization_id', p_organization_id::text, true);
    return query
        select * from tasks t
         where t.organization_id = p_organization_id and t.id = p_id and t.deleted_at is null;
    ignored := set_config('strata.organization_id', previous, true);
end
$$;

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
    ignored := set_config('strata.organization_id', p_organization_id::text, true);
    select m.role into member_role
      from memberships m
     where m.organization_id = p_organization_id and m.user_id = p_user_id;
    return member_role;
end
$$;

drop function strata_set_tenant(text);

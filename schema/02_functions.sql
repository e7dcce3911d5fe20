-- Functions the tables' defaults, checks, triggers and policies call: the tenant of the
-- session, updated_at, the invariants the triggers keep.

CREATE OR REPLACE FUNCTION public.strata_check_status_transition()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
begin
    if new.status is distinct from old.status and not exists (
        select 1 from task_status_transitions
         where from_status = old.status and to_status = new.status
    ) then
        raise exception 'task status cannot change from % to %', old.status, new.status
            using errcode = 'check_violation', constraint = 'tasks_status_transition';
    end if;
    return new;
end
$function$;

CREATE OR REPLACE FUNCTION public.strata_current_organization()
 RETURNS uuid
 LANGUAGE sql
 STABLE PARALLEL SAFE
AS $function$
    select nullif(current_setting('strata.organization_id', true), '')::uuid
$function$;

CREATE OR REPLACE FUNCTION public.strata_enter_organization(p_organization_id uuid, p_user_id uuid)
 RETURNS membership_role
 LANGUAGE plpgsql
AS $function$
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
$function$;

CREATE OR REPLACE FUNCTION public.strata_keep_an_owner()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
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
$function$;

CREATE OR REPLACE FUNCTION public.strata_refuse_change()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
begin
    raise exception '% is append-only: % refused', tg_table_name, tg_op
        using errcode = 'insufficient_privilege', constraint = tg_table_name || '_append_only';
end
$function$;

CREATE OR REPLACE FUNCTION public.strata_set_updated_at()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
begin
    new.updated_at := now();
    return new;
end
$function$;

CREATE OR REPLACE FUNCTION public.strata_set_tenant(p_organization_id text)
 RETURNS text
 LANGUAGE sql
AS $function$
    select set_config('strata.organization_id', p_organization_id, true)
$function$;

revoke EXECUTE on function public.strata_set_tenant(p_organization_id text) from public;
grant EXECUTE on function public.strata_set_tenant(p_organization_id text) to strata_app;
comment on function public.strata_set_tenant(p_organization_id text) is 'Sets the tenant (an organization id, or '''' for none) until the end of the transaction; read back by strata_current_organization().';
comment on function public.strata_current_organization() is 'The tenant of the current transaction (set_config(''strata.organization_id'', id, true)); NULL when unset.';
comment on function public.strata_enter_organization(p_organization_id uuid, p_user_id uuid) is 'Sets the tenant for the rest of the transaction and returns the user''s role in it (NULL: not a member). Refuses a transaction scoped to another organization.';
comment on function public.strata_keep_an_owner() is 'Constraint trigger function of memberships_owner_required: refuses to leave an organization without an owner.';
comment on function public.strata_set_updated_at() is 'Trigger function: keeps updated_at current on every UPDATE, whatever the client sends.';

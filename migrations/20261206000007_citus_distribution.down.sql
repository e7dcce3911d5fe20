-- On Citus, the tables back on the coordinator alone (rows included); on PostgreSQL, nothing.
do $migration$
declare
    t text;
begin
    if not exists (select from pg_extension where extname = 'citus') then
        return;
    end if;
    set local citus.multi_shard_modify_mode = 'sequential';
    create or replace function strata_set_tenant(p_organization_id text) returns text
    language sql volatile security invoker as $body$
        select set_config('strata.organization_id', p_organization_id, true)
    $body$;
    execute format('alter database %I reset citus.propagate_set_commands', current_database());
    execute format('alter database %I reset citus.enable_unsafe_triggers', current_database());
    -- Each call also brings back the tables its foreign keys connect it to.
    foreach t in array array['audit_events', 'comments', 'tasks', 'projects', 'memberships',
                             'api_tokens', 'task_status_transitions', 'organizations', 'users',
                             'outbox_events'] loop
        if exists (select from pg_dist_partition where logicalrelid = t::regclass) then
            perform undistribute_table(t, cascade_via_foreign_keys => true);
        end if;
    end loop;
    -- undistribute_table replaces tasks, and strata_task_by_id (which returns its rows) goes
    -- with the old one: it comes back as 20261206000006 left it.
    if to_regprocedure('strata_task_by_id(uuid, uuid)') is null then
        create function strata_task_by_id(p_organization_id uuid, p_id uuid) returns setof tasks
        language plpgsql volatile security invoker as $body$
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
        $body$;
        comment on function strata_task_by_id(uuid, uuid) is
            'One task of one organization under RLS, in one round trip; used by strata_db::tasks::get.';
        revoke execute on function strata_task_by_id(uuid, uuid) from public;
        grant execute on function strata_task_by_id(uuid, uuid) to strata_app;
    end if;
end
$migration$;

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
end
$migration$;

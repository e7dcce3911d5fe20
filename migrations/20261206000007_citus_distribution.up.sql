-- On Citus (the extension is present), distribute the schema; on PostgreSQL, nothing.
--
-- - Reference tables, a copy on every node: what is global. users and api_tokens (people and
--   their credentials belong to no tenant), organizations (slugs are unique across the
--   service, and a tenant is looked up by slug before its id is known), and
--   task_status_transitions (read by a trigger on every shard).
-- - Distributed by organization_id, in one colocation group: memberships, projects, tasks,
--   comments, audit_events, outbox_events. Every key and foreign key among them includes
--   organization_id, so each is enforced on one shard, and a tenant's rows live together:
--   a statement that changes a task, writes its audit event and its outbox event runs whole
--   on one shard. (With the outbox on the coordinator, Citus split such a statement and
--   sent the inserts as COPY, which row-level security refuses.)
-- - Foreign keys are dropped while the tables are converted, then added again as they were:
--   Citus refuses to convert a table that a local table references.
-- - Triggers stay (citus.enable_unsafe_triggers, for this database): each runs on the shard of
--   its row and reads only that shard, its colocated shards, or reference tables.
-- - The tenant reaches the workers: strata_set_tenant uses SET LOCAL, which Citus sends to
--   every worker the transaction uses (citus.propagate_set_commands = 'local'). The functions
--   that set it and read in one statement run on the tenant's worker when called alone.
--
-- create_distributed_table copies existing rows while holding each table's lock: on a
-- database that already holds data, run this at a quiet time, or distribute with
-- create_distributed_table_concurrently in a `-- no-transaction` migration of your own.
do $migration$
begin
    if not exists (select from pg_extension where extname = 'citus') then
        return;
    end if;
    set local citus.enable_unsafe_triggers = on;
    -- Tables with foreign keys to reference tables take one connection per node.
    set local citus.multi_shard_modify_mode = 'sequential';

    alter table api_tokens drop constraint api_tokens_user_id_fkey;
    alter table audit_events drop constraint audit_events_actor_id_fkey,
        drop constraint audit_events_organization_id_fkey;
    alter table comments drop constraint comments_author_fkey,
        drop constraint comments_task_fkey;
    alter table memberships drop constraint memberships_organization_id_fkey,
        drop constraint memberships_user_id_fkey;
    alter table outbox_events drop constraint outbox_events_organization_id_fkey;
    alter table projects drop constraint projects_organization_id_fkey;
    alter table tasks drop constraint tasks_assignee_fkey, drop constraint tasks_project_fkey;

    perform create_reference_table('users');
    perform create_reference_table('organizations');
    perform create_reference_table('task_status_transitions');
    perform create_reference_table('api_tokens');
    perform create_distributed_table('memberships', 'organization_id');
    perform create_distributed_table('projects', 'organization_id', colocate_with => 'memberships');
    perform create_distributed_table('tasks', 'organization_id', colocate_with => 'memberships');
    perform create_distributed_table('comments', 'organization_id', colocate_with => 'memberships');
    perform create_distributed_table('audit_events', 'organization_id', colocate_with => 'memberships');
    perform create_distributed_table('outbox_events', 'organization_id', colocate_with => 'memberships');

    alter table api_tokens add constraint api_tokens_user_id_fkey
        foreign key (user_id) references users(id) on delete cascade;
    alter table audit_events add constraint audit_events_actor_id_fkey
        foreign key (actor_id) references users(id);
    alter table audit_events add constraint audit_events_organization_id_fkey
        foreign key (organization_id) references organizations(id);
    alter table comments add constraint comments_author_fkey
        foreign key (organization_id, author_id) references memberships(organization_id, user_id);
    alter table comments add constraint comments_task_fkey
        foreign key (task_id, organization_id) references tasks(id, organization_id) on delete cascade;
    alter table memberships add constraint memberships_organization_id_fkey
        foreign key (organization_id) references organizations(id) on delete cascade;
    alter table memberships add constraint memberships_user_id_fkey
        foreign key (user_id) references users(id) on delete cascade;
    alter table outbox_events add constraint outbox_events_organization_id_fkey
        foreign key (organization_id) references organizations(id);
    alter table projects add constraint projects_organization_id_fkey
        foreign key (organization_id) references organizations(id) on delete cascade;
    alter table tasks add constraint tasks_assignee_fkey
        foreign key (organization_id, assignee_id) references memberships(organization_id, user_id);
    alter table tasks add constraint tasks_project_fkey
        foreign key (project_id, organization_id) references projects(id, organization_id) on delete cascade;

    -- Called alone (outside a transaction block), these run on the worker that holds the
    -- tenant's shard: Citus sends SET LOCAL to the workers only inside a transaction block, and
    -- here the tenant is set and read on that worker itself. Inside a transaction they run on
    -- the coordinator, and SET LOCAL reaches the workers.
    perform create_distributed_function('strata_enter_organization(uuid, uuid)',
        'p_organization_id', colocate_with => 'memberships');
    perform create_distributed_function('strata_task_by_id(uuid, uuid)',
        'p_organization_id', colocate_with => 'memberships');

    execute format('alter database %I set citus.propagate_set_commands = %L',
        current_database(), 'local');
    execute format('alter database %I set citus.enable_unsafe_triggers = on', current_database());

    create or replace function strata_set_tenant(p_organization_id text) returns text
    language plpgsql volatile security invoker as $body$
    begin
        execute format('set local strata.organization_id = %L', p_organization_id);
        return p_organization_id;
    end
    $body$;
end
$migration$;

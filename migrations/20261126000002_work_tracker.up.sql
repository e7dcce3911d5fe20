-- The work tracker: memberships, projects, tasks, comments, the audit log and the outbox.
--
-- Tenant isolation is enforced twice: every query of strata-db filters on organization_id, and
-- row-level security (FORCE, so the owner is subject too) keeps each transaction to the
-- organization in the transaction-local setting strata.organization_id. A transaction that did
-- not set it sees no rows (nullif: once set in a connection, the setting reads '' afterwards).
-- Superusers bypass RLS: services connect as a role without BYPASSRLS, such as strata_app.

create type membership_role as enum ('owner', 'admin', 'member', 'viewer');
create type task_status as enum ('todo', 'in_progress', 'blocked', 'done', 'cancelled');

-- The organization of the current transaction, or NULL when none is set.
create function strata_current_organization() returns uuid
language sql stable parallel safe as $$
    select nullif(current_setting('strata.organization_id', true), '')::uuid
$$;
comment on function strata_current_organization() is
    'The tenant of the current transaction (set_config(''strata.organization_id'', id, true)); NULL when unset.';

create table memberships (
    organization_id uuid not null,
    user_id uuid not null,
    role membership_role not null default 'member',
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint memberships_pkey primary key (organization_id, user_id),
    constraint memberships_organization_id_fkey foreign key (organization_id)
        references organizations (id) on delete cascade,
    constraint memberships_user_id_fkey foreign key (user_id)
        references users (id) on delete cascade
);
create index memberships_user_id_idx on memberships (user_id);
create trigger memberships_set_updated_at before update on memberships
    for each row execute function strata_set_updated_at();

create table projects (
    id uuid not null,
    organization_id uuid not null,
    key text not null,
    name text not null,
    description text not null default '',
    archived boolean not null default false,
    next_task_number integer not null default 1,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint projects_pkey primary key (id),
    constraint projects_organization_id_fkey foreign key (organization_id)
        references organizations (id) on delete cascade,
    constraint projects_key_key unique (organization_id, key),
    constraint projects_id_organization_id_key unique (id, organization_id),
    constraint projects_key_format check (key ~ '^[A-Z][A-Z0-9]{1,9}$'),
    constraint projects_name_not_blank check (btrim(name) <> ''),
    constraint projects_next_task_number_positive check (next_task_number > 0)
);
comment on column projects.key is 'Short uppercase key, unique in the organization: the OPS of OPS-42.';
comment on column projects.next_task_number is
    'The number the next task gets; bumped in the inserting transaction, so numbers have no gaps.';
create trigger projects_set_updated_at before update on projects
    for each row execute function strata_set_updated_at();

create table tasks (
    id uuid not null,
    organization_id uuid not null,
    project_id uuid not null,
    number integer not null,
    title text not null,
    description text not null default '',
    status task_status not null default 'todo',
    priority smallint not null default 2,
    assignee_id uuid,
    labels text[] not null default '{}',
    metadata jsonb not null default '{}',
    due_on date,
    version integer not null default 1,
    deleted_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint tasks_pkey primary key (id),
    constraint tasks_id_organization_id_key unique (id, organization_id),
    constraint tasks_number_key unique (project_id, organization_id, number),
    constraint tasks_project_fkey foreign key (project_id, organization_id)
        references projects (id, organization_id) on delete cascade,
    constraint tasks_assignee_fkey foreign key (organization_id, assignee_id)
        references memberships (organization_id, user_id),
    constraint tasks_title_not_blank check (btrim(title) <> ''),
    constraint tasks_priority_range check (priority between 0 and 4),
    constraint tasks_number_positive check (number > 0),
    constraint tasks_version_positive check (version > 0)
);
comment on column tasks.number is 'Per-project sequence number: OPS-42 is number 42 of project OPS.';
comment on column tasks.priority is '0 (highest) to 4 (lowest).';
comment on column tasks.assignee_id is 'A member of the same organization (composite foreign key), or NULL.';
comment on column tasks.metadata is 'Free-form attributes from integrations, mapped to a serde type.';
comment on column tasks.version is 'Optimistic concurrency: every update must name the version it read and bumps it.';
comment on column tasks.deleted_at is 'Soft delete: set when deleted, NULL again when restored.';
create index tasks_assignee_idx on tasks (organization_id, assignee_id) where assignee_id is not null;
create index tasks_priority_idx on tasks (project_id, organization_id, priority, number);
create index tasks_labels_idx on tasks using gin (labels);
create index tasks_title_search_idx on tasks using gin (to_tsvector('simple', title));
create trigger tasks_set_updated_at before update on tasks
    for each row execute function strata_set_updated_at();

-- The allowed status transitions; a trigger refuses any other, whoever writes.
create table task_status_transitions (
    from_status task_status not null,
    to_status task_status not null,
    constraint task_status_transitions_pkey primary key (from_status, to_status)
);
comment on table task_status_transitions is 'Allowed task status changes; enforced by tasks_check_status_transition.';
insert into task_status_transitions (from_status, to_status) values
    ('todo', 'in_progress'), ('todo', 'blocked'), ('todo', 'cancelled'), ('todo', 'done'),
    ('in_progress', 'todo'), ('in_progress', 'blocked'), ('in_progress', 'done'), ('in_progress', 'cancelled'),
    ('blocked', 'todo'), ('blocked', 'in_progress'), ('blocked', 'cancelled'),
    ('done', 'todo'), ('cancelled', 'todo');

create function strata_check_status_transition() returns trigger
language plpgsql as $$
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
$$;
create trigger tasks_check_status_transition before update of status on tasks
    for each row execute function strata_check_status_transition();

create table comments (
    id uuid not null,
    organization_id uuid not null,
    task_id uuid not null,
    author_id uuid not null,
    body text not null,
    edited_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint comments_pkey primary key (id),
    constraint comments_task_fkey foreign key (task_id, organization_id)
        references tasks (id, organization_id) on delete cascade,
    constraint comments_author_fkey foreign key (organization_id, author_id)
        references memberships (organization_id, user_id),
    constraint comments_body_not_blank check (btrim(body) <> '')
);
comment on column comments.edited_at is 'When the author last edited the body; NULL if never.';
create index comments_task_idx on comments (task_id, organization_id, id);
create index comments_author_idx on comments (organization_id, author_id);
create trigger comments_set_updated_at before update on comments
    for each row execute function strata_set_updated_at();

create table audit_events (
    id uuid not null,
    organization_id uuid not null,
    actor_id uuid not null,
    entity text not null,
    entity_id uuid not null,
    action text not null,
    before jsonb,
    after jsonb,
    occurred_at timestamptz not null default now(),
    constraint audit_events_pkey primary key (id),
    constraint audit_events_organization_id_fkey foreign key (organization_id)
        references organizations (id),
    constraint audit_events_actor_id_fkey foreign key (actor_id) references users (id)
);
comment on table audit_events is 'Append-only record of every change to tenant data; UPDATE, DELETE and TRUNCATE are refused.';
comment on column audit_events.before is 'The row before the change (NULL for a creation).';
comment on column audit_events.after is 'The row after the change (NULL for a hard deletion).';
create index audit_events_entity_idx on audit_events (organization_id, entity, entity_id, id);
create index audit_events_actor_id_idx on audit_events (actor_id);

create function strata_refuse_change() returns trigger
language plpgsql as $$
begin
    raise exception '% is append-only: % refused', tg_table_name, tg_op
        using errcode = 'insufficient_privilege', constraint = tg_table_name || '_append_only';
end
$$;
create trigger audit_events_append_only before update or delete on audit_events
    for each row execute function strata_refuse_change();
create trigger audit_events_no_truncate before truncate on audit_events
    for each statement execute function strata_refuse_change();

-- Not tenant data to read back: the relay that delivers it serves every tenant, so no RLS.
create table outbox_events (
    id uuid not null,
    organization_id uuid not null,
    topic text not null,
    aggregate_id uuid not null,
    payload jsonb not null,
    attempts integer not null default 0,
    available_at timestamptz not null default now(),
    claimed_until timestamptz,
    delivered_at timestamptz,
    created_at timestamptz not null default now(),
    constraint outbox_events_pkey primary key (id),
    constraint outbox_events_organization_id_fkey foreign key (organization_id)
        references organizations (id),
    constraint outbox_events_attempts_non_negative check (attempts >= 0)
);
comment on table outbox_events is
    'Events for other services, written in the transaction of the change; claimed with FOR UPDATE SKIP LOCKED.';
comment on column outbox_events.available_at is 'Not claimable before this (a released event waits its retry delay).';
comment on column outbox_events.claimed_until is 'A claim lease: a consumer that dies lets the event go back after it.';
create index outbox_events_pending_idx on outbox_events (available_at, id) where delivered_at is null;
create index outbox_events_organization_id_idx on outbox_events (organization_id);

-- Row-level security on every tenant-owned table.
alter table memberships enable row level security;
alter table memberships force row level security;
create policy memberships_tenant on memberships
    using (organization_id = strata_current_organization());
alter table projects enable row level security;
alter table projects force row level security;
create policy projects_tenant on projects
    using (organization_id = strata_current_organization());
alter table tasks enable row level security;
alter table tasks force row level security;
create policy tasks_tenant on tasks
    using (organization_id = strata_current_organization());
alter table comments enable row level security;
alter table comments force row level security;
create policy comments_tenant on comments
    using (organization_id = strata_current_organization());
alter table audit_events enable row level security;
alter table audit_events force row level security;
create policy audit_events_tenant on audit_events
    using (organization_id = strata_current_organization());

-- The role services connect as (or are granted): no superuser, no BYPASSRLS. Roles are
-- cluster-wide, so it is created only when missing; privileges are per database.
do $$
begin
    if not exists (select from pg_roles where rolname = 'strata_app') then
        create role strata_app nologin;
    end if;
end
$$;
grant usage on schema public to strata_app;
grant select on organizations, users, task_status_transitions to strata_app;
grant insert, update on organizations, users to strata_app;
grant select, insert, update, delete on memberships, projects, tasks, comments to strata_app;
grant select, insert on audit_events to strata_app;
grant select, insert, update on outbox_events to strata_app;

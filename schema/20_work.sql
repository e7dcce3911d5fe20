-- Projects, tasks and comments: tenant data, under row-level security by organization.

create table public.comments (
    id uuid not null,
    organization_id uuid not null,
    task_id uuid not null,
    author_id uuid not null,
    body text not null,
    edited_at timestamp with time zone,
    created_at timestamp with time zone default now() not null,
    updated_at timestamp with time zone default now() not null,
    constraint comments_pkey PRIMARY KEY (organization_id, id),
    constraint comments_body_not_blank CHECK ((btrim(body) <> ''::text))
);

create table public.projects (
    id uuid not null,
    organization_id uuid not null,
    key text not null,
    name text not null,
    description text default ''::text not null,
    archived boolean default false not null,
    next_task_number integer default 1 not null,
    created_at timestamp with time zone default now() not null,
    updated_at timestamp with time zone default now() not null,
    constraint projects_pkey PRIMARY KEY (organization_id, id),
    constraint projects_id_organization_id_key UNIQUE (id, organization_id),
    constraint projects_key_key UNIQUE (organization_id, key),
    constraint projects_key_format CHECK ((key ~ '^[A-Z][A-Z0-9]{1,9}$'::text)),
    constraint projects_name_not_blank CHECK ((btrim(name) <> ''::text)),
    constraint projects_next_task_number_positive CHECK ((next_task_number > 0))
);

create table public.task_status_transitions (
    from_status task_status not null,
    to_status task_status not null,
    constraint task_status_transitions_pkey PRIMARY KEY (from_status, to_status)
);

create table public.tasks (
    id uuid not null,
    organization_id uuid not null,
    project_id uuid not null,
    number integer not null,
    title text not null,
    description text default ''::text not null,
    status task_status default 'todo'::task_status not null,
    priority smallint default 2 not null,
    assignee_id uuid,
    labels text[] default '{}'::text[] not null,
    metadata jsonb default '{}'::jsonb not null,
    due_on date,
    version integer default 1 not null,
    deleted_at timestamp with time zone,
    created_at timestamp with time zone default now() not null,
    updated_at timestamp with time zone default now() not null,
    constraint tasks_pkey PRIMARY KEY (organization_id, id),
    constraint tasks_id_organization_id_key UNIQUE (id, organization_id),
    constraint tasks_number_key UNIQUE (project_id, organization_id, number),
    constraint tasks_number_positive CHECK ((number > 0)),
    constraint tasks_priority_range CHECK (((priority >= 0) AND (priority <= 4))),
    constraint tasks_title_not_blank CHECK ((btrim(title) <> ''::text)),
    constraint tasks_version_positive CHECK ((version > 0))
);

CREATE OR REPLACE FUNCTION public.strata_task_by_id(p_organization_id uuid, p_id uuid)
 RETURNS SETOF tasks
 LANGUAGE plpgsql
AS $function$
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
$function$;

revoke EXECUTE on function public.strata_task_by_id(p_organization_id uuid, p_id uuid) from public;
alter table public.comments add constraint comments_author_fkey FOREIGN KEY (organization_id, author_id) REFERENCES memberships(organization_id, user_id);
alter table public.comments add constraint comments_task_fkey FOREIGN KEY (task_id, organization_id) REFERENCES tasks(id, organization_id) ON DELETE CASCADE;
alter table public.projects add constraint projects_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES organizations(id) ON DELETE CASCADE;
alter table public.tasks add constraint tasks_assignee_fkey FOREIGN KEY (organization_id, assignee_id) REFERENCES memberships(organization_id, user_id);
alter table public.tasks add constraint tasks_project_fkey FOREIGN KEY (project_id, organization_id) REFERENCES projects(id, organization_id) ON DELETE CASCADE;
CREATE INDEX comments_author_idx ON public.comments USING btree (organization_id, author_id);
CREATE INDEX comments_task_idx ON public.comments USING btree (task_id, organization_id, id);
CREATE INDEX tasks_assignee_idx ON public.tasks USING btree (organization_id, assignee_id) WHERE (assignee_id IS NOT NULL);
CREATE INDEX tasks_labels_idx ON public.tasks USING gin (labels);
CREATE INDEX tasks_priority_idx ON public.tasks USING btree (project_id, organization_id, priority, number);
CREATE INDEX tasks_title_search_idx ON public.tasks USING gin (to_tsvector('simple'::regconfig, title));
CREATE TRIGGER comments_set_updated_at BEFORE UPDATE ON public.comments FOR EACH ROW EXECUTE FUNCTION strata_set_updated_at();
CREATE TRIGGER projects_set_updated_at BEFORE UPDATE ON public.projects FOR EACH ROW EXECUTE FUNCTION strata_set_updated_at();
CREATE TRIGGER tasks_check_status_transition BEFORE UPDATE OF status ON public.tasks FOR EACH ROW EXECUTE FUNCTION strata_check_status_transition();
CREATE TRIGGER tasks_set_updated_at BEFORE UPDATE ON public.tasks FOR EACH ROW EXECUTE FUNCTION strata_set_updated_at();
alter table public.comments enable row level security;
alter table public.comments force row level security;
alter table public.projects enable row level security;
alter table public.projects force row level security;
alter table public.tasks enable row level security;
alter table public.tasks force row level security;
create policy comments_tenant on public.comments as permissive for all to public using ((organization_id = strata_current_organization()));
create policy projects_tenant on public.projects as permissive for all to public using ((organization_id = strata_current_organization()));
create policy tasks_tenant on public.tasks as permissive for all to public using ((organization_id = strata_current_organization()));
grant DELETE on table public.comments to strata_app;
grant DELETE on table public.projects to strata_app;
grant DELETE on table public.tasks to strata_app;
grant EXECUTE on function public.strata_task_by_id(p_organization_id uuid, p_id uuid) to strata_app;
grant INSERT on table public.comments to strata_app;
grant INSERT on table public.projects to strata_app;
grant INSERT on table public.tasks to strata_app;
grant SELECT on table public.comments to strata_app;
grant SELECT on table public.projects to strata_app;
grant SELECT on table public.task_status_transitions to strata_app;
grant SELECT on table public.tasks to strata_app;
grant UPDATE on table public.comments to strata_app;
grant UPDATE on table public.projects to strata_app;
grant UPDATE on table public.tasks to strata_app;
comment on column public.comments.edited_at is 'When the author last edited the body; NULL if never.';
comment on column public.projects.key is 'Short uppercase key, unique in the organization: the OPS of OPS-42.';
comment on column public.projects.next_task_number is 'The number the next task gets; bumped in the inserting transaction, so numbers have no gaps.';
comment on column public.tasks.assignee_id is 'A member of the same organization (composite foreign key), or NULL.';
comment on column public.tasks.deleted_at is 'Soft delete: set when deleted, NULL again when restored.';
comment on column public.tasks.metadata is 'Free-form attributes from integrations, mapped to a serde type.';
comment on column public.tasks.number is 'Per-project sequence number: OPS-42 is number 42 of project OPS.';
comment on column public.tasks.priority is '0 (highest) to 4 (lowest).';
comment on column public.tasks.version is 'Optimistic concurrency: every update must name the version it read and bumps it.';
comment on function public.strata_task_by_id(p_organization_id uuid, p_id uuid) is 'One task of one organization under RLS, in one round trip; used by strata_db::tasks::get.';
comment on table public.task_status_transitions is 'Allowed task status changes; enforced by tasks_check_status_transition.';

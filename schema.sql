-- The schema that migrations/ produce, one object per line, sorted; written by
-- `just prepare` (`strata-migrate schema`) and checked by `just test`.
column public.api_tokens.created_at timestamp with time zone not null default now()
column public.api_tokens.expires_at timestamp with time zone not null
column public.api_tokens.id uuid not null
column public.api_tokens.name text not null
column public.api_tokens.revoked_at timestamp with time zone
column public.api_tokens.secret_sha256 bytea not null
column public.api_tokens.user_id uuid not null
column public.audit_events.action text not null
column public.audit_events.actor_id uuid not null
column public.audit_events.after jsonb
column public.audit_events.before jsonb
column public.audit_events.entity text not null
column public.audit_events.entity_id uuid not null
column public.audit_events.id uuid not null
column public.audit_events.occurred_at timestamp with time zone not null default now()
column public.audit_events.organization_id uuid not null
column public.comments.author_id uuid not null
column public.comments.body text not null
column public.comments.created_at timestamp with time zone not null default now()
column public.comments.edited_at timestamp with time zone
column public.comments.id uuid not null
column public.comments.organization_id uuid not null
column public.comments.task_id uuid not null
column public.comments.updated_at timestamp with time zone not null default now()
column public.memberships.created_at timestamp with time zone not null default now()
column public.memberships.organization_id uuid not null
column public.memberships.role membership_role not null default 'member'::membership_role
column public.memberships.updated_at timestamp with time zone not null default now()
column public.memberships.user_id uuid not null
column public.organizations.created_at timestamp with time zone not null default now()
column public.organizations.id uuid not null
column public.organizations.name text not null
column public.organizations.slug text not null
column public.organizations.updated_at timestamp with time zone not null default now()
column public.outbox_events.aggregate_id uuid not null
column public.outbox_events.attempts integer not null default 0
column public.outbox_events.available_at timestamp with time zone not null default now()
column public.outbox_events.claimed_until timestamp with time zone
column public.outbox_events.created_at timestamp with time zone not null default now()
column public.outbox_events.delivered_at timestamp with time zone
column public.outbox_events.id uuid not null
column public.outbox_events.organization_id uuid not null
column public.outbox_events.payload jsonb not null
column public.outbox_events.topic text not null
column public.projects.archived boolean not null default false
column public.projects.created_at timestamp with time zone not null default now()
column public.projects.description text not null default ''::text
column public.projects.id uuid not null
column public.projects.key text not null
column public.projects.name text not null
column public.projects.next_task_number integer not null default 1
column public.projects.organization_id uuid not null
column public.projects.updated_at timestamp with time zone not null default now()
column public.task_status_transitions.from_status task_status not null
column public.task_status_transitions.to_status task_status not null
column public.tasks.assignee_id uuid
column public.tasks.created_at timestamp with time zone not null default now()
column public.tasks.deleted_at timestamp with time zone
column public.tasks.description text not null default ''::text
column public.tasks.due_on date
column public.tasks.id uuid not null
column public.tasks.labels text[] not null default '{}'::text[]
column public.tasks.metadata jsonb not null default '{}'::jsonb
column public.tasks.number integer not null
column public.tasks.organization_id uuid not null
column public.tasks.priority smallint not null default 2
column public.tasks.project_id uuid not null
column public.tasks.status task_status not null default 'todo'::task_status
column public.tasks.title text not null
column public.tasks.updated_at timestamp with time zone not null default now()
column public.tasks.version integer not null default 1
column public.users.created_at timestamp with time zone not null default now()
column public.users.display_name text not null
column public.users.email text not null
column public.users.id uuid not null
column public.users.updated_at timestamp with time zone not null default now()
constraint public.api_tokens api_tokens_expires_after_created CHECK ((expires_at > created_at))
constraint public.api_tokens api_tokens_name_not_blank CHECK ((btrim(name) <> ''::text))
constraint public.api_tokens api_tokens_pkey PRIMARY KEY (id)
constraint public.api_tokens api_tokens_secret_sha256_length CHECK ((octet_length(secret_sha256) = 32))
constraint public.api_tokens api_tokens_user_id_fkey FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE
constraint public.audit_events audit_events_actor_id_fkey FOREIGN KEY (actor_id) REFERENCES users(id)
constraint public.audit_events audit_events_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES organizations(id)
constraint public.audit_events audit_events_pkey PRIMARY KEY (organization_id, id)
constraint public.comments comments_author_fkey FOREIGN KEY (organization_id, author_id) REFERENCES memberships(organization_id, user_id)
constraint public.comments comments_body_not_blank CHECK ((btrim(body) <> ''::text))
constraint public.comments comments_pkey PRIMARY KEY (organization_id, id)
constraint public.comments comments_task_fkey FOREIGN KEY (task_id, organization_id) REFERENCES tasks(id, organization_id) ON DELETE CASCADE
constraint public.memberships memberships_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES organizations(id) ON DELETE CASCADE
constraint public.memberships memberships_pkey PRIMARY KEY (organization_id, user_id)
constraint public.memberships memberships_user_id_fkey FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE
constraint public.organizations organizations_name_not_blank CHECK ((btrim(name) <> ''::text))
constraint public.organizations organizations_pkey PRIMARY KEY (id)
constraint public.organizations organizations_slug_format CHECK ((slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'::text))
constraint public.organizations organizations_slug_key UNIQUE (slug)
constraint public.outbox_events outbox_events_attempts_non_negative CHECK ((attempts >= 0))
constraint public.outbox_events outbox_events_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES organizations(id)
constraint public.outbox_events outbox_events_pkey PRIMARY KEY (organization_id, id)
constraint public.projects projects_id_organization_id_key UNIQUE (id, organization_id)
constraint public.projects projects_key_format CHECK ((key ~ '^[A-Z][A-Z0-9]{1,9}$'::text))
constraint public.projects projects_key_key UNIQUE (organization_id, key)
constraint public.projects projects_name_not_blank CHECK ((btrim(name) <> ''::text))
constraint public.projects projects_next_task_number_positive CHECK ((next_task_number > 0))
constraint public.projects projects_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES organizations(id) ON DELETE CASCADE
constraint public.projects projects_pkey PRIMARY KEY (organization_id, id)
constraint public.task_status_transitions task_status_transitions_pkey PRIMARY KEY (from_status, to_status)
constraint public.tasks tasks_assignee_fkey FOREIGN KEY (organization_id, assignee_id) REFERENCES memberships(organization_id, user_id)
constraint public.tasks tasks_id_organization_id_key UNIQUE (id, organization_id)
constraint public.tasks tasks_number_key UNIQUE (project_id, organization_id, number)
constraint public.tasks tasks_number_positive CHECK ((number > 0))
constraint public.tasks tasks_pkey PRIMARY KEY (organization_id, id)
constraint public.tasks tasks_priority_range CHECK (((priority >= 0) AND (priority <= 4)))
constraint public.tasks tasks_project_fkey FOREIGN KEY (project_id, organization_id) REFERENCES projects(id, organization_id) ON DELETE CASCADE
constraint public.tasks tasks_title_not_blank CHECK ((btrim(title) <> ''::text))
constraint public.tasks tasks_version_positive CHECK ((version > 0))
constraint public.users users_display_name_not_blank CHECK ((btrim(display_name) <> ''::text))
constraint public.users users_email_format CHECK ((email ~ '^[^@\s]+@[^@\s]+$'::text))
constraint public.users users_pkey PRIMARY KEY (id)
enum membership_role values 'owner', 'admin', 'member', 'viewer'
enum task_status values 'todo', 'in_progress', 'blocked', 'done', 'cancelled'
function strata_check_status_transition() CREATE OR REPLACE FUNCTION public.strata_check_status_transition() RETURNS trigger LANGUAGE plpgsql AS $function$ begin if new.status is distinct from old.status and not exists ( select 1 from task_status_transitions where from_status = old.status and to_status = new.status ) then raise exception 'task status cannot change from % to %', old.status, new.status using errcode = 'check_violation', constraint = 'tasks_status_transition'; end if; return new; end $function$ 
function strata_current_organization() CREATE OR REPLACE FUNCTION public.strata_current_organization() RETURNS uuid LANGUAGE sql STABLE PARALLEL SAFE AS $function$ select nullif(current_setting('strata.organization_id', true), '')::uuid $function$ 
function strata_enter_organization(uuid,uuid) CREATE OR REPLACE FUNCTION public.strata_enter_organization(p_organization_id uuid, p_user_id uuid) RETURNS membership_role LANGUAGE plpgsql AS $function$ declare previous text := coalesce(current_setting('strata.organization_id', true), ''); member_role membership_role; ignored text; begin if previous <> '' and previous <> p_organization_id::text then raise exception 'this transaction is scoped to another organization' using errcode = 'insufficient_privilege', constraint = 'strata_enter_organization_tenant'; end if; ignored := strata_set_tenant(p_organization_id::text); select m.role into member_role from memberships m where m.organization_id = p_organization_id and m.user_id = p_user_id; return member_role; end $function$ 
function strata_keep_an_owner() CREATE OR REPLACE FUNCTION public.strata_keep_an_owner() RETURNS trigger LANGUAGE plpgsql AS $function$ declare owners bigint; begin if tg_op = 'UPDATE' and new.role = 'owner' then return null; end if; -- The organization itself is being deleted (its memberships go with it): nothing to keep. perform 1 from organizations where id = old.organization_id; if not found then return null; end if; -- Every change that may remove an owner of this organization locks the owners' rows, in -- user order, and waits here for the others: the lock is held to the end of the -- transaction. A locking read: under READ COMMITTED it counts the owners as now committed -- (after the lock); under REPEATABLE READ an owner changed since the snapshot raises a -- serialization failure (40001) instead of being counted stale. strata-db takes the same -- locks first, so its callers queue instead of deadlocking; two raw UPDATEs that demote -- each other's owner may deadlock (40P01), and one of them is then rolled back. select count(*) into owners from (select 1 from memberships where organization_id = old.organization_id and role = 'owner' order by user_id for no key update) o; if owners = 0 then raise exception 'an organization keeps at least one owner' using errcode = 'check_violation', constraint = 'memberships_owner_required'; end if; return null; end $function$ 
function strata_refuse_change() CREATE OR REPLACE FUNCTION public.strata_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $function$ begin raise exception '% is append-only: % refused', tg_table_name, tg_op using errcode = 'insufficient_privilege', constraint = tg_table_name || '_append_only'; end $function$ 
function strata_set_tenant(text) CREATE OR REPLACE FUNCTION public.strata_set_tenant(p_organization_id text) RETURNS text LANGUAGE sql AS $function$ select set_config('strata.organization_id', p_organization_id, true) $function$ 
function strata_set_updated_at() CREATE OR REPLACE FUNCTION public.strata_set_updated_at() RETURNS trigger LANGUAGE plpgsql AS $function$ begin new.updated_at := now(); return new; end $function$ 
function strata_task_by_id(uuid,uuid) CREATE OR REPLACE FUNCTION public.strata_task_by_id(p_organization_id uuid, p_id uuid) RETURNS SETOF tasks LANGUAGE plpgsql AS $function$ declare previous text := coalesce(current_setting('strata.organization_id', true), ''); ignored text; begin if previous <> '' and previous <> p_organization_id::text then raise exception 'this transaction is scoped to another organization' using errcode = 'insufficient_privilege', constraint = 'strata_task_by_id_tenant'; end if; ignored := strata_set_tenant(p_organization_id::text); return query select * from tasks t where t.organization_id = p_organization_id and t.id = p_id and t.deleted_at is null; ignored := strata_set_tenant(previous); end $function$ 
grant DELETE on table public.comments to strata_app
grant DELETE on table public.memberships to strata_app
grant DELETE on table public.projects to strata_app
grant DELETE on table public.tasks to strata_app
grant EXECUTE on function strata_check_status_transition() to public
grant EXECUTE on function strata_current_organization() to public
grant EXECUTE on function strata_enter_organization(uuid,uuid) to public
grant EXECUTE on function strata_keep_an_owner() to public
grant EXECUTE on function strata_refuse_change() to public
grant EXECUTE on function strata_set_tenant(text) to strata_app
grant EXECUTE on function strata_set_updated_at() to public
grant EXECUTE on function strata_task_by_id(uuid,uuid) to strata_app
grant INSERT on table public.api_tokens to strata_app
grant INSERT on table public.audit_events to strata_app
grant INSERT on table public.comments to strata_app
grant INSERT on table public.memberships to strata_app
grant INSERT on table public.organizations to strata_app
grant INSERT on table public.outbox_events to strata_app
grant INSERT on table public.projects to strata_app
grant INSERT on table public.tasks to strata_app
grant INSERT on table public.users to strata_app
grant SELECT on table public.api_tokens to strata_app
grant SELECT on table public.audit_events to strata_app
grant SELECT on table public.comments to strata_app
grant SELECT on table public.memberships to strata_app
grant SELECT on table public.organizations to strata_app
grant SELECT on table public.outbox_events to strata_relay
grant SELECT on table public.projects to strata_app
grant SELECT on table public.task_status_transitions to strata_app
grant SELECT on table public.tasks to strata_app
grant SELECT on table public.users to strata_app
grant UPDATE on table public.comments to strata_app
grant UPDATE on table public.memberships to strata_app
grant UPDATE on table public.organizations to strata_app
grant UPDATE on table public.outbox_events to strata_relay
grant UPDATE on table public.projects to strata_app
grant UPDATE on table public.tasks to strata_app
grant UPDATE on table public.users to strata_app
grant USAGE on schema public to public
grant USAGE on schema public to strata_app
grant USAGE on schema public to strata_relay
index CREATE INDEX api_tokens_user_id_idx ON public.api_tokens USING btree (user_id)
index CREATE INDEX audit_events_actor_id_idx ON public.audit_events USING btree (actor_id)
index CREATE INDEX audit_events_entity_idx ON public.audit_events USING btree (organization_id, entity, entity_id, id)
index CREATE INDEX comments_author_idx ON public.comments USING btree (organization_id, author_id)
index CREATE INDEX comments_task_idx ON public.comments USING btree (task_id, organization_id, id)
index CREATE INDEX memberships_user_id_idx ON public.memberships USING btree (user_id)
index CREATE INDEX outbox_events_organization_id_idx ON public.outbox_events USING btree (organization_id)
index CREATE INDEX outbox_events_pending_idx ON public.outbox_events USING btree (available_at, id) WHERE (delivered_at IS NULL)
index CREATE INDEX tasks_assignee_idx ON public.tasks USING btree (organization_id, assignee_id) WHERE (assignee_id IS NOT NULL)
index CREATE INDEX tasks_labels_idx ON public.tasks USING gin (labels)
index CREATE INDEX tasks_priority_idx ON public.tasks USING btree (project_id, organization_id, priority, number)
index CREATE INDEX tasks_title_search_idx ON public.tasks USING gin (to_tsvector('simple'::regconfig, title))
index CREATE UNIQUE INDEX api_tokens_pkey ON public.api_tokens USING btree (id)
index CREATE UNIQUE INDEX audit_events_pkey ON public.audit_events USING btree (organization_id, id)
index CREATE UNIQUE INDEX comments_pkey ON public.comments USING btree (organization_id, id)
index CREATE UNIQUE INDEX memberships_pkey ON public.memberships USING btree (organization_id, user_id)
index CREATE UNIQUE INDEX organizations_pkey ON public.organizations USING btree (id)
index CREATE UNIQUE INDEX organizations_slug_key ON public.organizations USING btree (slug)
index CREATE UNIQUE INDEX outbox_events_pkey ON public.outbox_events USING btree (organization_id, id)
index CREATE UNIQUE INDEX projects_id_organization_id_key ON public.projects USING btree (id, organization_id)
index CREATE UNIQUE INDEX projects_key_key ON public.projects USING btree (organization_id, key)
index CREATE UNIQUE INDEX projects_pkey ON public.projects USING btree (organization_id, id)
index CREATE UNIQUE INDEX task_status_transitions_pkey ON public.task_status_transitions USING btree (from_status, to_status)
index CREATE UNIQUE INDEX tasks_id_organization_id_key ON public.tasks USING btree (id, organization_id)
index CREATE UNIQUE INDEX tasks_number_key ON public.tasks USING btree (project_id, organization_id, number)
index CREATE UNIQUE INDEX tasks_pkey ON public.tasks USING btree (organization_id, id)
index CREATE UNIQUE INDEX users_email_key ON public.users USING btree (lower(email))
index CREATE UNIQUE INDEX users_pkey ON public.users USING btree (id)
policy public.audit_events audit_events_tenant PERMISSIVE for ALL to public using ((organization_id = strata_current_organization())) with check ()
policy public.comments comments_tenant PERMISSIVE for ALL to public using ((organization_id = strata_current_organization())) with check ()
policy public.memberships memberships_tenant PERMISSIVE for ALL to public using ((organization_id = strata_current_organization())) with check ()
policy public.outbox_events outbox_events_relay_select PERMISSIVE for SELECT to strata_relay using (true) with check ()
policy public.outbox_events outbox_events_relay_update PERMISSIVE for UPDATE to strata_relay using (true) with check (true)
policy public.outbox_events outbox_events_tenant_insert PERMISSIVE for INSERT to public using () with check ((organization_id = strata_current_organization()))
policy public.outbox_events outbox_events_tenant_select PERMISSIVE for SELECT to strata_app using ((organization_id = strata_current_organization())) with check ()
policy public.projects projects_tenant PERMISSIVE for ALL to public using ((organization_id = strata_current_organization())) with check ()
policy public.tasks tasks_tenant PERMISSIVE for ALL to public using ((organization_id = strata_current_organization())) with check ()
row level security on public.audit_events, forced
row level security on public.comments, forced
row level security on public.memberships, forced
row level security on public.outbox_events, forced
row level security on public.projects, forced
row level security on public.tasks, forced
table public.api_tokens
table public.audit_events
table public.comments
table public.memberships
table public.organizations
table public.outbox_events
table public.projects
table public.task_status_transitions
table public.tasks
table public.users
trigger CREATE TRIGGER audit_events_append_only BEFORE DELETE OR UPDATE ON public.audit_events FOR EACH ROW EXECUTE FUNCTION strata_refuse_change()
trigger CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON public.audit_events FOR EACH STATEMENT EXECUTE FUNCTION strata_refuse_change()
trigger CREATE TRIGGER comments_set_updated_at BEFORE UPDATE ON public.comments FOR EACH ROW EXECUTE FUNCTION strata_set_updated_at()
trigger CREATE TRIGGER memberships_owner_required AFTER DELETE OR UPDATE OF role ON public.memberships FOR EACH ROW WHEN ((old.role = 'owner'::membership_role)) EXECUTE FUNCTION strata_keep_an_owner()
trigger CREATE TRIGGER memberships_set_updated_at BEFORE UPDATE ON public.memberships FOR EACH ROW EXECUTE FUNCTION strata_set_updated_at()
trigger CREATE TRIGGER organizations_set_updated_at BEFORE UPDATE ON public.organizations FOR EACH ROW EXECUTE FUNCTION strata_set_updated_at()
trigger CREATE TRIGGER projects_set_updated_at BEFORE UPDATE ON public.projects FOR EACH ROW EXECUTE FUNCTION strata_set_updated_at()
trigger CREATE TRIGGER tasks_check_status_transition BEFORE UPDATE OF status ON public.tasks FOR EACH ROW EXECUTE FUNCTION strata_check_status_transition()
trigger CREATE TRIGGER tasks_set_updated_at BEFORE UPDATE ON public.tasks FOR EACH ROW EXECUTE FUNCTION strata_set_updated_at()
trigger CREATE TRIGGER users_set_updated_at BEFORE UPDATE ON public.users FOR EACH ROW EXECUTE FUNCTION strata_set_updated_at()

-- The audit trail and the outbox, both written in the transaction of the change.

create table public.audit_events (
    id uuid not null,
    organization_id uuid not null,
    actor_id uuid not null,
    entity text not null,
    entity_id uuid not null,
    action text not null,
    before jsonb,
    after jsonb,
    occurred_at timestamp with time zone default now() not null,
    constraint audit_events_pkey PRIMARY KEY (organization_id, id)
);

create table public.outbox_events (
    id uuid not null,
    organization_id uuid not null,
    topic text not null,
    aggregate_id uuid not null,
    payload jsonb not null,
    attempts integer default 0 not null,
    available_at timestamp with time zone default now() not null,
    claimed_until timestamp with time zone,
    delivered_at timestamp with time zone,
    created_at timestamp with time zone default now() not null,
    constraint outbox_events_pkey PRIMARY KEY (organization_id, id),
    constraint outbox_events_attempts_non_negative CHECK ((attempts >= 0))
);

alter table public.audit_events add constraint audit_events_actor_id_fkey FOREIGN KEY (actor_id) REFERENCES users(id);
alter table public.audit_events add constraint audit_events_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES organizations(id);
alter table public.outbox_events add constraint outbox_events_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES organizations(id);
CREATE INDEX audit_events_actor_id_idx ON public.audit_events USING btree (actor_id);
CREATE INDEX audit_events_entity_idx ON public.audit_events USING btree (organization_id, entity, entity_id, id);
CREATE INDEX outbox_events_organization_id_idx ON public.outbox_events USING btree (organization_id);
CREATE INDEX outbox_events_pending_idx ON public.outbox_events USING btree (available_at, id) WHERE (delivered_at IS NULL);
CREATE TRIGGER audit_events_append_only BEFORE DELETE OR UPDATE ON public.audit_events FOR EACH ROW EXECUTE FUNCTION strata_refuse_change();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON public.audit_events FOR EACH STATEMENT EXECUTE FUNCTION strata_refuse_change();
alter table public.audit_events enable row level security;
alter table public.audit_events force row level security;
alter table public.outbox_events enable row level security;
alter table public.outbox_events force row level security;
create policy audit_events_tenant on public.audit_events as permissive for all to public using ((organization_id = strata_current_organization()));
create policy outbox_events_relay_select on public.outbox_events as permissive for select to strata_relay using (true);
create policy outbox_events_relay_update on public.outbox_events as permissive for update to strata_relay using (true) with check (true);
create policy outbox_events_tenant_insert on public.outbox_events as permissive for insert to public with check ((organization_id = strata_current_organization()));
create policy outbox_events_tenant_select on public.outbox_events as permissive for select to strata_app using ((organization_id = strata_current_organization()));
grant INSERT on table public.audit_events to strata_app;
grant INSERT on table public.outbox_events to strata_app;
grant SELECT (id) on table public.outbox_events to strata_app;
grant SELECT on table public.audit_events to strata_app;
grant SELECT on table public.outbox_events to strata_relay;
grant UPDATE on table public.outbox_events to strata_relay;
comment on column public.audit_events.after is 'The row after the change (NULL for a hard deletion).';
comment on column public.audit_events.before is 'The row before the change (NULL for a creation).';
comment on column public.outbox_events.available_at is 'Not claimable before this (a released event waits its retry delay).';
comment on column public.outbox_events.claimed_until is 'A claim lease: a consumer that dies lets the event go back after it.';
comment on table public.audit_events is 'Append-only record of every change to tenant data; UPDATE, DELETE and TRUNCATE are refused.';
comment on table public.outbox_events is 'Events for other services, written in the transaction of the change (by strata_app, in its tenant only); read and settled by strata_relay across tenants, claimed with FOR UPDATE SKIP LOCKED.';
